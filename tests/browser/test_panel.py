"""The login panel in real front ends: JupyterLab 4 and Notebook 7, driven in chromium.

Each test writes a small notebook (``%load_ext``, ``%weaviate_auth``, a cell using
``weaviate_session``), opens it, runs the cells with Shift+Enter, fills the panel the way
a person would (fields found by their labels) and reads the card. The last test saves a
notebook with widget state and looks for every secret typed during the run on disk, in
the server log, on the page and in the browser's storage.

Runs against whatever is installed: with the weaviate-auth server extension (the
broker) the kernel uses it, without it the in-process service;
``test_in_process_mode`` covers the second case explicitly.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from .harness import ACTIVE_SERVERS, FRONTENDS, SCREENSHOTS, JupyterServer, NotebookPage, Panel

pytestmark = pytest.mark.timeout(240)

SESSION_CELL = 'print("version", weaviate_session.meta()["version"])'
CELLS = ["%load_ext weaviate_auth_widget", "%weaviate_auth", SESSION_CELL]
OpenNotebook = Callable[..., NotebookPage]


def show_panel(notebook: NotebookPage, typed: set[str], cell: int = 1) -> Panel:
    """Run the cells up to the panel's and wait for it to render."""
    for index in range(cell + 1):
        notebook.run_cell(index)
    return Panel(notebook, cell, typed).wait()


def save_with_widget_state(notebook: NotebookPage) -> str:
    """Ctrl+S; wait until the file on disk holds the widget state; return its text."""
    path = notebook.server.root_dir / notebook.path
    notebook.save()
    deadline = time.monotonic() + 20
    saved: dict[str, Any] = {}
    while time.monotonic() < deadline:
        saved = json.loads(path.read_text())
        if saved.get("metadata", {}).get("widgets"):
            break
        time.sleep(0.2)
    state = saved.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    models = state.get("state", {})
    assert len(models) > 20, "the notebook was saved without widget state: a scan would mean nothing"
    # the login form's model is there (its secret inputs are DOM only: no state to save)
    assert any(m.get("model_name") == "AnyModel" for m in models.values())
    assert not any(m.get("model_name") == "PasswordModel" for m in models.values())
    return path.read_text()


def expected_mode(server: JupyterServer) -> str:
    return "broker" if server.broker_active() else "in-process"


def assert_connected(card: tuple[bool, str], *, version: str, user: str) -> str:
    ok, text = card
    assert ok, f"expected a success card, got: {text}"
    assert "Connected" in text
    assert version in text
    assert re.search(rf"Signed in as\s+{re.escape(user)}", text), text
    return text


# -- logins -------------------------------------------------------------------------------
@pytest.mark.parametrize("frontend", FRONTENDS)
def test_api_key_login(
    frontend: str, open_notebook: OpenNotebook, jupyter: JupyterServer, sandbox: Any, typed_secrets: set[str]
) -> None:
    notebook = open_notebook(frontend, CELLS)
    panel = show_panel(notebook, typed_secrets)
    mode = expected_mode(jupyter)
    assert mode in panel.root.locator(".waw-mode").inner_text()

    card = panel.login_api_key(sandbox.weaviate_url, f"{frontend}-key", sandbox.credentials.admin_api_key)
    text = assert_connected(card, version=sandbox.weaviate_config.version, user="admin")
    assert "this key can write and delete" in text
    assert panel.field("API key").input_value() == ""  # cleared on Connect
    panel.button("Log out").wait_for()  # shown once the profile list is refreshed

    out = notebook.run_cell(2)
    assert f"version {sandbox.weaviate_config.version}" in out, out


def test_password_login(open_notebook: OpenNotebook, sandbox: Any, typed_secrets: set[str]) -> None:
    creds = sandbox.credentials
    notebook = open_notebook("lab", CELLS)
    panel = show_panel(notebook, typed_secrets)
    card = panel.login_password(sandbox.weaviate_url, "lab-password", creds.username, creds.password)
    text = assert_connected(card, version=sandbox.weaviate_config.version, user=creds.username)
    assert "username & password" in text
    assert "can write and delete" in text  # the demo user has the admin role
    assert panel.field("Password").input_value() == ""
    assert f"version {sandbox.weaviate_config.version}" in notebook.run_cell(2)


def test_wrong_key_shows_the_error_and_binds_no_session(
    open_notebook: OpenNotebook, sandbox: Any, typed_secrets: set[str]
) -> None:
    notebook = open_notebook("lab", CELLS)
    panel = show_panel(notebook, typed_secrets)
    wrong = "wrong-" + secrets.token_urlsafe(24)
    ok, text = panel.login_api_key(sandbox.weaviate_url, "lab-wrong", wrong)
    assert not ok and "Could not connect" in text
    assert "refused the API key" in text, text
    assert panel.field("API key").input_value() == ""
    out = notebook.run_cell(2)
    assert "NameError" in out and "weaviate_session" in out, out


def test_password_on_a_cluster_without_oidc_says_to_use_an_api_key(
    open_notebook: OpenNotebook, weaviate_factory: Any, typed_secrets: set[str]
) -> None:
    plain = weaviate_factory(apikey_enabled=True, api_keys={"k-" + secrets.token_hex(8): "u"})
    notebook = open_notebook("lab", CELLS)
    panel = show_panel(notebook, typed_secrets)
    ok, text = panel.login_password(
        plain.url, "lab-no-oidc", "ada@example.org", "pw-" + secrets.token_hex(12)
    )
    assert not ok
    assert "does not accept username & password" in text, text
    assert "API key" in text


def test_enter_in_the_api_key_field_submits(
    open_notebook: OpenNotebook, sandbox: Any, typed_secrets: set[str]
) -> None:
    notebook = open_notebook("lab", CELLS)
    panel = show_panel(notebook, typed_secrets)
    panel.fill("Profile name", "lab-enter")
    panel.fill("Cluster URL", sandbox.weaviate_url)
    panel.fill_secret("API key", sandbox.credentials.readonly_api_key)
    panel.submit("enter", "API key")
    text = assert_connected(panel.result(), version=sandbox.weaviate_config.version, user="reader")
    assert "this key can write and delete" not in text  # a viewer key: no warning
    assert "version" in notebook.run_cell(2)


def test_log_out_then_forget(open_notebook: OpenNotebook, sandbox: Any, typed_secrets: set[str]) -> None:
    notebook = open_notebook("lab", [*CELLS, "%weaviate_auth --list"])
    panel = show_panel(notebook, typed_secrets)
    name = "lab-forget-me"
    assert_connected(
        panel.login_api_key(sandbox.weaviate_url, name, sandbox.credentials.admin_api_key),
        version=sandbox.weaviate_config.version,
        user="admin",
    )
    assert any(option.startswith(f"{name} — ") for option in panel.profile_options())

    panel.button("Log out").click()
    signed_out = panel.card.filter(has_text="Signed out")
    signed_out.wait_for()
    assert name in signed_out.inner_text()
    panel.button("Log out").wait_for(state="hidden")
    assert any(option.startswith(f"{name} — ") for option in panel.profile_options())  # still saved

    panel.button("Forget").click()
    panel.card.filter(has_text="Forgotten").wait_for()
    panel.button("Forget").wait_for(state="hidden")
    assert not any(option.startswith(f"{name} ") for option in panel.profile_options())
    assert name not in notebook.run_cell(3)  # the kernel's view of the store agrees


def test_new_profile_drops_the_kept_secret_hint(
    open_notebook: OpenNotebook, sandbox: Any, typed_secrets: set[str]
) -> None:
    notebook = open_notebook("lab", CELLS)
    panel = show_panel(notebook, typed_secrets)
    assert panel.field("API key").get_attribute("placeholder") == "paste your API key"
    assert panel.login_api_key(sandbox.weaviate_url, "lab-hint", sandbox.credentials.admin_api_key)[0]
    panel.button("Forget").wait_for()
    # widget state arrives as separate messages: wait for the placeholder itself
    expect(panel.field("API key")).to_have_attribute("placeholder", re.compile("a secret is kept"))
    panel.field("Profile").select_option(label="New profile…")
    panel.field("Profile name").wait_for()
    expect(panel.field("API key")).to_have_attribute("placeholder", "paste your API key")


def test_changing_a_saved_profiles_method_asks_first(
    open_notebook: OpenNotebook, sandbox: Any, typed_secrets: set[str]
) -> None:
    creds = sandbox.credentials
    notebook = open_notebook("lab", CELLS)
    panel = show_panel(notebook, typed_secrets)
    assert panel.login_api_key(sandbox.weaviate_url, "lab-switch", creds.admin_api_key)[0]
    expect(panel.field("API key")).to_have_attribute("placeholder", re.compile("a secret is kept"))
    panel.method("Username & password")
    panel.fill("Username", creds.username)
    # the kept API key is no password: no "a secret is kept" in the password field
    expect(panel.field("Password")).not_to_have_attribute("placeholder", re.compile("a secret is kept"))
    panel.fill_secret("Password", creds.password)
    panel.connect_button.click()
    asked = panel.root.get_by_text("Change its method")
    asked.wait_for()
    assert "API key" in asked.inner_text() and "username & password" in asked.inner_text()
    panel.mark_cards()
    panel.button("Save as new profile").click()
    assert_connected(panel.result(), version=sandbox.weaviate_config.version, user=creds.username)
    options = panel.profile_options()
    assert any(o.startswith("lab-switch-password — ") for o in options)
    assert any(o.startswith("lab-switch — ") for o in options)  # the API-key profile stays


def test_in_process_mode(
    open_notebook: OpenNotebook, jupyter_in_process: JupyterServer, sandbox: Any, typed_secrets: set[str]
) -> None:
    """With the server extension disabled, the same panel works on the kernel's own service."""
    notebook = open_notebook("lab", CELLS, server=jupyter_in_process)
    panel = show_panel(notebook, typed_secrets)
    assert not jupyter_in_process.broker_active()
    assert "in-process" in panel.root.locator(".waw-mode").inner_text()
    card = panel.login_api_key(sandbox.weaviate_url, "in-process", sandbox.credentials.admin_api_key)
    assert_connected(card, version=sandbox.weaviate_config.version, user="admin")
    assert f"version {sandbox.weaviate_config.version}" in notebook.run_cell(2)
    saved = save_with_widget_state(notebook)  # no save guard here: nothing to scrub either
    assert "Connected" in saved and sandbox.credentials.admin_api_key not in saved


# -- how it looks ---------------------------------------------------------------------------
@pytest.mark.parametrize("frontend", FRONTENDS)
def test_screenshots(frontend: str, open_notebook: OpenNotebook, typed_secrets: set[str]) -> None:
    """Empty, busy, connected and error states, saved as artefacts/screenshots/<frontend>-<state>.png.

    The busy state is caught with a provider that takes 2 s to issue a token.
    """
    from weaviate_auth_widget.sandbox import Sandbox

    with Sandbox.demo(token_delay=2.0) as slow:
        creds = slow.credentials
        notebook = open_notebook(frontend, CELLS)
        panel = show_panel(notebook, typed_secrets)
        shot = notebook.cell(1).locator(".jp-OutputArea-output").first
        notebook.screenshot(SCREENSHOTS / f"{frontend}-empty.png", shot)

        panel.fill("Profile name", f"{frontend}-slow")
        panel.fill("Cluster URL", slow.weaviate_url)
        panel.method("Username & password")
        panel.fill("Username", creds.username)
        panel.fill_secret("Password", creds.password)
        panel.submit()
        busy = panel.button("Connecting…")
        busy.wait_for(timeout=5_000)
        assert busy.is_disabled()
        panel.card.filter(has_text="Connecting").wait_for(timeout=5_000)
        notebook.screenshot(SCREENSHOTS / f"{frontend}-busy.png", shot)

        assert_connected(panel.result(), version=slow.weaviate_config.version, user=creds.username)
        panel.connect_button.wait_for()
        notebook.screenshot(SCREENSHOTS / f"{frontend}-success.png", shot)

        panel.field("Profile").select_option(label="New profile…")
        panel.field("Profile name").wait_for()
        panel.method("API key")
        panel.fill("Profile name", f"{frontend}-slow-wrong")
        panel.fill_secret("API key", "wrong-" + secrets.token_urlsafe(24))
        panel.submit()
        ok, text = panel.result()
        assert not ok and "refused the API key" in text
        notebook.screenshot(SCREENSHOTS / f"{frontend}-error.png", shot)
        page_shot = SCREENSHOTS / f"{frontend}-page.png"
        notebook.screenshot(page_shot)
        notebook.close()  # before the slow sandbox goes away


# -- no secret anywhere (keep last: it scans what every test above typed) ------------------
def test_no_secret_leaks_anywhere(
    open_notebook: OpenNotebook, jupyter: JupyterServer, sandbox: Any, typed_secrets: set[str]
) -> None:
    creds = sandbox.credentials
    cells = [
        "%load_ext weaviate_auth_widget",
        "%weaviate_auth",
        "%weaviate_auth --as by_password",
        "%weaviate_auth --as by_wrong_key",
        'print("bound:", sorted(n for n in ("weaviate_session", "by_password", "by_wrong_key") if n in globals()))',
    ]
    notebook = open_notebook("lab", cells)
    by_key = show_panel(notebook, typed_secrets, cell=1)
    notebook.run_cell(2)
    notebook.run_cell(3)
    by_password = Panel(notebook, 2, typed_secrets).wait()
    by_wrong_key = Panel(notebook, 3, typed_secrets).wait()

    assert by_key.login_api_key(sandbox.weaviate_url, "leak-key", creds.admin_api_key)[0]
    assert by_password.login_password(sandbox.weaviate_url, "leak-pw", creds.username, creds.password)[0]
    wrong = "wrong-" + secrets.token_urlsafe(24)
    assert not by_wrong_key.login_api_key(sandbox.weaviate_url, "leak-wrong", wrong)[0]
    assert "bound: ['by_password', 'weaviate_session']" in notebook.run_cell(4)

    saved_text = save_with_widget_state(notebook)
    # positive controls: what was typed into the *visible* fields, and the cards, did reach
    # the file, so a secret left in a field would have too
    for typed_in_clear in ("leak-key", "leak-pw", creds.username, sandbox.weaviate_url, "Connected"):
        assert typed_in_clear in saved_text, typed_in_clear

    typed = {creds.admin_api_key, creds.password, wrong} | typed_secrets
    assert all(len(value) >= 8 for value in typed)
    # every file of every server this module started (notebooks and their checkpoints, the
    # server log with the kernels' output, Lab settings and workspaces, runtime files,
    # IPython history), except the secret store itself, which keeps secrets by design
    places: dict[str, bytes] = {}
    stores: list[bytes] = []
    for server in ACTIVE_SERVERS:
        for path in sorted(p for p in server.home.rglob("*") if p.is_file()):
            data = path.read_bytes()
            if path.parent == server.store_dir and path.name.startswith("secrets"):
                stores.append(data)
            else:
                places[f"{server.name}:{path.relative_to(server.home)}"] = data
    places["page text, HTML and field values"] = notebook.visible_text().encode()
    places["localStorage + sessionStorage"] = notebook.storage().encode()
    assert any(name.endswith("server.log") for name in places) and len(places) > 10
    leaks = [
        f"secret #{i} in {where}"
        for where, data in places.items()
        for i, value in enumerate(sorted(typed))
        if value.encode() in data
    ]
    assert not leaks, leaks
    # nothing had to be scrubbed on save either (the broker's save guard would write this)
    assert not [where for where, data in places.items() if where.endswith(".ipynb") and b"[REDACTED]" in data]
    # and the search itself works: the plain file store (WEAVIATE_AUTH_STORE_BACKEND=file)
    # does hold the remembered admin key
    assert any(creds.admin_api_key.encode() in data for data in stores)
