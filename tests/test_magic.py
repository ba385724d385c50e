"""%weaviate_auth in a real IPython shell, against the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ipykernel.inprocess.manager import InProcessKernelManager
from IPython.core.interactiveshell import InteractiveShell

from weaviate_auth_widget import oidc
from weaviate_auth_widget.magic import SecretOnLine, refuse_secrets
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import Sandbox
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService
from weaviate_auth_widget.widget import NEW_PROFILE, LoginPanel


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    import weaviate_auth_widget.kernel as kernel

    oidc.discovery_cache.clear()
    service = AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path))
    monkeypatch.setattr(kernel, "get_backend", lambda *a, **k: service)
    # a kernel's shell, as in Jupyter (ipykernel, in this process): widgets can show
    InteractiveShell.clear_instance()
    manager = InProcessKernelManager()
    manager.start_kernel()
    ip = manager.kernel.shell
    ip.run_line_magic("load_ext", "weaviate_auth_widget")
    ip.user_ns.pop("weaviate_session", None)
    ip.service = service
    yield ip
    service.close()
    manager.shutdown_kernel()
    type(ip).clear_instance()


@pytest.mark.parametrize(
    "line",
    [
        "--api-key abc",
        "prod --password hunter2",
        "api_key=abc",
        "prod token=xyz",
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "Zk3u9QpL2mXv8RtY6wN1bC4hJ7sA0dE5",
        "'has space'",
    ],
)
def test_secrets_on_the_line_are_refused(line: str) -> None:
    with pytest.raises(SecretOnLine, match=r"panel|profile name"):
        refuse_secrets(line)


def test_profile_names_pass(shell: Any) -> None:
    for line in ("", "prod", "--list", "--as s prod", "--logout my-cluster.eu_1"):
        refuse_secrets(line)


def test_connect_by_profile_binds_the_session(
    shell: Any, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.service.save_profile(
        Profile(name="sbx", url=sandbox.weaviate_url), {"api_key": sandbox.credentials.admin_api_key}
    )
    shell.run_line_magic("weaviate_auth", "sbx --as ws")
    out = capsys.readouterr().out
    assert "Connected to" in out and "admin" in out and "`ws`" in out
    assert shell.user_ns["ws"].meta()["version"] == sandbox.weaviate_config.version
    assert shell.run_line_magic("weaviate_auth", "--whoami --as ws")["username"] == "admin"
    table = shell.run_line_magic("weaviate_auth", "--list")
    assert "sbx" in table.data and sandbox.credentials.admin_api_key not in table.data
    shell.run_line_magic("weaviate_auth", "--logout sbx")
    shell.run_line_magic("weaviate_auth", "--forget sbx")
    assert shell.service.profile_views() == []


def test_no_profile_or_no_secret_shows_the_panel(shell: Any, sandbox: Sandbox) -> None:
    assert isinstance(shell.run_line_magic("weaviate_auth", ""), LoginPanel)
    shell.service.save_profile(Profile(name="nokey", url=sandbox.weaviate_url, remember=False))
    panel = shell.run_line_magic("weaviate_auth", "nokey")
    assert isinstance(panel, LoginPanel) and panel.profiles.value == "nokey"
    panel.api_key.value = sandbox.credentials.admin_api_key
    panel.connect()
    assert shell.user_ns["weaviate_session"] is panel.session


def test_errors_are_printed_not_raised(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_line_magic("weaviate_auth", "--api-key zzz")
    assert "not accepted on the %weaviate_auth line" in capsys.readouterr().out
    shell.run_line_magic("weaviate_auth", "--forget nothing-here")
    assert "no saved profile named" in capsys.readouterr().out
    shell.run_line_magic("weaviate_auth", "--as 1bad prod")
    assert "variable name" in capsys.readouterr().out


def test_an_unknown_profile_opens_the_panel_with_the_name_as_a_new_profile(
    shell: Any, sandbox: Sandbox
) -> None:
    shell.service.save_profile(Profile(name="127.0.0.1", url=sandbox.weaviate_url), {"api_key": "k-1234567"})
    panel = shell.run_line_magic("weaviate_auth", "sandbox")
    assert isinstance(panel, LoginPanel)
    assert panel.profiles.value == NEW_PROFILE and panel.name.value == "sandbox"
    assert "No profile &#x27;sandbox&#x27;; saved: 127.0.0.1." in panel.status.value


def test_a_kernel_interrupt_cancels_a_device_sign_in_and_keeps_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A real kernel (no broker: in-process): ``%weaviate_auth sso`` shows the device code
    and waits; the kernel's interrupt ends the wait at once with one line, no traceback,
    and nothing is kept."""
    import queue

    from jupyter_client.manager import start_new_kernel

    from tests.test_kernel_broker import server_env

    env = {**server_env(tmp_path), "SANDBOX_URL": sandbox.weaviate_url}
    manager, client = start_new_kernel(kernel_name="python3", env=env)
    try:
        setup = (
            "import os, weaviate_auth_widget as waw\n"
            "%load_ext weaviate_auth_widget\n"
            "waw.default_service().save_profile(waw.Profile(name='sso', url=os.environ['SANDBOX_URL'],"
            " method='browser'))\n"
        )
        assert client.execute_interactive(setup, timeout=90)["content"]["status"] == "ok"
        msg_id = client.execute("%weaviate_auth sso")
        shown, streams, errors = "", [], []
        while "with the code" not in shown:  # the device code is on screen: polling now
            message = client.get_iopub_msg(timeout=60)
            if message["parent_header"].get("msg_id") == msg_id and message["msg_type"] == "display_data":
                shown += message["content"]["data"].get("text/html", "")
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=30)  # not polling on until the code expires
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok"
        while True:
            try:
                message = client.get_iopub_msg(timeout=5)
            except queue.Empty:
                break
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            if message["msg_type"] == "stream":
                streams.append(message["content"]["text"])
            elif message["msg_type"] == "error":
                errors.append(message["content"])
            elif message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
        assert not errors and "".join(streams).strip() == "weaviate_auth: cancelled.", (streams, errors)
        check = (
            "svc = waw.default_service()\n"
            "print(svc.kept_secrets(svc.get_profile('sso')), svc.identity('sso'))\n"
        )
        out: list[str] = []
        client.execute_interactive(
            check, timeout=60, output_hook=lambda m: out.append(m["content"].get("text", ""))
        )
        assert "".join(out).strip() == "[] None"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
