"""The Keys section (keys_panel.py) and ``%weaviate_auth --keys``, in-process against
the sandbox: the table, create (key kept as a profile, never in widget state), rotate
with a confirmation, delete only after Confirm, the hook into the login panel, and the
terminal's text table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_magic import shell  # noqa: F401  (fixture: a kernel's IPython shell)
from tests.test_widget import all_widget_state
from weaviate_auth_widget.keys_panel import KeysPanel, attach_keys
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import Sandbox
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService
from weaviate_auth_widget.widget import LoginPanel


@pytest.fixture
def service(tmp_path: Path, sandbox: Sandbox) -> Any:
    svc = AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path))
    creds = sandbox.credentials
    svc.save_profile(Profile("admin", sandbox.weaviate_url), {"api_key": creds.admin_api_key})
    svc.save_profile(Profile("viewer", sandbox.weaviate_url), {"api_key": creds.readonly_api_key})
    yield svc
    for user in svc.keys.list_users("admin"):
        if not user.static:
            svc.keys.delete_user("admin", user.user_id)
    svc.close()


def key_of(service: AuthService, name: str) -> str:
    profile = service.get_profile(name)
    value = service.secrets.get(name, "api_key", scope=profile.secret_scope)
    assert value
    return str(value)


def buttons(panel: KeysPanel, user: str) -> dict[str, Any]:
    for row in panel.table.children[1:]:
        if user in row.children[0].value:
            return {b.description: b for b in row.children if hasattr(b, "on_click")}
    raise AssertionError(f"no row for {user}")


def test_create_rotate_delete_from_the_panel(service: AuthService, sandbox: Sandbox) -> None:
    panel = KeysPanel(service, "admin")
    assert any("admin" in row.children[0].value for row in panel.table.children[1:])
    panel.new_user.value, panel.new_profile.value, panel.new_roles.value = "pia", "pia", "viewer"
    panel.create_button.click()
    first = key_of(service, "pia")
    assert "Created user pia" in panel.message.value and panel.copy_profile.value == "pia"
    assert service.login("pia").username == "pia"

    buttons(panel, "pia")["Rotate key"].click()
    assert panel.confirm_box.layout.display == "flex" and key_of(service, "pia") == first
    panel.confirm_box.children[1].click()  # Confirm
    second = key_of(service, "pia")
    assert second != first and "Rotated" in panel.message.value

    buttons(panel, "pia")["Delete"].click()
    panel.confirm_box.children[2].click()  # Cancel: nothing happens
    assert any("pia" in row.children[0].value for row in panel.table.children[1:])
    buttons(panel, "pia")["Delete"].click()
    panel.confirm_box.children[1].click()
    assert not any("pia" in row.children[0].value for row in panel.table.children[1:])

    state = all_widget_state(panel)  # type: ignore[arg-type]
    assert first not in state and second not in state
    assert not panel.copy_button.available  # in-process: no broker to copy from


def test_errors_are_shown_with_their_fix(service: AuthService) -> None:
    panel = KeysPanel(service, "viewer")
    panel.new_user.value = "quin"
    panel.create_button.click()
    assert "create_users" in panel.message.value and "admin or root" in panel.message.value


def test_the_login_panel_shows_keys_only_for_profiles_that_can_read_users(service: AuthService) -> None:
    panel = LoginPanel(service, profile="viewer")
    slot = attach_keys(panel, service)
    panel.connect()
    assert slot.layout.display == "none" and not slot.children
    other = LoginPanel(service, profile="admin")
    slot = attach_keys(other, service)
    other.connect()
    assert slot.layout.display == "flex" and isinstance(slot.children[0], KeysPanel)


def test_magic_keys_in_a_terminal_prints_a_table(
    shell: Any,  # noqa: F811
    sandbox: Sandbox,
    capsys: pytest.CaptureFixture[str],
) -> None:
    creds = sandbox.credentials
    shell.service.save_profile(Profile("admin", sandbox.weaviate_url), {"api_key": creds.admin_api_key})
    shell.service.keys.create_user("admin", "rae", new_profile="rae")
    key = key_of(shell.service, "rae")
    shell.run_line_magic("weaviate_auth", "--keys admin --terminal")
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:2] == ["user", "type"]
    assert any(line.startswith("rae ") and "database" in line for line in out.splitlines())
    assert key not in out
    panel = shell.run_line_magic("weaviate_auth", "--keys admin")
    assert isinstance(panel, KeysPanel)
    shell.service.keys.delete_user("admin", "rae")


def test_rotating_a_key_no_profile_holds_asks_for_a_profile_name(service: AuthService) -> None:
    panel = KeysPanel(service, "admin")
    service.keys.create_user("admin", "sol", new_profile="sol")
    service.forget("sol")
    panel.refresh()
    buttons(panel, "sol")["Rotate key"].click()
    panel.confirm_box.children[1].click()
    assert "would be lost" in panel.message.value and "Profile field" in panel.message.value
    panel.new_profile.value = "sol-new"
    buttons(panel, "sol")["Rotate key"].click()
    panel.confirm_box.children[1].click()
    assert "Updated: sol-new" in panel.message.value
    assert service.login("sol-new").username == "sol"


def test_roles_and_deactivation_with_revocation(service: AuthService, sandbox: Sandbox) -> None:
    import httpx

    panel = KeysPanel(service, "admin")
    service.keys.create_user("admin", "tom", new_profile="tom")
    panel.refresh()
    panel.role_user.value, panel.role_names.value = "tom", "viewer"
    panel.assign_button.click()
    assert {u.user_id: u.roles for u in service.keys.list_users("admin")}["tom"] == ("viewer",)
    panel.revoke_roles_button.click()
    assert {u.user_id: u.roles for u in service.keys.list_users("admin")}["tom"] == ()
    key = key_of(service, "tom")
    panel.revoke_key.value = True
    buttons(panel, "tom")["Deactivate"].click()
    panel.confirm_box.children[1].click()
    buttons(panel, "tom")["Activate"].click()
    reply = httpx.get(
        sandbox.weaviate_url + "/v1/meta", headers={"Authorization": f"Bearer {key}"}, timeout=5
    )
    assert reply.status_code == 401 and "revoked" in reply.text
