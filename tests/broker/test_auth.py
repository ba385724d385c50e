"""Who may call what: the credential matrix, the broker token, the owner rule under JupyterHub."""

from __future__ import annotations

import json
import secrets
from http.cookies import SimpleCookie
from typing import Any

import pytest
from jupyter_server.auth import IdentityProvider, User

from weaviate_auth_widget.broker import BROKER_HEADER
from weaviate_auth_widget.broker.auth import (
    broker_token_matches,
    check_owner,
    hub_owner,
    is_owner,
    new_broker_token,
)
from weaviate_auth_widget.errors import NotOwner
from weaviate_auth_widget.profiles import Profile

from .conftest import API, secret_values

EVIL = "http://evil.example"

# -- the matrix --------------------------------------------------------------------------
ENDPOINTS = [
    ("GET", "status"),
    ("GET", "openapi.yaml"),
    ("GET", "profiles"),
    ("GET", "profiles/p"),
    ("PUT", "profiles/new"),
    ("DELETE", "profiles/old"),
    ("POST", "profiles/p/login"),
    ("POST", "profiles/p/token"),
    ("POST", "profiles/p/logout"),
]
OK = (200, 200, 200, 200, 200, 204, 200, 200, 204)
# fmt: off
MATRIX = {
    #                                   status oapi  list  get   put   del   login token logout
    "no credentials":                   (403,  403,  403,  403,  403,  403,  403,  403,  403),
    "wrong jupyter token":              (403,  403,  403,  403,  403,  403,  403,  403,  403),
    "wrong broker token":               (403,  403,  403,  403,  403,  403,  403,  403,  403),
    "jupyter token + wrong broker token": (403, 403, 403,  403,  403,  403,  403,  403,  403),
    "cookie without xsrf":              (200,  200,  200,  200,  403,  403,  403,  403,  403),
    "cookie + xsrf":                    OK,
    "cookie + xsrf, same origin":       OK,
    "cookie + xsrf, foreign origin":    (404,  404,  404,  404,  404,  404,  404,  404,  404),
    "jupyter token, foreign origin":    (404,  404,  404,  404,  404,  404,  404,  404,  404),
    "broker token, foreign origin":     (404,  404,  404,  404,  404,  404,  404,  404,  404),
    "jupyter token":                    OK,
    "broker token":                     OK,
}
# fmt: on


def _login_cookie(raw_request: Any, jupyter_headers: dict[str, str]) -> str:
    """The login cookie the server sets on a token-authenticated request."""
    reply = raw_request("GET", API + "status", headers=jupyter_headers)
    cookies = SimpleCookie()
    for header in reply.headers.get_list("Set-Cookie"):
        cookies.load(header)
    names = [name for name in cookies if name.startswith("username-")]
    assert names, reply.headers
    return f"{names[0]}={cookies[names[0]].value}"


def _credentials(
    kind: str, raw_request: Any, jupyter_headers: dict[str, str], broker: Any, port: int
) -> dict[str, str]:
    if kind == "no credentials":
        return {}
    if kind == "wrong jupyter token":
        return {"Authorization": "token " + secrets.token_hex(24)}
    if kind == "wrong broker token":
        return {BROKER_HEADER: new_broker_token()}
    if kind == "jupyter token + wrong broker token":
        return {
            **jupyter_headers,
            BROKER_HEADER: broker.token[:-1] + ("A" if broker.token[-1] != "A" else "B"),
        }
    if kind == "jupyter token":
        return dict(jupyter_headers)
    if kind == "jupyter token, foreign origin":
        return {**jupyter_headers, "Origin": EVIL}
    if kind == "broker token":
        return {BROKER_HEADER: broker.token}
    if kind == "broker token, foreign origin":
        return {BROKER_HEADER: broker.token, "Origin": EVIL}
    cookie = _login_cookie(raw_request, jupyter_headers)
    if kind == "cookie without xsrf":
        return {"Cookie": cookie}
    xsrf = secrets.token_hex(16)
    headers = {"Cookie": f"{cookie}; _xsrf={xsrf}", "X-XSRFToken": xsrf}
    if kind == "cookie + xsrf, same origin":
        headers["Origin"] = f"http://127.0.0.1:{port}"
    if kind == "cookie + xsrf, foreign origin":
        headers["Origin"] = EVIL
    return headers


@pytest.mark.parametrize("kind", list(MATRIX))
def test_auth_matrix(
    kind: str,
    raw_request: Any,
    jupyter_headers: dict[str, str],
    broker: Any,
    sandbox: Any,
    jp_http_port: int,
) -> None:
    service = broker.service
    key = sandbox.credentials.admin_api_key
    service.save_profile(Profile("p", sandbox.weaviate_url), {"api_key": key})
    service.save_profile(Profile("old", sandbox.weaviate_url), {"api_key": key})
    headers = _credentials(kind, raw_request, jupyter_headers, broker, jp_http_port)
    put_body = json.dumps({"url": sandbox.weaviate_url, "secrets": {"api_key": key}})
    failures = []
    for (method, path), expected in zip(ENDPOINTS, MATRIX[kind], strict=True):
        request_headers = dict(headers)
        body = None
        if method == "PUT":
            body = put_body
            request_headers["Content-Type"] = "application/json"
        reply = raw_request(method, API + path, headers=request_headers, body=body)
        if reply.code != expected:
            failures.append(f"{method} {path}: {reply.code} (expected {expected}) {reply.text[:120]}")
        if reply.code >= 400:
            assert reply.error_code, f"{method} {path}: not a JSON error: {reply.text[:100]}"
        if path != "profiles/p/token" or reply.code >= 400:
            for value in [*secret_values(sandbox), broker.token]:
                assert value not in reply.text, f"{method} {path} leaked a secret"
    assert not failures, "\n".join(failures)
    # what was refused changed nothing
    if MATRIX[kind][4] != 200:
        assert [p.name for p in service.list_profiles()] == ["old", "p"]


def test_broker_token_is_compared_exactly() -> None:
    token = new_broker_token()
    assert len(token) >= 43 and token != new_broker_token()
    assert broker_token_matches(token, token)
    assert not broker_token_matches(token + "x", token)
    assert not broker_token_matches(token[:-1], token)
    assert not broker_token_matches("", token)
    assert not broker_token_matches(None, token)
    assert not broker_token_matches("é" * 43, token)
    assert not broker_token_matches(token, "")


# -- the owner rule ------------------------------------------------------------------------
def test_check_owner_function() -> None:
    check_owner("anyone", None, "obtain tokens")  # single-user server
    check_owner("alice", "alice", "obtain tokens")
    for user in ("mallory", None, "Alice", "alice "):
        with pytest.raises(NotOwner) as caught:
            check_owner(user, "alice", "obtain tokens")
        assert caught.value.code == "not_owner" and caught.value.http_status == 403
        assert "alice" in str(caught.value)
    assert is_owner("x", None) and not is_owner(None, "alice")
    assert hub_owner({"JUPYTERHUB_USER": "alice"}) == "alice"
    assert hub_owner({}) is None and hub_owner({"JUPYTERHUB_USER": ""}) is None


class HubLikeIdentityProvider(IdentityProvider):
    """Authenticates with the server token as usual, then says the request comes from the
    user named in ``X-Test-User`` (default ``alice``): what a shared JupyterHub server sees
    when the owner, a collaborator or an admin opens it."""

    async def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        user = await self._get_user(handler)
        if user is None:
            return None
        name = handler.request.headers.get("X-Test-User", "alice")
        hub_user = User(username=name)
        # what jupyterhub-singleuser's JupyterHubUser carries: the hub's model, with its kind
        hub_user.hub_user = {"kind": handler.request.headers.get("X-Test-Kind", "user"), "name": name}  # type: ignore[attr-defined]
        return hub_user


HUB = [
    pytest.param(
        {"JUPYTERHUB_USER": "alice"},
        {"ServerApp": {"identity_provider_class": HubLikeIdentityProvider}},
        id="hub",
    )
]


@pytest.mark.parametrize(("broker_environ", "extra_config"), HUB)
def test_only_the_owner_gets_tokens_on_a_shared_server(api: Any, broker: Any, sandbox: Any) -> None:
    key = sandbox.credentials.admin_api_key
    body = {"url": sandbox.weaviate_url, "secrets": {"api_key": key}}
    alice = {"X-Test-User": "alice"}
    mallory = {"X-Test-User": "mallory"}
    assert broker.owner == "alice"

    assert api("PUT", "profiles/p", json_body=body, headers=alice).code == 200
    assert api("POST", "profiles/p/token", headers=alice).json()["token"] == key

    refused = [
        api("POST", "profiles/p/token", headers=mallory),
        api("POST", "profiles/p/login", headers=mallory),
        api("POST", "profiles/p/logout", headers=mallory),
        api("PUT", "profiles/p", json_body=body, headers=mallory),
        api("PUT", "profiles/p", json_body={"url": "http://127.0.0.1:1"}, headers=mallory),
        api("PUT", "profiles/q", json_body=body, headers=mallory),
        api("DELETE", "profiles/p", headers=mallory),
    ]
    for reply in refused:
        assert (reply.code, reply.error_code) == (403, "not_owner"), reply.text
        assert key not in reply.text
    # reads of non-secret views are fine
    status = api("GET", "status", headers=mallory).json()
    assert (status["user"], status["owner"]) == ("mallory", "alice")
    assert [p["name"] for p in api("GET", "profiles", headers=mallory).json()["profiles"]] == ["p"]
    view = api("GET", "profiles/p", headers=mallory)
    assert view.code == 200 and key not in view.text
    # nothing changed; the owner's kernels (broker token) act as the owner
    assert broker.service.get_profile("p").url == sandbox.weaviate_url
    assert api("POST", "profiles/p/token", auth="kernel").json()["token"] == key
    assert api("GET", "status", auth="kernel").json()["user"] == "alice"
    assert api("DELETE", "profiles/p", headers=alice).code == 204


@pytest.mark.parametrize(("broker_environ", "extra_config"), HUB)
def test_a_hub_service_named_like_the_owner_is_not_the_owner(api: Any, broker: Any, sandbox: Any) -> None:
    """JupyterHub services and users have separate name spaces: a service called
    ``alice`` (given access to alice's server) is not alice."""
    key = sandbox.credentials.admin_api_key
    body = {"url": sandbox.weaviate_url, "secrets": {"api_key": key}}
    alice = {"X-Test-User": "alice"}
    service_alice = {"X-Test-User": "alice", "X-Test-Kind": "service"}
    assert api("PUT", "profiles/p", json_body=body, headers=alice).code == 200
    for method, path, json_body in (
        ("POST", "profiles/p/token", None),
        ("POST", "profiles/p/login", None),
        ("POST", "profiles/p/logout", None),
        ("PUT", "profiles/p", body),
        ("DELETE", "profiles/p", None),
    ):
        reply = api(method, path, json_body=json_body, headers=service_alice)
        assert (reply.code, reply.error_code) == (403, "not_owner"), reply.text
        assert key not in reply.text and "hub service alice" in reply.text
    assert api("POST", "profiles/p/token", headers=alice).json()["token"] == key
    assert not is_owner("alice", "alice", "service") and is_owner("alice", None, "service")


def _set_cookies(reply: Any) -> SimpleCookie:
    cookies = SimpleCookie()
    for header in reply.headers.get_list("Set-Cookie"):
        cookies.load(header)
    return cookies


def test_status_gives_a_page_without_one_its_xsrf_cookie(
    raw_request: Any, jupyter_headers: dict[str, str], broker: Any, sandbox: Any
) -> None:
    """Voilà's render page sets no ``_xsrf`` cookie (Lab's and Notebook's do): the view's
    broker check (``GET status`` with the login cookie) gets one, and the POST after it
    passes Jupyter's XSRF check. Kernels (broker token) get no cookie."""
    login = _login_cookie(raw_request, jupyter_headers)
    reply = raw_request("GET", API + "status", headers={"Cookie": login})
    assert reply.code == 200
    xsrf = _set_cookies(reply).get("_xsrf")
    assert xsrf is not None and xsrf.value, reply.headers
    # refused without it (the check is on), accepted with it
    body = json.dumps(
        {"url": sandbox.weaviate_url, "secrets": {"api_key": sandbox.credentials.admin_api_key}}
    )
    put = {"Cookie": login, "Content-Type": "application/json"}
    assert raw_request("PUT", API + "profiles/xsrf", headers=put, body=body).code == 403
    with_xsrf = {**put, "Cookie": f"{login}; _xsrf={xsrf.value}", "X-XSRFToken": xsrf.value}
    assert raw_request("PUT", API + "profiles/xsrf", headers=with_xsrf, body=body).code == 200
    by_kernel = raw_request("GET", API + "status", headers={BROKER_HEADER: broker.token})
    assert by_kernel.code == 200 and "_xsrf" not in _set_cookies(by_kernel)
