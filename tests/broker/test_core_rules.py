"""Rules the core enforces for every door, through the real broker: only an API-key
profile gives up its key (copy-key), under the policy as it is now; a save never turns a
login that keeps secrets into one of another method unless the caller says ``replace``."""

from __future__ import annotations

from typing import Any

from weaviate_auth_widget.policy import Policy


def put(api: Any, name: str, body: dict[str, Any]) -> Any:
    return api("PUT", f"profiles/{name}", json_body=body)


def test_copy_key_only_for_an_api_key_profile_under_the_policy_now(
    api: Any, broker: Any, sandbox: Any
) -> None:
    creds = sandbox.credentials
    body = {"url": sandbox.weaviate_url, "method": "password", "username": creds.username}
    assert put(api, "pw", {**body, "secrets": {"password": creds.password}}).code == 200
    refused = api("POST", "profiles/pw/copy-key")
    assert (refused.code, refused.error_code) == (422, "wrong_method"), refused.text
    message = refused.json()["error"]["message"]
    assert "'pw'" in message and "no API key to copy" in message and "API-key profile" in message
    assert creds.password not in refused.text

    # an API-key profile's key, under the policy as it is now, and not after a logout
    key = creds.admin_api_key
    assert put(api, "admin", {"url": sandbox.weaviate_url, "secrets": {"api_key": key}}).code == 200
    assert api("POST", "profiles/admin/copy-key").json() == {"api_key": key}
    before = broker.service.policy
    broker.service.policy = Policy(allowed_urls=("https://only.example",))  # the admin narrowed it
    try:
        refused = api("POST", "profiles/admin/copy-key")
    finally:
        broker.service.policy = before
    assert (refused.code, refused.error_code) == (403, "policy_refused")
    assert key not in refused.text
    assert api("POST", "profiles/admin/logout").code in (200, 204)
    logged_out = api("POST", "profiles/admin/copy-key")
    assert (logged_out.code, logged_out.error_code) == (409, "login_expired") and key not in logged_out.text


def test_a_method_change_that_drops_secrets_needs_replace(api: Any, broker: Any, sandbox: Any) -> None:
    key = sandbox.credentials.admin_api_key
    assert put(api, "k", {"url": sandbox.weaviate_url, "secrets": {"api_key": key}}).code == 200
    for route in ("PUT", "connect"):
        body = {"url": sandbox.weaviate_url, "method": "browser"}
        reply = put(api, "k", body) if route == "PUT" else api("POST", "profiles/k/connect", json_body=body)
        assert (reply.code, reply.error_code) == (409, "method_change"), (route, reply.text)
        message = reply.json()["error"]["message"]
        assert "'k'" in message and "API key" in message and '"replace": true' in message
        assert key not in reply.text
        view = api("GET", "profiles/k").json()
        assert view["method"] == "api_key" and view["kept_secrets"] == ["api_key"]  # nothing lost
    bad = put(api, "k", {"url": sandbox.weaviate_url, "method": "browser", "replace": "yes"})
    assert (bad.code, bad.error_code) == (400, "bad_request")

    replaced = put(api, "k", {"url": sandbox.weaviate_url, "method": "browser", "replace": True})
    assert replaced.code == 200 and replaced.json()["method"] == "browser", replaced.text
    assert replaced.json()["kept_secrets"] == [] and key not in broker.service.secret_values()
    # nothing kept, nothing lost: a browser profile with no sign-in yet may become an API-key one
    back = put(api, "k", {"url": sandbox.weaviate_url, "secrets": {"api_key": key}})
    assert back.code == 200 and back.json()["method"] == "api_key"


def test_a_password_login_is_not_turned_into_an_api_key_one(api: Any, sandbox: Any) -> None:
    creds = sandbox.credentials
    body = {"url": sandbox.weaviate_url, "method": "password", "username": creds.username}
    assert put(api, "pw", {**body, "secrets": {"password": creds.password}}).code == 200
    reply = api(
        "POST",
        "profiles/pw/connect",
        json_body={"url": sandbox.weaviate_url, "secrets": {"api_key": creds.admin_api_key}},
    )
    assert (reply.code, reply.error_code) == (409, "method_change")
    assert api("GET", "profiles/pw").json()["method"] == "password"
    reply = api(
        "POST",
        "profiles/pw/connect",
        json_body={"url": sandbox.weaviate_url, "secrets": {"api_key": creds.admin_api_key}, "replace": True},
    )
    assert reply.code == 200, reply.text
    assert api("GET", "profiles/pw").json()["kept_secrets"] == ["api_key"]
