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
