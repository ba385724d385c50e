"""The key-management routes (profiles/{name}/users/..., copy-key) against the sandbox:
every action through the broker, a viewer's 403, copy-key refused to kernels, the
audit log naming users and actions — and no created or rotated key in any answer or log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from weaviate_auth_widget.profiles import Profile

from .conftest import Reply


@pytest.fixture
def broker_config(audit_path: Path) -> dict[str, Any]:
    return {"audit_log": str(audit_path)}


def stored_key(broker: Any, name: str) -> str:
    service = broker.service
    profile = service.get_profile(name)
    value = service.secrets.get(name, "api_key", scope=profile.secret_scope)
    assert value
    return str(value)


def put(api: Any, name: str, url: str, key: str) -> Reply:
    reply = api("PUT", f"profiles/{name}", json_body={"url": url, "secrets": {"api_key": key}})
    assert reply.code == 200, reply.text
    return reply


def test_every_action_through_the_broker(
    api: Any, broker: Any, sandbox: Any, audit_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    put(api, "admin", sandbox.weaviate_url, sandbox.credentials.admin_api_key)
    answers: list[Reply] = []
    assert api("GET", "profiles/admin/users-access").json() == {"can_manage": True}
    created = api("POST", "profiles/admin/users/kim", json_body={"new_profile": "kim", "roles": ["viewer"]})
    answers.append(created)
    assert created.code == 201, created.text
    assert created.json()["name"] == "kim" and created.json()["has_secret"] is True
    first = stored_key(broker, "kim")
    users = api("GET", "profiles/admin/users")
    answers.append(users)
    kim = next(u for u in users.json()["users"] if u["user_id"] == "kim")
    assert kim["roles"] == ["viewer"] and kim["active"] is True and kim["key_prefix"] == first[:3]
    assert "viewer" in api("GET", "profiles/admin/roles").json()["roles"]

    rotated = api("POST", "profiles/admin/users/kim/rotate-key", json_body={})
    answers.append(rotated)
    assert rotated.json() == {"updated": ["kim"]}
    second = stored_key(broker, "kim")
    assert second != first

    assert api("POST", "profiles/admin/users/kim/deactivate", json_body={"revoke_key": False}).code == 204
    again = api("POST", "profiles/admin/users/kim/deactivate", json_body={})
    assert (again.code, again.error_code) == (409, "user_conflict")
    assert api("POST", "profiles/admin/users/kim/activate").code == 204
    assert api("POST", "profiles/admin/users/kim/assign", json_body={"roles": ["admin"]}).code == 204
    assert api("POST", "profiles/admin/users/kim/revoke", json_body={"roles": ["admin"]}).code == 204

    kernel_copy = api("POST", "profiles/kim/copy-key", auth="kernel")
    answers.append(kernel_copy)
    assert (kernel_copy.code, kernel_copy.error_code) == (403, "not_owner")
    copied = api("POST", "profiles/kim/copy-key")
    assert copied.code == 200 and copied.json() == {"api_key": second}

    assert api("DELETE", "profiles/admin/users/kim").code == 204
    for reply in answers:
        assert first not in reply.text and second not in reply.text
    log = audit_path.read_text()
    assert first not in log and second not in log and first not in caplog.text and second not in caplog.text
    entries = [json.loads(line) for line in log.splitlines()]
    done = [(e["action"], e.get("target"), e["outcome"]) for e in entries if e["action"].startswith("keys.")]
    assert ("keys.create", "kim", "ok") in done and ("keys.rotate-key", "kim", "ok") in done
    assert ("keys.deactivate", "kim", "user_conflict") in done and ("keys.delete", "kim", "ok") in done
    assert any(e["action"] == "copy-key" and e["outcome"] == "not_owner" for e in entries)


def test_a_viewer_gets_403_naming_the_permission(api: Any, sandbox: Any) -> None:
    put(api, "viewer", sandbox.weaviate_url, sandbox.credentials.readonly_api_key)
    assert api("GET", "profiles/viewer/users-access").json() == {"can_manage": False}
    refused = api("POST", "profiles/viewer/users/lee", json_body={"new_profile": "lee"})
    assert (refused.code, refused.error_code) == (403, "permission_denied")
    assert "'create_users' permission" in refused.json()["error"]["message"]
    assert api("GET", "profiles/lee").code == 404  # nothing was kept


def test_bad_bodies_are_400(api: Any, sandbox: Any) -> None:
    put(api, "admin", sandbox.weaviate_url, sandbox.credentials.admin_api_key)
    missing = api("POST", "profiles/admin/users/mo", json_body={"roles": []})
    assert (missing.code, missing.error_code) == (400, "bad_request")
    extra = api("POST", "profiles/admin/users/mo/deactivate", json_body={"revoke_key": "yes"})
    assert extra.code == 400
    bad_user = api("DELETE", "profiles/admin/users/9mo")
    assert (bad_user.code, bad_user.error_code) == (422, "user_refused")


@pytest.mark.parametrize("broker_environ", [{"JUPYTERHUB_USER": "owner"}])
def test_only_the_owner_changes_users(api: Any, sandbox: Any, broker: Any) -> None:
    broker.service.save_profile(
        Profile("admin", sandbox.weaviate_url), {"api_key": sandbox.credentials.admin_api_key}
    )
    refused = api("POST", "profiles/admin/users/ned", json_body={"new_profile": "ned"})
    assert (refused.code, refused.error_code) == (403, "not_owner")
    copy = api("POST", "profiles/admin/copy-key")
    assert (copy.code, copy.error_code) == (403, "not_owner")


def test_created_and_rotated_keys_are_redacted_from_saved_files(
    api: Any, broker: Any, sandbox: Any, jp_fetch: Any, jp_asyncio_loop: Any, jp_root_dir: Path
) -> None:
    """The save guard knows a key the moment it is created, and the old one after a rotation."""
    put(api, "admin", sandbox.weaviate_url, sandbox.credentials.admin_api_key)
    assert api("POST", "profiles/admin/users/ola", json_body={"new_profile": "ola"}).code == 201
    first = stored_key(broker, "ola")
    assert api("POST", "profiles/admin/users/ola/rotate-key", json_body={}).code == 200
    second = stored_key(broker, "ola")
    model = {"type": "file", "format": "text", "content": f"old={first}\nnew={second}\n"}
    reply = jp_asyncio_loop.run_until_complete(
        jp_fetch("api", "contents", "keys.txt", method="PUT", body=json.dumps(model))
    )
    assert reply.code in (200, 201)
    on_disk = (jp_root_dir / "keys.txt").read_text()
    assert first not in on_disk and second not in on_disk and "[REDACTED]" in on_disk
    assert api("DELETE", "profiles/admin/users/ola").code == 204


def test_user_names_with_at_and_dots_survive_the_paths(api: Any, sandbox: Any) -> None:
    put(api, "admin", sandbox.weaviate_url, sandbox.credentials.admin_api_key)
    created = api("POST", "profiles/admin/users/bot%40ci.example", json_body={"new_profile": "bot-ci"})
    assert created.code == 201, created.text
    names = [u["user_id"] for u in api("GET", "profiles/admin/users").json()["users"]]
    assert "bot@ci.example" in names
    assert api("DELETE", "profiles/admin/users/bot%40ci.example").code == 204
