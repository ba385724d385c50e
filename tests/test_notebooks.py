"""Every notebook in notebooks/ runs top to bottom with nbclient against the sandbox
(its non-interactive path: a profile saved beforehand; the panel cell just renders)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import Sandbox
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture
def sandbox(sandbox_default_grpc: Sandbox) -> Sandbox:
    """The quickstart's `weaviate_client()` passes no gRPC port, as users run it."""
    sandbox_default_grpc.reset_stats()
    return sandbox_default_grpc


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_against_the_sandbox(
    path: Path, tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    key = sandbox.credentials.admin_api_key
    service = AuthService(directory=store, secrets=SecretStore("file", directory=store))
    service.save_profile(Profile(name="sandbox", url=sandbox.weaviate_url), {"api_key": key})
    service.close()
    for name, value in {
        "WEAVIATE_AUTH_DIR": str(store),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",  # the file store, as saved above
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WEAVIATE_AUTH_BROKER_FILE", raising=False)

    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    outputs = json.dumps([cell.get("outputs", []) for cell in nb.cells])
    assert "Traceback" not in outputs and '"output_type": "error"' not in outputs
    assert key not in outputs
    if path.name == "quickstart.ipynb":
        assert "Connected to" in outputs and "Hello, Weaviate" in outputs
        assert '\\"username\\": \\"admin\\"' in outputs or "'username': 'admin'" in outputs
        # the official client's section ran its gRPC query (with the login's token)
        assert "9f0b3c1e-6a35-4d1f-9a0e-0d1c8f4b2a02 Tokens expire" in outputs
        searches = [c for c in sandbox.weaviate.grpc_calls if c.method == "Search"]
        assert [c.username for c in searches] == ["admin"]
