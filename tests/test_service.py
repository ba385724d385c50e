"""AuthService and sessions against the real sandbox servers (HTTP on loopback)."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import closed_port, recorder, silent_server
from weaviate_auth_widget import oidc
from weaviate_auth_widget.errors import (
    ClusterUnreachable,
    InsecureURL,
    InvalidCredentials,
    LoginExpired,
    MissingSecret,
    PermissionDenied,
    PolicyRefused,
    WrongMethod,
)
from weaviate_auth_widget.policy import Policy
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import IdPUser, Sandbox
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService
from weaviate_auth_widget.session import WeaviateSession
from weaviate_auth_widget.tokens import CachingTokenSource, Token
from weaviate_auth_widget.transport import HttpSettings

QUERY = "{ Get { Article { title } } }"


@pytest.fixture(autouse=True)
def _fresh_discovery() -> None:
    oidc.discovery_cache.clear()


def make_service(tmp_path: Path, **kwargs: Any) -> AuthService:
    return AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path), **kwargs)


@pytest.fixture
def service(tmp_path: Path) -> AuthService:
    svc = make_service(tmp_path)
    yield svc
    svc.close()


def test_api_key_login_gives_identity_and_a_working_session(service: AuthService, sandbox: Sandbox) -> None:
    creds = sandbox.credentials
    service.save_profile(Profile(name="admin", url=sandbox.weaviate_url), {"api_key": creds.admin_api_key})
    identity = service.login("admin")
    assert identity.server_version == sandbox.weaviate_config.version
    assert identity.username == "admin" and identity.roles == ("admin",) and identity.is_admin
    assert identity.identity_known and identity.refreshes and identity.expires_at is None
    with service.session("admin") as session:
        assert session.meta()["version"] == sandbox.weaviate_config.version
        assert session.ready() is True
        assert session.whoami()["username"] == "admin"
        assert session.schema()["classes"]
        assert session.graphql(QUERY)["data"]["Get"]["Article"]
        assert creds.admin_api_key not in repr(session)
    assert all(r.authorization for r in sandbox.weaviate.requests if r.path != "/v1/.well-known/ready")


def test_wrong_api_key_names_host_and_fix_and_not_the_key(service: AuthService, sandbox: Sandbox) -> None:
    wrong = "wrong-key-" + "x" * 20
    service.save_profile(Profile(name="bad", url=sandbox.weaviate_url), {"api_key": wrong})
    with pytest.raises(InvalidCredentials) as err:
        service.login("bad")
    text = str(err.value)
    assert "127.0.0.1" in text and "refused the API key" in text and "Check the key" in text
    assert wrong not in text


def test_read_only_key_write_is_permission_denied_with_server_message(
    service: AuthService, sandbox: Sandbox
) -> None:
    service.save_profile(
        Profile(name="ro", url=sandbox.weaviate_url), {"api_key": sandbox.credentials.readonly_api_key}
    )
    identity = service.login("ro")
    assert identity.roles == ("viewer",) and not identity.is_admin
    with service.session("ro") as session:
        assert session.graphql(QUERY)["data"]
        with pytest.raises(PermissionDenied, match="insufficient permissions"):
            session.call("POST", "/v1/objects", json={"class": "Article", "properties": {"title": "x"}})


def test_password_login_keeps_refresh_token_not_password(
    service: AuthService, sandbox: Sandbox, tmp_path: Path
) -> None:
    creds = sandbox.credentials
    profile = Profile(name="pw", url=sandbox.weaviate_url, method="password", username=creds.username)
    service.save_profile(profile, {"password": creds.password})
    identity = service.login("pw")
    assert identity.username == creds.username and identity.roles == ("admin",)
    assert identity.expires_at is not None and identity.refreshes
    assert service.secrets.get("pw", "password") is None
    assert service.secrets.get("pw", "refresh_token")
    assert sandbox.idp_stats()["token"]["password"] == 1
    with service.session("pw") as session:
        assert session.whoami()["username"] == creds.username
    # a new process (new service, same stores) logs in silently with the refresh token
    other = make_service(tmp_path)
    assert other.login("pw").username == creds.username
    assert sandbox.idp_stats()["token"]["refresh_token"] == 1
    other.close()


def test_not_remembered_password_is_dropped_after_login(service: AuthService, sandbox: Sandbox) -> None:
    creds = sandbox.credentials
    profile = Profile(
        name="pw", url=sandbox.weaviate_url, method="password", username=creds.username, remember=False
    )
    service.save_profile(profile, {"password": creds.password})
    service.login("pw")
    assert service.secrets.get("pw", "password") is None
    assert service.secrets.get("pw", "refresh_token") is None
    assert ("pw", "password") not in service.credentials.volatile
    assert service.identity("pw").backend == "this process's memory"


def test_wrong_password_is_invalid_credentials(service: AuthService, sandbox: Sandbox) -> None:
    profile = Profile(
        name="pw", url=sandbox.weaviate_url, method="password", username=sandbox.credentials.username
    )
    service.save_profile(profile, {"password": "not-the-password"})
    with pytest.raises(InvalidCredentials, match="invalid_grant") as err:
        service.login("pw")
    assert "not-the-password" not in str(err.value)
    assert "127.0.0.1" in str(err.value)


def test_password_on_cluster_without_oidc_says_use_an_api_key(
    service: AuthService, sandbox: Sandbox, weaviate_factory: Any
) -> None:
    double = weaviate_factory(apikey_enabled=True, api_keys={"k": "u"})
    service.save_profile(
        Profile(name="pw", url=double.url, method="password", username="u"), {"password": "p"}
    )
    with pytest.raises(WrongMethod, match=r"does not accept username & password.*Use an API key"):
        service.login("pw")


def test_api_key_on_anonymous_cluster_says_so(service: AuthService, weaviate_factory: Any) -> None:
    double = weaviate_factory()  # no scheme: anonymous
    service.save_profile(Profile(name="anon", url=double.url), {"api_key": "some-key"})
    with pytest.raises(WrongMethod, match="authentication turned off"):
        service.login("anon")


def test_client_credentials_and_bearer_logins(service: AuthService, sandbox: Sandbox) -> None:
    creds = sandbox.credentials
    profile = Profile(
        name="svc", url=sandbox.weaviate_url, method="client_credentials", client_id=creds.service_client_id
    )
    service.save_profile(profile, {"client_secret": creds.service_client_secret})
    identity = service.login("svc")
    assert identity.username == "service@example.com" and identity.roles == ("viewer",)
    bearer = sandbox.idp.mint_token(username=creds.username, client_id=creds.client_id, lifetime=60)
    service.save_profile(Profile(name="tok", url=sandbox.weaviate_url, method="bearer"), {"bearer": bearer})
    identity = service.login("tok")
    assert identity.username == creds.username and not identity.refreshes
    assert identity.expires_at is not None and identity.expires_at > time.time()


def test_expired_bearer_token_is_login_expired(service: AuthService, sandbox: Sandbox) -> None:
    old = sandbox.idp.mint_token(username=sandbox.credentials.username, client_id="weaviate", lifetime=-10)
    service.save_profile(Profile(name="tok", url=sandbox.weaviate_url, method="bearer"), {"bearer": old})
    with pytest.raises(LoginExpired, match="has expired"):
        service.login("tok")


@pytest.fixture
def short_sandbox(sandbox_factory: Any) -> Sandbox:
    """A demo sandbox whose access tokens live 2 seconds and whose provider is slow."""
    demo = Sandbox.demo(token_lifetime=2, token_delay=0.2)
    return sandbox_factory(demo.idp.config, demo._first_config, credentials=demo.credentials)


def test_session_keeps_working_over_several_expiries(service: AuthService, short_sandbox: Sandbox) -> None:
    creds = short_sandbox.credentials
    profile = Profile(name="pw", url=short_sandbox.weaviate_url, method="password", username=creds.username)
    service.save_profile(profile, {"password": creds.password})
    with service.session("pw") as session:
        deadline = time.time() + 7
        while time.time() < deadline:
            assert session.graphql(QUERY)["data"]
            time.sleep(0.25)
    stats = short_sandbox.idp_stats()["token"]
    assert stats["password"] == 1
    assert 2 <= stats["refresh_token"] <= 8
    failures = [r for r in short_sandbox.weaviate.requests if r.path == "/v1/graphql" and r.status == 401]
    assert failures == []


def test_200_concurrent_callers_cause_one_provider_request(
    service: AuthService, short_sandbox: Sandbox
) -> None:
    creds = short_sandbox.credentials
    profile = Profile(name="pw", url=short_sandbox.weaviate_url, method="password", username=creds.username)
    service.save_profile(profile, {"password": creds.password})
    service.login("pw")
    time.sleep(2.1)  # the access token has expired
    short_sandbox.reset_stats()
    barrier = threading.Barrier(200)
    tokens: list[Token] = []

    def caller() -> None:
        barrier.wait()
        tokens.append(service.token("pw"))

    threads = [threading.Thread(target=caller) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(tokens) == 200 and len({t.value for t in tokens}) == 1
    assert short_sandbox.idp_stats()["token_total"] == 1


def test_failed_refresh_raises_login_expired_never_a_dead_session(
    service: AuthService, short_sandbox: Sandbox
) -> None:
    creds = short_sandbox.credentials
    profile = Profile(name="pw", url=short_sandbox.weaviate_url, method="password", username=creds.username)
    service.save_profile(profile, {"password": creds.password})
    session = service.session("pw")
    refresh = service.secrets.get("pw", "refresh_token")
    assert refresh
    httpx.post(short_sandbox.idp_url + "/revoke", data={"token": refresh, "client_id": creds.client_id})
    time.sleep(2.1)
    with pytest.raises(LoginExpired, match="Log in again"):
        session.meta()
    session.close()


def test_remembered_password_relogs_in_silently_when_no_refresh_token(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    demo = Sandbox.demo(token_lifetime=2)
    users = {
        u: IdPUser(password=x.password, email=x.email, groups=x.groups, offline_access=False)
        for u, x in demo.idp.config.users.items()
    }
    running = sandbox_factory(
        dataclasses.replace(demo.idp.config, users=users), demo._first_config, credentials=demo.credentials
    )
    creds = running.credentials
    service = make_service(tmp_path)
    profile = Profile(name="pw", url=running.weaviate_url, method="password", username=creds.username)
    service.save_profile(profile, {"password": creds.password})
    assert service.login("pw").refreshes
    assert service.secrets.get("pw", "password")  # no refresh token: the password is the least
    time.sleep(2.1)
    with service.session("pw") as session:
        assert session.meta()
    assert running.idp_stats()["token"]["password"] == 2
    # the same profile without "remember" cannot renew: a clear LoginExpired
    service.save_profile(profile.with_changes(remember=False), {"password": creds.password})
    service.login("pw")
    time.sleep(2.1)
    with pytest.raises(LoginExpired, match="cannot be renewed"):
        service.token("pw")
    service.close()


def test_401_forces_one_refresh_and_one_retry(sandbox: Sandbox) -> None:
    good = Token(sandbox.credentials.admin_api_key)
    handed: list[Token | None] = []

    def fetch(rejected: Token | None) -> Token:
        handed.append(rejected)
        return Token("stale-or-revoked") if len(handed) == 1 else good

    with WeaviateSession(sandbox.weaviate_url, CachingTokenSource(fetch)) as session:
        assert session.meta()["version"]
        assert session.meta()["version"]
    assert len(handed) == 2 and handed[1] is not None and handed[1].value == "stale-or-revoked"
    statuses = [r.status for r in sandbox.weaviate.requests if r.path == "/v1/meta"]
    assert statuses == [401, 200, 200]


def test_a_key_the_cluster_keeps_refusing_is_invalid_credentials(sandbox: Sandbox) -> None:
    source = CachingTokenSource(lambda rejected: Token("never-valid"))
    with WeaviateSession(sandbox.weaviate_url, source) as session, pytest.raises(InvalidCredentials):
        session.meta()


def test_credentials_never_go_to_another_origin() -> None:
    secret, module_key = "bearer-SECRET-1", "sk-OPENAI-SECRET"
    source = CachingTokenSource(lambda rejected: Token(secret))
    with recorder() as cluster, recorder() as elsewhere:
        cluster.redirect_to = elsewhere.url
        with WeaviateSession(cluster.url, source, headers={"X-OpenAI-Api-Key": module_key}) as session:
            session.get("/v1/meta", follow_redirects=True)
            session.get(elsewhere.url + "/absolute")
        assert cluster.seen[0]["authorization"] == f"Bearer {secret}"
        assert cluster.seen[0]["x-openai-api-key"] == module_key
        assert len(elsewhere.seen) == 2
        for headers in elsewhere.seen:
            assert "authorization" not in headers and "x-openai-api-key" not in headers
            assert secret not in str(headers) and module_key not in str(headers)


async def test_async_session_redirect_and_retry(sandbox: Sandbox) -> None:
    from weaviate_auth_widget.session import AsyncWeaviateSession

    calls = 0

    def fetch(rejected: Token | None) -> Token:
        nonlocal calls
        calls += 1
        return Token("bad") if calls == 1 else Token(sandbox.credentials.admin_api_key)

    async with AsyncWeaviateSession(sandbox.weaviate_url, CachingTokenSource(fetch)) as session:
        results = await asyncio.gather(*(session.graphql(QUERY) for _ in range(20)))
        assert all(r["data"] for r in results)
        assert (await session.whoami())["username"] == "admin"
    assert calls == 2
    with recorder() as cluster, recorder() as elsewhere:
        cluster.redirect_to = elsewhere.url
        source = CachingTokenSource(lambda rejected: Token("abc"))
        async with AsyncWeaviateSession(cluster.url, source, headers={"X-Cohere-Api-Key": "co"}) as session:
            await session.get("/v1/meta", follow_redirects=True)
        assert "authorization" not in elsewhere.seen[0] and "x-cohere-api-key" not in elsewhere.seen[0]


def test_cloud_hosts_get_the_cluster_url_header() -> None:
    source = CachingTokenSource(lambda rejected: Token("t"))
    session = WeaviateSession("abc.europe-west3.gcp.weaviate.cloud", source)
    request = session.build_request("GET", "/v1/meta")
    flow = session.auth.sync_auth_flow(request)  # type: ignore[union-attr]
    sent = next(flow)
    assert sent.headers["X-Weaviate-Cluster-URL"] == "https://abc.europe-west3.gcp.weaviate.cloud"
    assert sent.headers["Authorization"] == "Bearer t"
    session.close()


def test_dead_and_hung_hosts_fail_fast_naming_host_and_fix(tmp_path: Path) -> None:
    service = make_service(tmp_path, http=HttpSettings(connect_timeout=1, read_timeout=0.5))
    port = closed_port()
    service.save_profile(Profile(name="dead", url=f"http://127.0.0.1:{port}"), {"api_key": "k"})
    with pytest.raises(ClusterUnreachable) as err:
        service.login("dead")
    assert f"127.0.0.1:{port}" in str(err.value) and "running" in str(err.value)
    with silent_server() as url:
        service.save_profile(Profile(name="hung", url=url), {"api_key": "k"})
        started = time.monotonic()
        with pytest.raises(ClusterUnreachable, match="did not answer in time"):
            service.login("hung")
        assert time.monotonic() - started < 5
    service.close()


def test_unknown_host_is_named(tmp_path: Path) -> None:
    service = make_service(tmp_path, http=HttpSettings(connect_timeout=2))
    service.save_profile(Profile(name="typo", url="https://no-such-host.invalid"), {"api_key": "k"})
    with pytest.raises(ClusterUnreachable, match=r"no-such-host\.invalid"):
        service.login("typo")


def test_policy_refuses_before_any_network_call(tmp_path: Path, sandbox: Sandbox) -> None:
    service = make_service(tmp_path, policy=Policy(allowed_urls=("https://*.weaviate.cloud",)))
    with pytest.raises(PolicyRefused, match=r"does not allow logins to 127\.0\.0\.1"):
        service.save_profile(Profile(name="x", url=sandbox.weaviate_url), {"api_key": "k"})
    with pytest.raises(InsecureURL, match="clear text"):
        make_service(tmp_path).save_profile(
            Profile(name="x", url="http://weaviate.example.org"), {"api_key": "k"}
        )
    assert sandbox.weaviate.requests == []


def test_changing_the_url_drops_the_stored_secret(service: AuthService, sandbox: Sandbox) -> None:
    service.save_profile(
        Profile(name="p", url=sandbox.weaviate_url), {"api_key": sandbox.credentials.admin_api_key}
    )
    service.save_profile(Profile(name="p", url="https://attacker.example.org"))
    assert service.secrets.get("p", "api_key") is None
    with pytest.raises(MissingSecret):
        service.login("p")
    # a change that keeps URL and method keeps the secret
    service.save_profile(
        Profile(name="q", url=sandbox.weaviate_url), {"api_key": sandbox.credentials.admin_api_key}
    )
    service.save_profile(Profile(name="q", url=sandbox.weaviate_url, scopes=("openid",)))
    assert service.login("q").username == "admin"


def test_logout_revokes_and_forget_deletes_everything(service: AuthService, sandbox: Sandbox) -> None:
    creds = sandbox.credentials
    profile = Profile(name="pw", url=sandbox.weaviate_url, method="password", username=creds.username)
    service.save_profile(profile, {"password": creds.password})
    service.login("pw")
    service.logout("pw")
    assert sandbox.idp_stats()["revoke"] == 1
    assert service.identity("pw") is None and service.secrets.get("pw", "refresh_token") is None
    with pytest.raises(MissingSecret, match="No password is kept"):
        service.login("pw")
    service.save_profile(Profile(name="k", url=sandbox.weaviate_url), {"api_key": creds.admin_api_key})
    assert service.forget("k") is True
    assert service.secrets.get("k", "api_key") is None
    assert [p.name for p in service.list_profiles()] == ["pw"]


def _refresh_refused(sandbox: Sandbox, refresh: str) -> bool:
    answer = httpx.post(
        sandbox.idp_url + "/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "weaviate"},
    )
    return answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_a_save_that_drops_a_refresh_token_revokes_it(service: AuthService, sandbox: Sandbox) -> None:
    """A new method (with ``replace``) or URL drops the kept refresh token, and a
    re-save drops a login held only in memory: each is revoked at the provider, as a
    logout would, instead of staying valid there until it expires."""
    creds = sandbox.credentials
    profile = Profile(name="pw", url=sandbox.weaviate_url, method="password", username=creds.username)
    service.save_profile(profile, {"password": creds.password})
    service.login("pw")
    kept = service.credentials.get(service.get_profile("pw"), "refresh_token")
    assert kept
    service.save_profile(
        Profile(name="pw", url=sandbox.weaviate_url), {"api_key": creds.admin_api_key}, replace=True
    )
    assert sandbox.idp_stats()["revoke"] == 1 and _refresh_refused(sandbox, kept)
    assert service.login("pw").username == "admin"

    # remembered, same URL and method: the kept refresh token stays and keeps working
    service.save_profile(profile, {"password": creds.password}, replace=True)
    service.login("pw")
    service.save_profile(dataclasses.replace(profile, scopes=("openid", "offline_access")))
    assert sandbox.idp_stats()["revoke"] == 1
    assert service.login("pw").username == creds.username

    # not remembered: the refresh token lives only in the login state a re-save drops
    memory = dataclasses.replace(profile, name="mem", remember=False)
    service.save_profile(memory, {"password": creds.password})
    service.login("mem")
    state = service.login_states.get("mem")
    assert state is not None and state.refresh_token
    held = state.refresh_token
    service.save_profile(dataclasses.replace(memory, scopes=("openid", "offline_access")))
    assert sandbox.idp_stats()["revoke"] == 2 and _refresh_refused(sandbox, held)


def test_logout_from_another_process_revokes_the_kept_refresh_token(tmp_path: Path, sandbox: Sandbox) -> None:
    """A logout from a process that never logged in (the terminal, a new kernel) still
    revokes the remembered refresh token at the provider: it discovers the provider first."""
    creds = sandbox.credentials
    first = make_service(tmp_path)
    profile = Profile(name="pw", url=sandbox.weaviate_url, method="password", username=creds.username)
    first.save_profile(profile, {"password": creds.password})
    first.login("pw")
    first.close()
    oidc.discovery_cache.clear()  # a fresh process knows nothing of the provider
    later = make_service(tmp_path)
    kept = later.secrets.get("pw", "refresh_token", scope=later.get_profile("pw").secret_scope)
    assert kept
    later.logout("pw")
    assert sandbox.idp_stats()["revoke"] == 1
    refused = httpx.post(
        sandbox.idp_url + "/token",
        data={"grant_type": "refresh_token", "refresh_token": kept, "client_id": "weaviate"},
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    later.close()


def test_discovery_documents_are_cached(service: AuthService, sandbox: Sandbox) -> None:
    creds = sandbox.credentials
    profile = Profile(
        name="pw", url=sandbox.weaviate_url, method="password", username=creds.username, remember=False
    )
    for _ in range(3):
        service.save_profile(profile, {"password": creds.password})
        service.login("pw")
    assert sandbox.idp_stats()["discovery"] == 1
    assert sandbox.weaviate.count("/v1/.well-known/openid-configuration") == 1


def test_module_keys_travel_as_headers(service: AuthService, sandbox: Sandbox) -> None:
    profile = Profile(name="m", url=sandbox.weaviate_url, headers=("X-OpenAI-Api-Key",))
    service.save_profile(
        profile, {"api_key": sandbox.credentials.admin_api_key, "header:X-OpenAI-Api-Key": "sk-1"}
    )
    with service.session("m") as session:
        assert session.auth_headers()["X-OpenAI-Api-Key"] == "sk-1"
    with pytest.raises(Exception, match="Unknown secret"):
        service.save_profile(profile, {"header:X-Cohere-Api-Key": "c"})
    with pytest.raises(Exception, match="control characters"):
        service.save_profile(profile, {"api_key": "abc\r\nX-Evil: 1"})


def _kept(service: AuthService, kind: str) -> str | None:
    """What the store holds (the file store on disk, read afresh) for profile ``p``."""
    fresh = SecretStore("file", directory=service._directory)
    return fresh.get("p", kind, scope=service.get_profile("p").secret_scope)


@pytest.mark.parametrize("method", ["api_key", "password"])
def test_a_failed_connect_stores_no_secret_and_keeps_the_profile(
    tmp_path: Path, sandbox: Sandbox, method: str
) -> None:
    """``connect`` tries the secret in memory and stores it only once the login worked."""
    service = make_service(tmp_path)
    assert service._directory == tmp_path
    creds = sandbox.credentials
    wrong = "wrong-" + secrets.token_urlsafe(24)
    if method == "api_key":
        profile, kind, good = Profile(name="p", url=sandbox.weaviate_url), "api_key", creds.admin_api_key
    else:
        profile = Profile(name="p", url=sandbox.weaviate_url, method="password", username=creds.username)
        kind, good = "password", creds.password
    with pytest.raises(InvalidCredentials):
        service.connect(profile, {kind: wrong})
    assert service.get_profile("p").url == profile.url  # the non-secret fields stay, for a retry
    assert service.describe("p")["has_secret"] is False
    assert _kept(service, kind) is None
    # a later failure keeps what a working login stored, and does not store the new try
    assert service.connect(profile, {kind: good}).username
    again = "wrong-" + secrets.token_urlsafe(24)
    with pytest.raises(InvalidCredentials):
        service.connect(profile, {kind: again})
    assert _kept(service, kind) != again
    if method == "api_key":  # (a password is traded for a refresh token: not kept at all)
        assert _kept(service, kind) == good
    service.close()
