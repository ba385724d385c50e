"""Administrator policy: traits, environment overrides, store settings, admin profiles."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import password_profile
from weaviate_auth_widget.broker.admin import resolve_admin_profiles
from weaviate_auth_widget.policy import Policy

from .conftest import secret_values


@pytest.mark.parametrize("broker_config", [{"allowed_urls": ["https://*.weaviate.cloud"]}])
def test_refused_url(api: Any, sandbox: Any) -> None:
    body = {"url": sandbox.weaviate_url, "secrets": {"api_key": sandbox.credentials.admin_api_key}}
    refused = api("PUT", "profiles/p", json_body=body)
    assert (refused.code, refused.error_code) == (403, "policy_refused")
    assert sandbox.credentials.admin_api_key not in refused.text
    assert api("GET", "profiles").json() == {"profiles": []}
    allowed = api("PUT", "profiles/c", json_body={"url": "https://abc.weaviate.cloud"})
    assert allowed.code == 200, allowed.text
    assert api("GET", "status").json()["policy"]["allowed_urls"] == ["https://*.weaviate.cloud"]


def test_token_route_checks_the_policy_as_it_is_now(api: Any, broker_app: Any, sandbox: Any) -> None:
    """Profiles saved before the administrator narrowed allowed_urls: no credential is
    used or returned any more, through any route (issue 8, item 1)."""
    creds = sandbox.credentials
    key_profile = {
        "url": sandbox.weaviate_url,
        "secrets": {"api_key": creds.admin_api_key, "header:X-OpenAI-Api-Key": "sk-module-key-1234"},
        "headers": ["X-OpenAI-Api-Key"],
    }
    assert api("PUT", "profiles/key", json_body=key_profile).code == 200
    assert api("PUT", "profiles/pw", json_body=password_profile(sandbox)).code == 200
    assert api("POST", "profiles/key/token", auth="kernel").json()["token"] == creds.admin_api_key
    assert api("POST", "profiles/pw/login").code == 200  # a token is cached for pw now
    sandbox.reset_stats()

    broker_app.allowed_urls = ["https://*.weaviate.cloud"]  # reconfigured
    replies = [
        api("POST", f"profiles/{name}/{route}", auth=auth)
        for name in ("key", "pw")
        for route, auth in (("token", "kernel"), ("token", "jupyter"), ("login", "jupyter"))
    ]
    for reply in replies:
        assert (reply.code, reply.error_code) == (403, "policy_refused"), reply.text
        for value in [*secret_values(sandbox), "sk-module-key-1234"]:
            assert value not in reply.text
    assert api("POST", "profiles/pw/logout").code == 204
    assert sandbox.idp_stats()["token_total"] == 0 and sandbox.idp_stats()["revoke"] == 0
    assert sandbox.weaviate.requests == []

    broker_app.allowed_urls = []  # widened again: the saved credentials work again
    assert api("POST", "profiles/key/token", auth="kernel").json()["token"] == creds.admin_api_key


@pytest.mark.parametrize("url", ["https://xn--evil.weaviate.cloud", "https://a..weaviate.cloud"])
def test_invalid_host_names_are_a_clear_400(api: Any, url: str) -> None:
    reply = api("PUT", "profiles/p", json_body={"url": url, "secrets": {"api_key": "key-1234"}})
    assert (reply.code, reply.error_code) == (400, "invalid_profile"), reply.text
    assert "host name" in reply.json()["error"]["message"]
    assert api("GET", "profiles").json() == {"profiles": []}


@pytest.mark.parametrize(
    "broker_environ", [{"WEAVIATE_AUTH_ALLOWED_ISSUERS": "https://login.example.com/realms/*, "}]
)
def test_allowed_issuers_from_the_environment(api: Any, sandbox: Any) -> None:
    assert api("GET", "status").json()["policy"]["allowed_issuers"] == ["https://login.example.com/realms/*"]
    assert api("PUT", "profiles/pw", json_body=password_profile(sandbox)).code == 200
    refused = api("POST", "profiles/pw/token", auth="kernel")
    assert (refused.code, refused.error_code) == (403, "policy_refused"), refused.text
    assert "identity provider" in refused.json()["error"]["message"]
    assert sandbox.idp_stats()["token_total"] == 0


def test_insecure_url_refused_except_loopback(api: Any, sandbox: Any) -> None:
    insecure = api("PUT", "profiles/p", json_body={"url": "http://weaviate.example.com:8080"})
    assert (insecure.code, insecure.error_code) == (403, "insecure_url")
    assert api("PUT", "profiles/p", json_body={"url": sandbox.weaviate_url}).code == 200  # http://127.0.0.1


@pytest.mark.parametrize("broker_config", [{"require_https": False}])
def test_require_https_off(api: Any) -> None:
    assert api("PUT", "profiles/p", json_body={"url": "http://weaviate.internal:8080"}).code == 200


@pytest.mark.parametrize("broker_config", [{"allow_remember": False}])
def test_remember_refused(api: Any, sandbox: Any, store_dir: Path) -> None:
    key = sandbox.credentials.admin_api_key
    body: dict[str, Any] = {"url": sandbox.weaviate_url, "secrets": {"api_key": key}}
    refused = api("PUT", "profiles/p", json_body=body)
    assert (refused.code, refused.error_code) == (403, "policy_refused")
    body["remember"] = False
    kept = api("PUT", "profiles/p", json_body=body)
    assert kept.code == 200 and kept.json()["has_secret"] is True
    assert api("POST", "profiles/p/token").json()["token"] == key
    for file in store_dir.iterdir():
        assert key not in file.read_text(), file  # in the server's memory only


ENV = {
    "WEAVIATE_AUTH_ALLOWED_URLS": "https://a.example.com, https://*.b.example.com,",
    "WEAVIATE_AUTH_ALLOWED_ISSUERS": "https://login.example.com",
    "WEAVIATE_AUTH_DEFAULT_URL": "https://a.example.com/",
    "WEAVIATE_AUTH_REQUIRE_HTTPS": "false",
    "WEAVIATE_AUTH_ALLOW_REMEMBER": "no",
    "WEAVIATE_AUTH_STORE_BACKEND": "file",
    "WEAVIATE_AUTH_CA_BUNDLE": "/etc/ssl/custom.pem",
    "WEAVIATE_AUTH_HUB_SERVICE_URL": "http://127.0.0.1:1/services/weaviate-auth/",
    "WEAVIATE_AUTH_HUB_LOGIN_URLS": "https://a.example.com",
}


class TestEnvironment:
    @pytest.fixture
    def env_dirs(self, tmp_path: Path) -> dict[str, str]:
        return {
            "WEAVIATE_AUTH_DIR": str(tmp_path / "env-store"),
            "WEAVIATE_AUTH_AUDIT_LOG": str(tmp_path / "logs" / "audit.jsonl"),
        }

    @pytest.fixture
    def broker_environ(self, env_dirs: dict[str, str]) -> dict[str, str]:
        return {**ENV, **env_dirs}

    @pytest.mark.parametrize("broker_config", [{"store_backend": None, "store_dir": None}])
    def test_environment_overrides(
        self, api: Any, broker: Any, broker_app: Any, env_dirs: dict[str, str]
    ) -> None:
        policy = api("GET", "status").json()["policy"]
        assert policy == {
            "default_url": "https://a.example.com",
            "allowed_urls": ["https://a.example.com", "https://*.b.example.com"],
            "allowed_issuers": ["https://login.example.com"],
            "require_https": False,
            "allow_remember": False,
            "ca_bundle": "/etc/ssl/custom.pem",
            "hub_login": True,
            "hub_login_urls": ["https://a.example.com"],
        }
        assert broker.service.policy.hub_service_url == "http://127.0.0.1:1/services/weaviate-auth/"
        assert broker.service.policy.ca_bundle == "/etc/ssl/custom.pem"
        assert broker.service.http.ca_bundle == "/etc/ssl/custom.pem"
        assert broker_app.store_backend == "file"
        assert str(broker.audit.path) == env_dirs["WEAVIATE_AUTH_AUDIT_LOG"]
        saved = api("PUT", "profiles/p", json_body={"url": "https://x.b.example.com", "remember": False})
        assert saved.code == 200, saved.text
        assert (Path(env_dirs["WEAVIATE_AUTH_DIR"]) / "profiles.json").exists()

    @pytest.mark.parametrize(
        "broker_config",
        [{"allowed_urls": ["https://config.example.com"], "require_https": True, "store_dir": None}],
    )
    def test_config_file_beats_environment(self, api: Any) -> None:
        policy = api("GET", "status").json()["policy"]
        assert policy["allowed_urls"] == ["https://config.example.com"]
        assert policy["require_https"] is True
        assert policy["allow_remember"] is False  # not configured: the environment's


@pytest.mark.parametrize(
    "broker_environ",
    [{"WEAVIATE_AUTH_REQUIRE_HTTPS": "maybe", "WEAVIATE_AUTH_ALLOW_REMEMBER": "perhaps"}],
)
def test_unreadable_booleans_fall_back_to_the_safe_side(api: Any) -> None:
    policy = api("GET", "status").json()["policy"]
    assert policy["require_https"] is True
    assert policy["allow_remember"] is False


STORE_KEY = "correct horse battery staple 0123456789"


@pytest.mark.parametrize(
    ("broker_config", "broker_environ"),
    [({"store_backend": "encrypted-file"}, {"WEAVIATE_AUTH_STORE_KEY": STORE_KEY})],
)
def test_store_key_from_environment_is_removed(api: Any, sandbox: Any, store_dir: Path) -> None:
    assert "WEAVIATE_AUTH_STORE_KEY" not in os.environ
    assert api("GET", "status").json()["store"] == "encrypted file"
    key = sandbox.credentials.admin_api_key
    assert (
        api("PUT", "profiles/p", json_body={"url": sandbox.weaviate_url, "secrets": {"api_key": key}}).code
        == 200
    )
    assert api("POST", "profiles/p/token").json()["token"] == key
    for file in store_dir.iterdir():
        if file.is_file():
            assert key not in file.read_text(errors="replace")


class TestStoreKeyFile:
    @pytest.fixture
    def key_file(self, tmp_path: Path) -> Path:
        path = tmp_path / "store.key"
        path.write_text(STORE_KEY + "\n")
        path.chmod(0o600)
        return path

    @pytest.fixture
    def broker_config(self, key_file: Path) -> dict[str, Any]:
        return {"store_backend": "encrypted-file", "store_key_file": str(key_file)}

    def test_store_key_file(self, api: Any, broker: Any) -> None:
        assert broker.service.secrets.backend_name == "encrypted file"
        assert api("GET", "status").json()["store"] == "encrypted file"


# -- administrator profiles ------------------------------------------------------------------
def _admin_entries(sandbox: Any, secret_file: Path) -> list[dict[str, Any]]:
    return [
        {"name": "team", "url": sandbox.weaviate_url, "method": "api_key", "secret_env": "TEAM_WEAVIATE_KEY"},
        {
            "name": "readers",
            "url": sandbox.weaviate_url,
            "secret_kind": "api_key",
            "secret_file": str(secret_file),
        },
        {"name": "broken", "url": sandbox.weaviate_url, "secret_env": "NOT_SET_ANYWHERE"},
        {"name": "elsewhere", "url": "http://insecure.example.com", "secret_env": "TEAM_WEAVIATE_KEY"},
    ]


@pytest.fixture
def admin_setup(tmp_path: Path, sandbox: Any, request: pytest.FixtureRequest) -> dict[str, Any]:
    secret_file = tmp_path / "readers.key"
    secret_file.write_text(sandbox.credentials.readonly_api_key + "\n")
    entries = _admin_entries(sandbox, secret_file)
    listing = tmp_path / "admin-profiles.json"
    listing.write_text(json.dumps(entries))
    return {"entries": entries, "file": listing}


ADMIN_WAYS = ["config", "env"]


@pytest.fixture(params=ADMIN_WAYS)
def admin_way(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def admin_env(admin_way: str, admin_setup: dict[str, Any], sandbox: Any) -> dict[str, str]:
    env = {"TEAM_WEAVIATE_KEY": sandbox.credentials.admin_api_key}
    if admin_way == "env":
        env["WEAVIATE_AUTH_ADMIN_PROFILES"] = str(admin_setup["file"])
    return env


@pytest.mark.usefixtures("admin_way")
class TestAdminProfiles:
    @pytest.fixture
    def broker_environ(self, admin_env: dict[str, str]) -> dict[str, str]:
        return admin_env

    @pytest.fixture
    def broker_config(self, admin_way: str, admin_setup: dict[str, Any]) -> dict[str, Any]:
        return {"admin_profiles": admin_setup["entries"]} if admin_way == "config" else {}

    def test_usable_not_readable_not_changeable(self, api: Any, broker: Any, sandbox: Any) -> None:
        creds = sandbox.credentials
        assert "TEAM_WEAVIATE_KEY" not in os.environ  # kernels will not inherit it
        listed = api("GET", "profiles")
        views = {p["name"]: p for p in listed.json()["profiles"]}
        assert set(views) == {"team", "readers"}  # the broken entries were skipped
        assert all(v["read_only"] and v["has_secret"] for v in views.values())
        for reply in (listed, api("GET", "profiles/team"), api("GET", "profiles/readers")):
            assert reply.code == 200
            for value in secret_values(sandbox):
                assert value not in reply.text

        assert api("POST", "profiles/team/token", auth="kernel").json()["token"] == creds.admin_api_key
        login = api("POST", "profiles/readers/login")
        assert login.code == 200 and login.json()["username"] == creds.readonly_user
        assert login.json()["backend"] == "provided by your administrator"

        for reply in (
            api("PUT", "profiles/team", json_body={"url": sandbox.weaviate_url}),
            api(
                "PUT",
                "profiles/team",
                json_body={"url": sandbox.weaviate_url, "secrets": {"api_key": "mine-1234"}},
            ),
            api("DELETE", "profiles/team"),
        ):
            assert (reply.code, reply.error_code) == (403, "policy_refused"), reply.text
        assert api("POST", "profiles/team/logout").code == 204
        refused = api("POST", "profiles/team/token")  # logged out: no silent login again
        assert (refused.code, refused.error_code) == (409, "login_expired"), refused.text
        assert api("POST", "profiles/team/login").code == 200
        assert api("POST", "profiles/team/token").json()["token"] == creds.admin_api_key


def test_resolve_admin_profiles_unit(tmp_path: Path) -> None:
    env = {"K1": "secret-one-value", "K2": "secret-two-value", "OTHER": "x"}
    entries = [
        {"name": "a", "url": "https://a.example.com", "secret_env": "K1"},
        {
            "name": "b",
            "url": "https://b.example.com",
            "secret_env": "K2",
            "secret_file": "/nope",
        },  # both: skipped
        {
            "name": "c",
            "url": "https://c.example.com",
            "method": "password",
            "secret_env": "K1",
        },  # no username
        {"name": "a", "url": "https://a2.example.com", "secret_env": "K1"},  # duplicate name
        {"name": "d", "url": "https://d.example.com", "secret_file": str(tmp_path / "missing")},
        {"name": "e", "url": "https://e.example.com", "secret_kind": "password", "secret_env": "K1"},
    ]
    resolved = resolve_admin_profiles(entries, Policy(), environ=env)
    assert [(p.name, p.read_only, s) for p, s in resolved.items()] == [
        ("a", True, {"api_key": "secret-one-value"})
    ]
    assert env == {"OTHER": "x"}  # every variable named was removed, used or not


@pytest.mark.parametrize("broker_config", [{"token_recheck_seconds": 0.5}])
def test_a_narrowed_policy_stops_sessions_made_before_within_the_bound(
    api: Any, broker_app: Any, sandbox: Any, jp_asyncio_loop: Any
) -> None:
    """A kernel's session holds an API key (no expiry) the broker granted; the
    administrator narrows allowed_urls: within ``token_recheck_seconds`` the session's
    next request raises policy_refused, and the key reaches the cluster no more. The
    kernel side is the real BrokerClient, on a thread while the server's loop serves it."""
    from weaviate_auth_widget.errors import PolicyRefused
    from weaviate_auth_widget.kernel import BrokerClient
    from weaviate_auth_widget.sandbox.weaviate import fingerprint

    def in_thread(fn: Any, *args: Any) -> Any:
        return jp_asyncio_loop.run_until_complete(asyncio.to_thread(fn, *args))

    key = sandbox.credentials.admin_api_key
    assert (
        api("PUT", "profiles/key", json_body={"url": sandbox.weaviate_url, "secrets": {"api_key": key}}).code
        == 200
    )
    client = in_thread(BrokerClient)
    session = in_thread(client.session, "key")
    assert in_thread(session.meta)["version"] == sandbox.weaviate_config.version
    assert sandbox.weaviate.requests[-1].token == fingerprint(key)

    broker_app.allowed_urls = ["https://*.weaviate.cloud"]  # reconfigured
    narrowed = time.monotonic()
    assert session.token_source.current() is not None  # within the bound: the cached key
    in_thread(time.sleep, 0.6)
    # past it, not even the non-blocking peek (the async client's gRPC headers) gives the key
    assert session.token_source.current() is None
    with pytest.raises(PolicyRefused) as refused:
        in_thread(session.meta)
    host = sandbox.weaviate_url.split("//", 1)[1]
    assert f"Your administrator does not allow logins to {host}" in str(refused.value)
    with pytest.raises(PolicyRefused):
        in_thread(session.meta)
    assert not [r for r in sandbox.weaviate.requests if r.started > narrowed]
    session.close()
    client.close()


def test_the_recheck_bound_is_a_finite_number_of_seconds(broker_app: Any) -> None:
    """``inf`` would read as "never ask again" and cannot be sent as JSON to kernels."""
    from traitlets import TraitError

    for bad in (float("inf"), 3601.0, -1.0):
        with pytest.raises(TraitError):
            broker_app.token_recheck_seconds = bad
    broker_app.token_recheck_seconds = 5.0
    assert broker_app.token_recheck_seconds == 5.0
