"""Sign in once: the ``hub`` login method under a real JupyterHub with OpenID login.

The hub of ``conftest.Hub`` with oauthenticator's ``GenericOAuthenticator`` against the
sandbox's OpenID provider (authorization-code flow, its login page), ``enable_auth_state``
with ``JUPYTERHUB_CRYPT_KEY``, the package's refresh hook, and the package's hub service
(``weaviate_auth_widget.hub_service``) run by the hub. Users A and B log in through
chromium (Playwright). The sandbox's Weaviate trusts the same provider: one double checks
the audience (the hub's client puts Weaviate's client id in its tokens, an audience
mapper), one skips the client-id check, one expects a client id the tokens do not carry.

Access tokens live ``TOKEN_LIFETIME`` seconds. Tests run in file order (the last one
disables A at the provider).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import (
    REPO,
    Hub,
    HubUsers,
    HubVenv,
    Kernel,
    Matrix,
    _missing,
    _pids_of,
    free_port,
    hub_workdir,
    running_hub,
)

pytestmark = pytest.mark.timeout(600)

TOKEN_LIFETIME = 6
#: the hub's refresh hook renews an access token with fewer seconds than this left
REFRESH_MARGIN = 3
HUB_CLIENT = "jupyterhub"
SERVICE = "weaviate-auth"


# -- the set-up ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sso_sandbox(hub_users: HubUsers) -> Iterator[Any]:
    """The demo sandbox with short-lived tokens, A and B as provider users, the hub's
    confidential client (its tokens carry Weaviate's client id too), and two more doubles:
    one skipping the client-id check, one expecting another client id."""
    from weaviate_auth_widget.sandbox import Sandbox, WeaviateConfig
    from weaviate_auth_widget.sandbox.idp_config import IdPUser

    with Sandbox.demo(token_lifetime=TOKEN_LIFETIME) as sandbox:
        weaviate_client = sandbox.credentials.client_id
        sandbox.passwords = {hub_users.a: secrets.token_urlsafe(12), hub_users.b: secrets.token_urlsafe(12)}
        for name, password in sandbox.passwords.items():
            sandbox.idp.config.users[name] = IdPUser(password=password, email=name)
            sandbox.weaviate_config.roles[name] = ["viewer"]
        sandbox.hub_client_secret = secrets.token_urlsafe(24)
        sandbox.hub_client_audience = weaviate_client
        common = {"oidc_enabled": True, "oidc_username_claim": "email", "rbac": True, "roles": {}}
        sandbox.skip_check_url = sandbox.add_weaviate(
            WeaviateConfig(oidc_skip_client_id_check=True, **common)
        )
        sandbox.other_client_url = sandbox.add_weaviate(
            WeaviateConfig(oidc_client_id="another-client", **common)
        )
        for url in (sandbox.skip_check_url, sandbox.other_client_url):
            sandbox.weaviates[url].config.roles.update({n: ["viewer"] for n in sandbox.passwords})
        yield sandbox


def sso_config(hub: Hub, sandbox: Any, service_port: int) -> str:
    users = hub.users
    idp = sandbox.idp_url.rstrip("/")
    return f"""
        # --- single sign-on: GenericOAuthenticator, auth_state, the weaviate-auth hub service ---
        import sys
        sys.path.insert(0, {str(REPO)!r})  # the hub imports the refresh hook from this checkout
        from weaviate_auth_widget.hub_refresh import refresh_before_expiry

        c.JupyterHub.authenticator_class = "generic-oauth"
        c.GenericOAuthenticator.client_id = {HUB_CLIENT!r}
        c.GenericOAuthenticator.client_secret = {sandbox.hub_client_secret!r}
        c.GenericOAuthenticator.oauth_callback_url = {hub.proxy_url + "hub/oauth_callback"!r}
        c.GenericOAuthenticator.authorize_url = {idp + "/authorize"!r}
        c.GenericOAuthenticator.token_url = {idp + "/token"!r}
        c.GenericOAuthenticator.userdata_url = {idp + "/userinfo"!r}
        c.GenericOAuthenticator.username_claim = "preferred_username"
        c.GenericOAuthenticator.scope = ["openid", "email", "offline_access"]
        c.GenericOAuthenticator.allowed_users = {{{users.a!r}, {users.b!r}}}
        c.GenericOAuthenticator.enable_auth_state = True
        c.GenericOAuthenticator.auth_refresh_age = 1
        c.GenericOAuthenticator.refresh_user_hook = refresh_before_expiry(margin={REFRESH_MARGIN})

        c.JupyterHub.services.append(
            {{
                "name": {SERVICE!r},
                "url": "http://127.0.0.1:{service_port}",
                "command": [sys.executable, "-m", "weaviate_auth_widget.hub_service"],
                "environment": {{"PYTHONPATH": {str(REPO)!r}}},
            }}
        )
        c.JupyterHub.load_roles.append(
            {{"name": {SERVICE!r}, "scopes": ["admin:auth_state", "read:users"], "services": [{SERVICE!r}]}}
        )
        # the test driver reads auth_state too (to know the values the leak scan looks for)
        c.JupyterHub.load_roles[0]["scopes"].append("admin:auth_state")
        c.Spawner.environment.update(
            {{
                "WEAVIATE_AUTH_HUB_SERVICE_URL": {hub.proxy_url + "services/" + SERVICE + "/"!r},
                "WEAVIATE_AUTH_ALLOWED_URLS": "http://127.0.0.1:*",
            }}
        )
    """


@pytest.fixture(scope="module")
def sso_hub(hub_users: HubUsers, hub_venv: HubVenv, sso_sandbox: Any, hub_matrix: Matrix) -> Iterator[Hub]:
    from weaviate_auth_widget.sandbox.idp_config import IdPClient

    try:
        import oauthenticator.generic  # noqa: F401  (the hub imports it from this venv)
    except ImportError:
        _missing("oauthenticator in this venv (run scripts/hub-deps.sh)")
    prepared = Hub(users=hub_users, venv=hub_venv, workdir=hub_workdir(), sandbox=sso_sandbox)
    prepared.proxy_port, prepared.hub_port = free_port(), free_port()
    sso_sandbox.idp.config.clients[HUB_CLIENT] = IdPClient(
        secret=sso_sandbox.hub_client_secret,
        audience=(sso_sandbox.hub_client_audience,),  # the audience mapper
        redirect_uris=(prepared.proxy_url + "hub/oauth_callback",),
    )
    prepared.extra_config = sso_config(prepared, sso_sandbox, free_port())
    prepared.extra_env = {"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)}
    prepared.spawn_at_start = (
        False  # oauthenticator refreshes auth before a spawn (refresh_pre_spawn): log in first
    )
    with running_hub(prepared, hub_matrix, "hub-sso.log") as running:
        yield running


@pytest.fixture(scope="module")
def logged_in(sso_hub: Hub, sso_sandbox: Any) -> dict[str, Any]:
    """A and B log in to the hub through chromium: the provider's login page, back to the
    hub (GenericOAuthenticator stores their tokens in auth_state)."""
    from playwright.sync_api import sync_playwright

    from tests.browser.harness import chromium_available, launch_browser

    if not chromium_available():
        pytest.skip("no chromium at /usr/bin/chromium: run `make system-deps` (never `playwright install`)")
    pages: dict[str, str] = {}
    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            for user in (sso_hub.users.a, sso_hub.users.b):
                context = browser.new_context()
                page = context.new_page()
                page.set_default_timeout(30_000)
                page.goto(sso_hub.proxy_url + "hub/oauth_login?next=%2Fhub%2Fhome")
                page.fill("#username", user)
                page.fill("#password", sso_sandbox.passwords[user])
                page.click("#kc-login")
                page.wait_for_url("**/hub/home**")
                pages[user] = page.content()
                context.close()
        finally:
            browser.close()
    for user in (sso_hub.users.a, sso_hub.users.b):
        state = sso_hub.user_model(user).get("auth_state") or {}
        assert state.get("access_token") and state.get("refresh_token"), f"{user}: no tokens in auth_state"
    sso_hub.spawn_servers()
    return pages


def kernel_for(hub: Hub, owner: str) -> Kernel:
    return hub.start_kernel(owner, hub.tokens[owner])


SIGN_IN = """
from weaviate_auth_widget.kernel import get_backend
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.errors import WeaviateAuthError
backend = get_backend()
status = backend.status()
backend.save_profile(Profile(name={name!r}, url={url!r}, method="hub", remember=False), {{}})
try:
    identity = backend.login({name!r})
    with backend.session({name!r}) as session:
        who = session.whoami().get("username")
    result = {{"hub_offered": status["policy"]["hub_login"], "identity": identity.to_json(), "who": who}}
except WeaviateAuthError as exc:
    result = {{"hub_offered": status["policy"]["hub_login"], "error": type(exc).__name__, "message": str(exc)}}
"""


def sign_in(kernel: Kernel, name: str, url: str) -> dict[str, Any]:
    return dict(kernel.run(SIGN_IN.format(name=name, url=url)))


# -- the tests ---------------------------------------------------------------------------------
def test_each_users_kernel_signs_in_as_that_user(
    sso_hub: Hub, sso_sandbox: Any, logged_in: dict[str, Any]
) -> None:
    users = sso_hub.users
    for user in (users.a, users.b):
        result = sign_in(kernel_for(sso_hub, user), "sso", sso_sandbox.weaviate_url)
        assert "error" not in result, result
        assert result["hub_offered"] is True
        assert result["who"] == user, f"{user}'s kernel queried as {result['who']}"
        assert result["identity"]["method"] == "hub" and result["identity"]["username"] == user
    seen = {r.username for r in sso_sandbox.weaviate.requests if r.authorization}
    assert {users.a, users.b} <= seen


PANEL = """
%load_ext weaviate_auth_widget
panel = %weaviate_auth
offered = panel.method.value
panel.url.value = {url!r}
panel.name.value = "hub-card"
session = panel.connect()
result = {{"offered": offered, "card": panel.status.value, "who": session and session.whoami().get("username")}}
"""


def test_the_panel_signs_in_with_the_hub_login_and_shows_who(
    sso_hub: Hub, sso_sandbox: Any, logged_in: dict[str, Any]
) -> None:
    """What A sees: ``%weaviate_auth`` in A's kernel offers the hub login first; Connect
    (nothing to type) shows the signed-in card, as rendered in the panel."""
    user = sso_hub.users.a
    result = kernel_for(sso_hub, user).run(PANEL.format(url=sso_sandbox.weaviate_url))
    card = result["card"]
    assert result["offered"] == "hub" and result["who"] == user, result
    assert "Connected" in card and "signed in with your hub login" in card, card
    assert re.search(rf"Signed in as</td><td>{re.escape(user)}<", card), card
    assert sso_sandbox.weaviate_config.version in card and "refreshes automatically" in card, card
    assert "the hub (nothing on this server)" in card, card  # where its secret is kept


def test_audience_both_setups_and_a_clear_error_otherwise(
    sso_hub: Hub, sso_sandbox: Any, logged_in: dict[str, Any]
) -> None:
    kernel = kernel_for(sso_hub, sso_hub.users.a)
    skipped = sign_in(kernel, "skip-check", sso_sandbox.skip_check_url)
    assert "error" not in skipped and skipped["who"] == sso_hub.users.a, skipped
    other = sign_in(kernel, "other-client", sso_sandbox.other_client_url)
    assert other.get("error") == "WrongMethod", other
    assert "audience mismatch" in other["message"] and "another-client" in other["message"], other
    assert "audience mapper" in other["message"] and "SKIP_CLIENT_ID_CHECK" in other["message"], other


def test_the_session_outlives_several_token_expiries(
    sso_hub: Hub, sso_sandbox: Any, logged_in: dict[str, Any]
) -> None:
    kernel = kernel_for(sso_hub, sso_hub.users.a)
    assert "error" not in sign_in(kernel, "sso", sso_sandbox.weaviate_url)
    sso_sandbox.weaviate.reset()
    sso_sandbox.idp.reset_stats()
    span = TOKEN_LIFETIME * 3.5
    result = kernel.run(
        f"""
import time
from weaviate_auth_widget.kernel import get_backend
who = []
with get_backend().session("sso") as session:
    deadline = time.monotonic() + {span}
    while time.monotonic() < deadline:
        who.append(session.whoami().get("username"))
        time.sleep(1.0)
result = who
"""
    )
    assert set(result) == {sso_hub.users.a} and len(result) >= span - 2, result
    tokens = {r.token for r in sso_sandbox.weaviate.requests if r.username == sso_hub.users.a}
    assert len(tokens) >= 3, f"expected at least 3 distinct access tokens over {span}s, saw {len(tokens)}"
    assert all(r.status == 200 for r in sso_sandbox.weaviate.requests if r.path.endswith("own-info"))
    # the hub renewed with the refresh token before expiry (hub_refresh's hook), without
    # oauthenticator's default check of every token at the userinfo endpoint
    assert sso_sandbox.idp.stats()["token"].get("refresh_token", 0) >= 2, sso_sandbox.idp.stats()
    assert not [s for s in sso_sandbox.idp.spans if s[0].endswith("/userinfo")], (
        "the hub asked the userinfo endpoint"
    )


def test_a_visitor_on_a_shared_server_gets_no_token(
    sso_hub: Hub, sso_sandbox: Any, logged_in: dict[str, Any]
) -> None:
    users = sso_hub.users
    kernel_for(sso_hub, users.a).run(SIGN_IN.format(name="sso", url=sso_sandbox.weaviate_url))
    reply = sso_hub.hub_api(
        "POST", f"shares/{users.a}/", token=sso_hub.tokens[users.a], json={"user": users.b}
    )
    assert reply.status_code == 200, reply.text
    visitor = sso_hub.new_token(users.b, "after the share")
    with httpx.Client(timeout=60) as client:
        got = client.post(
            sso_hub.broker_url(users.a) + "profiles/sso/token", headers={"Authorization": f"token {visitor}"}
        )
        # the hub service itself: B's token gets B's own token, never A's
        own = client.get(
            sso_hub.proxy_url + f"services/{SERVICE}/token", headers={"Authorization": f"token {visitor}"}
        )
    assert (got.status_code, got.json()["error"]["code"]) == (403, "not_owner"), got.text
    assert own.status_code == 200 and own.json()["user"] == users.b, own.text
    a_token = (sso_hub.user_model(users.a).get("auth_state") or {}).get("access_token")
    assert a_token and a_token not in got.text and a_token not in own.text


def test_no_token_on_the_owners_server(sso_hub: Hub, sso_sandbox: Any, logged_in: dict[str, Any]) -> None:
    """No access, refresh or ID token of A in any file under A's home, the server's
    runtime files, any process environment of A's, or the hub's log (which carries the
    single-user servers' output)."""
    users = sso_hub.users
    kernel = kernel_for(sso_hub, users.a)
    assert "error" not in sign_in(kernel, "leak-check", sso_sandbox.weaviate_url)
    kernel.run(
        """
import nbformat
from weaviate_auth_widget.kernel import get_backend
with get_backend().session("leak-check") as s:
    s.whoami()
result = 1
"""
    )
    state = sso_hub.user_model(users.a).get("auth_state") or {}
    values = {state.get("refresh_token"), state.get("access_token"), state.get("id_token")}
    values |= {
        str(v) for v in (state.get("token_response") or {}).values() if isinstance(v, str) and len(v) > 20
    }
    values = {v for v in values if v}
    assert state.get("refresh_token") in values
    forms = set()
    for value in values:
        forms |= {value, base64.b64encode(value.encode()).decode(), json.dumps(value)[1:-1]}
    found: list[str] = []
    for path in Path(users.home(users.a)).rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path}" for form in forms if form.encode() in data]
    for pid in _pids_of(users.uid(users.a)):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        found += [f"/proc/{pid}/environ" for form in forms if form.encode() in environ]
    log = sso_hub.log_path.read_bytes()
    found += ["hub log" for form in forms if form.encode() in log]
    assert not found, f"a token of A's hub login found in: {sorted(set(found))}"


def test_after_the_provider_disables_a_the_next_refresh_says_log_in_to_the_hub_again(
    sso_hub: Hub, sso_sandbox: Any, logged_in: dict[str, Any]
) -> None:
    kernel = kernel_for(sso_hub, sso_hub.users.a)
    assert "error" not in sign_in(kernel, "sso", sso_sandbox.weaviate_url)
    sso_sandbox.idp.set_enabled(sso_hub.users.a, False)
    result = kernel.run(
        f"""
import time
from weaviate_auth_widget.kernel import get_backend
from weaviate_auth_widget.errors import LoginExpired
outcome = None
with get_backend().session("sso") as session:
    deadline = time.monotonic() + {TOKEN_LIFETIME * 3}
    while time.monotonic() < deadline and outcome is None:
        try:
            session.whoami()
        except LoginExpired as exc:
            outcome = {{"message": str(exc)}}
        time.sleep(0.5)
result = outcome
"""
    )
    assert result is not None, "A kept getting tokens after the provider disabled A"
    assert "log in to the hub again" in result["message"].lower(), result
    # B is not affected
    b = sign_in(kernel_for(sso_hub, sso_hub.users.b), "sso-b", sso_sandbox.weaviate_url)
    assert b.get("who") == sso_hub.users.b, b


def test_hub_service_refuses_what_is_not_a_users_token(sso_hub: Hub, logged_in: dict[str, Any]) -> None:
    url = sso_hub.proxy_url + f"services/{SERVICE}/token"
    with httpx.Client(timeout=30) as client:
        none = client.get(url)
        bogus = client.get(url, headers={"Authorization": "token " + secrets.token_hex(20)})
        service = client.get(url, headers={"Authorization": f"token {sso_hub.driver_token}"})
    assert none.status_code == 401 and bogus.status_code == 401, (none.text, bogus.text)
    assert service.status_code == 403 and service.json()["error"] == "not_a_user", service.text
    for reply in (none, bogus, service):
        assert "access_token" not in reply.text
