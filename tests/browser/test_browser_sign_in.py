"""The panel's "Sign in with <provider>" in real front ends: the provider's own page in a
popup, the broker's callback, the result card; the kernel's session queries as that
user, and neither the websocket frames nor the kernel's heap hold the code or the
refresh token (the access token reaches the kernel only by the broker's token route)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from .harness import FRONTENDS, JupyterServer, Panel, carrying
from .test_panel import CELLS, OpenNotebook, show_panel
from .test_secret_paths import HEAP_SCAN, new_profile, traced, wait_route

pytestmark = pytest.mark.timeout(300)


def sign_in_button(panel: Panel) -> Any:
    return panel.root.locator("button.waw-sign-in")


def sign_in_with_popup(panel: Panel, sandbox: Any, *, type_password: bool = True) -> tuple[bool, str]:
    """Click the button; in the popup, log in on the provider's page (unless a provider
    session lets it through); wait for the result card."""
    creds = sandbox.credentials
    if type_password:  # no provider session from an earlier test: the form must show
        sandbox.idp.interactions.end_sessions()
    button = sign_in_button(panel)
    host = sandbox.idp_url.split("//")[1]
    button.filter(has_text=f"Sign in with {host}").wait_for(timeout=20_000)
    panel.mark_cards()
    with panel.notebook.page.expect_popup() as opened:
        button.click()
    popup = opened.value
    if type_password:
        popup.locator("#username").wait_for(timeout=20_000)
        popup.fill("#username", creds.username)
        popup.fill("#password", creds.password)
        popup.click("#kc-login")
    final = (
        panel.root.locator(".waw-card:not([data-waw-seen])")
        .filter(has_not_text="Signing in")
        .filter(has_not_text="Connecting")
    )
    final.wait_for(timeout=30_000)
    return "waw-error" not in (final.get_attribute("class") or ""), str(final.inner_text())


def minted(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every JWT (access and id tokens) the provider signs from now on."""
    signed: list[str] = []
    original = sandbox.idp._sign

    def sign(*args: Any, **kwargs: Any) -> str:
        signed.append(original(*args, **kwargs))
        return signed[-1]

    monkeypatch.setattr(sandbox.idp, "_sign", sign)
    return signed


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_sign_in_at_the_provider_from_the_panel(
    frontend: str,
    open_notebook: OpenNotebook,
    jupyter: JupyterServer,
    sandbox: Any,
    typed_secrets: set[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert jupyter.broker_active()
    access_tokens = minted(sandbox, monkeypatch)
    creds = sandbox.credentials
    notebook, traffic = traced(open_notebook, frontend, CELLS)
    panel = show_panel(notebook, typed_secrets)
    wait_route(panel, "broker")
    new_profile(panel, f"{frontend}-sso", sandbox.weaviate_url)
    ok, text = sign_in_with_popup(panel, sandbox)
    assert ok, text
    assert re.search(rf"Signed in as\s+{re.escape(creds.username)}", text), text
    assert "version" in notebook.run_cell(2)  # the session bound by the panel queries the cluster
    # a second sign-in with the provider session: no password typed, straight to the card
    ok, text = sign_in_with_popup(panel, sandbox, type_password=False)
    assert ok and creds.username in text, text
    frames = traffic.kernel_frames("sent") + traffic.kernel_frames("received")
    codes = list(sandbox.idp.interactions.used_codes)
    refresh_tokens = list(sandbox.idp._refresh)
    assert codes and refresh_tokens and access_tokens  # positive controls: there were some
    for value in [*codes, *refresh_tokens, *access_tokens]:
        assert not carrying(frames, value), "a code or token crossed the kernel's websocket"


def test_no_code_or_refresh_token_in_the_kernel_heap(
    open_notebook: OpenNotebook, jupyter: JupyterServer, sandbox: Any, typed_secrets: set[str]
) -> None:
    notebook = open_notebook("lab", [*CELLS, 'exec(open("heap_scan.py").read())'])
    panel = show_panel(notebook, typed_secrets)
    wait_route(panel, "broker")
    new_profile(panel, "heap-sso", sandbox.weaviate_url)
    ok, text = sign_in_with_popup(panel, sandbox)
    assert ok, text
    assert "version" in notebook.run_cell(2)
    secrets_now = [*sandbox.idp.interactions.used_codes, *sandbox.idp._refresh]
    marker = "marker-" + hashlib.sha256(text.encode()).hexdigest()[:24]
    wanted = {hashlib.sha256(v.encode()).hexdigest(): "code-or-refresh" for v in secrets_now}
    wanted[hashlib.sha256(marker.encode()).hexdigest()] = "marker"
    scan = HEAP_SCAN.format(
        wanted=wanted,
        marker_parts=[marker[i : i + 5] for i in range(0, len(marker), 5)],
        lengths={len(v.encode()) for v in [*secrets_now, marker]},
    )
    (jupyter.root_dir / "heap_scan.py").write_text(scan)  # written now: the values exist now
    out = notebook.run_cell(3)
    assert "heap scan found: ['marker']" in out, out
