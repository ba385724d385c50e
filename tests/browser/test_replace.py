"""The login panel's question before a saved profile's method changes, end to end.

A user saves an API-key profile through the panel, then picks it, switches to username
& password and presses Connect: the panel asks first (Replace / Save as new profile /
Cancel). Cancel changes nothing and clears the typed password; Save as new profile
keeps the API-key profile (it still connects); Replace changes the profile's method,
which the core allows only when the broker's ``.../connect`` request says
``"replace": true`` (otherwise 409 ``method_change``). The page's traffic is recorded:
the password travels only in the POSTs to ``.../connect``, never in a kernel frame.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .harness import FRONTENDS, JupyterServer, Panel, carrying
from .test_panel import OpenNotebook, assert_connected
from .test_secret_paths import broker_panel

pytestmark = pytest.mark.timeout(240)


def stored(jupyter: JupyterServer, name: str) -> dict[str, Any]:
    """The profile as the broker's REST API describes it."""
    answer: dict[str, Any] = jupyter.api("GET", f"/weaviate-auth/api/profiles/{name}")
    return answer


def pick(panel: Panel, name: str) -> None:
    """Select the saved profile ``name`` in the picker, as a user does."""
    labels = [str(o) for o in panel.profiles.locator("option").all_inner_texts()]
    label = next(o for o in labels if o.replace("\xa0", " ").startswith(f"{name} — "))
    panel.profiles.select_option(label=label)
    # the form shows the profile's kept API key (widget state arrives message by message)
    expect(panel.field("API key")).to_have_attribute("placeholder", re.compile("a secret is kept"))


def ask_to_switch(panel: Panel, name: str, username: str, password: str) -> None:
    """Pick the API-key profile, switch it to username & password, Connect: it asks."""
    pick(panel, name)
    panel.method("Username & password")
    panel.fill("Username", username)
    panel.fill_secret("Password", password)
    panel.mark_cards()
    panel.connect_button.click()
    asked = panel.root.get_by_text("Change its method")
    asked.wait_for()
    question = asked.inner_text()
    assert name in question, question
    assert "signs in with API key" in question and "to username & password" in question, question


def connect_posts(traffic: Any) -> list[dict[str, Any]]:
    """The JSON bodies of the page's POSTs to ``profiles/{name}/connect``, with the name."""
    return [
        {"_name": url.rsplit("/", 2)[-2], **json.loads(body)}
        for method, url, body in traffic.requests
        if method == "POST" and url.endswith("/connect")
    ]


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_replace_save_as_new_and_cancel(
    frontend: str, open_notebook: OpenNotebook, jupyter: JupyterServer, sandbox: Any, typed_secrets: set[str]
) -> None:
    creds = sandbox.credentials
    version = sandbox.weaviate_config.version
    name = f"{frontend}-replace"
    _, traffic, panel = broker_panel(open_notebook, jupyter, frontend, typed_secrets)

    # 1. an API-key profile, saved and connected through the panel
    assert_connected(
        panel.login_api_key(sandbox.weaviate_url, name, creds.admin_api_key), version=version, user="admin"
    )
    assert stored(jupyter, name)["method"] == "api_key"
    assert len(connect_posts(traffic)) == 1

    # 2. Cancel: nothing changes, nothing is posted, the typed password is gone
    ask_to_switch(panel, name, creds.username, creds.password)
    panel.button("Cancel").click()
    panel.card.filter(has_text="Cancelled").wait_for()
    expect(panel.root.get_by_text("Change its method")).to_be_hidden()
    # the form shows the profile as it still is: API key, its key kept
    expect(panel.root.locator(".widget-toggle-button.mod-active")).to_have_text(re.compile("API key"))
    panel.method("Username & password")
    expect(panel.field("Password")).to_have_value("")
    panel.method("API key")
    assert len(connect_posts(traffic)) == 1
    assert stored(jupyter, name)["method"] == "api_key"

    # 3. Save as new profile: a new name; the API-key profile stays and still connects
    ask_to_switch(panel, name, creds.username, creds.password)
    panel.button("Save as new profile").click()
    text = assert_connected(panel.result(), version=version, user=creds.username)
    assert "username & password" in text
    new_name = f"{name}-password"
    options = panel.profile_options()
    assert any(o.startswith(f"{new_name} — ") for o in options), options
    assert stored(jupyter, new_name)["method"] == "password"
    assert stored(jupyter, name)["method"] == "api_key"
    pick(panel, name)
    panel.submit()  # nothing typed: the kept API key signs in
    assert_connected(panel.result(), version=version, user="admin")

    # 4. Replace: the same profile now signs in with username & password
    ask_to_switch(panel, name, creds.username, creds.password)
    panel.button(f"Replace {name}").click()
    text = assert_connected(panel.result(), version=version, user=creds.username)
    assert "username & password" in text
    assert stored(jupyter, name)["method"] == "password"
    assert stored(jupyter, name)["username"] == creds.username
    assert not any(o.startswith(f"{name}-password-") for o in panel.profile_options())

    # what crossed the wire: the password only in the two posts to .../connect, and only
    # the one that replaced says so
    posts = connect_posts(traffic)
    assert [(p["_name"], p["method"]) for p in posts] == [
        (name, "api_key"),
        (new_name, "password"),
        (name, "password"),
    ]
    assert [p.get("replace") for p in posts] == [None, None, True]
    assert [p["secrets"].get("password") == creds.password for p in posts] == [False, True, True]
    with_password = [r for r in traffic.requests if creds.password.encode() in r[2]]
    assert len(with_password) == 2 and all(r[1].endswith("/connect") for r in with_password)
    sent, received = traffic.kernel_frames("sent"), traffic.kernel_frames("received")
    assert len(sent) > 20 and len(received) > 20, "no kernel traffic recorded: the scan would mean nothing"
    assert carrying(sent, creds.username)  # the scan sees what the kernel was told
    for value in (creds.password, creds.admin_api_key):
        assert not carrying(sent, value), "a secret went to the kernel"
        assert not carrying(received, value), "a secret came from the kernel"
