"""The Keys section in JupyterLab (chromium): create a user from the panel, copy its key
with the Copy key button (browser -> broker -> clipboard, never widget state), paste it
into a new profile in the login panel, and log in with it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .harness import VIEWPORT, JupyterServer, NotebookPage, Panel

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def browser_context(chromium: Any, jupyter: JupyterServer) -> Iterator[Any]:
    """The module's context may use the clipboard on the Jupyter server's origin."""
    context = chromium.new_context(viewport=VIEWPORT)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=jupyter.base_url)
    context.set_default_timeout(30_000)
    yield context
    context.close()


def keys_section(notebook: NotebookPage, cell: int) -> Any:
    root = notebook.cell(cell).locator(".jp-OutputArea")
    root.get_by_placeholder("user name").wait_for(timeout=30_000)
    return root


def test_create_copy_and_log_in_with_the_copied_key(
    open_notebook: Any, jupyter: JupyterServer, sandbox: Any, typed_secrets: set[str]
) -> None:
    if not jupyter.broker_active():
        pytest.skip("Copy key needs the weaviate-auth server extension (the broker)")
    creds = sandbox.credentials
    body = {"url": sandbox.weaviate_url, "method": "api_key", "secrets": {"api_key": creds.admin_api_key}}
    jupyter.api("PUT", "/weaviate-auth/api/profiles/keyadmin", body)
    notebook = open_notebook(
        "lab", ["%load_ext weaviate_auth_widget", "%weaviate_auth --keys keyadmin", "%weaviate_auth"]
    )
    notebook.run_cell(0)
    notebook.run_cell(1)
    keys = keys_section(notebook, 1)
    keys.get_by_placeholder("user name").fill("browser-bot")
    keys.get_by_placeholder("profile for its key").fill("browser-bot")
    keys.get_by_placeholder("viewer, ...").fill("viewer")
    keys.locator("button", has_text="Create user").click()
    keys.get_by_text("Created user browser-bot").wait_for(timeout=30_000)
    keys.get_by_text("browser-bot", exact=True).first.wait_for()

    keys.locator("button.weaviate-copy-key").click()
    keys.get_by_text("Copied to the clipboard.").wait_for(timeout=30_000)
    copied = str(notebook.page.evaluate("navigator.clipboard.readText()"))
    stored = jupyter.api("GET", "/weaviate-auth/api/profiles/browser-bot")
    assert stored["has_secret"] and copied and copied not in json.dumps(stored)
    assert copied not in notebook.visible_text()  # copied, never shown

    notebook.run_cell(2)
    panel = Panel(notebook, 2, typed_secrets).wait()
    ok, text = panel.login_api_key(sandbox.weaviate_url, "pasted-bot", copied)
    assert ok, text
    assert "browser-bot" in text  # signed in as the user made from the panel
    notebook.save()
    path = jupyter.root_dir / notebook.path
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "widget-state" not in path.read_text():
        time.sleep(0.2)
    saved = path.read_text()
    assert "widget-state" in saved  # saved with widget state: the scan means something
    assert copied not in saved and copied not in jupyter.log_text()
    jupyter.api("DELETE", "/weaviate-auth/api/profiles/keyadmin/users/browser-bot")
