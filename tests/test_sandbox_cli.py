"""``python -m weaviate_auth_widget.sandbox`` as a newcomer meets it: stable addresses and
demo credentials across runs, a clear message when a port is taken or an extra is missing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import closed_port
from weaviate_auth_widget.sandbox.demo_setup import DEFAULT_IDP_PORT, DEFAULT_PORT, SEED_FILE

SANDBOX = [sys.executable, "-m", "weaviate_auth_widget.sandbox"]

# joserfc made unimportable, as after `pip install weaviate-auth-widget` without the extra
BLOCK_JOSERFC = """
import runpy, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "joserfc" or name.startswith("joserfc."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
sys.argv = ["weaviate_auth_widget.sandbox", *sys.argv[1:]]
runpy.run_module("weaviate_auth_widget.sandbox", run_name="__main__", alter_sys=True)
"""


def env_for(store: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "WEAVIATE_AUTH_DIR": str(store), **extra}


@contextmanager
def running(*args: str, env: dict[str, str]) -> Iterator[dict[str, Any]]:
    with subprocess.Popen(
        [*SANDBOX, "--json", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            yield json.loads(line)
        finally:
            proc.terminate()
            proc.wait(10)


def test_fixed_default_ports_and_the_same_credentials_at_every_start(tmp_path: Path) -> None:
    parser_help = subprocess.run(
        [*SANDBOX, "--help"], capture_output=True, text=True, timeout=30, env=env_for(tmp_path)
    ).stdout
    assert f"default {DEFAULT_PORT}" in parser_help and f"default {DEFAULT_IDP_PORT}" in parser_help
    port, idp_port = closed_port(), closed_port()
    env = env_for(
        tmp_path,
        WEAVIATE_SANDBOX_PORT=str(port),
        WEAVIATE_SANDBOX_IDP_PORT=str(idp_port),
        WEAVIATE_SANDBOX_GRPC_PORT="0",
    )
    seen = []
    for _ in range(2):
        with running(env=env) as info:
            assert info["weaviate_url"] == f"http://127.0.0.1:{port}"
            assert info["idp_url"] == f"http://127.0.0.1:{idp_port}"
            key = info["credentials"]["admin_api_key"]
            meta = httpx.get(info["weaviate_url"] + "/v1/meta", headers={"Authorization": f"Bearer {key}"})
            assert meta.status_code == 200
            seen.append(info["credentials"])
    assert seen[0] == seen[1]
    seed = tmp_path / SEED_FILE
    assert seed.stat().st_mode & 0o777 == 0o600
    assert key not in seed.read_text()  # the seed, not the credentials, is kept
    with running(
        "--port", "0", "--idp-port", "0", "--grpc-port", "0", "--fresh-credentials", env=env
    ) as info:
        assert info["credentials"]["admin_api_key"] != key
        assert info["weaviate_url"] != f"http://127.0.0.1:{port}"


def test_a_taken_port_names_the_port_and_the_flag(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*SANDBOX, "--port", str(port), "--idp-port", "0", "--grpc-port", "0"],
            capture_output=True,
            text=True,
            timeout=30,
            env=env_for(tmp_path),
        )
    assert result.returncode == 1
    assert f"port {port} (the Weaviate double) is already in use" in result.stderr
    assert "--port N or WEAVIATE_SANDBOX_PORT=N" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_the_sandbox_extra_it_says_which_to_install(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_JOSERFC, "--port", "0", "--idp-port", "0", "--grpc-port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env_for(tmp_path),
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: the sandbox needs the 'sandbox' extra: pip install 'weaviate-auth-widget[sandbox]'"
    ]
    assert result.stdout == ""
