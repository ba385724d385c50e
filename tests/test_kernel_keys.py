"""BrokerClient.keys over a real Jupyter server's broker (a subprocess): every action,
rotation while the kernel side's session runs, and copy-key refused to the broker token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_kernel_broker import JupyterServer, broker_token, isolated  # noqa: F401
from weaviate_auth_widget.errors import NotOwner, PermissionDenied, UserRefused
from weaviate_auth_widget.kernel import BROKER_FILE_ENV, BROKER_HEADER, BrokerClient
from weaviate_auth_widget.profiles import Profile


def test_keys_through_the_broker(
    sandbox: Any,
    isolated: dict[str, str],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    creds = sandbox.credentials
    server = JupyterServer(isolated, tmp_path / "root").start()
    try:
        monkeypatch.setenv(BROKER_FILE_ENV, str(server.broker_file))
        client = BrokerClient()
        client.save_profile(Profile("admin", sandbox.weaviate_url), {"api_key": creds.admin_api_key})
        client.save_profile(Profile("viewer", sandbox.weaviate_url), {"api_key": creds.readonly_api_key})
        keys = client.keys
        assert keys.can_manage("admin") and not keys.can_manage("viewer")
        view = keys.create_user("admin", "uma", new_profile="uma", roles=["viewer"])
        assert view["name"] == "uma" and view["has_secret"]
        users = {u.user_id: u for u in keys.list_users("admin")}
        assert users["uma"].roles == ("viewer",) and users["admin"].static
        assert "viewer" in keys.list_roles("admin")

        session = client.session("uma")
        first = session.token_source.token().value
        assert session.meta()
        assert keys.rotate_key("admin", "uma") == ["uma"]
        assert session.meta()  # one 401, then the new key from the broker
        second = session.token_source.token().value
        assert second != first
        meta = sandbox.weaviate_url + "/v1/meta"
        assert httpx.get(meta, headers={"Authorization": f"Bearer {first}"}, timeout=5).status_code == 401

        keys.deactivate("admin", "uma", revoke_key=True)
        keys.activate("admin", "uma")
        keys.assign_roles("admin", "uma", ["admin"])
        keys.revoke_roles("admin", "uma", ["admin"])
        with pytest.raises(UserRefused, match="static user"):
            keys.delete_user("admin", "reader")
        with pytest.raises(PermissionDenied, match="create_users"):
            keys.create_user("viewer", "vic", new_profile="vic")
        copy = httpx.post(
            f"{server.url}weaviate-auth/api/profiles/uma/copy-key",
            headers={BROKER_HEADER: broker_token(server), "Content-Type": "application/json"},
            content=b"{}",
            timeout=10,
        )
        assert copy.status_code == 403 and copy.json()["error"]["code"] == NotOwner.code
        assert second not in copy.text
        keys.delete_user("admin", "uma")
        client.close()
    finally:
        server.stop()
