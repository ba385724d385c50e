"""The login panel under the real JupyterHub, in chromium through the proxy.

User A signs in at ``/hub/login``, opens a notebook on ``/user/A/`` and logs in with the
panel: the page finds A's broker behind the hub's ``base_url`` and posts the key to it
(A's cookie + XSRF), no kernel-channel frame carries the key, and the session bound in
the kernel works. User B, signed in too, cannot post to A's broker from B's page on the
same origin, and nothing lands in A's store.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.harness import (
    VIEWPORT,
    NotebookPage,
    Panel,
    Traffic,
    carrying,
    chromium_available,
    launch_browser,
)
from tests.browser.test_panel import CELLS, assert_connected

from .conftest import Hub
from .test_hub_isolation import call

pytestmark = pytest.mark.timeout(600)


class HubNotebook(NotebookPage):
    """A notebook on a user's single-user server, through the proxy."""

    def __init__(self, hub: Hub, context: Any, owner: str, path: str) -> None:
        super().__init__(hub, context, "lab", path)  # type: ignore[arg-type]
        self.hub, self.owner = hub, owner

    @property
    def url(self) -> str:
        return f"{self.hub.server_url(self.owner)}lab/tree/{self.path}"

    def close(self) -> None:
        self.page.close()


def sign_in(context: Any, hub: Hub, user: str) -> Any:
    """The hub's login form, as a person fills it; returns the page (on the hub's home)."""
    page = context.new_page()
    page.goto(hub.proxy_url + "hub/login?next=%2Fhub%2Fhome")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", hub.user_password)
    with page.expect_navigation(wait_until="domcontentloaded"):
        page.locator("input[type=submit], button[type=submit]").first.click()
    cookies = {c["name"] for c in context.cookies()}
    assert "jupyterhub-session-id" in cookies, f"login of {user} failed: {page.url}"
    return page


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not chromium_available():
        pytest.skip("no chromium at /usr/bin/chromium: run `make system-deps`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        yield browser
        browser.close()


def test_owner_logs_in_with_the_panel_and_the_other_user_cannot(hub: Hub, chromium: Any) -> None:
    users, creds = hub.users, hub.sandbox.credentials
    notebook_path = users.home(users.a) / "panel.ipynb"
    cells = [
        {
            "cell_type": "code",
            "id": f"c{i}",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": src,
        }
        for i, src in enumerate(CELLS)
    ]
    notebook_path.write_text(
        json.dumps(
            {
                "cells": cells,
                "metadata": {
                    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
                },
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )
    shutil.chown(notebook_path, users.a, users.a)

    a_context = chromium.new_context(viewport=VIEWPORT)
    a_context.set_default_timeout(60_000)
    try:
        sign_in(a_context, hub, users.a).close()
        notebook = HubNotebook(hub, a_context, users.a, "panel.ipynb")
        traffic = Traffic(notebook.page)
        notebook.open()
        for index in range(2):
            notebook.run_cell(index, timeout=120)
        panel = Panel(notebook, 1, set()).wait()
        panel.root.locator(".waw-form[data-route='broker']").wait_for(timeout=30_000)
        card = panel.login_api_key(hub.sandbox.weaviate_url, "from-the-panel", creds.admin_api_key)
        assert_connected(card, version=hub.sandbox.weaviate_config.version, user="admin")
        assert f"version {hub.sandbox.weaviate_config.version}" in notebook.run_cell(2)
        posts = [r for r in traffic.requests if r[1].endswith("/profiles/from-the-panel/connect")]
        assert len(posts) == 1 and posts[0][1].startswith(hub.server_url(users.a))  # through the proxy
        assert not carrying(
            traffic.kernel_frames("sent") + traffic.kernel_frames("received"), creds.admin_api_key
        )
        notebook.close()
    finally:
        a_context.close()

    b_context = chromium.new_context(viewport=VIEWPORT)
    try:
        page = sign_in(b_context, hub, users.b)
        page.goto(
            hub.server_url(users.b) + "lab", wait_until="domcontentloaded"
        )  # B's own server, same origin
        stolen = "stolen-" + secrets.token_urlsafe(16)
        answer = page.evaluate(
            """async ([url, key, sandbox]) => {
                const xsrf = (document.cookie.match(/(?:^|;\\s*)_xsrf=([^;]*)/) || [])[1] || "";
                const r = await fetch(url, {method: "POST", credentials: "same-origin", redirect: "manual",
                    headers: {"Content-Type": "application/json", "X-XSRFToken": decodeURIComponent(xsrf)},
                    body: JSON.stringify({url: sandbox, method: "api_key", secrets: {api_key: key}})});
                return r.status;
            }""",
            [hub.broker_url(users.a) + "profiles/b-was-here/connect", stolen, hub.sandbox.weaviate_url],
        )
        assert answer != 200, answer
    finally:
        b_context.close()
    names = [
        p["name"]
        for p in call("GET", hub.broker_url(users.a) + "profiles", token=hub.tokens[users.a]).json()[
            "profiles"
        ]
    ]
    assert "from-the-panel" in names and "b-was-here" not in names
