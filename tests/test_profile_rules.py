"""The core's rules in-process (``AuthService``), as every door gets them: ``api_key``
gives up only an API-key profile's key under the policy as it is now, and ``save_profile``
never changes the method of a login that keeps secrets unless told ``replace=True``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from weaviate_auth_widget.errors import LoginExpired, MethodChange, PolicyRefused, WrongMethod
from weaviate_auth_widget.policy import Policy
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService


@pytest.fixture
def service(tmp_path: Path) -> Iterator[AuthService]:
    svc = AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path))
    yield svc
    svc.close()


def password_profile(sandbox: Any, name: str = "pw") -> Profile:
    return Profile(
        name=name, url=sandbox.weaviate_url, method="password", username=sandbox.credentials.username
    )


def test_api_key_is_for_api_key_profiles_under_the_policy_now(service: AuthService, sandbox: Any) -> None:
    creds = sandbox.credentials
    service.save_profile(Profile(name="k", url=sandbox.weaviate_url), {"api_key": creds.admin_api_key})
    assert service.api_key("k") == creds.admin_api_key
    assert service.identity("k") is None  # handing the key out is no login

    service.save_profile(password_profile(sandbox), {"password": creds.password})
    with pytest.raises(WrongMethod) as wrong:
        service.api_key("pw")
    text = str(wrong.value)
    assert "'pw'" in text and "username & password" in text and "API-key profile" in text
    assert creds.password not in text

    service.policy = Policy(allowed_urls=("https://only.example",))  # the administrator narrowed it
    with pytest.raises(PolicyRefused):
        service.api_key("k")
    service.policy = Policy()
    service.logout("k")
    with pytest.raises(LoginExpired):
        service.api_key("k")


def test_save_refuses_a_method_change_that_drops_kept_secrets(service: AuthService, sandbox: Any) -> None:
    creds = sandbox.credentials
    service.save_profile(Profile(name="k", url=sandbox.weaviate_url), {"api_key": creds.admin_api_key})
    service.save_profile(password_profile(sandbox), {"password": creds.password})
    for name, was in (("k", "API key"), ("pw", "username & password")):
        with pytest.raises(MethodChange) as err:
            service.save_profile(Profile(name=name, url=sandbox.weaviate_url, method="browser"))
        text = str(err.value)
        assert f"{name!r}" in text and was in text and "another name" in text and "replace=True" in text
        assert creds.admin_api_key not in text and creds.password not in text
    assert service.get_profile("k").method == "api_key" and service.api_key("k") == creds.admin_api_key
    assert service.kept_secrets(service.get_profile("pw")) == ["password"]
    with pytest.raises(MethodChange):  # connect saves through the same rule
        service.connect(Profile(name="pw", url=sandbox.weaviate_url), {"api_key": creds.admin_api_key})
    assert service.get_profile("pw").method == "password"

    # what the panel does: a browser sign-in of another kind of login gets a new name
    from weaviate_auth_widget.profiles import free_name

    taken = [p.name for p in service.list_profiles()]
    service.save_profile(
        Profile(name=free_name("k-browser", taken), url=sandbox.weaviate_url, method="browser")
    )
    assert service.get_profile("k").method == "api_key"

    # meaning it: replaced, and the old method's secrets are gone
    service.save_profile(Profile(name="k", url=sandbox.weaviate_url, method="browser"), replace=True)
    assert (
        service.get_profile("k").method == "browser" and service.kept_secrets(service.get_profile("k")) == []
    )
    assert creds.admin_api_key not in service.secret_values()
    identity = service.connect(
        Profile(name="pw", url=sandbox.weaviate_url), {"api_key": creds.admin_api_key}, replace=True
    )
    assert identity.method == "api_key" and service.kept_secrets(service.get_profile("pw")) == ["api_key"]

    # nothing kept, nothing lost: a profile not remembered and never logged in may change
    bare = password_profile(sandbox, "bare").with_changes(remember=False)
    service.save_profile(bare)
    service.save_profile(bare.with_changes(method="browser", username=None))
    assert service.get_profile("bare").method == "browser"


def test_a_live_login_held_in_memory_counts_as_kept(service: AuthService, sandbox: Any) -> None:
    """A login not remembered keeps its refresh token only in this process's memory; a
    method change would end it (and revoke the token), so it needs ``replace`` too."""
    creds = sandbox.credentials
    memory = password_profile(sandbox, "mem").with_changes(remember=False)
    service.connect(memory, {"password": creds.password})
    assert service.kept_secrets(service.get_profile("mem")) == []  # nothing stored
    with pytest.raises(MethodChange, match="keeps refresh_token"):
        service.save_profile(Profile(name="mem", url=sandbox.weaviate_url), {"api_key": creds.admin_api_key})
    assert service.identity("mem") is not None and service.get_profile("mem").method == "password"
    service.save_profile(
        Profile(name="mem", url=sandbox.weaviate_url), {"api_key": creds.admin_api_key}, replace=True
    )
    assert service.identity("mem") is None and service.api_key("mem") == creds.admin_api_key
