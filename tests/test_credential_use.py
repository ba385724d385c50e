"""Where credentials may go, checked on every use (issue 8): the policy as it is now, the
identity provider's URLs, loopback without proxies, and token lifetimes under clock skew.

All against the real sandbox (a Weaviate double and an OpenID provider on loopback).
"""

from __future__ import annotations

import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import recorder
from weaviate_auth_widget import oidc, tokens
from weaviate_auth_widget.errors import InsecureURL, PolicyRefused, UnexpectedResponse
from weaviate_auth_widget.policy import Policy
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import Sandbox
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService

ELSEWHERE = Policy(allowed_urls=("https://*.weaviate.cloud",))


@pytest.fixture(autouse=True)
def _fresh_discovery() -> None:
    oidc.discovery_cache.clear()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[AuthService]:
    svc = AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path))
    yield svc
    svc.close()


def _password_profile(sandbox: Sandbox, name: str = "pw", url: str | None = None) -> Profile:
    creds = sandbox.credentials
    return Profile(name=name, url=url or sandbox.weaviate_url, method="password", username=creds.username)


# -- item 1: the policy on every use of a credential ------------------------------------------
def test_narrowed_policy_stops_every_use_of_a_saved_credential(
    service: AuthService, sandbox: Sandbox
) -> None:
    creds = sandbox.credentials
    service.save_profile(Profile(name="key", url=sandbox.weaviate_url), {"api_key": creds.admin_api_key})
    service.save_profile(_password_profile(sandbox), {"password": creds.password})
    session = service.session("key")
    assert session.meta()["version"]
    service.login("pw")
    sandbox.reset_stats()

    service.policy = ELSEWHERE  # the administrator narrowed allowed_urls
    for name in ("key", "pw"):
        with pytest.raises(PolicyRefused, match="does not allow"):
            service.token(name)  # cached token: refused all the same
        with pytest.raises(PolicyRefused):
            service.token(name, rejected=service.login_states.by_name[name].access)  # a renewal
    with pytest.raises(PolicyRefused):
        session.meta()  # a session made before the change
    with pytest.raises(PolicyRefused):
        service.session("pw")
    service.logout("pw")  # still logs out here, but sends nothing to the provider
    assert sandbox.idp_stats()["token_total"] == 0
    assert sandbox.idp_stats()["revoke"] == 0
    assert [r.path for r in sandbox.weaviate.requests] == []
    session.close()


def test_policy_checks_are_remembered_per_policy() -> None:
    policy = Policy(allowed_urls=("https://*.weaviate.cloud",))
    assert policy.check_url("https://a.weaviate.cloud/") == "https://a.weaviate.cloud"
    assert policy._verdicts == {"https://a.weaviate.cloud/": "https://a.weaviate.cloud"}
    with pytest.raises(PolicyRefused):
        policy.check_url("https://a.example.com")
    assert "https://a.example.com" not in policy._verdicts  # refusals are always recomputed
    assert Policy()._verdicts == {}


# -- item 2: the identity provider's URLs --------------------------------------------------------
def test_cluster_naming_a_clear_text_provider_is_refused(
    service: AuthService, sandbox: Sandbox, weaviate_factory: Any
) -> None:
    creds = sandbox.credentials
    double = weaviate_factory(sandbox.weaviate_config, oidc_issuer="http://idp.example.com/realms/x")
    service.save_profile(_password_profile(sandbox, url=double.url), {"password": creds.password})
    with pytest.raises(InsecureURL) as err:
        service.login("pw")
    assert "identity provider" in str(err.value) and "idp.example.com" in str(err.value)
    assert err.value.host == "idp.example.com" and "https://" in str(err.value.fix)
    assert creds.password not in str(err.value)
    assert sandbox.idp_stats()["discovery"] == 0


@pytest.fixture
def gateway_sandbox(sandbox_factory: Any) -> Sandbox:
    """A provider whose discovery document puts its endpoints on a clear-text host."""
    demo = Sandbox.demo()
    demo.idp.config.endpoint_base = "http://idp-gateway.example.com"
    return sandbox_factory(demo.idp.config, demo._first_config, credentials=demo.credentials)  # type: ignore[no-any-return]


@pytest.mark.parametrize("method", ["password", "client_credentials"])
def test_clear_text_token_endpoint_is_refused(
    service: AuthService, gateway_sandbox: Sandbox, method: str
) -> None:
    creds = gateway_sandbox.credentials
    if method == "password":
        service.save_profile(_password_profile(gateway_sandbox), {"password": creds.password})
    else:
        profile = Profile(
            name="pw", url=gateway_sandbox.weaviate_url, method=method, client_id=creds.service_client_id
        )
        service.save_profile(profile, {"client_secret": creds.service_client_secret})
    with pytest.raises(InsecureURL, match=r"token endpoint at idp-gateway\.example\.com"):
        service.login("pw")
    assert gateway_sandbox.idp_stats()["token_total"] == 0


def test_provider_must_speak_for_the_issuer_the_cluster_named(
    service: AuthService, sandbox: Sandbox, weaviate_factory: Any
) -> None:
    # the cluster names http://localhost:<port>; the provider says it is http://127.0.0.1:<port>
    port = sandbox.idp_url.rsplit(":", 1)[1]
    double = weaviate_factory(sandbox.weaviate_config, oidc_issuer=f"http://localhost:{port}")
    service.save_profile(
        _password_profile(sandbox, url=double.url), {"password": sandbox.credentials.password}
    )
    with pytest.raises(UnexpectedResponse, match="says it is") as err:
        service.login("pw")
    assert err.value.host == f"localhost:{port}"
    assert sandbox.idp_stats()["token_total"] == 0


def test_allowed_issuers_pin_the_identity_provider(tmp_path: Path, sandbox: Sandbox) -> None:
    creds = sandbox.credentials
    pinned = AuthService(
        directory=tmp_path,
        secrets=SecretStore("file", directory=tmp_path),
        policy=Policy(allowed_issuers=("https://login.example.com",)),
    )
    pinned.save_profile(_password_profile(sandbox), {"password": creds.password})
    with pytest.raises(PolicyRefused, match="identity provider") as err:
        pinned.login("pw")
    assert "https://login.example.com" in str(err.value)
    assert sandbox.idp_stats()["token_total"] == 0
    pinned.policy = Policy(allowed_issuers=(sandbox.idp_url,))
    assert pinned.login("pw").username == creds.username
    pinned.policy = Policy(allowed_issuers=("https://login.example.com",))
    with pytest.raises(PolicyRefused):  # a renewal is a use too
        pinned.token("pw", rejected=pinned.login_states.by_name["pw"].access)
    pinned.close()


# -- item 4: loopback means loopback addresses, and never through a proxy ----------------------
def test_loopback_traffic_never_goes_through_a_proxy(
    service: AuthService, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = sandbox.credentials.admin_api_key
    with recorder() as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        service.save_profile(Profile(name="key", url=sandbox.weaviate_url), {"api_key": key})
        service.save_profile(_password_profile(sandbox), {"password": sandbox.credentials.password})
        assert service.login("key").username == sandbox.credentials.admin_user
        assert service.login("pw").username == sandbox.credentials.username
        with service.session("key") as session:
            assert session.meta()["version"]
        local = sandbox.weaviate_url.replace("127.0.0.1", "localhost")
        service.save_profile(Profile(name="local", url=local), {"api_key": key})
        assert service.login("local").username == sandbox.credentials.admin_user
    assert proxy.seen == []


@pytest.mark.parametrize(
    "url", ["http://x.localhost:8080", "http://localhost.example.com", "http://127.0.0.1.nip.io"]
)
def test_only_loopback_addresses_are_exempt_from_https(url: str) -> None:
    with pytest.raises(InsecureURL):
        Policy().check_url(url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://[::1]:8080", "http://localhost:8080", "http://127.0.0.2"]
)
def test_loopback_addresses_are_exempt_from_https(url: str) -> None:
    assert Policy().check_url(url)


# -- item 10: clock skew costs nothing -------------------------------------------------------------
def _skewed_time(offset: float) -> types.SimpleNamespace:
    """A ``time`` module whose wall clock is ``offset`` seconds off (monotonic stays true)."""
    return types.SimpleNamespace(
        time=lambda: time.time() + offset, monotonic=time.monotonic, perf_counter=time.perf_counter
    )


@pytest.mark.parametrize("offset", [600.0, -600.0])
def test_clock_skew_does_not_turn_requests_into_refreshes(
    service: AuthService, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, offset: float
) -> None:
    """This host's clock is 10 minutes ahead of (or behind) the provider's and cluster's."""
    from weaviate_auth_widget import logins

    for module in (tokens, oidc, logins):
        monkeypatch.setattr(module, "time", _skewed_time(offset))  # raises if a module lost it
    service.save_profile(_password_profile(sandbox), {"password": sandbox.credentials.password})
    service.login("pw")
    with service.session("pw") as session:
        for _ in range(20):
            assert session.meta()["version"]
    grants = {grant: n for grant, n in sandbox.idp_stats()["token"].items() if n}
    assert grants == {"password": 1}  # one login, no refresh of any kind
    expires_at = service.identity("pw").expires_at  # type: ignore[union-attr]
    assert expires_at is not None and 200 < expires_at - (time.time() + offset) <= 300  # on our clock
