"""The official weaviate-client v4 handed our login: default connect path, REST and gRPC.

Every test but one uses the client's default init checks (OIDC discovery rules, /v1/meta,
the gRPC health check) against the sandbox's real gRPC server.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests import mixed_load
from tests.cloud_stand_in import cloud_stand_in
from tests.helpers import byte_sink, closed_port
from tests.test_sandbox import user_token
from weaviate_auth_widget.client import PLACEHOLDER, grpc_target
from weaviate_auth_widget.errors import InvalidCredentials, InvalidProfile, LoginExpired
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import Sandbox, sandbox_process
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService
from weaviate_auth_widget.session import AsyncWeaviateSession, WeaviateSession
from weaviate_auth_widget.tokens import CachingTokenSource, Token

weaviate = pytest.importorskip(
    "weaviate", reason="the official client is the 'client' extra, installed by make test"
)

METHODS = {"cloud": ["api_key", "password", "client_credentials", "bearer"], "apikey": ["api_key"]}
METHODS["oidc"] = ["password", "client_credentials", "bearer"]
CASES = [(shape, method) for shape, methods in METHODS.items() for method in methods]


def _service(tmp_path: Path) -> AuthService:
    return AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path))


def _fp(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _save(service: AuthService, running: Sandbox, method: str, name: str = "p") -> dict[str, str]:
    """Save a profile for ``method``; returns its secrets (for leak checks)."""
    creds = running.credentials
    assert creds is not None
    url = running.weaviate_url
    if method == "api_key":
        profile, secrets = Profile(name=name, url=url), {"api_key": creds.admin_api_key}
    elif method == "password":
        profile = Profile(name=name, url=url, method="password", username=creds.username)
        secrets = {"password": creds.password}
    elif method == "client_credentials":
        profile = Profile(name=name, url=url, method="client_credentials", client_id=creds.service_client_id)
        secrets = {"client_secret": creds.service_client_secret}
    else:
        profile, secrets = Profile(name=name, url=url, method="bearer"), {"bearer": user_token(running)}
    service.save_profile(profile, secrets)
    return secrets


def _held_by(client: Any) -> str:
    """Everything the official client's connection keeps, as text (for secret scans)."""
    conn = client._connection
    return repr(vars(conn)) + repr(conn._headers) + repr(conn.additional_headers) + repr(vars(conn._client))


@pytest.mark.parametrize(("shape", "method"), CASES)
def test_default_connect_on_every_shape_and_method(tmp_path: Path, shape: str, method: str) -> None:
    with Sandbox.demo(shape=shape) as running:
        service = _service(tmp_path)
        secrets = _save(service, running, method)
        grpc_port = running.weaviate.grpc_port
        with service.session("p") as session:
            with session.weaviate_client(grpc_port=grpc_port) as client:
                articles = client.collections.get("Article")
                titles = [o.properties["title"] for o in articles.query.fetch_objects().objects]
                assert titles == ["Hello, Weaviate", "Tokens expire"]
                assert client.get_meta()["version"] == running.weaviate_config.version
                held = _held_by(client)
            for secret in secrets.values():
                assert secret not in held
            refresh = service.login_states.state("p").refresh_token
            assert refresh is None or refresh not in held

            async def run_async() -> list[str]:
                async with await session.weaviate_async_client(grpc_port=grpc_port) as aclient:
                    reply = await aclient.collections.get("Article").query.bm25("tokens")
                    return [str(o.properties["title"]) for o in reply.objects]

            assert asyncio.run(run_async()) == ["Tokens expire"]
            token = session.token_source.token().value
        calls = running.weaviate.grpc_calls
        assert [c.method for c in calls] == ["Health/Check", "Search", "Health/Check", "Search"]
        assert calls[0].token is None
        assert {c.token for c in calls if c.method == "Search"} == {_fp(token)}
        rest = [r for r in running.weaviate.requests if "x-weaviate-client" in r.headers]
        assert {r.path for r in rest} == {"/v1/meta"}
        assert {r.token for r in rest} == {_fp(token)}
        sent = {r.token for r in running.weaviate.requests} | {c.token for c in calls}
        assert _fp(PLACEHOLDER.removeprefix("Bearer ")) not in sent  # always replaced in time
        service.close()


def test_async_session_hands_out_an_async_client(tmp_path: Path, sandbox: Sandbox) -> None:
    service = _service(tmp_path)
    _save(service, sandbox, "password")

    async def run() -> int:
        async with service.async_session("p") as session:
            client = await session.weaviate_client(grpc_port=sandbox.weaviate.grpc_port)
            try:
                assert isinstance(client, weaviate.WeaviateAsyncClient)
                result = await client.collections.get("Article").data.insert_many([{"title": "async"}])
                assert not result.has_errors
                return len((await client.collections.get("Article").query.fetch_objects()).objects)
            finally:
                await client.close()

    try:
        assert asyncio.run(run()) == 3
        assert [c.method for c in sandbox.weaviate.grpc_calls][-2:] == ["BatchObjects", "Search"]
    finally:
        sandbox.weaviate.objects[:] = sandbox.weaviate.objects[:2]
        service.close()


def test_viewer_write_over_grpc_is_a_permission_error(tmp_path: Path, sandbox: Sandbox) -> None:
    service = _service(tmp_path)
    service.save_profile(
        Profile(name="r", url=sandbox.weaviate_url), {"api_key": sandbox.credentials.readonly_api_key}
    )
    denied = pytest.raises(weaviate.exceptions.InsufficientPermissionsError, match="rbac: authorization")
    with (
        service.session("r") as session,
        session.weaviate_client(grpc_port=sandbox.weaviate.grpc_port) as client,
        denied,
    ):
        client.collections.get("Article").data.insert_many([{"title": "nope"}])
    assert sandbox.weaviate.grpc_calls[-1].code == "PERMISSION_DENIED"
    service.close()


def test_a_login_revoked_mid_query_raises_login_expired(tmp_path: Path) -> None:
    with Sandbox.demo(token_lifetime=3) as running:
        service = _service(tmp_path)
        _save(service, running, "password")
        with (
            service.session("p") as session,
            session.weaviate_client(grpc_port=running.weaviate.grpc_port) as client,
        ):
            articles = client.collections.get("Article")
            assert len(articles.query.fetch_objects().objects) == 2
            running.idp.revoke_all()
            time.sleep(3)  # the access token runs out; its refresh token no longer works
            with pytest.raises(LoginExpired) as grpc_err:
                articles.query.fetch_objects()
            with pytest.raises(LoginExpired):
                client.collections.list_all()
        assert "Log in again" in str(grpc_err.value)
        assert running.weaviate.grpc_calls[-1].code == "OK"  # nothing went out with a dead token
        service.close()


def test_an_api_key_revoked_mid_query_raises_invalid_credentials(tmp_path: Path) -> None:
    with Sandbox.demo(shape="apikey") as running:
        service = _service(tmp_path)
        _save(service, running, "api_key")
        with (
            service.session("p") as session,
            session.weaviate_client(grpc_port=running.weaviate.grpc_port) as client,
        ):
            articles = client.collections.get("Article")
            assert len(articles.query.fetch_objects().objects) == 2
            running.weaviate.config.api_keys.pop(running.credentials.admin_api_key)
            with pytest.raises(InvalidCredentials, match="refused the API key") as grpc_err:
                articles.query.fetch_objects()
            with pytest.raises(InvalidCredentials, match="refused the API key"):
                client.collections.list_all()
        assert running.credentials.admin_api_key not in str(grpc_err.value)
        codes = [c.code for c in running.weaviate.grpc_calls if c.method == "Search"]
        assert codes == ["OK", "UNKNOWN", "UNKNOWN"]  # one retry with a fresh token, then the error
        service.close()


def test_skip_init_checks_is_passed_through(tmp_path: Path, sandbox: Sandbox) -> None:
    """The one test of ``skip_init_checks=True``: a cluster whose gRPC port is closed."""
    service = _service(tmp_path)
    _save(service, sandbox, "api_key")
    dead = closed_port()
    with service.session("p") as session:
        with pytest.raises(weaviate.exceptions.WeaviateGRPCUnavailableError):
            session.weaviate_client(grpc_port=dead)
        with session.weaviate_client(grpc_port=dead, skip_init_checks=True) as client:
            assert client.get_meta()["version"] == sandbox.weaviate_config.version
    service.close()


def test_grpc_to_a_loopback_cluster_never_goes_through_a_proxy(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weaviate.config import AdditionalConfig, Timeout

    service = _service(tmp_path)
    service.save_profile(
        Profile(name="k", url=sandbox.weaviate_url), {"api_key": sandbox.credentials.admin_api_key}
    )
    with byte_sink() as (proxy, received):
        for name in ("grpc_proxy", "https_proxy", "http_proxy", "HTTPS_PROXY", "HTTP_PROXY"):
            monkeypatch.setenv(name, proxy)
        for name in ("no_grpc_proxy", "no_proxy", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        with service.session("k") as session:
            quick = AdditionalConfig(timeout=Timeout(insert=2))  # the caller's config is kept, merged
            # default init checks: the gRPC health check goes out too, then a gRPC query
            client = session.weaviate_client(grpc_port=sandbox.weaviate.grpc_port, additional_config=quick)
            try:
                assert client._connection.timeout_config.insert == 2
                assert client.collections.get("Article").query.fetch_objects(limit=1).objects
            finally:
                client.close()
    # the client's own best-effort version lookup (pypi.org) may use the proxy; nothing for
    # the cluster does, and no credential reaches it
    key = sandbox.credentials.admin_api_key.encode()
    assert not [r for r in received if b"127.0.0.1" in r or b"localhost" in r or key in r]
    assert all(r.startswith(b"CONNECT pypi.org:443 ") for r in received)
    service.close()


def test_a_cluster_behind_a_path_is_refused_clearly() -> None:
    source = CachingTokenSource(lambda rejected: Token("k"))
    refused = pytest.raises(InvalidProfile, match=r"under a path \(127\.0\.0\.1:9/weaviate\)")
    with WeaviateSession("http://127.0.0.1:9/weaviate", source) as session, refused:
        session.weaviate_client()


def test_grpc_targets_follow_cloud_naming() -> None:
    assert grpc_target("https://abc.europe-west3.gcp.weaviate.cloud") == (
        "grpc-abc.europe-west3.gcp.weaviate.cloud",
        443,
        True,
    )
    assert grpc_target("https://abc.weaviate.network") == ("abc.grpc.weaviate.network", 443, True)
    assert grpc_target("http://localhost:8080") == ("localhost", 50051, False)


def test_a_weaviate_cloud_cluster_is_reached_at_its_rest_and_grpc_hosts_over_tls(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What goes over the wire for a ``*.weaviate.cloud`` profile: REST to the host on 443
    and gRPC to ``grpc-<host>`` on 443, both TLS (spec section 2), with the default init
    checks. "The cloud" is a TLS-inspecting proxy in front of the sandbox (a corporate
    proxy setup: ``HTTPS_PROXY``, ``SSL_CERT_FILE``, gRPC's roots file, ``trust_env``)."""
    from weaviate.config import AdditionalConfig

    from weaviate_auth_widget.transport import _ssl_context

    host = "abc.europe-west3.gcp.weaviate.cloud"
    routes = {host: int(sandbox.weaviate_url.rsplit(":", 1)[1]), f"grpc-{host}": sandbox.weaviate.grpc_port}
    service = _service(tmp_path)
    with cloud_stand_in(tmp_path, routes) as cloud:
        for name in ("https_proxy", "HTTPS_PROXY", "grpc_proxy"):
            monkeypatch.setenv(name, cloud.url)
        for name in ("no_grpc_proxy", "no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY", "SSL_CERT_DIR"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("SSL_CERT_FILE", str(cloud.ca_file))
        # gRPC reads its roots once, at the process's first TLS channel (no other test opens one)
        monkeypatch.setenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", str(cloud.ca_file))
        _ssl_context.cache_clear()
        try:
            service.save_profile(
                Profile(name="wcd", url=f"https://{host}"), {"api_key": sandbox.credentials.admin_api_key}
            )
            with (
                service.session("wcd") as session,
                session.weaviate_client(additional_config=AdditionalConfig(trust_env=True)) as client,
            ):
                assert client.get_meta()["version"] == sandbox.weaviate_config.version
                assert client.collections.get("Article").query.fetch_objects(limit=1).objects
        finally:
            _ssl_context.cache_clear()
            service.close()
    tunnels = {(t.target, t.sni, t.alpn) for t in cloud.tunnels}
    assert tunnels == {(f"{host}:443", host, "http/1.1"), (f"grpc-{host}:443", f"grpc-{host}", "h2")}
    rest = [t.first_bytes for t in cloud.tunnels if t.alpn == "http/1.1"]
    assert all(f"\r\nHost: {host}\r\n".encode() in first for first in rest), rest
    assert all(t.first_bytes.startswith(b"PRI * HTTP/2.0") for t in cloud.tunnels if t.alpn == "h2")
    assert [c.method for c in sandbox.weaviate.grpc_calls][-2:] == ["Health/Check", "Search"]
    assert all(target.startswith("pypi.org:") for target in cloud.refused), cloud.refused


PREAMBLE = """
import asyncio, gc, sys, tempfile
from pathlib import Path
from weaviate_auth_widget import AuthService, Profile
from weaviate_auth_widget.secrets import SecretStore

url, grpc_port, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tmp = Path(tempfile.mkdtemp())
service = AuthService(directory=tmp, secrets=SecretStore("file", directory=tmp))
service.save_profile(Profile(name="prod", url=url), {"api_key": key})
"""
SCRIPTS = {
    "sync": """
client = service.session("prod").weaviate_client(grpc_port=grpc_port)
print(len(client.collections.get("Article").query.fetch_objects().objects))
client = None  # dropped, never closed (a notebook re-running the cell does this)
""",
    "async": """
async def main():
    session = service.async_session("prod")
    client = await session.weaviate_client(grpc_port=grpc_port)
    print(len((await client.collections.get("Article").query.fetch_objects()).objects))
    # both dropped here, never closed

asyncio.run(main())
""",
}


@pytest.mark.parametrize("kind", sorted(SCRIPTS))
def test_nothing_left_open_without_with_or_close(kind: str) -> None:
    script = PREAMBLE + SCRIPTS[kind] + 'gc.collect()\nprint("collected", flush=True)\n'
    with sandbox_process("--shape", "cloud") as info:
        proc = subprocess.run(
            [
                sys.executable,
                "-W",
                "error::ResourceWarning",
                "-X",
                "dev",
                "-c",
                script,
                info["weaviate_url"],
                str(info["grpc_port"]),
                info["credentials"]["admin_api_key"],
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["2", "collected"]
    assert "ResourceWarning" not in proc.stderr
    assert "unclosed" not in proc.stderr


def test_three_second_tokens_under_mixed_load_refresh_once_each(tmp_path: Path) -> None:
    """15 s of gRPC and REST from a sync and an async client and the session, 3 s tokens:
    no failure, one password grant, refreshes only, one refresh per expiry (single-flight)."""
    seconds, lifetime = 15.0, 3
    with Sandbox.demo(token_lifetime=lifetime) as running:
        service = _service(tmp_path)
        _save(service, running, "password")
        with service.session("p") as session:
            result = mixed_load.run(session, running.weaviate.grpc_port, seconds)
        assert result["errors"] == []
        assert result["calls"] > 100
        grants = running.idp_stats()["token"]
        assert grants["password"] == 1
        # we count a token's life as 1 s shorter than it says (JWT times are whole seconds)
        # and renew it when a fifth of that is left: about every 1.6 s
        usable = lifetime - 1
        assert seconds / lifetime <= grants["refresh_token"] <= seconds / (usable * 0.8) + 2
        seen = {c.token for c in running.weaviate.grpc_calls if c.method == "Search"}
        seen |= {r.token for r in running.weaviate.requests if r.token}
        assert len(seen) <= grants["refresh_token"] + 1
        assert {c.code for c in running.weaviate.grpc_calls} == {"OK"}
        assert {r.status for r in running.weaviate.requests} == {200}
        service.close()


def test_the_async_client_renews_tokens_off_its_event_loop(tmp_path: Path) -> None:
    """Token renewals (network calls) never run on the async client's loop thread."""
    with Sandbox.demo(token_lifetime=3) as running:
        service = _service(tmp_path)
        _save(service, running, "password")
        identity = service.login("p")
        fetched_on: list[str] = []

        def fetch(rejected: Token | None) -> Token:
            fetched_on.append(threading.current_thread().name)
            return service.token("p", rejected=rejected)

        source = CachingTokenSource(fetch)

        async def run() -> int:
            async with AsyncWeaviateSession(running.weaviate_url, source, identity=identity) as session:
                client = await session.weaviate_client(grpc_port=running.weaviate.grpc_port)
                try:
                    articles = client.collections.get("Article")
                    deadline, calls = time.monotonic() + 7, 0
                    while time.monotonic() < deadline:  # over two expiries
                        assert len((await articles.query.fetch_objects()).objects) == 2
                        calls += 1
                        await asyncio.sleep(0.05)
                    return calls
                finally:
                    await client.close()

        assert asyncio.run(run()) > 20
        assert len(fetched_on) >= 3
        assert threading.main_thread().name not in fetched_on
        service.close()
