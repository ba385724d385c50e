"""Where the login panel's secrets travel, watched on the wire of real front ends.

Every websocket frame (both ways) and every HTTP request body of the page is recorded
(:class:`~.harness.Traffic`). In broker mode the secrets go from the page straight to
the broker's REST API: no kernel-channel frame carries any of them, whole or any
8-character piece. Without a broker, one browser-to-kernel message carries them and
nothing comes back. A secret typed but not submitted is in no saved notebook or
checkpoint, and after a broker-mode password login the kernel's heap holds no password
(compared by hash: the password is never put into a cell).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from .harness import FRONTENDS, JupyterServer, NotebookPage, Panel, Traffic, carrying
from .test_panel import CELLS, OpenNotebook, assert_connected, show_panel

pytestmark = pytest.mark.timeout(300)


def traced(
    open_notebook: OpenNotebook, frontend: str, cells: list[str], **kwargs: Any
) -> tuple[NotebookPage, Traffic]:
    """Open a notebook whose page traffic is recorded from its first request."""
    recorded: list[Traffic] = []
    original = NotebookPage.open

    def open_(self: NotebookPage) -> NotebookPage:
        recorded.append(Traffic(self.page))
        return original(self)

    NotebookPage.open = open_  # type: ignore[method-assign]
    try:
        notebook = open_notebook(frontend, cells, **kwargs)
    finally:
        NotebookPage.open = original  # type: ignore[method-assign]
    return notebook, recorded[0]


def new_profile(panel: Panel, name: str, url: str) -> None:
    if panel.profile_options()[0] != panel.profiles.locator("option:checked").inner_text():
        panel.profiles.select_option(label="New profile…")
    panel.field("Profile name").wait_for()
    panel.fill("Profile name", name)
    panel.fill("Cluster URL", url)


def module_key(panel: Panel, value: str) -> None:
    details = panel.root.locator("details.waw-form-modules")
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    panel.fill_secret("OpenAI", value)


def wait_route(panel: Panel, route: str) -> None:
    panel.root.locator(f".waw-form[data-route='{route}']").wait_for(timeout=15_000)


def broker_panel(
    open_notebook: OpenNotebook, jupyter: JupyterServer, frontend: str, typed: set[str]
) -> tuple[NotebookPage, Traffic, Panel]:
    """A traced notebook whose panel posts secrets straight to the broker."""
    assert jupyter.broker_active()
    notebook, traffic = traced(open_notebook, frontend, CELLS)
    panel = show_panel(notebook, typed)
    wait_route(panel, "broker")
    return notebook, traffic, panel


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_broker_mode_no_secret_in_kernel_frames(
    frontend: str, open_notebook: OpenNotebook, jupyter: JupyterServer, sandbox: Any, typed_secrets: set[str]
) -> None:
    creds = sandbox.credentials
    notebook, traffic, panel = broker_panel(open_notebook, jupyter, frontend, typed_secrets)
    assert "straight to the weaviate-auth broker" in panel.root.inner_text()

    openai = "sk-" + secrets.token_urlsafe(24)
    new_profile(panel, f"{frontend}-wire-key", sandbox.weaviate_url)
    panel.fill_secret("API key", creds.admin_api_key)
    module_key(panel, openai)
    panel.submit()
    assert_connected(panel.result(), version=sandbox.weaviate_config.version, user="admin")

    new_profile(panel, f"{frontend}-wire-pw", sandbox.weaviate_url)
    panel.method("Username & password")
    panel.fill("Username", creds.username)
    panel.fill_secret("Password", creds.password)
    panel.submit()
    assert_connected(panel.result(), version=sandbox.weaviate_config.version, user=creds.username)

    new_profile(panel, f"{frontend}-wire-cc", sandbox.weaviate_url)
    panel.field("Advanced: client credentials").check()
    panel.fill("Client id", creds.service_client_id)
    panel.fill_secret("Client secret", creds.service_client_secret)
    panel.submit()
    ok, text = panel.result()
    assert ok, text
    assert f"version {sandbox.weaviate_config.version}" in notebook.run_cell(2)  # bound via the broker token

    typed = [creds.admin_api_key, openai, creds.password, creds.service_client_secret]
    sent, received = traffic.kernel_frames("sent"), traffic.kernel_frames("received")
    assert len(sent) > 20 and len(received) > 20, "no kernel traffic recorded: the scan would mean nothing"
    assert carrying(sent, f"{frontend}-wire-pw") and carrying(sent, creds.username)  # what the scan sees
    for value in typed:
        assert not carrying(sent, value), "a secret went to the kernel"
        assert not carrying(received, value), "a secret came from the kernel"
    # positive control: each did travel, in one POST to the broker's connect route
    posts = [body for method, url, body in traffic.requests if method == "POST" and url.endswith("/connect")]
    assert len(posts) == 3
    for value in typed:
        assert sum(value.encode() in body for body in posts) == 1


def test_fallback_sends_the_secrets_once_and_nothing_comes_back(
    open_notebook: OpenNotebook, jupyter_in_process: JupyterServer, sandbox: Any, typed_secrets: set[str]
) -> None:
    creds = sandbox.credentials
    notebook, traffic = traced(open_notebook, "lab", CELLS, server=jupyter_in_process)
    panel = show_panel(notebook, typed_secrets)
    wait_route(panel, "kernel")
    assert "No weaviate-auth broker is reachable" in panel.root.inner_text()

    openai = "sk-" + secrets.token_urlsafe(24)
    new_profile(panel, "fallback-key", sandbox.weaviate_url)
    panel.field("API key").press_sequentially(creds.admin_api_key[:6])  # keystrokes: nothing sent
    panel.fill_secret("API key", creds.admin_api_key)
    module_key(panel, openai)
    panel.submit()
    assert_connected(panel.result(), version=sandbox.weaviate_config.version, user="admin")
    assert panel.field("API key").input_value() == "" and panel.field("OpenAI").input_value() == ""

    sent, received = traffic.kernel_frames("sent"), traffic.kernel_frames("received")
    with_key = carrying(sent, creds.admin_api_key)
    assert len(with_key) == 1, f"{len(with_key)} messages carried the key"
    assert carrying(sent, openai) == with_key  # the same, single message
    assert b'"connect"' in with_key[0]
    assert not carrying(received, creds.admin_api_key) and not carrying(received, openai)
    assert not [r for r in traffic.requests if creds.admin_api_key.encode() in r[2]]


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_a_typed_secret_is_in_no_saved_notebook(
    frontend: str, open_notebook: OpenNotebook, jupyter: JupyterServer, typed_secrets: set[str]
) -> None:
    """Typed, not submitted, then Ctrl+S *in the secret field*: the notebook is saved
    (with widget state), and neither it nor its checkpoint holds the secret."""
    notebook = open_notebook(frontend, CELLS[:2])
    panel = show_panel(notebook, typed_secrets)
    typed = "typed-" + secrets.token_urlsafe(24)
    panel.fill("Profile name", "never-submitted")
    panel.fill_secret("API key", typed)
    path = jupyter.root_dir / notebook.path
    panel.field("API key").press("Control+s")
    saved = _saved_with_state(path)
    assert "never-submitted" in saved  # positive control: the visible fields' state is saved
    assert panel.field("API key").input_value() == typed  # still typed: only the page has it
    places = [path, *path.parent.glob(f".ipynb_checkpoints/{path.stem}*")]
    assert len(places) == 2, places
    for place in places:
        assert not carrying([place.read_bytes()], typed), place


def _saved_with_state(path: Path) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = path.read_text()
        if json.loads(text).get("metadata", {}).get("widgets"):
            return text
        time.sleep(0.2)
    raise AssertionError("Ctrl+S in the form did not save the notebook with widget state")


HEAP_SCAN = """
import gc, hashlib
_wanted = {wanted!r}
_marker = "".join({marker_parts!r})
_found = set()
for _o in gc.get_objects():
    for _v in ([_o] if isinstance(_o, (str, bytes)) else (_o.values() if isinstance(_o, dict) else
               (_o if isinstance(_o, (list, tuple)) else ()))):
        if isinstance(_v, str):
            _v = _v.encode("utf-8", "surrogatepass")
        if isinstance(_v, bytes) and len(_v) in {lengths!r}:
            _h = hashlib.sha256(_v).hexdigest()
            if _h in _wanted:
                _found.add(_wanted[_h])
print("heap scan found:", sorted(_found))
"""


def test_broker_mode_password_never_in_kernel_heap(
    open_notebook: OpenNotebook, jupyter: JupyterServer, sandbox: Any, typed_secrets: set[str]
) -> None:
    creds = sandbox.credentials
    marker = "marker-" + secrets.token_hex(12)
    wanted = {
        hashlib.sha256(creds.password.encode()).hexdigest(): "password",
        hashlib.sha256(marker.encode()).hexdigest(): "marker",
    }
    scan = HEAP_SCAN.format(
        wanted=wanted,
        marker_parts=[marker[i : i + 5] for i in range(0, len(marker), 5)],
        lengths={len(creds.password.encode()), len(marker)},
    )
    notebook = open_notebook("lab", [*CELLS, scan])
    panel = show_panel(notebook, typed_secrets)
    wait_route(panel, "broker")
    card = panel.login_password(sandbox.weaviate_url, "heap-pw", creds.username, creds.password)
    assert_connected(card, version=sandbox.weaviate_config.version, user=creds.username)
    assert "version" in notebook.run_cell(2)
    out = notebook.run_cell(3)
    assert "heap scan found: ['marker']" in out, out  # the scan finds what is there, and no password
