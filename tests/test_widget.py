"""The login panel and the magic, driven in-process against the sandbox (the browser
tests drive the same panel in real front ends)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ipywidgets.widgets.widget import _instances

from weaviate_auth_widget import oidc
from weaviate_auth_widget.policy import Policy
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import Sandbox
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService
from weaviate_auth_widget.widget import LoginPanel


@pytest.fixture
def service(tmp_path: Path) -> Any:
    oidc.discovery_cache.clear()
    svc = AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path))
    yield svc
    svc.close()


def all_widget_state(panel: LoginPanel) -> str:
    """Every widget's synced state, as the front end (and a saved notebook) would hold it."""
    states = {}
    for model_id, widget in list(_instances.items()):
        try:
            states[model_id] = widget.get_state()
        except Exception:  # closed widgets
            continue
    return json.dumps(states, default=str)


def test_api_key_login_clears_secrets_and_shows_the_card(service: AuthService, sandbox: Sandbox) -> None:
    panel = LoginPanel(service)
    seen: list[Any] = []
    panel.on_login(seen.append)
    panel.url.value = sandbox.weaviate_url
    panel.name.value = "sbx"
    panel.api_key.value = sandbox.credentials.admin_api_key
    panel.module_keys["X-OpenAI-Api-Key"].value = "sk-openai-SECRET"
    session = panel.connect()
    assert session is not None and panel.session is session and seen == [session]
    assert panel.api_key.value == "" and panel.module_keys["X-OpenAI-Api-Key"].value == ""
    card = panel.status.value
    for text in (
        "Connected",
        sandbox.weaviate_url,
        sandbox.weaviate_config.version,
        "admin",
        "this key can write and delete",
        "API key",
        "does not expire",
        "file",
    ):
        assert text in card
    state = all_widget_state(panel)
    assert sandbox.credentials.admin_api_key not in state and "sk-openai-SECRET" not in state
    assert session.meta()["version"]
    assert panel.profiles.value == "sbx"
    assert panel.logout_button.layout.display is None and panel.forget_button.layout.display is None


def test_password_login_and_a_saved_profile_reconnects_without_typing(
    service: AuthService, sandbox: Sandbox
) -> None:
    creds = sandbox.credentials
    panel = LoginPanel(service)
    panel.url.value = sandbox.weaviate_url
    panel.name.value = "pw"
    panel.method.value = "password"
    panel.username.value = creds.username
    panel.password.value = creds.password
    assert panel.connect() is not None
    assert panel.password.value == ""
    assert creds.username in panel.status.value and "refreshes automatically" in panel.status.value
    again = LoginPanel(service, profile="pw")
    assert again.url.value == sandbox.weaviate_url and again.username.value == creds.username
    assert again.connect() is not None  # the refresh token is remembered
    assert creds.password not in all_widget_state(again)


def test_errors_name_cause_and_fix_and_leave_no_session(
    service: AuthService, sandbox: Sandbox, weaviate_factory: Any
) -> None:
    panel = LoginPanel(service)
    panel.url.value = sandbox.weaviate_url
    panel.api_key.value = "definitely-wrong-key"
    assert panel.connect() is None and panel.session is None
    assert "refused the API key" in panel.status.value and "definitely-wrong-key" not in panel.status.value
    assert not panel.connect_button.disabled and panel.connect_button.description == "Connect"
    keys_only = weaviate_factory(apikey_enabled=True, api_keys={"k": "u"})
    panel = LoginPanel(service)
    panel.url.value = keys_only.url
    panel.method.value = "password"
    panel.username.value = "u"
    panel.password.value = "p"
    assert panel.connect() is None
    assert "does not accept username &amp; password" in panel.status.value and "API key" in panel.status.value
    panel.url.value = "not a url at all"
    panel.method.value = "api_key"
    panel.api_key.value = "k"
    assert panel.connect() is None and "URL" in panel.status.value


def test_logout_and_forget(service: AuthService, sandbox: Sandbox) -> None:
    panel = LoginPanel(service)
    panel.url.value = sandbox.weaviate_url
    panel.name.value = "k"
    panel.api_key.value = sandbox.credentials.admin_api_key
    panel.connect()
    panel.logout()
    assert panel.session is None and "Signed out" in panel.status.value
    panel.forget()
    assert [v["name"] for v in service.profile_views()] == []
    assert service.secrets.get("k", "api_key") is None


def test_policy_hides_remember_and_prefills_default_url(tmp_path: Path, sandbox: Sandbox) -> None:
    svc = AuthService(
        directory=tmp_path,
        secrets=SecretStore("file", directory=tmp_path),
        policy=Policy(default_url=sandbox.weaviate_url, allow_remember=False),
    )
    panel = LoginPanel(svc)
    assert panel.url.value == sandbox.weaviate_url
    assert panel.remember.layout.display == "none" and panel.remember.value is False
    panel.api_key.value = sandbox.credentials.admin_api_key
    assert panel.connect() is not None
    assert svc.secrets.get(panel.profiles.value, "api_key") is None  # kept in memory only


def test_admin_profile_is_usable_but_locked(tmp_path: Path, sandbox: Sandbox) -> None:
    shared = Profile(name="shared", url=sandbox.weaviate_url)
    svc = AuthService(
        directory=tmp_path,
        secrets=SecretStore("file", directory=tmp_path),
        admin_profiles={shared: {"api_key": sandbox.credentials.readonly_api_key}},
    )
    panel = LoginPanel(svc, profile="shared")
    assert panel.url.disabled and panel.forget_button.layout.display == "none"
    assert panel.connect() is not None
    assert "viewer" in panel.status.value and "administrator" in panel.status.value
