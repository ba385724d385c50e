"""Store directory, store files and audit log: never another user's, never through a link.

A directory someone else created beforehand could have its ``profiles.json`` rewritten
to send a key elsewhere; a link planted where a file goes would make us write to, or
chmod, its target. Each is refused with an error naming the path, the cause and the fix.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from weaviate_auth_widget.broker.audit import AuditLog
from weaviate_auth_widget.errors import StoreUnavailable
from weaviate_auth_widget.profiles import Profile, ProfileStore
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService

OTHER_UID = 65534  # nobody
needs_root = pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0, reason="giving a file to another uid (chown) needs root"
)
PROFILE = Profile(name="p", url="https://c.example")


def service_in(directory: Path) -> AuthService:
    return AuthService(directory=directory, secrets=SecretStore("file", directory=directory))


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@needs_root
def test_a_store_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    planted = tmp_path / "store"
    planted.mkdir()
    planted.chmod(0o777)
    os.chown(planted, OTHER_UID, OTHER_UID)
    service = service_in(planted)
    with pytest.raises(StoreUnavailable) as caught:
        service.save_profile(PROFILE, {"api_key": "k-0123456789"})
    message = str(caught.value)
    assert str(planted) in message and f"uid {OTHER_UID}" in message and "not to you" in message
    assert "Move" in message and "WEAVIATE_AUTH_DIR" in message  # the fix
    assert list(planted.iterdir()) == [] and mode(planted) == 0o777  # nothing written, nothing changed
    with pytest.raises(StoreUnavailable, match="belongs to"):
        service.list_profiles()
    with pytest.raises(StoreUnavailable, match="belongs to"):
        SecretStore("file", directory=planted).get("p", "api_key")


@needs_root
def test_files_of_another_user_in_our_directory_are_refused(tmp_path: Path) -> None:
    service = service_in(tmp_path)
    service.save_profile(PROFILE, {"api_key": "k-0123456789"})
    for name, read in (
        ("profiles.json", lambda: service_in(tmp_path).get_profile("p")),
        ("secrets.json", lambda: SecretStore("file", directory=tmp_path).get("p", "api_key")),
    ):
        os.chown(tmp_path / name, OTHER_UID, OTHER_UID)
        with pytest.raises(StoreUnavailable, match=rf"{name} belongs to .*\(uid {OTHER_UID}\)"):
            read()
        os.chown(tmp_path / name, 0, 0)
        read()


def test_a_linked_store_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "store"
    link.symlink_to(real)
    with pytest.raises(StoreUnavailable, match="is a symbolic link") as caught:
        service_in(link).save_profile(PROFILE, {"api_key": "k-0123456789"})
    assert str(link) in str(caught.value) and "Remove the link" in str(caught.value)
    with pytest.raises(StoreUnavailable, match="is a symbolic link"):
        SecretStore("file", directory=link).set("p", "api_key", "k-0123456789")
    assert list(real.iterdir()) == []


@pytest.mark.parametrize("name", ["profiles.json", "secrets.json"])
def test_linked_store_files_are_not_followed(tmp_path: Path, name: str) -> None:
    service = service_in(tmp_path)
    service.save_profile(PROFILE, {"api_key": "k-0123456789"})
    target = tmp_path / "elsewhere.json"
    target.write_bytes((tmp_path / name).read_bytes())
    target.chmod(0o644)
    (tmp_path / name).unlink()
    (tmp_path / name).symlink_to(target)
    fresh = service_in(tmp_path)
    with pytest.raises(StoreUnavailable, match=f"{name} is a symbolic link"):
        fresh.has_secret(fresh.get_profile("p"))
    assert mode(target) == 0o644  # not chmodded through the link


def test_a_widened_store_directory_is_tightened(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir(mode=0o755)
    store.chmod(0o755)
    ProfileStore(store).save(PROFILE)
    assert mode(store) == 0o700


def test_a_linked_audit_log_is_refused_and_its_target_untouched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    link = tmp_path / "audit.jsonl"
    link.symlink_to(victim)
    with pytest.raises(StoreUnavailable, match=r"audit log .* is a symbolic link") as caught:
        AuditLog(link)
    assert str(link) in str(caught.value) and "audit_log" in str(caught.value)
    assert victim.read_text() == "precious\n" and mode(victim) == 0o644

    # planted after start-up (between two lines): refused and logged, never followed
    link.unlink()
    audit = AuditLog(link)
    audit.record(user="u", profile="p", action="token", outcome="ok")
    link.unlink()
    link.symlink_to(victim)
    caplog.set_level(logging.ERROR)
    audit.record(user="u", profile="p", action="token", outcome="ok")
    assert victim.read_text() == "precious\n" and mode(victim) == 0o644
    assert any("symbolic link" in r.getMessage() for r in caplog.records)


@needs_root
def test_an_audit_log_of_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("")
    path.chmod(0o666)
    os.chown(path, OTHER_UID, OTHER_UID)
    with pytest.raises(StoreUnavailable, match=rf"belongs to .*\(uid {OTHER_UID}\)"):
        AuditLog(path)
    assert mode(path) == 0o666 and path.read_text() == ""
