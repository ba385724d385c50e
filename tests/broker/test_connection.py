"""The connection file kernels use, its environment variable, and how the extension is enabled."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from weaviate_auth_widget.broker import BROKER_FILE_ENV, BROKER_HEADER
from weaviate_auth_widget.broker.auth import local_user
from weaviate_auth_widget.broker.connection import broker_url, local_host
from weaviate_auth_widget.broker.proof import broker_proof, new_nonce, proof_matches

from .conftest import API

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = REPO / "jupyter-config" / "server-config" / "weaviate_auth_widget.json"


def test_connection_file(
    broker_app: Any,
    broker: Any,
    jp_serverapp: Any,
    http_server: Any,
    jp_http_port: int,
    jp_base_url: str,
    jp_asyncio_loop: Any,
) -> None:
    path = Path(jp_serverapp.runtime_dir) / f"weaviate-auth-broker-{os.getpid()}.json"
    assert os.environ[BROKER_FILE_ENV] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    content = json.loads(path.read_text())
    assert content == {
        "url": f"http://127.0.0.1:{jp_http_port}{jp_base_url}weaviate-auth/api/",
        "token": broker.token,
        "pid": os.getpid(),
        "user": local_user(),
    }
    # only the path is in the environment kernels inherit, never the token
    assert not any(broker.token in value for value in os.environ.values())

    # a process on this host reaches the broker with what the file says
    def kernel_side() -> httpx.Response:
        return httpx.get(
            content["url"] + "status", headers={BROKER_HEADER: content["token"]}, trust_env=False
        )

    response = jp_asyncio_loop.run_until_complete(jp_asyncio_loop.run_in_executor(None, kernel_side))
    assert response.status_code == 200 and response.json()["mode"] == "broker"

    jp_asyncio_loop.run_until_complete(broker_app.stop_extension())
    assert not path.exists()
    assert BROKER_FILE_ENV not in os.environ


@pytest.mark.parametrize(("broker_environ"), [{"JUPYTERHUB_USER": "alice"}])
def test_connection_file_names_the_hub_user(broker_app: Any, jp_serverapp: Any) -> None:
    content = json.loads(Path(os.environ[BROKER_FILE_ENV]).read_text())
    assert content["user"] == "alice"


def test_stop_leaves_another_servers_file_alone(broker_app: Any, jp_asyncio_loop: Any) -> None:
    path = Path(os.environ[BROKER_FILE_ENV])
    path.write_text('{"url": "http://127.0.0.1:1/", "token": "someone else"}')
    jp_asyncio_loop.run_until_complete(broker_app.stop_extension())
    assert path.exists()


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("", "127.0.0.1"),
        ("0.0.0.0", "127.0.0.1"),
        ("localhost", "127.0.0.1"),
        ("::", "[::1]"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "[::1]"),
        ("10.1.2.3", "10.1.2.3"),
        ("fe80::1", "[fe80::1]"),
        ("jupyter.internal", "jupyter.internal"),
    ],
)
def test_local_host(ip: str, expected: str) -> None:
    assert local_host(ip) == expected


def test_broker_url_shapes() -> None:
    assert broker_url(ip="", port=8888, base_url="/") == "http://127.0.0.1:8888/weaviate-auth/api/"
    assert (
        broker_url(ip="0.0.0.0", port=443, base_url="/user/alice/", https=True)
        == "https://127.0.0.1:443/user/alice/weaviate-auth/api/"
    )
    assert (
        broker_url(ip="", port=0, base_url="/x/", sock="/run/jupyter.sock")
        == "http+unix://%2Frun%2Fjupyter.sock/x/weaviate-auth/api/"
    )


def test_pip_install_enables_the_extension(tmp_path: Path) -> None:
    """``jupyter server extension list``, with the venv's jupyter, shows it enabled and OK."""
    shipped = json.loads(SHIPPED_CONFIG.read_text())
    (module,) = shipped["ServerApp"]["jpserver_extensions"]
    installed = Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.d" / SHIPPED_CONFIG.name
    assert json.loads(installed.read_text()) == shipped, "reinstall: pip install -e ."
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "WEAVIATE_"))},
        "HOME": str(tmp_path),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "NO_COLOR": "1",
    }
    jupyter = Path(sys.executable).with_name("jupyter")
    result = subprocess.run(
        [str(jupyter), "server", "extension", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    output = (result.stdout + result.stderr).replace("\x1b[32m", "").replace("\x1b[0m", "")
    assert result.returncode == 0, output
    lines = [line.strip() for line in output.splitlines()]
    assert f"{module} enabled" in lines, output
    assert any(line.startswith(module) and line.endswith("OK") for line in lines), output


def test_the_broker_proves_it_holds_its_token(broker: Any, raw_request: Any, api: Any) -> None:
    """``GET proof`` needs no credentials (a kernel asks before it sends any) and answers
    HMAC(broker token, nonce): nothing else, and nothing secret."""
    nonce = new_nonce()
    reply = raw_request("GET", f"{API}proof?nonce={nonce}")
    assert reply.code == 200 and reply.json() == {"proof": broker_proof(broker.token, nonce)}
    assert proof_matches(broker.token, nonce, reply.json()["proof"])
    assert not proof_matches("another token", nonce, reply.json()["proof"])
    assert broker.token not in reply.text
    for bad in ("", "?nonce=xyz", f"?nonce={nonce.upper()}", f"?nonce={nonce}&nonce={nonce}", "?nonce=ab"):
        refused = raw_request("GET", f"{API}proof{bad}")
        assert refused.code == 400 and refused.error_code == "bad_request", bad
    wrong = raw_request("GET", f"{API}proof?nonce={nonce}", headers={BROKER_HEADER: "wrong"})
    assert wrong.code == 403
    assert api("GET", f"proof?nonce={nonce}", auth="kernel").json()["proof"] == broker_proof(
        broker.token, nonce
    )
