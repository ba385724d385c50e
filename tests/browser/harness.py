"""A real Jupyter server and a real browser, for the browser tests and the browser bench.

``JupyterServer`` runs ``jupyter lab`` (which also serves Notebook 7) as a subprocess on
a free loopback port, with HOME, the Jupyter dirs and the weaviate-auth store all in one
temporary directory, and its log captured to a file. ``launch_browser`` starts Debian's
chromium through Playwright (never a downloaded browser). ``NotebookPage`` opens a
notebook in JupyterLab or Notebook 7, runs its cells and drives the login panel.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[2]
ARTEFACTS = REPO / "artefacts"
SCREENSHOTS = ARTEFACTS / "screenshots"
FAILURES = ARTEFACTS / "browser-failures"

CHROMIUM = os.environ.get("WAW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}

Frontend = Literal["lab", "notebook"]
FRONTENDS: tuple[Frontend, ...] = ("lab", "notebook")

#: Pages and servers alive right now: the failure hook screenshots / tails them.
ACTIVE_PAGES: list[NotebookPage] = []
ACTIVE_SERVERS: list[JupyterServer] = []

#: Lab settings written before the server starts (``<config dir>/lab/user-settings``).
USER_SETTINGS: dict[str, dict[str, Any]] = {
    # the leak scan needs notebooks saved *with* widget state
    "@jupyter-widgets/jupyterlab-manager/plugin": {"saveState": True},
    # no news / update checks (the network is closed, and no toast over the page)
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() and os.access(CHROMIUM, os.X_OK)


class JupyterServer:
    """``jupyter lab`` in a subprocess (its own process group), everything under ``home``.

    ``broker=False`` disables the weaviate-auth server extension (user-level config,
    as ``jupyter server extension disable --user`` would), so kernels use the
    in-process service; ``None`` leaves whatever is installed.
    """

    def __init__(self, home: Path, *, broker: bool | None = None, name: str = "jupyter") -> None:
        self.home = home
        self.name = name
        self.broker = broker
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.root_dir = home / "notebooks"
        self.config_dir = home / "config"
        self.runtime_dir = home / "runtime"
        self.data_dir = home / "data"
        self.store_dir = home / "weaviate_auth"
        self.log_path = home / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    # -- life cycle --------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("JUPYTER", "WEAVIATE_", "JPY_", "IPYTHON", "PYTHON_KEYRING", "XDG_"))
        }
        env.update(
            HOME=str(self.home / "home"),
            JUPYTER_CONFIG_DIR=str(self.config_dir),
            JUPYTER_RUNTIME_DIR=str(self.runtime_dir),
            JUPYTER_DATA_DIR=str(self.data_dir),
            JUPYTER_PLATFORM_DIRS="0",
            IPYTHONDIR=str(self.home / "ipython"),
            XDG_CONFIG_HOME=str(self.home / "home" / ".config"),
            XDG_DATA_HOME=str(self.home / "home" / ".local" / "share"),
            XDG_CACHE_HOME=str(self.home / "home" / ".cache"),
            WEAVIATE_AUTH_DIR=str(self.store_dir),
            # the file store: deterministic, and nothing lands in a real keyring
            WEAVIATE_AUTH_STORE_BACKEND="file",
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
            PYTHONUNBUFFERED="1",
        )
        return env

    def command(self) -> list[str]:
        """The server's command line (``VoilaServer`` runs ``voila`` instead)."""
        return [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            "--ServerApp.log_level=DEBUG",
            "--LabApp.expose_app_in_browser=True",
            "--JupyterNotebookApp.expose_app_in_browser=True",
        ]

    def start(self, timeout: float = 60.0) -> JupyterServer:
        for d in (self.root_dir, self.config_dir, self.runtime_dir, self.data_dir, self.home / "home"):
            d.mkdir(parents=True, exist_ok=True)
        settings = self.config_dir / "lab" / "user-settings"
        for plugin, values in USER_SETTINGS.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        if self.broker is False:
            (self.config_dir / "jupyter_server_config.json").write_text(
                json.dumps({"ServerApp": {"jpserver_extensions": {"weaviate_auth_widget.broker": False}}})
            )
        cmd = self.command()
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd,
            env=self.env(),
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kernels go down with it
        )
        log.close()
        ACTIVE_SERVERS.append(self)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.answering()
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.name} did not answer within {timeout:g} s:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.1)
        return self

    def answering(self) -> None:
        """Raises OSError until the server answers."""
        self.api("GET", "/api/status", timeout=2)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if self in ACTIVE_SERVERS:
            ACTIVE_SERVERS.remove(self)
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything of *this* group left behind

    def __enter__(self) -> JupyterServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- REST and files ------------------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None, timeout: float = 10) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # our own loopback server
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def shutdown_kernel_of(self, path: str) -> None:
        """Stop the kernel of the notebook at ``path`` (relative to root_dir), if any."""
        with contextlib.suppress(Exception):
            for session in self.api("GET", "/api/sessions"):
                if session.get("path") == path:
                    self.api("DELETE", f"/api/sessions/{session['id']}")

    def broker_active(self) -> bool:
        """Whether the weaviate-auth broker wrote its connection file (kernels will use it)."""
        return any(self.runtime_dir.glob("weaviate-auth-broker-*.json"))

    def write_notebook(self, name: str, sources: list[str]) -> str:
        cells = [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"cell{i}",
                "metadata": {},
                "outputs": [],
                "source": source,
            }
            for i, source in enumerate(sources)
        ]
        notebook = {
            "cells": cells,
            "metadata": {
                "kernelspec": {
                    "name": "python3",
                    "display_name": "Python 3 (ipykernel)",
                    "language": "python",
                },
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (self.root_dir / name).write_text(json.dumps(notebook, indent=1))
        return name

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the log, without the per-request DEBUG chatter."""
        kept = [line for line in self.log_text().splitlines() if not _NOISE.search(line)]
        return "\n".join(kept[-lines:])


_NOISE = re.compile(
    r"Accepting token-authenticated|Generating new user|activity on |Path .* served from"
    r"|Paths used for configuration|^\s+/|GET /(static|api/(contents|kernels|sessions|me|kernelspecs)\b)"
)


def launch_browser(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def cleanup_home(home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)


def temp_home(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"waw-browser-{name}-"))


def serving(server: JupyterServer) -> Iterator[JupyterServer]:
    """For a fixture: start ``server``, yield it; stop it and remove its home afterwards."""
    try:
        server.start()
        yield server
    finally:
        server.stop()
        cleanup_home(server.home)


# -- one notebook in one front end ---------------------------------------------------------
_PROMPT_DONE = re.compile(r"^\[(\d+)\]:?$")


class NotebookPage:
    """A notebook opened in JupyterLab or Notebook 7, in its own browser tab."""

    def __init__(self, server: JupyterServer, context: Any, frontend: Frontend, path: str) -> None:
        self.server = server
        self.frontend = frontend
        self.path = path
        self.console: list[str] = []
        self.page = context.new_page()
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda err: self.console.append(f"pageerror: {err}"))
        ACTIVE_PAGES.append(self)

    def _on_console(self, message: Any) -> None:
        if message.type != "verbose":  # chromium's DOM hints ("password field not in a form")
            self.console.append(f"{message.type}: {message.text}")

    @property
    def url(self) -> str:
        if self.frontend == "lab":
            # a workspace of its own: Lab restores nothing from earlier tests
            workspace = re.sub(r"[^A-Za-z0-9]", "-", self.path)
            return f"{self.server.base_url}/lab/workspaces/{workspace}/tree/{self.path}?token={self.server.token}"
        return f"{self.server.base_url}/notebooks/{self.path}?token={self.server.token}"

    def open(self) -> NotebookPage:
        self.page.goto(self.url, wait_until="domcontentloaded")
        self.page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        self.wait_kernel_ready()
        return self

    def wait_kernel_ready(self, timeout: float = 60_000) -> None:
        """Until the notebook's kernel is started, connected and idle.

        A cell run before that is dropped (Lab starts another kernel, or asks which one);
        the toolbar's indicator says "idle" even before a kernel exists, so ask the
        application (exposed by ``expose_app_in_browser``).
        """
        self.page.wait_for_function(
            """() => {
                const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                const context = widget && widget.sessionContext;
                const kernel = context && context.session && context.session.kernel;
                return Boolean(context && context.isReady && kernel
                    && kernel.connectionStatus === 'connected' && kernel.status === 'idle');
            }""",
            timeout=timeout,
            polling=100,
        )

    def _accept_kernel_dialog(self) -> None:
        """Should Lab still ask for a kernel, take the preferred one (Python 3)."""
        dialog = self.page.locator(".jp-Dialog", has_text="Select Kernel")
        if dialog.count() and dialog.first.is_visible():
            dialog.first.locator(".jp-Dialog-button.jp-mod-accept").click()

    def close(self) -> None:
        if self in ACTIVE_PAGES:
            ACTIVE_PAGES.remove(self)
        with contextlib.suppress(Exception):
            self.page.close()
        self.server.shutdown_kernel_of(self.path)

    # -- cells ---------------------------------------------------------------------------
    def cell(self, index: int) -> Any:
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def prompt(self, index: int) -> str:
        return str(self.cell(index).locator(".jp-InputPrompt").inner_text()).strip()

    def run_cell(self, index: int, timeout: float = 60.0) -> str:
        """Select cell ``index`` (command mode) and press Shift+Enter; wait until it ran.
        Returns the cell's output text.

        A run asked for while the front end is still attaching the kernel is dropped
        (the prompt stays ``[ ]``): then the keypress is repeated, at most 3 times.
        """
        before = self.prompt(index)
        deadline = time.monotonic() + timeout
        for _attempt in range(3):
            self.cell(index).locator(".jp-InputPrompt").click()
            self.page.keyboard.press("Escape")
            self.page.keyboard.press("Shift+Enter")
            accepted = time.monotonic() + 3
            while self.prompt(index) == before and time.monotonic() < accepted:
                self._accept_kernel_dialog()
                self.page.wait_for_timeout(50)
            if self.prompt(index) != before:
                break
        while True:
            now = self.prompt(index)
            if _PROMPT_DONE.match(now) and now != before:
                break
            self._accept_kernel_dialog()
            if time.monotonic() > deadline:
                raise AssertionError(f"cell {index} did not finish within {timeout:g} s (prompt {now!r})")
            self.page.wait_for_timeout(50)
        return self.output(index)

    def output(self, index: int) -> str:
        area = self.cell(index).locator(".jp-OutputArea")
        if not area.count():
            return ""
        return str(area.first.inner_text())

    def save(self) -> None:
        """Ctrl+S in command mode (the caller waits for the file on disk)."""
        self.page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("Control+s")

    def screenshot(self, path: Path, target: Any = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        (target or self.page).screenshot(path=str(path))
        return path

    def storage(self) -> str:
        """localStorage + sessionStorage, every key and value."""
        return str(
            self.page.evaluate(
                """() => {
                const dump = (s) => Object.fromEntries(Object.keys(s).map((k) => [k, s.getItem(k)]));
                return JSON.stringify({local: dump(window.localStorage), session: dump(window.sessionStorage)});
            }"""
            )
        )

    def visible_text(self) -> str:
        """What the page shows and holds: text, HTML, and the value of every field."""
        return str(
            self.page.evaluate(
                """() => [document.body.innerText, document.documentElement.outerHTML,
                    ...Array.from(document.querySelectorAll('input, textarea, select')).map((e) => e.value)
                ].join('\\n')"""
            )
        )


class Panel:
    """The LoginPanel rendered in one cell's output."""

    def __init__(
        self, notebook: NotebookPage, cell: int, typed: set[str] | None = None, *, root: Any = None
    ) -> None:
        """``root``: the panel's element where there are no notebook cells (Voilà)."""
        self.notebook = notebook
        self.root = root if root is not None else notebook.cell(cell).locator(".waw-panel")
        self.typed = typed if typed is not None else set()

    def wait(self, timeout: float = 30_000) -> Panel:
        self.root.wait_for(timeout=timeout)
        self.field("Cluster URL").wait_for(timeout=timeout)
        return self

    def field(self, label: str) -> Any:
        """The login form's field labelled ``label`` (the first: sections added under the
        form, such as *Keys*, may reuse a label)."""
        return self.root.get_by_label(label, exact=True).first

    @property
    def profiles(self) -> Any:
        """The Profile picker (a select; the Keys section has a "Profile" text field too)."""
        return self.root.get_by_role("combobox", name="Profile", exact=True)

    def fill(self, label: str, value: str) -> None:
        self.field(label).fill(value)

    def fill_secret(self, label: str, value: str) -> None:
        """Type a secret into a hidden field; it joins the values the leak scan looks for."""
        self.typed.add(value)
        field = self.field(label)
        assert field.get_attribute("type") == "password", f"{label} is not a hidden field"
        field.fill(value)

    def method(self, label: str) -> None:
        self.root.locator(".widget-toggle-button", has_text=label).click()

    @property
    def connect_button(self) -> Any:
        return self.button("Connect")

    def button(self, text: str) -> Any:
        """The panel's button showing ``text`` (by its text: the accessible name also
        carries the icon font's glyph)."""
        return self.root.locator("button.widget-button", has_text=re.compile(rf"^\s*{re.escape(text)}\s*$"))

    @property
    def card(self) -> Any:
        return self.root.locator(".waw-card")

    def mark_cards(self) -> None:
        """Tag the cards shown now: ``result`` waits for a card rendered after this."""
        self.root.evaluate(
            "root => root.querySelectorAll('.waw-card').forEach((c) => { c.dataset.wawSeen = '1'; })"
        )

    def submit(self, how: str = "click", field: str = "API key") -> None:
        """Connect by clicking the button, or by Enter in ``field``."""
        self.mark_cards()
        if how == "click":
            self.connect_button.click()
        else:
            self.field(field).press("Enter")

    def result(self, timeout: float = 30_000) -> tuple[bool, str]:
        """Wait for the card of the attempt submitted last: ``(ok, text)``.

        The status HTML is re-rendered on every change, so a card without the mark set
        by ``submit`` is a new one, not the previous attempt's.
        """
        final = self.root.locator(".waw-card:not([data-waw-seen])").filter(has_not_text="Connecting")
        final.wait_for(timeout=timeout)
        classes = final.get_attribute("class") or ""
        return "waw-error" not in classes, str(final.inner_text())

    def profile_options(self) -> list[str]:
        options = self.profiles.locator("option").all_inner_texts()
        return [str(o).replace("\xa0", " ") for o in options]

    def login_api_key(self, url: str, name: str, key: str) -> tuple[bool, str]:
        self.fill("Profile name", name)
        self.fill("Cluster URL", url)
        self.method("API key")
        self.fill_secret("API key", key)
        self.submit()
        return self.result()

    def login_password(self, url: str, name: str, username: str, password: str) -> tuple[bool, str]:
        self.fill("Profile name", name)
        self.fill("Cluster URL", url)
        self.method("Username & password")
        self.fill("Username", username)
        self.fill_secret("Password", password)
        self.submit()
        return self.result()


# -- what crosses the wire ----------------------------------------------------------------
class Traffic:
    """Every websocket frame (both ways) and every HTTP request body of one page."""

    def __init__(self, page: Any) -> None:
        #: (direction "sent"/"received", websocket URL, payload as bytes)
        self.frames: list[tuple[str, str, bytes]] = []
        #: (method, URL, body)
        self.requests: list[tuple[str, str, bytes]] = []
        page.on("websocket", self._on_websocket)
        page.on("request", self._on_request)

    def _on_websocket(self, ws: Any) -> None:
        url = str(ws.url)
        ws.on("framesent", lambda payload: self.frames.append(("sent", url, _as_bytes(payload))))
        ws.on("framereceived", lambda payload: self.frames.append(("received", url, _as_bytes(payload))))

    def _on_request(self, request: Any) -> None:
        body = request.post_data_buffer or b""
        self.requests.append((str(request.method), str(request.url), bytes(body)))

    def kernel_frames(self, direction: str) -> list[bytes]:
        """Frames on kernel channels (``/api/kernels/<id>/channels``) going ``direction``."""
        return [
            p for d, url, p in self.frames if d == direction and "/channels" in url and "/api/kernels/" in url
        ]


def _as_bytes(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else str(payload).encode("utf-8")


def pieces(secret: str, size: int = 8) -> set[bytes]:
    """The secret whole and every ``size``-character piece of it, as bytes."""
    raw = secret.encode("utf-8")
    return {raw} | {raw[i : i + size] for i in range(len(raw) - size + 1)}


def carrying(frames: list[bytes], secret: str) -> list[bytes]:
    """The frames holding ``secret`` or any 8-character piece of it (JSON-escaped too)."""
    found = pieces(secret) | pieces(json.dumps(secret)[1:-1])
    return [f for f in frames if any(p in f for p in found)]
