"""The hub login's admin settings, checked before anything is sent: on/off, the clusters
it may be used for, and the issuer the cluster trusts. (It working end to end, under a
real JupyterHub with OpenID login, is tests/hub/test_hub_sso.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from weaviate_auth_widget import hub_login, oidc
from weaviate_auth_widget.errors import PolicyRefused, WrongMethod
from weaviate_auth_widget.policy import Policy
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import Sandbox
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService
from weaviate_auth_widget.tokens import Token

SERVICE_URL = "http://127.0.0.1:1/services/weaviate-auth/"  # nothing listens: never reached here


def service_with(tmp_path: Path, policy: Policy) -> AuthService:
    oidc.discovery_cache.clear()
    return AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path), policy=policy)


@pytest.mark.parametrize(
    ("policy", "environ", "expected"),
    [
        (
            Policy(hub_service_url=SERVICE_URL, hub_login=False),
            {"JUPYTERHUB_API_TOKEN": "t"},
            "not available",
        ),
        (Policy(), {"JUPYTERHUB_API_TOKEN": "t"}, "not available"),  # no hub service
        (Policy(hub_service_url=SERVICE_URL), {}, "not available"),  # not under a hub
        (
            Policy(hub_service_url=SERVICE_URL, hub_login_urls=("https://team.example.org",)),
            {"JUPYTERHUB_API_TOKEN": "t"},
            "does not allow signing in",
        ),
    ],
    ids=["switched off", "no service", "no hub token", "cluster not listed"],
)
def test_admin_settings_refuse_before_anything_is_sent(
    tmp_path: Path,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    policy: Policy,
    environ: dict[str, str],
    expected: str,
) -> None:
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    svc = service_with(tmp_path, policy)
    svc.save_profile(Profile(name="sso", url=sandbox.weaviate_url, method="hub", remember=False), {})
    before = sandbox.weaviate.request_count
    with pytest.raises(PolicyRefused) as caught:
        svc.login("sso")
    assert expected in str(caught.value) and caught.value.host
    assert sandbox.weaviate.request_count == before  # not even the cluster's discovery
    svc.close()


def test_a_cluster_trusting_another_provider_is_named(sandbox: Sandbox) -> None:
    grant = hub_login.HubGrant(
        Token("x"), issuer="https://login.example.org/realms/team", audience=("jupyterhub",)
    )
    with pytest.raises(WrongMethod) as caught:
        hub_login.check_issuer(grant, sandbox.idp_url, "cluster.example")
    assert "login.example.org" in str(caught.value) and sandbox.idp_url in str(caught.value)
    hub_login.check_issuer(
        hub_login.HubGrant(Token("x"), issuer=sandbox.idp_url + "/", audience=()), sandbox.idp_url, "c"
    )
