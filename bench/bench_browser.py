"""Browser benchmarks. Prints `name: value` lines.

login_click_to_card_ms  median of 5 API-key logins in JupyterLab (real server, chromium, the
                        local sandbox): from the click on Connect to the result card on
                        screen, timed inside the page (a capture-phase click listener and a
                        MutationObserver, then the next animation frame)
browser_sign_in_ms      median of 5 browser sign-ins ("Sign in with <provider>") in the same
                        JupyterLab with an existing provider session (no password typed):
                        from the click to the result card, timed the same way (the popup
                        goes to the provider, back to the broker's callback, and closes)
import_ratio            median wall time of `python -c "import weaviate_auth_widget"` /
                        the same for `import httpx`, 15 fresh interpreters each, interleaved
                        (target <= 1.3)

Uses Debian's chromium (/usr/bin/chromium), never a downloaded browser.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from browser.harness import (  # noqa: E402 - the harness lives with the browser tests
    VIEWPORT,
    JupyterServer,
    NotebookPage,
    Panel,
    chromium_available,
    cleanup_home,
    launch_browser,
)

LOGINS = 5
IMPORT_RUNS = 15

# Armed before each click: resolves with the ms from the click on the button (Connect, or
# the sign-in button) to the first frame painted after a new "Connected" card appeared.
_ARM = """([root, selector]) => {
    const button = Array.from(root.querySelectorAll(selector))
        .find((b) => selector !== 'button.widget-button' || b.textContent.trim() === 'Connect');
    window.__wawLogin = new Promise((resolve, reject) => {
        let clicked = null;
        const done = () => Array.from(root.querySelectorAll('.waw-card'))
            .some((c) => !c.dataset.wawSeen && c.textContent.includes('Connected')
                && !c.textContent.includes('Connecting'));
        const observer = new MutationObserver(() => {
            if (clicked !== null && done()) {
                observer.disconnect();
                requestAnimationFrame(() => resolve(performance.now() - clicked));
            }
        });
        observer.observe(root, {subtree: true, childList: true, characterData: true});
        button.addEventListener('click', () => { clicked = performance.now(); }, {capture: true, once: true});
        setTimeout(() => reject(new Error('no card within 30 s')), 30000);
    });
}"""


def _armed(panel: Panel, selector: str) -> None:
    panel.mark_cards()
    panel.root.evaluate(f"(root) => ({_ARM})([root, {selector!r}])")


def browser_benches() -> tuple[float, float]:
    """(login_click_to_card_ms, browser_sign_in_ms), one server and browser for both."""
    from playwright.sync_api import sync_playwright

    from weaviate_auth_widget.sandbox import Sandbox

    home = Path(tempfile.mkdtemp(prefix="waw-bench-browser-"))
    try:
        with Sandbox.demo() as sandbox, JupyterServer(home, name="bench") as server, sync_playwright() as pw:
            browser = launch_browser(pw)
            context = browser.new_context(viewport=VIEWPORT)
            name = server.write_notebook("bench.ipynb", ["%load_ext weaviate_auth_widget", "%weaviate_auth"])
            notebook = NotebookPage(server, context, "lab", name).open()
            notebook.run_cell(0)
            notebook.run_cell(1)
            panel = Panel(notebook, 1).wait()
            mode = panel.root.locator(".waw-mode").inner_text()
            print(f"# backend: {mode}", file=sys.stderr)
            login = _api_key_logins(sandbox, notebook, panel)
            sign_in = _browser_sign_ins(sandbox, notebook, panel)
            notebook.close()
            browser.close()
        return login, sign_in
    finally:
        cleanup_home(home)


def _browser_sign_ins(sandbox: Any, notebook: NotebookPage, panel: Panel) -> float:
    panel.profiles.select_option(label="New profile…")
    panel.fill("Profile name", "bench-sso")
    panel.fill("Cluster URL", sandbox.weaviate_url)
    button = panel.root.locator("button.waw-sign-in")
    button.filter(has_text="Sign in with").wait_for(timeout=30_000)
    times: list[float] = []
    for attempt in range(LOGINS + 1):  # the first one logs in at the provider: not counted
        _armed(panel, "button.waw-sign-in")
        with notebook.page.expect_popup() as opened:
            button.click()
        if attempt == 0:
            popup = opened.value
            popup.locator("#username").wait_for()
            popup.fill("#username", sandbox.credentials.username)
            popup.fill("#password", sandbox.credentials.password)
            popup.click("#kc-login")
        elapsed = float(notebook.page.evaluate("() => window.__wawLogin"))
        if attempt:
            times.append(elapsed)
    print(f"# browser_sign_in_ms runs: {', '.join(f'{t:.1f}' for t in times)}", file=sys.stderr)
    return statistics.median(times)


def _api_key_logins(sandbox: Any, notebook: NotebookPage, panel: Panel) -> float:
    panel.fill("Profile name", "bench")
    panel.fill("Cluster URL", sandbox.weaviate_url)
    key = sandbox.credentials.admin_api_key
    times: list[float] = []
    for attempt in range(LOGINS + 1):  # the first one warms caches and is not counted
        if panel.button("Log out").is_visible():
            panel.mark_cards()
            panel.button("Log out").click()
            panel.root.locator(".waw-card:not([data-waw-seen])", has_text="Signed out").wait_for()
        panel.field("API key").fill(key)
        _armed(panel, "button.widget-button")
        panel.connect_button.click()
        elapsed = float(notebook.page.evaluate("() => window.__wawLogin"))
        ok, text = panel.result()
        if not ok:
            raise RuntimeError(f"login failed: {text}")
        panel.button("Log out").wait_for()
        if attempt:
            times.append(elapsed)
    print(f"# login_click_to_card_ms runs: {', '.join(f'{t:.1f}' for t in times)}", file=sys.stderr)
    return statistics.median(times)


def _wall(module: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    return time.perf_counter() - started


def import_ratio() -> float:
    for module in ("weaviate_auth_widget", "httpx"):  # warm the file cache
        _wall(module)
    ours: list[float] = []
    theirs: list[float] = []
    for i in range(IMPORT_RUNS):  # interleaved, alternating order: drifts hit both
        if i % 2:
            theirs.append(_wall("httpx"))
            ours.append(_wall("weaviate_auth_widget"))
        else:
            ours.append(_wall("weaviate_auth_widget"))
            theirs.append(_wall("httpx"))
    return statistics.median(ours) / statistics.median(theirs)


def main() -> None:
    print(f"import_ratio: {import_ratio():.3f}", flush=True)
    if not chromium_available():
        print("# login_click_to_card_ms skipped: no /usr/bin/chromium (make system-deps)", file=sys.stderr)
        return
    login, sign_in = browser_benches()
    print(f"login_click_to_card_ms: {login:.1f}", flush=True)
    print(f"browser_sign_in_ms: {sign_in:.1f}", flush=True)


if __name__ == "__main__":
    main()
