"""The README as a script: every code block in README.md runs as written, against the sandbox.

Python blocks run as scripts in a fresh interpreter (``WEAVIATE_URL`` is the sandbox, the
hidden prompts read the answers from standard input, as ``getpass`` does without a
terminal), in the README's order and on one store, as a reader would run them. Blocks of
``%`` magics run in a real kernel with nbclient. Blocks that cannot run here say why in
``NOT_RUN``; a new block that is neither run nor listed fails the test.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from weaviate_auth_widget.sandbox import Sandbox
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService

README = Path(__file__).parent.parent / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)

#: Blocks that cannot run in a test, by their first line, and why.
NOT_RUN = {
    "make run ": "starts the sandbox and JupyterLab until Ctrl-C, in a venv it creates; "
    "tests/test_first_run.py runs what it runs (scripts/run.sh) twice in a row",
    "make test ": "is this test suite (and installs system packages); CI runs it",
}
#: The first line of the block run in a terminal by ``test_the_terminal_block_runs_in_a_terminal``.
TERMINAL_BLOCK = "# log in (creating the profile)"
#: Blocks that run but fail today, by a marker in their text: the test fails once they work,
#: so the entry is dropped then.
KNOWN_BROKEN: dict[str, str] = {}


@pytest.fixture
def sandbox(sandbox_default_grpc: Sandbox) -> Sandbox:
    """A reader's cluster, gRPC where the README's `weaviate_client()` (no arguments) looks."""
    sandbox_default_grpc.reset_stats()
    return sandbox_default_grpc


def blocks(language: str) -> list[str]:
    return [code for lang, code in FENCE.findall(README.read_text()) if lang == language]


def is_magic(code: str) -> bool:
    return any(line.startswith("%") for line in code.splitlines())


def reader_env(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AuthService:
    """What a reader has: their cluster in WEAVIATE_URL and their own (here: empty) store."""
    for name, value in {
        "WEAVIATE_URL": sandbox.weaviate_url,
        "WEAVIATE_AUTH_DIR": str(tmp_path / "store"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",  # the file store
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("WEAVIATE_API_KEY", "WEAVIATE_PROFILE", "WEAVIATE_AUTH_BROKER_FILE"):
        monkeypatch.delenv(name, raising=False)
    store = tmp_path / "store"
    return AuthService(directory=store, secrets=SecretStore("file", directory=store))


def answers(sandbox: Sandbox) -> str:
    """What the reader types at the prompts: API key, username, password, OpenAI key."""
    creds = sandbox.credentials
    return "\n".join([creds.admin_api_key, creds.username, creds.password, "sk-readme-test", ""])


def run_block(code: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,  # no terminal: getpass reads standard input, as in a pipeline
    )


def secrets_of(sandbox: Sandbox) -> list[str]:
    creds = sandbox.credentials
    return [creds.admin_api_key, creds.password, "sk-readme-test"]


def test_every_block_is_run_or_says_why() -> None:
    text = README.read_text()
    found = FENCE.findall(text)
    assert text.count("\n```") == 2 * len(found), "a fence the pattern does not read (```lang extra?)"
    assert {lang for lang, _ in found} <= {"python", "bash", ""}
    untagged = [code for lang, code in found if lang == ""]
    assert len(untagged) == 1 and untagged[0].startswith("weaviate_auth_widget/")  # the layout tree
    for code in blocks("bash"):
        assert code.startswith(TERMINAL_BLOCK) or any(code.startswith(first) for first in NOT_RUN), (
            f"a bash block neither run nor listed:\n{code}"
        )
    assert len(blocks("python")) >= 5


def test_python_blocks_run_as_scripts(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = reader_env(sandbox, tmp_path, monkeypatch)
    scripts = [code for code in blocks("python") if not is_magic(code)]
    assert any("async with" in code for code in scripts)
    for code in scripts:
        result = run_block(code, answers(sandbox))
        broken = [why for marker, why in KNOWN_BROKEN.items() if marker in code]
        if broken:
            assert result.returncode != 0, f"this README block runs now: drop it from KNOWN_BROKEN\n{code}"
            continue
        assert result.returncode == 0, f"{code}\n--- stderr:\n{result.stderr}"
        for secret in secrets_of(sandbox):
            assert secret not in result.stdout + result.stderr
    assert {p.name for p in service.profiles.list()} == {"prod", "lab"}
    requests = sandbox.weaviate.requests
    assert {r.username for r in requests if r.path == "/v1/users/own-info"} >= {"admin"}
    assert any(r.path == "/v1/schema" and r.username == sandbox.credentials.username for r in requests)
    assert any("x-openai-api-key" in r.headers for r in requests)
    assert {c.code for c in sandbox.weaviate.grpc_calls} == {"OK"} and sandbox.weaviate.grpc_calls
    service.close()


def test_magic_blocks_run_in_a_kernel(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = reader_env(sandbox, tmp_path, monkeypatch)
    saves_prod = next(code for code in blocks("python") if 'Profile(name="prod"' in code)
    assert run_block(saves_prod, answers(sandbox)).returncode == 0  # the profile the magics use
    magics = [code for code in blocks("python") if is_magic(code)]
    assert magics[0].startswith("%load_ext weaviate_auth_widget")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in magics])
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = json.dumps([cell.outputs for cell in nb.cells])
    assert '"output_type": "error"' not in outputs and "weaviate_auth:" not in outputs, outputs
    assert "application/vnd.jupyter.widget-view+json" in json.dumps(nb.cells[0].outputs)  # the panel
    assert outputs.count(f"Connected to {sandbox.weaviate_url} as admin") == 2
    assert "session in `ws`" in outputs and "Logged out of prod." in outputs and "Forgot prod" in outputs
    for secret in secrets_of(sandbox):
        assert secret not in outputs
    assert [p.name for p in service.profiles.list()] == ["lab"]  # --forget prod removed prod
    service.close()


def test_the_terminal_block_runs_in_a_terminal(sandbox: Sandbox, tmp_path: Path) -> None:
    """The `weaviate-auth` block, as written, in bash under a pseudo-terminal: the hidden
    prompts get the reader's answers; `weaviate-auth` is the package's command."""
    import io
    import os

    import pexpect

    (code,) = [c for c in blocks("bash") if c.startswith(TERMINAL_BLOCK)]
    creds = sandbox.credentials
    bin_dir = Path(sys.executable).parent  # the installed `weaviate-auth` console script
    assert (bin_dir / "weaviate-auth").exists(), "pip install -e . installs the weaviate-auth command"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEAVIATE_", "JUPYTER_", "JPY_"))}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    env.update(
        PATH=f"{bin_dir}:{env['PATH']}",
        HOME=str(tmp_path / "home"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),  # no Jupyter server: in-process
        WEAVIATE_AUTH_DIR=str(tmp_path / "store"),
        WEAVIATE_AUTH_STORE_BACKEND="file",
        WEAVIATE_URL=sandbox.weaviate_url,
        WEAVIATE_USER=creds.username,
    )
    child = pexpect.spawn(
        "bash", ["--norc", "--noprofile", "-e", "-c", code], env=env, encoding="utf-8", timeout=60
    )
    child.logfile_read = screen = io.StringIO()  # everything the terminal shows
    child.expect("API key: ")
    child.sendline(creds.admin_api_key)
    child.expect("Password: ")
    child.sendline(creds.password)
    child.expect(pexpect.EOF)
    child.close()
    shown = screen.getvalue()
    assert child.exitstatus == 0, shown
    for secret in secrets_of(sandbox):
        assert secret not in shown
    assert shown.count(f"Logged in to {sandbox.weaviate_url} as admin") == 3  # prod, ci, prod again
    assert f"user:     {creds.username}" in shown
    assert '"classes"' in shown and f'"version":"{sandbox.weaviate_config.version}"' in shown
    assert "reader" in shown  # keys list: the static user of the read-only key
    store = tmp_path / "store"
    service = AuthService(directory=store, secrets=SecretStore("file", directory=store))
    assert {p.name for p in service.profiles.list()} == {"prod", "ci"}
    service.close()
