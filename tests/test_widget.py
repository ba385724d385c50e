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
from weaviate_auth_widget.profiles import Profile, default_name
from weaviate_auth_widget.sandbox import Sandbox
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService
from weaviate_auth_widget.widget import NEW_PROFILE, LoginPanel


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
    assert panel.profiles.value == default_name(keys_only.url)  # the profile that exists now
    panel.profiles.value = NEW_PROFILE
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


KEPT_HINT = "a secret is kept"


def test_an_unknown_profile_name_is_named_and_offered_as_a_new_profile(
    service: AuthService, sandbox: Sandbox
) -> None:
    service.save_profile(Profile(name="prod", url=sandbox.weaviate_url), {"api_key": "k-123456"})
    panel = LoginPanel(service, profile="sandbox")
    assert panel.profiles.value == NEW_PROFILE and panel.name.value == "sandbox"
    assert "No profile &#x27;sandbox&#x27;; saved: prod." in panel.status.value
    panel.url.value = sandbox.weaviate_url
    panel.api_key.value = sandbox.credentials.admin_api_key
    assert panel.connect() is not None
    assert panel.profiles.value == "sandbox" and service.get_profile("sandbox").url == sandbox.weaviate_url


def test_the_kept_secret_hint_follows_the_method_and_a_method_change_asks_first(
    service: AuthService, sandbox: Sandbox
) -> None:
    creds = sandbox.credentials
    service.save_profile(Profile(name="k", url=sandbox.weaviate_url), {"api_key": creds.admin_api_key})
    assert service.describe("k")["kept_secrets"] == ["api_key"]
    panel = LoginPanel(service, profile="k")
    assert panel.api_key.placeholder.startswith(KEPT_HINT)
    panel.method.value = "password"
    assert not panel.password.placeholder.startswith(KEPT_HINT)  # the API key is no password
    panel.username.value = creds.username
    panel.password.value = creds.password
    assert panel.connect() is None  # asks instead of rewriting the profile
    assert panel.password.value == "" and panel.confirm_box.layout.display is None
    assert "API key" in panel.confirm_text.value and "username &amp; password" in panel.confirm_text.value
    assert service.get_profile("k").method == "api_key" and service.secrets.get("k", "api_key")
    assert creds.password not in all_widget_state(panel) and creds.password not in repr(
        panel.confirmation.held
    )

    panel.confirm(None)  # cancel: nothing changed, the typed password is dropped
    assert panel.confirmation.held is None and service.get_profile("k").method == "api_key"
    assert panel.method.value == "api_key"  # the form shows the profile as it still is

    panel.method.value = "password"
    panel.username.value = creds.username
    panel.password.value = creds.password
    assert panel.connect() is None
    session = panel.confirm("new")  # the default keeps the old profile as it was
    assert session is not None and session.whoami()["username"] == creds.username
    assert service.get_profile("k-password").method == "password"
    assert service.get_profile("k").method == "api_key" and service.secrets.get("k", "api_key")
    assert panel.profiles.value == "k-password"
    assert panel.password.placeholder.startswith(KEPT_HINT)  # its refresh token is kept

    panel.profiles.value = "k"
    panel.method.value = "password"
    panel.username.value = creds.username
    panel.password.value = creds.password
    assert panel.connect() is None
    assert panel.confirm("replace") is not None  # explicitly: "k" becomes a password profile
    assert service.get_profile("k").method == "password" and service.secrets.get("k", "api_key") is None


def test_the_broker_routes_replace_tells_the_core_it_means_it(service: AuthService, sandbox: Sandbox) -> None:
    """Broker route (the view posts the typed secrets itself): Replace puts ``"replace":
    true`` in the body the view posts, which the broker's core needs to change the method
    of a login that keeps secrets; "Save as new" does not need it."""
    from weaviate_auth_widget.broker.requests import parse_profile_input

    creds = sandbox.credentials
    service.save_profile(Profile(name="k", url=sandbox.weaviate_url), {"api_key": creds.admin_api_key})
    posted = {}
    for choice in ("new", "replace"):  # a panel each: one posts at a time
        panel = LoginPanel(service, profile="k")
        replies: list[dict[str, Any]] = []
        panel.form.reply = lambda request, event, seen=replies, **content: seen.append(  # type: ignore[method-assign]
            {"event": event, **content}
        )
        panel.method.value = "password"
        panel.username.value = creds.username
        panel._on_form({"event": "connect", "route": "broker", "id": choice, "typed": ["password"]})
        assert panel.confirm_box.layout.display is None and replies == []  # it asks first
        panel.confirm(choice)
        assert [r["event"] for r in replies] == ["post"]
        posted[choice] = replies[0]
    assert posted["new"]["name"] == "k-password" and "replace" not in posted["new"]["body"]
    assert posted["replace"]["name"] == "k" and posted["replace"]["body"]["replace"] is True
    # what the broker does with the view's post (body + the secrets typed in the browser)
    body = {**posted["replace"]["body"], "secrets": {"password": creds.password}}
    profile, secrets, replace = parse_profile_input("k", body)
    assert service.connect(profile, secrets, replace=replace).username == creds.username
    assert service.get_profile("k").method == "password"


def test_a_url_change_of_a_saved_profile_asks_first(service: AuthService, sandbox: Sandbox) -> None:
    service.save_profile(
        Profile(name="k", url=sandbox.weaviate_url), {"api_key": sandbox.credentials.admin_api_key}
    )
    panel = LoginPanel(service, profile="k")
    panel.url.value = "http://127.0.0.1:9"
    assert not panel.api_key.placeholder.startswith(KEPT_HINT)  # the key stays with its cluster
    assert panel.connect() is None and "URL" in panel.confirm_text.value
    assert service.get_profile("k").url == sandbox.weaviate_url


def test_logout_ends_sessions_and_updates_every_panel(service: AuthService, sandbox: Sandbox) -> None:
    from weaviate_auth_widget.errors import LoginExpired

    creds = sandbox.credentials
    service.save_profile(
        Profile(name="pw", url=sandbox.weaviate_url, method="password", username=creds.username),
        {"password": creds.password},
    )
    panel = LoginPanel(service, profile="pw")
    other = LoginPanel(service, profile="pw")
    session = panel.connect()
    assert session is not None and session.whoami()["username"] == creds.username
    client_source = service.token_source("pw")  # what the official client hand-off uses
    client_source.token()
    assert "Connected" in panel.status.value

    other.logout()
    for shown in (panel, other):
        assert "Signed out" in shown.status.value and shown.session is None
        assert shown.logout_button.layout.display == "none"
    with pytest.raises(LoginExpired, match=r"You logged out of profile 'pw'.*log in again"):
        session.meta()
    with pytest.raises(LoginExpired):
        client_source.token()
    with pytest.raises(LoginExpired):
        service.token("pw")  # no silent login with the kept secrets
    assert "logged out" in repr(session) and "refreshes automatically" not in repr(session)
    assert service.describe("pw")["logged_out"] is True

    assert panel.connect() is None  # the refresh token was revoked and dropped: type again
    panel.password.value = creds.password
    assert panel.connect() is not None  # an explicit login ends the logout...
    assert session.whoami()["username"] == creds.username  # ...and old sessions work again
    assert "logged out" not in repr(session)


def test_the_hub_login_is_offered_first_where_the_hub_runs_its_service(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = LoginPanel(
        AuthService(directory=tmp_path / "plain", secrets=SecretStore("file", directory=tmp_path))
    )
    assert [v for _, v in plain.method.options] == ["api_key", "password"] and plain.method.value == "api_key"

    # a hub whose service does not answer (nothing listens on port 1): the error names it
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "a-server-token")
    svc = AuthService(
        directory=tmp_path / "hub",
        secrets=SecretStore("file", directory=tmp_path / "hub"),
        policy=Policy(
            default_url=sandbox.weaviate_url, hub_service_url="http://127.0.0.1:1/services/weaviate-auth/"
        ),
    )
    panel = LoginPanel(svc)
    assert panel.method.options[0][1] == "hub" and panel.method.value == "hub"
    assert panel._fields.children == ()  # nothing to type
    assert panel.connect() is None
    assert "weaviate-auth service" in panel.status.value and "did not answer" in panel.status.value
    assert "a-server-token" not in panel.status.value and "a-server-token" not in all_widget_state(panel)
    # the card after a hub login that works: tests/hub/test_hub_sso.py (a real hub)


def test_a_token_under_a_minute_is_shown_in_seconds_not_as_expired() -> None:
    import time

    from weaviate_auth_widget.identity import Identity
    from weaviate_auth_widget.widget_cards import identity_card

    def expiry(seconds: float) -> str:
        ident = Identity(
            "p", "https://x.example", "password", "1.33.2", "ada", expires_at=time.time() + seconds
        )
        return identity_card(ident)

    assert "token valid 0 min" not in expiry(45) and "token valid 4" in expiry(45)  # 44 or 45 s
    assert " s" in expiry(45)
    assert "token valid 1 s" in expiry(0.2)  # just issued: valid, never "0"
    assert "token valid 5 min" in expiry(5 * 60 + 30)


def test_the_key_fix_names_weaviate_cloud_only_for_its_clusters() -> None:
    from weaviate_auth_widget.cluster import unauthorized

    own = unauthorized("invalid api key", host="weaviate.internal.example:8080", method="api_key")
    cloud = unauthorized("invalid api key", host="abc.c0.europe-west3.gcp.weaviate.cloud", method="api_key")
    assert "Weaviate Cloud" not in str(own) and "administrator" in str(own)
    assert "Weaviate Cloud console" in str(cloud)


def test_panel_secret_fields_are_not_widget_state(service: AuthService) -> None:
    """What is typed (or set by a script) is never a trait of any widget of the panel."""
    panel = LoginPanel(service)
    panel.api_key.value = "typed-" + "s" * 20
    panel.module_keys["X-OpenAI-Api-Key"].value = "sk-" + "o" * 20
    state = all_widget_state(panel)
    assert "paste your API key" in state  # the scan sees the form's state
    assert "typed-" not in state and "sk-ooo" not in state
    assert panel.form.fields == [{"kind": "api_key", "label": "API key", "placeholder": "paste your API key"}]


def test_browser_sign_in_button_keeps_other_logins_and_offers_only_with_a_broker(
    service: AuthService, sandbox: Sandbox
) -> None:
    """The panel's sign-in button: offered when the cluster's and provider's discovery
    allow it and a broker can take the callback; it saves a browser profile beside (never
    over) a saved login of another kind, and passes on only the authorize URL and an id."""
    import time as clock

    started: list[tuple[str, str | None]] = []

    class WithBroker(AuthService):  # the broker's surface for the button, in-process
        def start_sign_in(self, name: str, origin: str | None = None) -> dict[str, Any]:
            started.append((name, origin))
            return {
                "id": "sid",
                "authorize_url": "https://idp.example/authorize?x",
                "provider": "idp.example",
            }

    in_process = LoginPanel(service, url=sandbox.weaviate_url)
    clock.sleep(0.8)
    assert in_process.form.sign_in == {}  # no broker: no callback route, no button
    backend = WithBroker(directory=service._directory, secrets=service.secrets)
    backend.save_profile(Profile(name="prod", url=sandbox.weaviate_url), {"api_key": "k" * 12})
    panel = LoginPanel(backend, profile="prod")
    deadline = clock.monotonic() + 10
    while not panel.form.sign_in and clock.monotonic() < deadline:
        clock.sleep(0.05)
    host = sandbox.idp_url.split("//")[1]
    assert panel.form.sign_in == {"label": f"Sign in with {host}", "provider": host}
    replies: list[dict[str, Any]] = []
    panel.form.reply = lambda request, event, **content: replies.append({"event": event, **content})  # type: ignore[method-assign]
    panel._on_form({"event": "sign_in", "id": "r1", "origin": "http://127.0.0.1:8888"})
    assert started == [("prod-browser", "http://127.0.0.1:8888")]
    assert replies == [{"event": "open", "url": "https://idp.example/authorize?x", "sign_in": "sid"}]
    assert backend.describe("prod")["method"] == "api_key" and backend.describe("prod")["has_secret"]
    assert backend.describe("prod-browser")["method"] == "browser"


def test_the_sign_in_offer_asks_only_clusters_the_policy_allows(sandbox: Sandbox) -> None:
    """The panel's public discovery requests (for the "Sign in with" button) follow the
    administrator's URL rules too: a refused cluster is not even asked."""
    from weaviate_auth_widget.urls import host_of
    from weaviate_auth_widget.widget_sign_in import _offers, provider_offer

    oidc.discovery_cache.clear()
    _offers.clear()
    refused = Policy(allowed_urls=("https://only.example",))
    assert provider_offer(sandbox.weaviate_url, refused) is None
    assert not [r for r in sandbox.weaviate.requests if r.path.endswith("openid-configuration")]
    pinned = Policy(allowed_issuers=("https://login.example.com",))
    assert provider_offer(sandbox.weaviate_url, pinned) is None
    assert sandbox.idp_stats()["discovery"] == 0  # the provider was never asked
    assert provider_offer(sandbox.weaviate_url, Policy()) == host_of(sandbox.idp_url)
    _offers.clear()
