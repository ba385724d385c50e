"""Every route of api.yaml, happy paths, against the sandbox cluster and identity provider."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from weaviate_auth_widget.broker import TOKEN_RECHECK_SECONDS, handlers, keys_handlers
from weaviate_auth_widget.broker.sign_in import sign_in_handlers
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.service import AuthService

from .conftest import Reply, secret_values

API_YAML = Path(handlers.__file__).with_name("api.yaml")
ALL_HANDLERS = handlers.default_handlers + keys_handlers.keys_handlers + sign_in_handlers


def documented(pattern: str) -> str:
    """A route's regex as api.yaml writes its path: ``{name}``, ``{user}``, ``{action}``."""
    path = re.sub(r"\\.", ".", pattern).replace("([^/]+)", "{name}", 1).replace("([^/]+)", "{user}", 1)
    path = path.replace("([A-Za-z0-9_-]+)", "{id}")  # a browser sign-in's id
    return re.sub(r"\([a-z|-]+\)", "{action}", path)


def assert_no_secret(reply: Reply, values: list[str]) -> None:
    for value in values:
        assert value not in reply.text, f"a secret leaked in {reply.code} {reply.text[:80]}"


def test_profile_life_cycle(api: Any, sandbox: Any, api_key_profile: dict[str, Any]) -> None:
    secrets = secret_values(sandbox)
    seen: list[Reply] = []

    saved = api("PUT", "profiles/demo", json_body=api_key_profile)
    seen.append(saved)
    assert saved.code == 200, saved.text
    view = saved.json()
    assert view["name"] == "demo"
    assert view["url"] == sandbox.weaviate_url
    assert view["method"] == "api_key"
    assert view["has_secret"] is True
    assert view["read_only"] is False
    assert view["logged_in"] is False
    assert "secrets" not in view

    listed = api("GET", "profiles")
    seen.append(listed)
    assert listed.code == 200
    assert [p["name"] for p in listed.json()["profiles"]] == ["demo"]

    login = api("POST", "profiles/demo/login")
    seen.append(login)
    assert login.code == 200, login.text
    identity = login.json()
    assert identity["profile"] == "demo"
    assert identity["username"] == sandbox.credentials.admin_user
    assert identity["is_admin"] is True
    assert identity["server_version"] == sandbox.weaviate_config.version

    described = api("GET", "profiles/demo")
    seen.append(described)
    assert described.json()["logged_in"] is True
    assert described.json()["identity"]["username"] == sandbox.credentials.admin_user

    for auth in ("jupyter", "kernel"):
        grant = api("POST", "profiles/demo/token", auth=auth)
        assert grant.code == 200, grant.text
        assert grant.json() == {
            "token": sandbox.credentials.admin_api_key,
            "expires_at": None,
            "headers": {},
            "recheck_in": TOKEN_RECHECK_SECONDS,
        }
        assert grant.headers["Cache-Control"] == "no-store"

    logout = api("POST", "profiles/demo/logout")
    assert logout.code == 204 and logout.body == b""
    after = api("GET", "profiles/demo")
    seen.append(after)
    assert after.json()["logged_in"] is False
    assert after.json()["has_secret"] is True  # logout keeps the API key

    status = api("GET", "status")
    seen.append(status)
    assert status.code == 200

    deleted = api("DELETE", "profiles/demo")
    assert deleted.code == 204 and deleted.body == b""
    gone = api("GET", "profiles/demo")
    seen.append(gone)
    assert gone.code == 404 and gone.error_code == "profile_not_found"
    again = api("DELETE", "profiles/demo")
    seen.append(again)
    assert again.code == 404 and again.error_code == "profile_not_found"
    assert api("GET", "profiles").json() == {"profiles": []}

    for reply in seen:
        assert_no_secret(reply, secrets)


def test_has_secret_follows_the_store(api: Any, sandbox: Any) -> None:
    body = {"url": sandbox.weaviate_url, "method": "api_key"}
    assert api("PUT", "profiles/bare", json_body=body).json()["has_secret"] is False
    missing = api("POST", "profiles/bare/token")
    assert missing.code == 409 and missing.error_code == "missing_secret"
    body["secrets"] = {"api_key": sandbox.credentials.readonly_api_key}
    assert api("PUT", "profiles/bare", json_body=body).json()["has_secret"] is True
    # changing the URL drops the stored secret: it can never be steered to another host
    moved = api("PUT", "profiles/bare", json_body={"url": "http://127.0.0.1:1", "method": "api_key"})
    assert moved.json()["has_secret"] is False


def test_password_login_tokens_and_rejected_digest(api: Any, sandbox: Any) -> None:
    creds = sandbox.credentials
    body = {
        "url": sandbox.weaviate_url,
        "method": "password",
        "username": creds.username,
        "remember": False,
        "secrets": {"password": creds.password},
    }
    assert api("PUT", "profiles/pw", json_body=body).code == 200
    login = api("POST", "profiles/pw/login", json_body={})
    assert login.code == 200, login.text
    assert login.json()["username"] == creds.username
    assert login.json()["refreshes"] is True

    first = api("POST", "profiles/pw/token", auth="kernel").json()
    assert first["token"].count(".") == 2  # a JWT from the provider
    assert first["expires_at"] > 0
    same = api("POST", "profiles/pw/token", auth="kernel").json()
    assert same["token"] == first["token"]

    digest = hashlib.sha256(first["token"].encode()).hexdigest()
    calls = sandbox.idp_stats()["token_total"]
    renewed = api("POST", "profiles/pw/token", auth="kernel", json_body={"rejected": digest}).json()
    assert renewed["token"] != first["token"]
    assert sandbox.idp_stats()["token_total"] == calls + 1
    # a stale digest (another kernel already renewed) does not renew again
    stale = api("POST", "profiles/pw/token", auth="kernel", json_body={"rejected": digest}).json()
    assert stale["token"] == renewed["token"]
    assert sandbox.idp_stats()["token_total"] == calls + 1

    for reply in (api("GET", "profiles/pw"), api("GET", "profiles"), login):
        assert_no_secret(reply, [creds.password, first["token"], renewed["token"]])


def test_module_headers_only_in_token(api: Any, sandbox: Any) -> None:
    openai = "sk-test-" + "x7" * 20
    body = {
        "url": sandbox.weaviate_url,
        "headers": ["X-OpenAI-Api-Key"],
        "secrets": {"api_key": sandbox.credentials.admin_api_key, "header:X-OpenAI-Api-Key": openai},
    }
    saved = api("PUT", "profiles/mods", json_body=body)
    assert saved.code == 200, saved.text
    assert saved.json()["headers"] == ["X-OpenAI-Api-Key"]
    assert openai not in saved.text
    grant = api("POST", "profiles/mods/token").json()
    assert grant["headers"] == {"X-OpenAI-Api-Key": openai}
    assert openai not in api("GET", "profiles/mods").text


def test_status(api: Any, broker: Any, jp_serverapp: Any) -> None:
    status = api("GET", "status").json()
    assert status["mode"] == "broker"
    assert status["version"]
    assert status["store"] == broker.service.secrets.backend_name == "file readable only by you"
    assert status["policy"] == {
        "default_url": None,
        "allowed_urls": [],
        "allowed_issuers": [],
        "require_https": True,
        "allow_remember": True,
        "ca_bundle": None,
        "hub_login": False,  # no hub service: the panel does not offer the hub login
        "hub_login_urls": [],
    }
    assert status["owner"] is None
    assert status["user"]  # the (anonymous) Jupyter user
    kernel = api("GET", "status", auth="kernel").json()
    assert kernel["user"] == broker.owner_name


def test_openapi_document_matches_the_routes(api: Any, jp_base_url: str) -> None:
    reply = api("GET", "openapi.yaml")
    assert reply.code == 200
    assert reply.headers["Content-Type"].startswith("application/yaml")
    served = yaml.safe_load(reply.body)
    assert served["servers"] == [{"url": f"{jp_base_url}weaviate-auth/api"}]
    shipped = yaml.safe_load(API_YAML.read_text())
    assert served["paths"] == shipped["paths"]

    routes = {documented(pattern) for pattern, _ in ALL_HANDLERS}
    assert routes == {"/weaviate-auth/api" + path for path in shipped["paths"]}
    for pattern, handler in ALL_HANDLERS:
        path = documented(pattern).removeprefix("/weaviate-auth/api")
        methods = {m.upper() for m in shipped["paths"][path] if m != "parameters"}
        assert set(handler.SUPPORTED_METHODS) - {"OPTIONS"} == methods, path


def test_every_handler_method_is_authenticated(jp_serverapp: Any, broker: Any) -> None:
    """Every route but ``proof`` (open on purpose: kernels ask it before they send the
    broker token; it answers an HMAC of their nonce and nothing else)."""
    web_app = jp_serverapp.web_app
    for pattern, handler in ALL_HANDLERS:
        assert web_app._check_handler_auth(pattern, handler) == [], pattern
        for method in handler.SUPPORTED_METHODS:
            if method != "OPTIONS":
                function = getattr(handler, method.lower())
                assert function.__wrapped__.__name__ == method.lower()
                unauthenticated = getattr(function, "__allow_unauthenticated", False)
                assert unauthenticated == (handler is handlers.ProofHandler), pattern


def test_unknown_method_and_route(api: Any) -> None:
    patch = api("PATCH", "profiles/x", json_body={})
    assert patch.code == 405 and patch.error_code == "method_not_allowed"
    head = api("GET", "profiles/x/token")
    assert head.code == 405 and head.error_code == "method_not_allowed"


class TracingService(AuthService):
    calls: list[str] = []

    def login(self, name: str) -> Any:
        self.calls.append(name)
        return super().login(name)


@pytest.mark.parametrize("broker_config", [{"service_class": TracingService}])
def test_service_class_trait(api: Any, broker: Any, sandbox: Any) -> None:
    assert type(broker.service) is TracingService
    broker.service.save_profile(
        Profile("t", sandbox.weaviate_url), {"api_key": sandbox.credentials.admin_api_key}
    )
    assert api("POST", "profiles/t/login").code == 200
    assert TracingService.calls == ["t"]


def test_connect_keeps_the_secret_only_when_the_login_works(
    api: Any, sandbox: Any, api_key_profile: dict[str, Any]
) -> None:
    """``POST profiles/{name}/connect``: what the login panel posts from the browser."""
    wrong = {**api_key_profile, "secrets": {"api_key": "wrong-" + "k" * 24}}
    refused = api("POST", "profiles/demo/connect", json_body=wrong)
    assert refused.code == 422 and refused.json()["error"]["code"] == "invalid_credentials", refused.text
    view = api("GET", "profiles/demo").json()
    assert view["url"] == sandbox.weaviate_url and view["has_secret"] is False  # profile kept, key not

    connected = api("POST", "profiles/demo/connect", json_body=api_key_profile)
    assert connected.code == 200, connected.text
    assert connected.json()["username"] == sandbox.credentials.admin_user
    assert_no_secret(connected, secret_values(sandbox))
    assert api("GET", "profiles/demo").json()["has_secret"] is True
    assert api("POST", "profiles/demo/connect", json_body=wrong).code == 422
    # the working key stays: a stored-secret login still works after the failed try
    assert api("POST", "profiles/demo/login").code == 200
