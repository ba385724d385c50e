"""The sandbox provider's browser flows over real HTTP: authorization code + PKCE with
a login page, consent, sessions, userinfo, and the device authorization grant.

A test plays the browser with httpx (tests/idp_browser.py), filling in the HTML form.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.idp_browser import Browser, page_error, query_of
from weaviate_auth_widget.sandbox import IdPClient, IdPConfig, IdPUser, InteractiveSettings, Sandbox
from weaviate_auth_widget.sandbox.idp_interactive import DEVICE_GRANT, s256

REDIRECT = "http://127.0.0.1:9/callback"
APP = "https://app.example/hub/oauth_callback"


def authorize_url(sb: Sandbox, **params: str) -> tuple[str, dict[str, str]]:
    verifier = secrets.token_urlsafe(48)
    query = {
        "response_type": "code",
        "client_id": "weaviate",
        "redirect_uri": REDIRECT,
        "scope": "openid email offline_access",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    query.update(params)
    query = {k: v for k, v in query.items() if v}
    return sb.idp_url + "/authorize?" + urlencode(query), {**query, "verifier": verifier}


def redeem(sb: Sandbox, code: str, verifier: str | None, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": "weaviate",
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    form.update(extra)
    return httpx.post(sb.idp_url + "/token", data=form, timeout=5)


def claims_of(sb: Sandbox, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(httpx.get(sb.idp_url + "/jwks", timeout=5).json())
    return dict(jwt.decode(token, keys, algorithms=["RS256"]).claims)


def test_discovery_advertises_browser_flows(sandbox: Sandbox) -> None:
    doc = httpx.get(sandbox.idp_url + "/.well-known/openid-configuration", timeout=5).json()
    assert doc["authorization_endpoint"] == sandbox.idp_url + "/authorize"
    assert doc["device_authorization_endpoint"] == sandbox.idp_url + "/device/code"
    assert doc["userinfo_endpoint"] == sandbox.idp_url + "/userinfo"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", DEVICE_GRANT} <= set(doc["grant_types_supported"])


def test_code_flow_with_login_page_pkce_id_token_and_userinfo(sandbox: Sandbox) -> None:
    creds = sandbox.credentials
    url, sent = authorize_url(sandbox)
    browser = Browser()
    form = browser.open(url)
    assert form.status_code == 200 and "name='password'" in form.text
    wrong = browser.login(form, creds.username, "wrong")
    assert wrong.status_code == 200 and page_error(wrong) == "Invalid username or password."
    assert f"value='{creds.username}'" in wrong.text  # the form comes back, username kept
    back = browser.login(wrong, creds.username, creds.password)
    assert back.status_code == 302
    location = back.headers["location"]
    assert location.startswith(REDIRECT + "?")
    got = query_of(location)
    assert got["state"] == sent["state"] and got["iss"] == sandbox.idp_url
    tokens = redeem(sandbox, got["code"], sent["verifier"])
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["refresh_token"] and body["access_token"]
    id_claims = claims_of(sandbox, body["id_token"])
    assert id_claims["nonce"] == sent["nonce"] and id_claims["aud"] == "weaviate"
    assert id_claims["email"] == creds.username and id_claims["iss"] == sandbox.idp_url
    assert claims_of(sandbox, body["access_token"])["email"] == creds.username
    me = httpx.get(
        sandbox.idp_url + "/userinfo", headers={"Authorization": "Bearer " + body["access_token"]}, timeout=5
    )
    assert me.status_code == 200 and me.json()["email"] == creds.username
    bad = httpx.get(sandbox.idp_url + "/userinfo", headers={"Authorization": "Bearer x.y.z"}, timeout=5)
    assert bad.status_code == 401 and "invalid_token" in bad.headers["WWW-Authenticate"]
    # the access token works at the cluster
    meta = httpx.get(
        sandbox.weaviate_url + "/v1/meta",
        headers={"Authorization": "Bearer " + body["access_token"]},
        timeout=5,
    )
    assert meta.status_code == 200
    # the code is single-use
    replay = redeem(sandbox, got["code"], sent["verifier"])
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    assert "already used" in replay.json()["error_description"]


def test_existing_session_redirects_at_once_and_prompt_login_asks_again(sandbox: Sandbox) -> None:
    creds = sandbox.credentials
    browser = Browser()
    url, _ = authorize_url(sandbox)
    assert browser.sign_in(url, creds.username, creds.password).status_code == 302
    again_url, again = authorize_url(sandbox)
    again_page = browser.open(again_url)
    assert (
        again_page.status_code == 302 and query_of(again_page.headers["location"])["state"] == again["state"]
    )
    forced_url, _ = authorize_url(sandbox, prompt="login")
    assert "name='password'" in browser.open(forced_url).text
    # another browser (no cookie) with prompt=none is told to log in
    silent_url, silent = authorize_url(sandbox, prompt="none")
    refused = Browser().open(silent_url)
    got = query_of(refused.headers["location"])
    assert got["error"] == "login_required" and got["state"] == silent["state"]
    # logging out at the provider ends the session
    browser.open(sandbox.idp_url + "/logout")
    assert "name='password'" in browser.open(authorize_url(sandbox)[0]).text


def test_pkce_and_code_checks(sandbox: Sandbox) -> None:
    creds = sandbox.credentials

    def fresh_code(**params: str) -> tuple[str, str]:
        url, sent = authorize_url(sandbox, **params)
        back = Browser().sign_in(url, creds.username, creds.password)
        return query_of(back.headers["location"])["code"], sent["verifier"]

    code, _ = fresh_code()
    wrong = redeem(sandbox, code, secrets.token_urlsafe(48))
    assert wrong.json()["error"] == "invalid_grant" and "PKCE" in wrong.json()["error_description"]
    code, verifier = fresh_code()
    missing = redeem(sandbox, code, None)
    assert missing.json()["error"] == "invalid_grant"
    code, verifier = fresh_code()
    other_uri = redeem(sandbox, code, verifier, redirect_uri="http://127.0.0.1:9/other")
    assert other_uri.json()["error_description"] == "Incorrect redirect_uri"
    # a public client must send a challenge; only S256 is accepted
    no_pkce = Browser().open(authorize_url(sandbox, code_challenge="", code_challenge_method="")[0])
    assert query_of(no_pkce.headers["location"])["error"] == "invalid_request"
    plain = Browser().open(authorize_url(sandbox, code_challenge_method="plain")[0])
    assert query_of(plain.headers["location"])["error"] == "invalid_request"


def test_redirect_uri_and_client_checked_before_any_redirect(sandbox_factory: Any) -> None:
    sb = sandbox_factory(
        IdPConfig(
            users={"u@x": IdPUser(password="pw", email="u@x")},
            clients={"hub": IdPClient(secret="s3cret", redirect_uris=(APP,))},
            interactive=InteractiveSettings(code_lifetime=1),
        )
    )
    foreign = Browser().open(authorize_url(sb, client_id="hub", redirect_uri="https://evil.example/cb")[0])
    assert foreign.status_code == 400 and "redirect_uri" in (page_error(foreign) or "")
    loopback = Browser().open(authorize_url(sb, client_id="hub")[0])  # loopback not allowed here
    assert loopback.status_code == 400
    unknown = Browser().open(authorize_url(sb, client_id="nobody", redirect_uri=APP)[0])
    assert unknown.status_code == 400 and "Unknown client" in (page_error(unknown) or "")
    # a confidential client without PKCE, as oauthenticator does it
    url, sent = authorize_url(
        sb, client_id="hub", redirect_uri=APP, code_challenge="", code_challenge_method=""
    )
    back = Browser().sign_in(url, "u@x", "pw")
    code = query_of(back.headers["location"])["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": APP}
    no_secret = httpx.post(sb.idp_url + "/token", data={**form, "client_id": "hub"}, timeout=5)
    assert no_secret.status_code == 401 and no_secret.json()["error"] == "invalid_client"
    ok = httpx.post(sb.idp_url + "/token", data=form, auth=("hub", "s3cret"), timeout=5)
    assert ok.status_code == 200 and claims_of(sb, ok.json()["id_token"])["nonce"] == sent["nonce"]
    # codes are short-lived
    back = Browser().sign_in(authorize_url(sb, client_id="hub", redirect_uri=APP)[0], "u@x", "pw")
    code = query_of(back.headers["location"])["code"]
    time.sleep(1.1)
    late = httpx.post(sb.idp_url + "/token", data={**form, "code": code}, auth=("hub", "s3cret"), timeout=5)
    assert late.json()["error_description"] == "Code not valid (expired)"


def test_cancel_consent_and_offline_access_only_with_consent(sandbox_factory: Any) -> None:
    sb = sandbox_factory(
        IdPConfig(
            users={"u@x": IdPUser(password="pw", email="u@x")},
            clients={"weaviate": IdPClient()},
            interactive=InteractiveSettings(allow_loopback_redirects=True, offline_needs_consent=True),
        )
    )
    browser = Browser()
    url, sent = authorize_url(sb)
    cancelled = browser.submit(browser.open(url), "cancel")
    got = query_of(cancelled.headers["location"])
    assert got["error"] == "access_denied" and got["state"] == sent["state"]
    # without consent: no refresh token
    url, sent = authorize_url(sb)
    back = browser.sign_in(url, "u@x", "pw")
    body = redeem(sb, query_of(back.headers["location"])["code"], sent["verifier"]).json()
    assert "refresh_token" not in body and "offline_access" not in body["scope"]
    # prompt=consent with the session: a consent page; deny, then allow
    url, sent = authorize_url(sb, prompt="consent")
    consent = browser.open(url)
    assert "Allow access?" in consent.text
    denied = browser.submit(consent, "deny")
    assert query_of(denied.headers["location"])["error"] == "access_denied"
    url, sent = authorize_url(sb, prompt="consent")
    allowed = browser.submit(browser.open(url), "allow")
    body = redeem(sb, query_of(allowed.headers["location"])["code"], sent["verifier"]).json()
    assert body["refresh_token"] and "offline_access" in body["scope"]


def test_disabled_user_cannot_sign_in_or_refresh(sandbox_factory: Any) -> None:
    sb = sandbox_factory(
        IdPConfig(
            users={"u@x": IdPUser(password="pw", email="u@x")},
            clients={"weaviate": IdPClient()},
            interactive=InteractiveSettings(allow_loopback_redirects=True),
        )
    )
    browser = Browser()
    url, sent = authorize_url(sb)
    back = browser.sign_in(url, "u@x", "pw")
    body = redeem(sb, query_of(back.headers["location"])["code"], sent["verifier"]).json()
    sb.idp.set_enabled("u@x", False)
    refused = httpx.post(
        sb.idp_url + "/token",
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": "weaviate"},
        timeout=5,
    )
    assert refused.json()["error"] == "invalid_grant"
    page = browser.open(authorize_url(sb)[0])  # the session ended with the account
    again = browser.login(page, "u@x", "pw")
    assert (
        again.status_code == 200 and page_error(again) == "Account is disabled, contact your administrator."
    )


def poll(sb: Sandbox, device_code: str, client_id: str = "weaviate") -> httpx.Response:
    form = {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id}
    return httpx.post(sb.idp_url + "/token", data=form, timeout=5)


def start_device(sb: Sandbox, scope: str = "openid email offline_access") -> dict[str, Any]:
    started = httpx.post(
        sb.idp_url + "/device/code", data={"client_id": "weaviate", "scope": scope}, timeout=5
    )
    assert started.status_code == 200, started.text
    return dict(started.json())


def test_device_flow_user_enters_the_code_then_logs_in(sandbox_factory: Any) -> None:
    sb = sandbox_factory(
        IdPConfig(
            users={"u@x": IdPUser(password="pw", email="u@x")},
            clients={"weaviate": IdPClient()},
            interactive=InteractiveSettings(device_interval=1),
        )
    )
    grant = start_device(sb)
    assert grant["verification_uri"] == sb.idp_url + "/device" and grant["interval"] == 1
    assert grant["expires_in"] > 500 and len(grant["user_code"]) == 9
    assert poll(sb, grant["device_code"]).json()["error"] == "authorization_pending"
    too_fast = poll(sb, grant["device_code"])
    assert too_fast.json()["error"] == "slow_down"
    browser = Browser()
    entry = browser.open(grant["verification_uri"])
    bad = browser.submit(entry, "", user_code="BBBB-CCCC")
    assert page_error(bad) and "not valid" in (page_error(bad) or "")
    login = browser.submit(entry, "", user_code=grant["user_code"].lower().replace("-", ""))
    wrong = browser.login(login, "u@x", "nope")
    assert page_error(wrong) == "Invalid username or password."
    done = browser.login(wrong, "u@x", "pw")
    assert "Device connected" in done.text
    time.sleep(6.1)  # slow_down added five seconds to the interval
    body = poll(sb, grant["device_code"]).json()
    assert body["refresh_token"] and claims_of(sb, body["access_token"])["email"] == "u@x"
    assert claims_of(sb, body["id_token"])["aud"] == "weaviate"
    assert poll(sb, grant["device_code"]).json()["error"] == "invalid_grant"  # used up
    # with the provider session, the next device only asks to allow or deny
    second = start_device(sb)
    consent = browser.open(second["verification_uri_complete"])
    assert "Allow access?" in consent.text
    browser.submit(consent, "deny")
    assert poll(sb, second["device_code"]).json()["error"] == "access_denied"


def test_device_code_expires(sandbox_factory: Any) -> None:
    sb = sandbox_factory(
        IdPConfig(
            clients={"weaviate": IdPClient()},
            interactive=InteractiveSettings(device_code_lifetime=1, device_interval=1),
        )
    )
    grant = start_device(sb)
    time.sleep(1.1)
    assert poll(sb, grant["device_code"]).json()["error"] == "expired_token"
    page = Browser().open(grant["verification_uri_complete"])
    assert "not valid or has expired" in (page_error(page) or "")
    unknown = httpx.post(sb.idp_url + "/device/code", data={"client_id": "nobody"}, timeout=5)
    assert unknown.status_code == 401


def test_browser_flows_can_be_hidden(sandbox_factory: Any) -> None:
    sb = sandbox_factory(IdPConfig(advertise_browser_flows=False))
    doc = httpx.get(sb.idp_url + "/.well-known/openid-configuration", timeout=5).json()
    assert "authorization_endpoint" not in doc and "device_authorization_endpoint" not in doc
    assert "authorization_code" not in doc["grant_types_supported"]


@pytest.mark.parametrize("value", ["<script>alert(1)</script>"])
def test_pages_escape_what_they_echo(sandbox: Sandbox, value: str) -> None:
    page = Browser().open(sandbox.idp_url + "/device?" + urlencode({"user_code": value}))
    assert value not in page.text and "&lt;script&gt;" in page.text
