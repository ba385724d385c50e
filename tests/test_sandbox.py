"""The sandbox: a Weaviate double faithful to spec/weaviate-auth-surface.md, and an IdP.

Everything here goes over real HTTP to servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from weaviate_auth_widget.sandbox import (
    IdPClient,
    IdPConfig,
    IdPUser,
    Sandbox,
    WeaviateConfig,
)

ANON_BOTH = (
    '{"code":401,"message":"anonymous access not enabled. Please authenticate through one of the '
    'available methods: [API-keys, OIDC]"}'
)
NO_SCHEME_NEW = (
    "no authentication scheme is configured (API Key or OIDC), but an 'Authorization' header was provided. "
    "Please configure an auth scheme or remove the header for anonymous access"
)
NO_SCHEME_OLD = (
    "oidc auth is not configured, please try another auth scheme or set up weaviate with OIDC configured"
)
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get(
    url: str, token: str | None = None, headers: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    return httpx.get(
        url, headers={**(headers or {}), **(bearer(token) if token else {})}, timeout=5, **kwargs
    )


def password_grant(sb: Sandbox, scope: str = "openid email", **overrides: str) -> httpx.Response:
    creds = sb.credentials
    assert creds is not None
    form = {
        "grant_type": "password",
        "username": creds.username,
        "password": creds.password,
        "client_id": creds.client_id,
        "scope": scope,
        **overrides,
    }
    return httpx.post(sb.idp_url + "/token", data=form, timeout=5)


def user_token(sb: Sandbox) -> str:
    response = password_grant(sb)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def assert_401(response: httpx.Response, message: str, content_type: str = JSON) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == content_type
    assert response.text == json.dumps({"code": 401, "message": message}, separators=(",", ":"))


# --- public routes and the anonymous gate ---------------------------------------------


def test_live_and_ready_are_public_and_ignore_bad_tokens(sandbox: Sandbox, weaviate_factory: Any) -> None:
    for path in ("/v1/.well-known/live", "/v1/.well-known/ready"):
        for token in (None, "not-a-key", "a.b.c"):
            response = get(sandbox.weaviate_url + path, token)
            assert response.status_code == 200
            assert response.content == b""
            assert "content-type" not in response.headers
    not_ready = weaviate_factory(ready=False)
    assert get(not_ready.url + "/v1/.well-known/ready").status_code == 503


def test_protected_routes_need_a_principal(sandbox: Sandbox) -> None:
    for path in ("/v1/meta", "/v1/schema", "/v1/objects", "/v1/users/own-info"):
        response = get(sandbox.weaviate_url + path)
        assert response.status_code == 401
        assert response.headers["content-type"] == TEXT
        assert response.text == ANON_BOTH
    response = httpx.post(
        sandbox.weaviate_url + "/v1/graphql", json={"query": "{ Get { Article { title } } }"}
    )
    assert response.text == ANON_BOTH


def test_root_and_discovery_skip_the_gate_only_on_the_exact_url(sandbox: Sandbox) -> None:
    base = sandbox.weaviate_url
    assert get(base + "/v1").status_code == 200
    assert "links" in get(base + "/v1").json()
    assert get(base + "/v1/.well-known/openid-configuration").status_code == 200
    for url in (base + "/v1?x=1", base + "/v1/.well-known/openid-configuration?x=1"):
        assert_401(get(url), json.loads(ANON_BOTH)["message"], TEXT)
    # a present but invalid token is refused even there
    assert_401(get(base + "/v1/.well-known/openid-configuration", "wrong"), "unauthorized: invalid api key")
    assert_401(get(base + "/v1", "wrong"), "unauthorized: invalid api key")


def test_meta_schema_graphql_objects(sandbox: Sandbox) -> None:
    creds = sandbox.credentials
    assert creds is not None
    base, key = sandbox.weaviate_url, creds.admin_api_key
    meta = get(base + "/v1/meta", key)
    assert meta.headers["content-type"] == JSON
    assert meta.text == (
        '{"hostname":"http://[::]:8080","version":"1.33.2","modules":{},"grpcMaxMessageSize":104858000}'
    )
    classes = get(base + "/v1/schema", key).json()["classes"]
    assert [c["class"] for c in classes] == ["Article"]
    answer = httpx.post(
        base + "/v1/graphql", headers=bearer(key), json={"query": "{ Get { Article(limit: 1) { title } } }"}
    )
    assert answer.status_code == 200
    assert answer.json() == {"data": {"Get": {"Article": [{"title": "Hello, Weaviate"}]}}}
    unknown = httpx.post(base + "/v1/graphql", headers=bearer(key), json={"query": "{ Get { Nope { x } } }"})
    assert unknown.status_code == 200 and unknown.json()["errors"][0]["message"]
    bad = httpx.post(base + "/v1/graphql", headers=bearer(key), content=b"{not json")
    assert bad.status_code == 422 and bad.json()["error"][0]["message"]
    assert get(base + "/v1/objects", key).json()["totalResults"] >= 2
    missing = get(base + "/v1/nothing", key)
    assert missing.status_code == 404
    assert missing.json() == {"code": 404, "message": "path /v1/nothing was not found"}
    wrong_method = httpx.delete(base + "/v1/meta", headers=bearer(key))
    assert wrong_method.status_code == 405


def test_token_carriage(sandbox: Sandbox) -> None:
    creds = sandbox.credentials
    assert creds is not None
    base = sandbox.weaviate_url
    assert get(base + "/v1/meta", params={"access_token": creds.admin_api_key}).status_code == 200
    # "Bearer " is case-sensitive: anything else is no token at all
    lower = httpx.get(base + "/v1/meta", headers={"Authorization": f"bearer {creds.admin_api_key}"})
    assert lower.status_code == 401 and lower.headers["content-type"] == TEXT
    log = sandbox.weaviate.requests
    assert [(r.authorization, r.query_token, r.username) for r in log] == [
        (False, True, "admin"),
        (True, False, None),
    ]


# --- 401 variants -------------------------------------------------------------------------


def test_anonymous_message_lists_the_enabled_methods(weaviate_factory: Any) -> None:
    keys_only = weaviate_factory(apikey_enabled=True, api_keys={"k": "u"})
    oidc_only = weaviate_factory(oidc_enabled=True, oidc_client_id="weaviate")
    prefix = "anonymous access not enabled. Please authenticate through one of the available methods: "
    assert_401(get(keys_only.url + "/v1/meta"), prefix + "[API-keys]", TEXT)
    assert_401(get(oidc_only.url + "/v1/meta"), prefix + "[OIDC]", TEXT)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("1.32.4", "invalid api key, please provide a valid api key"),
        ("1.32.5", "unauthorized: invalid api key"),
        ("1.33.0", "unauthorized: invalid api key"),
    ],
)
def test_invalid_api_key_text_by_version(weaviate_factory: Any, version: str, message: str) -> None:
    double = weaviate_factory(version=version, apikey_enabled=True, api_keys={"good": "u"})
    assert_401(get(double.url + "/v1/meta", "bad"), message)
    assert get(double.url + "/v1/meta", "good").status_code == 200


@pytest.mark.parametrize(("version", "message"), [("1.35.2", NO_SCHEME_OLD), ("1.36.0", NO_SCHEME_NEW)])
def test_token_sent_to_a_server_without_schemes(weaviate_factory: Any, version: str, message: str) -> None:
    double = weaviate_factory(version=version)
    assert get(double.url + "/v1/meta").status_code == 200  # anonymous when nothing is configured
    assert_401(get(double.url + "/v1/meta", "some-key"), message)


def test_anonymous_access_with_keys_still_rejects_bad_keys(weaviate_factory: Any) -> None:
    double = weaviate_factory(anonymous_access=True, apikey_enabled=True, api_keys={"k": "u"})
    assert get(double.url + "/v1/meta").status_code == 200
    assert get(double.url + "/v1/meta", "bad").status_code == 401
    assert [r.username for r in double.requests] == [None, None]


def test_rbac_with_anonymous_access_is_refused() -> None:
    with pytest.raises(ValueError):
        WeaviateConfig(rbac=True, anonymous_access=True)
    with pytest.raises(ValueError):
        WeaviateConfig(version="1.26.0")


# --- OIDC ---------------------------------------------------------------------------------


def test_valid_oidc_token(sandbox: Sandbox) -> None:
    token = user_token(sandbox)
    assert get(sandbox.weaviate_url + "/v1/meta", token).status_code == 200
    assert sandbox.weaviate.requests[-1].username == "demo@example.com"


def test_expired_token_has_no_grace(sandbox: Sandbox) -> None:
    exp = int(time.time()) - 1
    token = sandbox.idp.mint_token(username="demo@example.com", client_id="weaviate", claims={"exp": exp})
    response = get(sandbox.weaviate_url + "/v1/meta", token)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(exp))
    assert_401(response, f"unauthorized: oidc: token is expired (Token Expiry: {stamp} +0000 UTC)")


def test_token_expires_for_real(sandbox_factory: Any) -> None:
    sb = sandbox_factory(
        IdPConfig(
            users={"u@x": IdPUser(password="pw", email="u@x")},
            clients={"c": IdPClient()},
            access_token_lifetime=1,
        ),
        WeaviateConfig(oidc_enabled=True, oidc_client_id="c"),
    )
    form = {"grant_type": "password", "username": "u@x", "password": "pw", "client_id": "c"}
    token = httpx.post(sb.idp_url + "/token", data=form).json()["access_token"]
    assert get(sb.weaviate_url + "/v1/meta", token).status_code == 200
    time.sleep(2.05)
    assert "oidc: token is expired" in get(sb.weaviate_url + "/v1/meta", token).json()["message"]


def test_not_before_has_five_minutes_grace(sandbox: Sandbox) -> None:
    now = int(time.time())
    soon = sandbox.idp.mint_token(
        username="demo@example.com", client_id="weaviate", claims={"nbf": now + 120}
    )
    later = sandbox.idp.mint_token(
        username="demo@example.com", client_id="weaviate", claims={"nbf": now + 600}
    )
    assert get(sandbox.weaviate_url + "/v1/meta", soon).status_code == 200
    response = get(sandbox.weaviate_url + "/v1/meta", later)
    assert response.status_code == 401
    assert "before the nbf (not before) time" in response.json()["message"]


def test_wrong_audience_and_skipped_check(sandbox: Sandbox, weaviate_factory: Any) -> None:
    token = sandbox.idp.mint_token(username="demo@example.com", client_id="other")
    assert_401(
        get(sandbox.weaviate_url + "/v1/meta", token),
        'unauthorized: oidc: expected audience "weaviate" got ["other"]',
    )
    lenient = weaviate_factory(oidc_enabled=True, oidc_skip_client_id_check=True)
    assert get(lenient.url + "/v1/meta", token).status_code == 200
    assert "clientId" not in get(lenient.url + "/v1/.well-known/openid-configuration").json()


def test_wrong_issuer(sandbox: Sandbox) -> None:
    token = sandbox.idp.mint_token(
        username="demo@example.com", client_id="weaviate", claims={"iss": "http://evil"}
    )
    assert_401(
        get(sandbox.weaviate_url + "/v1/meta", token),
        f'unauthorized: oidc: id token issued by a different provider, expected "{sandbox.idp_url}" got "http://evil"',
    )


def test_bad_signature(sandbox: Sandbox) -> None:
    stranger = RSAKey.generate_key(2048)
    own_kid = sandbox.idp.jwks()["keys"][0]["kid"]
    for header in ({"kid": own_kid}, {"kid": "unknown"}):
        token = sandbox.idp.mint_token(
            username="demo@example.com", client_id="weaviate", key=stranger, header=header
        )
        assert_401(
            get(sandbox.weaviate_url + "/v1/meta", token),
            "unauthorized: failed to verify signature: failed to verify id token signature",
        )


def test_missing_username_claim_is_a_500(sandbox: Sandbox) -> None:
    token = sandbox.idp.mint_token(username="demo@example.com", client_id="weaviate", remove=["email"])
    response = get(sandbox.weaviate_url + "/v1/meta", token)
    assert response.status_code == 500
    assert response.headers["content-type"] == JSON
    assert response.json() == {"code": 500, "message": "oidc: token doesn't contain required claim 'email'"}


def test_scheme_routing(sandbox: Sandbox, weaviate_factory: Any) -> None:
    # both on: JWT-shaped -> OIDC, else API key
    jwt_shaped = sandbox.idp.mint_token(username="demo@example.com", client_id="other")
    assert (
        get(sandbox.weaviate_url + "/v1/meta", jwt_shaped).json()["message"].startswith("unauthorized: oidc:")
    )
    assert (
        get(sandbox.weaviate_url + "/v1/meta", "plain").json()["message"] == "unauthorized: invalid api key"
    )
    # only OIDC: an API key goes to OIDC
    oidc_only = weaviate_factory(oidc_enabled=True, oidc_client_id="weaviate")
    message = get(oidc_only.url + "/v1/meta", "plain-key").json()["message"]
    assert message.startswith("unauthorized: oidc: malformed jwt")


def test_key_rotation_is_picked_up(sandbox_factory: Any) -> None:
    sb = sandbox_factory(
        IdPConfig(clients={"c": IdPClient()}), WeaviateConfig(oidc_enabled=True, oidc_client_id="c")
    )
    first = sb.idp.mint_token(username="u", client_id="c", claims={"email": "u@x"})
    assert get(sb.weaviate_url + "/v1/meta", first).status_code == 200
    sb.idp.rotate_key()
    second = sb.idp.mint_token(username="u", client_id="c", claims={"email": "u@x"})
    assert get(sb.weaviate_url + "/v1/meta", second).status_code == 200
    assert sb.idp.jwks_calls == 2  # fetched once, then again for the new key


# --- discovery, own-info, 403 ------------------------------------------------------------


def test_openid_configuration_forms(sandbox: Sandbox, weaviate_factory: Any) -> None:
    on = get(sandbox.weaviate_url + "/v1/.well-known/openid-configuration")
    assert on.headers["content-type"] == JSON
    assert on.json() == {
        "href": sandbox.idp_url + "/.well-known/openid-configuration",
        "clientId": "weaviate",
        "scopes": ["openid", "email"],
    }
    no_scopes = weaviate_factory(oidc_enabled=True, oidc_client_id="weaviate")
    assert "scopes" not in get(no_scopes.url + "/v1/.well-known/openid-configuration").json()
    off = weaviate_factory(apikey_enabled=True, api_keys={"k": "u"})
    response = get(off.url + "/v1/.well-known/openid-configuration")
    assert response.status_code == 404
    assert response.content == b""
    assert "content-type" not in response.headers
    assert get(off.url + "/v1/.well-known/openid-configuration", "k").status_code == 404
    assert get(off.url + "/v1/.well-known/openid-configuration", "bad").status_code == 401


def test_own_info_forms(sandbox: Sandbox, weaviate_factory: Any) -> None:
    creds = sandbox.credentials
    assert creds is not None
    url = sandbox.weaviate_url + "/v1/users/own-info"
    admin = get(url, creds.admin_api_key).json()
    assert (admin["username"], [r["name"] for r in admin["roles"]], admin["groups"]) == (
        "admin",
        ["admin"],
        [],
    )
    reader = get(url, creds.readonly_api_key).json()
    assert [r["name"] for r in reader["roles"]] == ["viewer"]
    oidc = get(url, user_token(sandbox)).json()
    assert (oidc["username"], oidc["groups"]) == ("demo@example.com", ["demo-users"])
    old = weaviate_factory(version="1.27.9", apikey_enabled=True, api_keys={"k": "u"}, rbac=True)
    assert get(old.url + "/v1/users/own-info", "k").status_code == 404
    no_rbac = weaviate_factory(apikey_enabled=True, api_keys={"k": "u"})
    assert get(no_rbac.url + "/v1/users/own-info", "k").status_code == 404
    anonymous = weaviate_factory(anonymous_access=True)
    response = get(anonymous.url + "/v1/users/own-info")
    assert (response.status_code, response.content) == (401, b"")


def test_read_only_write_is_403(sandbox: Sandbox, weaviate_factory: Any) -> None:
    creds = sandbox.credentials
    assert creds is not None
    body = {"class": "Article", "properties": {"title": "t"}}
    denied = httpx.post(
        sandbox.weaviate_url + "/v1/objects", headers=bearer(creds.readonly_api_key), json=body
    )
    assert denied.status_code == 403
    assert denied.headers["content-type"] == JSON
    assert denied.json() == {
        "error": [
            {
                "message": "rbac: authorization, forbidden action: user 'reader' has insufficient permissions to "
                "create_data [Domain: data, Collection: Article, Tenant: *, Object: *]"
            }
        ]
    }
    adminlist = weaviate_factory(apikey_enabled=True, api_keys={"r": "ro", "w": "rw"}, read_only_users={"ro"})
    plain = httpx.post(adminlist.url + "/v1/objects", headers=bearer("r"), json=body)
    assert plain.status_code == 403
    message = plain.json()["error"][0]["message"]
    assert message.startswith("authorization, forbidden action: user 'ro' has insufficient permissions to ")
    created = httpx.post(adminlist.url + "/v1/objects", headers=bearer("w"), json=body)
    assert created.status_code == 200 and created.json()["id"]
    query = {"query": "{ Get { Article { title } } }"}
    titles = httpx.post(adminlist.url + "/v1/graphql", headers=bearer("w"), json=query).json()
    assert {"title": "t"} in titles["data"]["Get"]["Article"]


# --- the provider ---------------------------------------------------------------------


def test_provider_discovery_and_optional_fields(sandbox: Sandbox, sandbox_factory: Any) -> None:
    doc = get(sandbox.idp_url + "/.well-known/openid-configuration").json()
    assert doc["issuer"] == sandbox.idp_url
    assert doc["token_endpoint"] == sandbox.idp_url + "/token"
    assert doc["revocation_endpoint"] == sandbox.idp_url + "/revoke"
    assert set(doc["grant_types_supported"]) >= {"password", "client_credentials", "refresh_token"}
    bare = sandbox_factory(IdPConfig(advertise_revocation=False, advertise_grant_types=False))
    doc = get(bare.idp_url + "/.well-known/openid-configuration").json()
    assert "revocation_endpoint" not in doc and "grant_types_supported" not in doc


def test_password_grant_claims(sandbox: Sandbox) -> None:
    response = password_grant(sandbox)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert "refresh_token" not in body and "refresh_expires_in" not in body
    keys = KeySet.import_key_set(get(sandbox.idp_url + "/jwks").json())
    token = jwt.decode(body["access_token"], keys, algorithms=["RS256"])
    claims = token.claims
    assert token.header["kid"] == keys.keys[0].kid
    assert claims["iss"] == sandbox.idp_url and claims["aud"] == "weaviate"
    assert claims["email"] == claims["preferred_username"] == "demo@example.com"
    assert claims["groups"] == ["demo-users"] and claims["scope"] == "openid email"
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] == claims["iat"] and claims["sub"]


def test_password_grant_errors(sandbox: Sandbox) -> None:
    cases = [
        ({"password": "wrong"}, 400, "invalid_grant"),
        ({"username": "nobody@example.com"}, 400, "invalid_grant"),
        ({"client_id": "nope"}, 401, "invalid_client"),
        ({"grant_type": "implicit"}, 400, "unsupported_grant_type"),
        ({"grant_type": ""}, 400, "invalid_request"),
        ({"username": ""}, 400, "invalid_request"),
    ]
    for overrides, status, error in cases:
        response = password_grant(sandbox, **overrides)
        assert (response.status_code, response.json()["error"]) == (status, error), overrides
        assert response.json()["error_description"]
        assert sandbox.credentials is not None and sandbox.credentials.password not in response.text


def test_offline_access_only_when_asked_and_allowed(sandbox_factory: Any) -> None:
    users = {"yes": IdPUser(password="pw"), "no": IdPUser(password="pw", offline_access=False)}
    sb = sandbox_factory(IdPConfig(users=users, clients={"c": IdPClient()}, refresh_token_lifetime=60))

    def grant(user: str, scope: str) -> dict[str, Any]:
        form = {
            "grant_type": "password",
            "username": user,
            "password": "pw",
            "client_id": "c",
            "scope": scope,
        }
        return dict(httpx.post(sb.idp_url + "/token", data=form).json())

    asked = grant("yes", "openid offline_access")
    assert asked["refresh_token"] and asked["refresh_expires_in"] == 60
    assert "refresh_token" not in grant("yes", "openid")
    refused = grant("no", "openid offline_access")
    assert "refresh_token" not in refused and "offline_access" not in refused["scope"]


def test_refresh_rotation_reuse_and_revocation(sandbox: Sandbox) -> None:
    first = password_grant(sandbox, scope="openid email offline_access").json()["refresh_token"]
    token_url = sandbox.idp_url + "/token"

    def refresh(value: str) -> httpx.Response:
        return httpx.post(
            token_url, data={"grant_type": "refresh_token", "refresh_token": value, "client_id": "weaviate"}
        )

    renewed = refresh(first)
    assert renewed.status_code == 200
    second = renewed.json()["refresh_token"]
    assert second != first
    assert get(sandbox.weaviate_url + "/v1/meta", renewed.json()["access_token"]).status_code == 200
    reused = refresh(first)
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    revoked = httpx.post(sandbox.idp_url + "/revoke", data={"token": second, "client_id": "weaviate"})
    assert revoked.status_code == 200
    assert httpx.post(sandbox.idp_url + "/revoke", data={"token": "unknown"}).status_code == 200
    assert refresh(second).json()["error"] == "invalid_grant"
    calls = {k: v for k, v in sandbox.idp.token_calls.items() if v}
    assert calls == {"password": 1, "refresh_token": 3}
    assert sandbox.idp.revoke_calls == 2


def test_client_credentials(sandbox: Sandbox) -> None:
    creds = sandbox.credentials
    assert creds is not None
    form = {"grant_type": "client_credentials", "scope": "openid"}
    post = httpx.post(
        sandbox.idp_url + "/token",
        data={**form, "client_id": creds.service_client_id, "client_secret": creds.service_client_secret},
    )
    basic = httpx.post(
        sandbox.idp_url + "/token", data=form, auth=(creds.service_client_id, creds.service_client_secret)
    )
    for response in (post, basic):
        assert response.status_code == 200 and "refresh_token" not in response.json()
    info = get(sandbox.weaviate_url + "/v1/users/own-info", basic.json()["access_token"]).json()
    assert (info["username"], [r["name"] for r in info["roles"]]) == ("service@example.com", ["viewer"])
    wrong = httpx.post(sandbox.idp_url + "/token", data=form, auth=(creds.service_client_id, "nope"))
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    public = httpx.post(sandbox.idp_url + "/token", data={**form, "client_id": creds.client_id})
    assert (public.status_code, public.json()["error"]) == (400, "unauthorized_client")


def test_stats_counting(sandbox: Sandbox) -> None:
    password_grant(sandbox)
    password_grant(sandbox, password="wrong")
    stats = get(sandbox.idp_url + "/_sandbox/stats").json()
    assert stats["token"] == {
        "password": 2,
        "client_credentials": 0,
        "refresh_token": 0,
        "authorization_code": 0,
        "urn:ietf:params:oauth:grant-type:device_code": 0,
    }
    assert sandbox.idp_stats()["token_total"] == 2
    assert httpx.post(sandbox.idp_url + "/_sandbox/reset-stats").status_code == 204
    assert sandbox.idp.token_calls["password"] == 0


def test_token_delay_lets_requests_overlap(sandbox_factory: Any) -> None:
    sb = sandbox_factory(IdPConfig(clients={"c": IdPClient(secret="s")}, token_delay=0.4))

    async def burst() -> float:
        form = {"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"}
        async with httpx.AsyncClient() as client:
            started = time.monotonic()
            answers = await asyncio.gather(*(client.post(sb.idp_url + "/token", data=form) for _ in range(4)))
            assert all(a.status_code == 200 for a in answers)
            return time.monotonic() - started

    elapsed = asyncio.run(burst())
    assert 0.4 <= elapsed < 1.2
    assert sb.idp.token_calls["client_credentials"] == 4


# --- request log, several doubles, the runner -------------------------------------------


def test_request_log_never_holds_tokens(sandbox: Sandbox) -> None:
    creds = sandbox.credentials
    assert creds is not None
    token = user_token(sandbox)
    get(sandbox.weaviate_url + "/v1/meta", token)
    get(sandbox.weaviate_url + "/v1/meta", creds.admin_api_key, headers={"X-Custom": "1"})
    get(sandbox.weaviate_url + "/v1/meta", params={"access_token": creds.readonly_api_key})
    log = get(sandbox.weaviate_url + "/_sandbox/requests")
    assert log.json()["count"] == 3 == sandbox.weaviate.request_count
    for secret in (token, creds.admin_api_key, creds.readonly_api_key):
        assert secret not in log.text
        assert secret not in repr(sandbox.weaviate.requests)
    assert "x-custom" in log.json()["requests"][1]["headers"]
    assert sandbox.weaviate.count(path="/v1/meta") == 3
    assert httpx.post(sandbox.weaviate_url + "/_sandbox/reset").status_code == 204
    assert sandbox.weaviate.request_count == 0
    assert creds.password not in repr(creds) and creds.admin_api_key not in repr(creds)


def test_several_doubles_share_one_provider(sandbox: Sandbox, weaviate_factory: Any) -> None:
    oidc = weaviate_factory(oidc_enabled=True, oidc_client_id="weaviate")
    keys = weaviate_factory(apikey_enabled=True, api_keys={"k": "u"})
    anonymous = weaviate_factory(anonymous_access=True)
    token = user_token(sandbox)
    assert len({sandbox.weaviate_url, oidc.url, keys.url, anonymous.url}) == 4
    assert get(oidc.url + "/v1/meta", token).status_code == 200
    assert get(sandbox.weaviate_url + "/v1/meta", token).status_code == 200
    assert get(keys.url + "/v1/meta", "k").status_code == 200
    assert get(anonymous.url + "/v1/meta").status_code == 200
    assert oidc.config.oidc_issuer == sandbox.idp_url


def test_sandbox_refuses_non_loopback() -> None:
    with pytest.raises(ValueError):
        Sandbox(host="0.0.0.0")


def test_command_line_json_and_sigterm(tmp_path: Any) -> None:
    command = [sys.executable, "-m", "weaviate_auth_widget.sandbox", "--json", "--token-lifetime", "30"]
    command += ["--port", "0", "--idp-port", "0", "--grpc-port", "0"]  # the demo's fixed ports may be in use
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WEAVIATE_AUTH_DIR": str(tmp_path)}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            creds = info["credentials"]
            base = info["weaviate_url"]
            assert base.startswith("http://127.0.0.1:")
            assert get(base + "/v1/.well-known/live").status_code == 200
            assert get(base + "/v1/meta", creds["admin_api_key"]).json()["version"] == info["version"]
            form = {
                "grant_type": "password",
                "username": creds["username"],
                "password": creds["password"],
                "client_id": creds["client_id"],
            }
            assert httpx.post(info["idp_url"] + "/token", data=form).json()["expires_in"] == 30
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_command_line_refuses_public_addresses() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "weaviate_auth_widget.sandbox", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "loopback" in result.stderr
