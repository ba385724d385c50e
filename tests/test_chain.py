"""connect(): explicit arguments, then a saved profile, then WEAVIATE_URL + WEAVIATE_API_KEY."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from weaviate_auth_widget.chain import connect
from weaviate_auth_widget.errors import MissingSecret
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import Sandbox
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    for var in ("WEAVIATE_URL", "WEAVIATE_API_KEY", "WEAVIATE_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    svc = AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path))
    yield svc
    svc.close()


def test_explicit_arguments_win_and_are_kept_in_memory_only(service: AuthService, sandbox: Sandbox) -> None:
    creds = sandbox.credentials
    with connect(url=sandbox.weaviate_url, api_key=creds.admin_api_key, service=service) as session:
        assert session.whoami()["username"] == "admin"
    with connect(
        url=sandbox.weaviate_url, username=creds.username, password=creds.password, service=service
    ) as s:
        assert s.whoami()["username"] == creds.username
    assert service.profiles.list() == []  # nothing written to disk
    assert not (service.profiles.directory / "secrets.json").exists()
    with pytest.raises(MissingSecret, match="needs api_key"):
        connect(url=sandbox.weaviate_url, service=service)


def test_saved_profile_then_environment(
    service: AuthService, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = sandbox.credentials
    with pytest.raises(MissingSecret, match="No credentials found"):
        connect(service=service)
    monkeypatch.setenv("WEAVIATE_URL", sandbox.weaviate_url)
    monkeypatch.setenv("WEAVIATE_API_KEY", creds.readonly_api_key)
    with connect(service=service) as session:
        assert session.whoami()["username"] == "reader"
    service.save_profile(Profile(name="only", url=sandbox.weaviate_url), {"api_key": creds.admin_api_key})
    with connect(service=service) as session:  # the only saved profile beats the environment
        assert session.whoami()["username"] == "admin"
    service.save_profile(Profile(name="other", url=sandbox.weaviate_url), {"api_key": creds.readonly_api_key})
    monkeypatch.setenv("WEAVIATE_PROFILE", "other")
    with connect(service=service) as session:
        assert session.whoami()["username"] == "reader"
    with connect("only", service=service) as session:
        assert session.whoami()["username"] == "admin"


def test_several_profiles_and_none_chosen_names_them_and_how_to_pick(
    service: AuthService, sandbox: Sandbox
) -> None:
    key = sandbox.credentials.admin_api_key
    for name in ("prod", "staging"):
        service.save_profile(Profile(name=name, url=sandbox.weaviate_url), {"api_key": key})
    with pytest.raises(MissingSecret) as caught:
        connect(service=service)
    message = str(caught.value)
    assert "'prod', 'staging'" in message
    assert "waw.connect('prod')" in message and "WEAVIATE_PROFILE=prod" in message
    assert "'default'" in message
    assert key not in message
    service.save_profile(Profile(name="default", url=sandbox.weaviate_url), {"api_key": key})
    with connect(service=service) as session:  # naming one `default` is enough
        assert session.whoami()["username"] == "admin"
