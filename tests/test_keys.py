"""Key management (weaviate_auth_widget.keys) against the sandbox on 1.29 (no users
API), 1.30.0 and a current version: every action, each error case, rotation while a
session runs, and no created or rotated key in return values or logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from weaviate_auth_widget.errors import (
    InvalidProfile,
    NotSupported,
    PermissionDenied,
    UserConflict,
    UserNotFound,
    UserRefused,
)
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import Sandbox
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService

CURRENT = "1.36.0"


@pytest.fixture(scope="module", params=["1.30.0", CURRENT])
def cluster(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    with Sandbox.demo(version=request.param) as running:
        yield running


@pytest.fixture
def service(tmp_path: Path, cluster: Sandbox) -> Iterator[AuthService]:
    creds = cluster.credentials
    assert creds is not None
    svc = AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path))
    svc.save_profile(Profile(name="admin", url=cluster.weaviate_url), {"api_key": creds.admin_api_key})
    svc.save_profile(Profile(name="viewer", url=cluster.weaviate_url), {"api_key": creds.readonly_api_key})
    svc.login("admin")
    yield svc
    svc.close()


def stored_key(service: AuthService, name: str) -> str:
    """The key kept for a profile, read from the store (what the test scans for)."""
    profile = service.get_profile(name)
    value = service.secrets.get(name, "api_key", scope=profile.secret_scope)
    assert value
    return value


def status_with(cluster: Sandbox, key: str) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.get(cluster.weaviate_url + "/v1/meta", headers=headers, timeout=5).status_code


def test_create_keeps_the_key_as_a_profile_only(
    service: AuthService, cluster: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    view = service.keys.create_user("admin", "ann", new_profile="ann", roles=["viewer"])
    key = stored_key(service, "ann")
    assert view["name"] == "ann" and view["method"] == "api_key" and view["has_secret"]
    assert key not in repr(view) and key not in caplog.text
    assert service.login("ann").username == "ann"
    users = {u.user_id: u for u in service.keys.list_users("admin")}
    assert users["ann"].roles == ("viewer",) and users["ann"].active and not users["ann"].static
    assert users["admin"].static  # root callers see static users
    if cluster.weaviate_config.version == CURRENT:
        assert users["ann"].key_prefix == key[:3] and users["ann"].last_used_at
    else:
        assert users["ann"].key_prefix is None  # from 1.30.1
    assert key not in repr(users)
    service.keys.delete_user("admin", "ann")
    assert status_with(cluster, key) == 401


def test_create_refuses_before_any_user_exists(service: AuthService) -> None:
    with pytest.raises(InvalidProfile, match="exists already"):
        service.keys.create_user("admin", "bea", new_profile="viewer")
    with pytest.raises(UserNotFound):
        service.keys.delete_user("admin", "bea")  # nothing was created
    with pytest.raises(UserRefused, match="not a valid Weaviate user name"):
        service.keys.create_user("admin", "9x", new_profile="x")
    service.keys.create_user("admin", "bea", new_profile="bea")
    with pytest.raises(UserConflict, match=r"already exists.*Pick another name"):
        service.keys.create_user("admin", "bea", new_profile="bea2")
    with pytest.raises(UserConflict):
        service.keys.create_user("admin", "reader", new_profile="bea3")  # a static user's name
    service.keys.delete_user("admin", "bea")


def test_rotate_while_a_session_runs(
    service: AuthService, cluster: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    service.keys.create_user("admin", "cid", new_profile="cid", roles=["viewer"])
    old = stored_key(service, "cid")
    with service.session("cid") as session:
        assert session.meta()
        updated = service.keys.rotate_key("admin", "cid")
        assert updated == ["cid"]
        new = stored_key(service, "cid")
        assert new != old and status_with(cluster, old) == 401 and status_with(cluster, new) == 200
        assert session.meta()  # the live session goes on with the new key
    assert old not in caplog.text and new not in caplog.text and new not in repr(updated)
    service.keys.delete_user("admin", "cid")


def test_a_session_with_a_cached_old_key_recovers_after_a_401(service: AuthService, cluster: Sandbox) -> None:
    """Another process rotated the key: the store changes, this process's session gets 401
    once, asks its token source again and goes on."""
    service.keys.create_user("admin", "dot", new_profile="dot")
    other = AuthService(directory=service.profiles.path.parent, secrets=service.secrets)
    with service.session("dot") as session:
        session.meta()
        other.keys.rotate_key("admin", "dot")
        assert status_with(cluster, stored_key(other, "dot")) == 200
        assert session.meta()  # one 401, then the key from the store
    other.close()
    service.keys.delete_user("admin", "dot")


def test_rotate_without_a_holder_needs_a_profile_name(service: AuthService, cluster: Sandbox) -> None:
    service.keys.create_user("admin", "eve", new_profile="eve")
    key = stored_key(service, "eve")
    service.forget("eve")
    with pytest.raises(InvalidProfile, match="would be lost"):
        service.keys.rotate_key("admin", "eve")
    assert status_with(cluster, key) == 200  # nothing rotated
    assert service.keys.rotate_key("admin", "eve", new_profile="eve2") == ["eve2"]
    assert status_with(cluster, key) == 401 and status_with(cluster, stored_key(service, "eve2")) == 200
    service.keys.delete_user("admin", "eve")


def test_deactivate_revoke_activate(service: AuthService, cluster: Sandbox) -> None:
    service.keys.create_user("admin", "fay", new_profile="fay")
    key = stored_key(service, "fay")
    service.keys.deactivate("admin", "fay")
    assert status_with(cluster, key) == 401
    with pytest.raises(UserConflict):
        service.keys.deactivate("admin", "fay")
    service.keys.activate("admin", "fay")
    assert status_with(cluster, key) == 200
    with pytest.raises(UserConflict):
        service.keys.activate("admin", "fay")
    service.keys.deactivate("admin", "fay", revoke_key=True)
    service.keys.activate("admin", "fay")
    assert status_with(cluster, key) == 401  # a revoked key stays dead until rotated
    service.keys.rotate_key("admin", "fay", new_profile="fay2")  # 'fay' can't prove who it is now
    assert status_with(cluster, stored_key(service, "fay2")) == 200
    service.keys.delete_user("admin", "fay")


def test_static_and_root_users_are_refused_with_the_fix(service: AuthService) -> None:
    with pytest.raises(UserRefused, match=r"static user.*AUTHENTICATION_APIKEY"):
        service.keys.deactivate("admin", "reader")
    with pytest.raises(UserRefused, match=r"root user.*AUTHORIZATION_RBAC_ROOT_USERS"):
        service.keys.activate("admin", "admin")


def test_own_user(service: AuthService, cluster: Sandbox) -> None:
    service.keys.create_user("admin", "gus", new_profile="gus", roles=["admin"])
    with pytest.raises(UserRefused, match="Use another admin profile"):
        service.keys.deactivate("gus", "gus")
    service.keys.delete_user("admin", "gus")


def test_viewer_gets_403_naming_the_permission(service: AuthService) -> None:
    assert service.keys.list_users("viewer") == []  # filtered, as the server does
    with pytest.raises(PermissionDenied, match="'create_users' permission"):
        service.keys.create_user("viewer", "hal", new_profile="hal")
    assert "hal" not in [p.name for p in service.list_profiles()]
    assert not service.keys.can_manage("viewer") and service.keys.can_manage("admin")


def test_assign_and_revoke_roles(service: AuthService) -> None:
    service.keys.create_user("admin", "ivy", new_profile="ivy")
    assert "viewer" in service.keys.list_roles("admin")
    service.keys.assign_roles("admin", "ivy", ["viewer"])
    assert {u.user_id: u.roles for u in service.keys.list_users("admin")}["ivy"] == ("viewer",)
    service.keys.revoke_roles("admin", "ivy", ["viewer"])
    with pytest.raises(UserNotFound, match="doesn't exist"):
        service.keys.assign_roles("admin", "ivy", ["nope"])
    service.keys.delete_user("admin", "ivy")


def test_before_1_30_and_switched_off(tmp_path: Path) -> None:
    for version, off in (("1.29.3", False), ("1.33.2", True)):
        with Sandbox.demo(version=version) as old:
            creds = old.credentials
            assert creds is not None
            if off:
                old.weaviate.config.db_users_enabled = False
            svc = AuthService(
                directory=tmp_path / version, secrets=SecretStore("file", directory=tmp_path / version)
            )
            svc.save_profile(Profile(name="admin", url=old.weaviate_url), {"api_key": creds.admin_api_key})
            svc.login("admin")
            fix = "AUTHENTICATION_DB_USERS_ENABLED" if off else "need Weaviate 1.30 or newer"
            with pytest.raises(NotSupported, match=fix):
                svc.keys.create_user("admin", "jay", new_profile="jay")
            svc.close()


def test_a_non_weaviate_answer_is_a_typed_error(tmp_path: Path) -> None:
    """A captive portal or proxy answering 200 with HTML: a typed error, nothing saved."""
    from tests.helpers import QuietHandler, serving
    from weaviate_auth_widget.errors import UnexpectedResponse

    class Portal(QuietHandler):
        def _page(self) -> None:
            body = b"<html>sign in to the Wi-Fi</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _page

    with serving(Portal) as url:
        svc = AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path))
        svc.save_profile(Profile(name="portal", url=url), {"api_key": "portal-key-123"})
        with pytest.raises(UnexpectedResponse):
            svc.keys.list_users("portal")
        with pytest.raises(UnexpectedResponse):
            svc.keys.create_user("portal", "kai", new_profile="kai")
        assert [p.name for p in svc.list_profiles()] == ["portal"]
        assert svc.keys.can_manage("portal") is False
        svc.close()
