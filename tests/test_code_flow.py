"""The code flow's checks in-process (CodeFlow + AuthService against the sandbox):
the answers a broker callback may get, each a clear error with nothing stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.idp_browser import Browser, query_of
from weaviate_auth_widget import oidc
from weaviate_auth_widget.code_flow import BrowserClient, CodeFlow
from weaviate_auth_widget.errors import PolicyRefused, SignInFailed, WrongMethod
from weaviate_auth_widget.policy import Policy
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import IdPClient, IdPConfig, IdPUser, InteractiveSettings, WeaviateConfig
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService

REDIRECT = "http://127.0.0.1:8888/weaviate-auth/api/sign-in/callback"


@pytest.fixture(autouse=True)
def _fresh_discovery() -> None:
    oidc.discovery_cache.clear()


def make(tmp_path: Path, url: str, **kwargs: Any) -> tuple[AuthService, CodeFlow]:
    service = AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path), **kwargs)
    service.save_profile(Profile(name="sso", url=url, method="browser"))
    return service, CodeFlow(service, service.browser_client)


def answer(sb: Any, started: dict[str, Any], action: str = "login") -> dict[str, str]:
    browser = Browser()
    page = browser.open(started["authorize_url"])
    if action == "cancel":
        back = browser.submit(page, "cancel")
    else:
        back = browser.login(page, sb.credentials.username, sb.credentials.password)
    browser.close()
    return query_of(back.headers["location"])


def test_code_flow_keeps_the_refresh_token(sandbox: Any, tmp_path: Path) -> None:
    service, flow = make(tmp_path, sandbox.weaviate_url)
    started = flow.start("sso", REDIRECT)
    query = parse_qs(urlsplit(started["authorize_url"]).query)
    assert query["scope"][0].split() == ["openid", "email", "offline_access"]  # the cluster's, then ours
    assert "prompt" not in query and started["provider"] == sandbox.idp_url.split("//")[1]
    done = flow.finish(answer(sandbox, started))
    assert done.status == "done" and done.identity and done.identity.username == sandbox.credentials.username
    assert service.kept_secrets(service.get_profile("sso")) == ["refresh_token"]
    assert flow.status(started["id"])["status"] == "done"
    assert service.token("sso").value
    service.close()


def test_expired_interaction_and_provider_errors_store_nothing(sandbox: Any, tmp_path: Path) -> None:
    service, flow = make(tmp_path, sandbox.weaviate_url)
    started = flow.start("sso", REDIRECT)
    params = answer(sandbox, started)
    for item in flow._by_state.values():  # the user took longer than the sign-in lives
        item.expires_at = 0
    late = flow.finish(params)
    assert late.status == "failed" and "took too long" in (late.error or {})["message"]
    started = flow.start("sso", REDIRECT)
    refused = flow.finish(answer(sandbox, started, "cancel"))
    assert refused.status == "failed" and "refused or cancelled" in (refused.error or {})["message"]
    started = flow.start("sso", REDIRECT)
    params = answer(sandbox, started)
    mixed_up = flow.finish({**params, "iss": "https://evil.example"})
    assert mixed_up.status == "failed" and "another identity provider" in (mixed_up.error or {})["message"]
    with pytest.raises(SignInFailed, match="no sign-in in progress"):
        flow.finish(params)  # its state was used up by the refused attempt
    assert service.kept_secrets(service.get_profile("sso")) == []
    assert service.identity("sso") is None
    with pytest.raises(SignInFailed, match="No such sign-in"):
        flow.status("unknown")
    service.close()


def test_confidential_client_extra_scopes_and_consent(sandbox_factory: Any, tmp_path: Path) -> None:
    sb = sandbox_factory(
        IdPConfig(
            users={"u@x": IdPUser(password="pw", email="u@x")},
            clients={"c": IdPClient(), "jupyter": IdPClient(secret="s3cret", redirect_uris=(REDIRECT,))},
            interactive=InteractiveSettings(offline_needs_consent=True),
        ),
        # the cluster names client "c"; the administrator registered "jupyter" for sign-ins
        WeaviateConfig(
            version="1.33.2", oidc_enabled=True, oidc_client_id="c", oidc_skip_client_id_check=True
        ),
    )
    service = AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path))
    service.browser_client = BrowserClient(
        client_id="jupyter", client_secret="s3cret", extra_scopes=("email",), prompt_consent=True
    )
    service.save_profile(Profile(name="sso", url=sb.weaviate_url, method="browser"))
    flow = CodeFlow(service, service.browser_client)
    started = flow.start("sso", REDIRECT)
    query = parse_qs(urlsplit(started["authorize_url"]).query)
    assert query["client_id"] == ["jupyter"] and query["prompt"] == ["consent"]
    assert "email" in query["scope"][0].split() and "s3cret" not in started["authorize_url"]
    browser = Browser()
    consent = browser.login(browser.open(started["authorize_url"]), "u@x", "pw")
    assert "Allow access?" in consent.text
    back = browser.submit(consent, "allow")
    done = flow.finish(query_of(back.headers["location"]))
    assert done.status == "done", done.error
    assert service.kept_secrets(service.get_profile("sso")) == ["refresh_token"]
    assert "s3cret" in service.secret_values()  # the save guard redacts it too
    # the refresh (a confidential client's) works after a restart of the service
    later = AuthService(
        directory=tmp_path, secrets=SecretStore("file", directory=tmp_path), device_prompt=None
    )
    later.browser_client = service.browser_client
    assert later.login("sso").refreshes
    with later.session("sso") as session:
        assert session.meta()["version"] == "1.33.2"
    later.close()
    service.close()


def test_policy_and_method_checked_before_the_browser_goes_anywhere(sandbox: Any, tmp_path: Path) -> None:
    service, flow = make(
        tmp_path, sandbox.weaviate_url, policy=Policy(allowed_issuers=("https://idp.example",))
    )
    with pytest.raises(PolicyRefused):
        flow.start("sso", REDIRECT)
    service.save_profile(Profile(name="key", url=sandbox.weaviate_url), {"api_key": "k" * 10})
    with pytest.raises(WrongMethod, match="does not sign in at the identity provider"):
        flow.start("key", REDIRECT)
    service.close()
