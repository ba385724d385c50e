"""The sandbox's database users and role assignment follow spec
weaviate-users-grpc-client.md section 1: statuses, bodies, the order of the checks,
version differences, and keys dying at once (REST and gRPC)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from weaviate_auth_widget.sandbox import Sandbox

NOT_ENABLED = {"error": [{"message": "db user management is not enabled"}]}


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox.demo(version="1.33.2") as running:
        yield running


def call(sb: Sandbox, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
    creds = sb.credentials
    assert creds is not None
    token = creds.admin_api_key if key is None else key
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, sb.weaviate_url + path, headers=headers, timeout=5, **kwargs)


def message(response: httpx.Response) -> str:
    return str(response.json()["error"][0]["message"])


def test_create_list_and_use_a_db_user(sb: Sandbox) -> None:
    created = call(sb, "POST", "/v1/users/db/alice-1", json={})
    assert created.status_code == 201
    key = created.json()["apikey"]
    assert set(created.json()) == {"apikey"}
    assert call(sb, "GET", "/v1/meta", key).status_code == 200
    users = call(sb, "GET", "/v1/users/db", params={"includeLastUsedTime": "true"}).json()
    alice = next(u for u in users if u["userId"] == "alice-1")
    assert alice["dbUserType"] == "db_user" and alice["active"] is True and alice["roles"] == []
    assert alice["apiKeyFirstLetters"] == key[:3]  # the demo's admin is a root user
    assert alice["lastUsedAt"] != "0001-01-01T00:00:00.000Z"
    static = next(u for u in users if u["userId"] == "admin")
    assert static["dbUserType"] == "db_env_user" and "apiKeyFirstLetters" not in static
    assert call(sb, "DELETE", "/v1/users/db/alice-1").status_code == 204


def test_create_errors_in_the_spec_order(sb: Sandbox) -> None:
    creds = sb.credentials
    assert creds is not None
    bad = call(sb, "POST", "/v1/users/db/1bad", creds.readonly_api_key, json={})
    assert (bad.status_code, message(bad)) == (422, "'1bad' is not a valid user name")
    forbidden = call(sb, "POST", "/v1/users/db/bob", creds.readonly_api_key, json={})
    assert forbidden.status_code == 403
    assert message(forbidden) == (
        "rbac: authorization, forbidden action: user 'reader' has insufficient permissions to "
        "create_users [[Domain: users, User: bob]]"
    )
    clash = call(sb, "POST", "/v1/users/db/reader", json={})
    assert (clash.status_code, message(clash)) == (409, "user 'reader' already exists")
    assert call(sb, "POST", "/v1/users/db/bob", json={}).status_code == 201
    again = call(sb, "POST", "/v1/users/db/bob", json={})
    assert (again.status_code, message(again)) == (409, "user 'bob' already exists")
    call(sb, "DELETE", "/v1/users/db/bob")


def test_viewer_sees_no_users_and_no_roles(sb: Sandbox) -> None:
    creds = sb.credentials
    assert creds is not None
    assert call(sb, "GET", "/v1/users/db", creds.readonly_api_key).json() == []
    assert call(sb, "GET", "/v1/authz/roles", creds.readonly_api_key).json() == []
    assert call(sb, "GET", "/v1/users/db/admin", creds.readonly_api_key).status_code == 403


def test_deactivate_revoke_activate_rotate(sb: Sandbox) -> None:
    key = call(sb, "POST", "/v1/users/db/carol", json={}).json()["apikey"]
    assert call(sb, "POST", "/v1/users/db/carol/deactivate", json={"revoke_key": False}).status_code == 200
    dead = call(sb, "GET", "/v1/meta", key)
    assert dead.json() == {"code": 401, "message": "unauthorized: invalid api key: user deactivated"}
    again = call(sb, "POST", "/v1/users/db/carol/deactivate", json={})
    assert (again.status_code, again.content) == (409, b"")
    assert call(sb, "POST", "/v1/users/db/carol/activate").status_code == 200
    assert call(sb, "GET", "/v1/meta", key).status_code == 200
    assert call(sb, "POST", "/v1/users/db/carol/activate").status_code == 409
    call(sb, "POST", "/v1/users/db/carol/deactivate", json={"revoke_key": True})
    call(sb, "POST", "/v1/users/db/carol/activate")
    revoked = call(sb, "GET", "/v1/meta", key)
    assert revoked.json()["message"] == "unauthorized: invalid api key: key is revoked"
    rotated = call(sb, "POST", "/v1/users/db/carol/rotate-key", json={})
    assert rotated.status_code == 200
    new = rotated.json()["apikey"]
    assert call(sb, "GET", "/v1/meta", new).status_code == 200
    assert call(sb, "GET", "/v1/meta", key).status_code == 401
    call(sb, "DELETE", "/v1/users/db/carol")
    assert call(sb, "GET", "/v1/meta", new).status_code == 401


def test_rotation_kills_the_old_key_on_grpc_too(sb: Sandbox) -> None:
    grpc = pytest.importorskip("grpc", reason="grpcio comes with the 'client' extra")
    pytest.importorskip("weaviate", reason="the generated stubs come with the official client")
    from weaviate.proto.v1 import search_get_pb2, weaviate_pb2_grpc

    key = call(sb, "POST", "/v1/users/db/dave", json={}).json()["apikey"]
    call(sb, "POST", "/v1/authz/users/dave/assign", json={"roles": ["viewer"], "userType": "db"})
    with grpc.insecure_channel(f"127.0.0.1:{sb.weaviate.grpc_port}") as channel:
        stub = weaviate_pb2_grpc.WeaviateStub(channel)
        request = search_get_pb2.SearchRequest(collection="Article", uses_127_api=True)
        stub.Search(request, metadata=[("authorization", f"Bearer {key}")], timeout=5)
        call(sb, "POST", "/v1/users/db/dave/rotate-key", json={})
        with pytest.raises(grpc.RpcError) as err:
            stub.Search(request, metadata=[("authorization", f"Bearer {key}")], timeout=5)
    assert err.value.code() == grpc.StatusCode.UNKNOWN and "unauthorized" in err.value.details()
    call(sb, "DELETE", "/v1/users/db/dave")


def test_static_root_and_own_user_are_refused(sb: Sandbox) -> None:
    creds = sb.credentials
    assert creds is not None
    static = call(sb, "POST", "/v1/users/db/reader/rotate-key", json={})
    assert (static.status_code, message(static)) == (422, "user 'reader' is static user")
    root = call(sb, "DELETE", "/v1/users/db/admin")
    assert (root.status_code, message(root)) == (422, "cannot delete root user")
    key = call(sb, "POST", "/v1/users/db/erin", json={}).json()["apikey"]
    call(sb, "POST", "/v1/authz/users/erin/assign", json={"roles": ["admin"], "userType": "db"})
    own = call(sb, "POST", "/v1/users/db/erin/deactivate", key, json={})
    assert (own.status_code, message(own)) == (422, "user 'erin' cannot self-deactivate")  # before 1.33.17
    assert call(sb, "DELETE", "/v1/users/db/nobody").status_code == 404
    call(sb, "DELETE", "/v1/users/db/erin")


def test_roles_assign_and_revoke(sb: Sandbox) -> None:
    call(sb, "POST", "/v1/users/db/frank", json={})
    names = [r["name"] for r in call(sb, "GET", "/v1/authz/roles").json()]
    assert "root" in names and "viewer" in names  # a root caller sees root
    body = {"roles": ["viewer"], "userType": "db"}
    assert call(sb, "POST", "/v1/authz/users/frank/assign", json=body).status_code == 200
    roles = call(sb, "GET", "/v1/authz/users/frank/roles/db").json()
    assert roles == [{"name": "viewer", "permissions": None}]
    assert call(sb, "GET", "/v1/authz/users/frank/roles/x").status_code == 400
    assert call(sb, "GET", "/v1/authz/users/ghost/roles/db").status_code == 404
    nope = call(sb, "POST", "/v1/authz/users/frank/assign", json={"roles": ["nope"], "userType": "db"})
    assert (nope.status_code, message(nope)) == (404, "one or more of the roles requested doesn't exist")
    ghost = call(sb, "POST", "/v1/authz/users/ghost/assign", json=body)
    assert (ghost.status_code, message(ghost)) == (404, "username to assign role to doesn't exist")
    assert call(sb, "POST", "/v1/authz/users/frank/assign", json={"roles": ["root"]}).status_code == 403
    assert call(sb, "POST", "/v1/authz/users/frank/assign", json={"roles": [""]}).status_code == 400
    assert call(sb, "POST", "/v1/authz/users/frank/revoke", json=body).status_code == 200
    assert call(sb, "GET", "/v1/authz/users/frank/roles/db").json() == []
    call(sb, "DELETE", "/v1/users/db/frank")


def test_before_1_30_the_paths_do_not_exist() -> None:
    with Sandbox.demo(version="1.29.3") as old:
        response = call(old, "GET", "/v1/users/db")
        assert response.status_code == 404
        assert response.json() == {"code": 404, "message": "path /v1/users/db was not found"}


def test_1_30_0_has_no_key_prefix_and_prints_empty_resources() -> None:
    with Sandbox.demo(version="1.30.0") as early:
        creds = early.credentials
        assert creds is not None
        call(early, "POST", "/v1/users/db/gina", json={})
        user = call(early, "GET", "/v1/users/db/gina").json()
        assert "apiKeyFirstLetters" not in user and "lastUsedAt" not in user
        denied = call(early, "POST", "/v1/users/db/hank", creds.readonly_api_key, json={})
        assert message(denied).endswith("create_users []")


def test_db_users_switched_off() -> None:
    with Sandbox.demo(version="1.33.2") as off:
        off.weaviate.config.db_users_enabled = False
        assert call(off, "GET", "/v1/users/db").json() == []
        created = call(off, "POST", "/v1/users/db/ivy", json={})
        assert (created.status_code, created.json()) == (422, NOT_ENABLED)


def test_own_user_texts_from_1_36() -> None:
    with Sandbox.demo(version="1.36.0") as new:
        key = call(new, "POST", "/v1/users/db/erin", json={}).json()["apikey"]
        call(new, "POST", "/v1/authz/users/erin/assign", json={"roles": ["admin"], "userType": "db"})
        own = call(new, "POST", "/v1/users/db/erin/deactivate", key, json={})
        assert message(own) == 'cannot deactivate its own user "erin"'
        own_delete = call(new, "DELETE", "/v1/users/db/erin", key)
        assert (own_delete.status_code, message(own_delete)) == (422, 'cannot delete its own user "erin"')
