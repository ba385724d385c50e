"""Fixtures for the broker (jupyter-server extension) tests.

Each test gets a real Jupyter server (pytest-jupyter) with only the weaviate-auth
extension (and terminals) enabled, unauthenticated access refused, the file secret
backend in a temporary store directory, and the extension *started* (connection file
written) as ``ServerApp.start`` would. Tests customise it by parametrizing
``broker_config`` (WeaviateAuthApp traits; a value of None removes a default) and
``broker_environ`` (environment variables set before the server starts).

Any ``JupyterServerAuthWarning`` (an endpoint without ``@web.authenticated``) fails the
test, and so does any failure to load the extension.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# pytest-jupyter's server fixtures (jp_serverapp, jp_fetch, ...), for this directory only:
# a nested conftest may not declare ``pytest_plugins``, and importing them here keeps
# their hooks away from the rest of the suite.
from pytest_jupyter.jupyter_server import *  # noqa: F403
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

from weaviate_auth_widget.broker import BROKER_HEADER

API = "weaviate-auth/api/"
NOTEBOOK_VERSION = 4


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(
                pytest.mark.filterwarnings("error::jupyter_server.utils.JupyterServerAuthWarning")
            )


@pytest.fixture
def broker_config() -> dict[str, Any]:
    """WeaviateAuthApp traits for the test (parametrize to change; None removes a default)."""
    return {}


@pytest.fixture
def broker_environ() -> dict[str, str]:
    """Environment variables set before the server starts (parametrize to change)."""
    return {}


@pytest.fixture
def extra_config() -> dict[str, dict[str, Any]]:
    """More config, ``{"ServerApp": {...}, "ContentsManager": {...}}`` (parametrize to change)."""
    return {}


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    """Where a test that turns the audit log on (``broker_config``) finds it."""
    return tmp_path / "audit" / "weaviate-auth.jsonl"


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def jp_server_config(
    store_dir: Path,
    extra_config: dict[str, dict[str, Any]],
    broker_config: dict[str, Any],
    broker_environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Config:
    for name in list(os.environ):
        if name.startswith("WEAVIATE_") or name in ("JUPYTERHUB_USER",):
            monkeypatch.delenv(name)
    for name, value in broker_environ.items():
        monkeypatch.setenv(name, value)
    app: dict[str, Any] = {"store_backend": "file", "store_dir": str(store_dir)}
    for key, value in broker_config.items():
        if value is None:
            app.pop(key, None)
        else:
            app[key] = value
    return Config(
        {
            "ServerApp": {
                # terminals off: its websocket handler is not @web.authenticated-decorated
                # and would raise the warning these tests turn into errors
                "jpserver_extensions": {
                    "weaviate_auth_widget.broker": True,
                    "jupyter_server_terminals": False,
                },
                "allow_unauthenticated_access": False,
                "reraise_server_extension_failures": True,
                **extra_config.get("ServerApp", {}),
            },
            "WeaviateAuthApp": app,
            **{k: v for k, v in extra_config.items() if k != "ServerApp"},
        }
    )


@pytest.fixture
def broker_app(jp_serverapp: Any, jp_asyncio_loop: Any) -> Any:
    """The extension app, started as ``ServerApp.start`` starts it (connection file written)."""
    app = jp_serverapp.extension_manager.extension_points["weaviate_auth"].app
    jp_asyncio_loop.run_until_complete(app._start_jupyter_server_extension(jp_serverapp))
    return app


@pytest.fixture
def broker(broker_app: Any) -> Any:
    """The shared :class:`~weaviate_auth_widget.broker.handlers.Broker` (service, token...)."""
    return broker_app.broker


@dataclass
class Reply:
    code: int
    headers: Any
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def error_code(self) -> str | None:
        data = self.json()
        return data["error"]["code"] if isinstance(data, dict) and "error" in data else None


Caller = Callable[..., Reply]


@pytest.fixture
def raw_request(http_server_client: Any, jp_base_url: str, broker_app: Any, jp_asyncio_loop: Any) -> Caller:
    """``raw_request(method, path, headers=..., body=...)``: no credentials added.
    ``path`` is appended to ``{base_url}`` as given (already URL-encoded). Synchronous:
    it runs the server's event loop until the answer is in (tests here are plain
    functions, so hypothesis and parametrize work as usual)."""

    async def fetch(
        method: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None, **kwargs: Any
    ) -> Reply:
        if method in ("POST", "PUT") and body is None and "body_producer" not in kwargs:
            body = b""
        response: HTTPResponse = await http_server_client.fetch(
            jp_base_url + path,
            method=method,
            headers=headers or {},
            body=body,
            raise_error=False,
            allow_nonstandard_methods=True,
            follow_redirects=False,
            **kwargs,
        )
        return Reply(response.code, response.headers, response.body or b"")

    def call(method: str, path: str, **kwargs: Any) -> Reply:
        return jp_asyncio_loop.run_until_complete(fetch(method, path, **kwargs))  # type: ignore[no-any-return]

    return call


@pytest.fixture
def jupyter_headers(jp_serverapp: Any) -> dict[str, str]:
    return {"Authorization": f"token {jp_serverapp.identity_provider.token}"}


_UNSET: Any = object()


@pytest.fixture
def api(raw_request: Caller, jupyter_headers: dict[str, str], broker: Any) -> Caller:
    """``api(method, "profiles/x", json_body=..., auth="jupyter"|"kernel"|None)``.

    ``auth="jupyter"``: the server's Jupyter token; ``"kernel"``: the broker token only,
    as kernels send it; None: no credentials."""

    def call(
        method: str,
        path: str,
        *,
        auth: str | None = "jupyter",
        json_body: Any = _UNSET,
        body: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Reply:
        merged: dict[str, str] = {}
        if auth == "jupyter":
            merged.update(jupyter_headers)
        elif auth == "kernel":
            merged[BROKER_HEADER] = broker.token
        merged.update(headers or {})
        if json_body is not _UNSET:
            body = json.dumps(json_body)
            merged.setdefault("Content-Type", "application/json")
        return raw_request(method, API + path, headers=merged, body=body, **kwargs)

    return call


def quote_name(name: str) -> str:
    return urllib.parse.quote(name, safe="")


@pytest.fixture
def api_key_profile(sandbox: Any) -> dict[str, Any]:
    """A PUT body for an API-key profile on the sandbox cluster."""
    return {
        "url": sandbox.weaviate_url,
        "method": "api_key",
        "secrets": {"api_key": sandbox.credentials.admin_api_key},
    }


def secret_values(sandbox: Any) -> list[str]:
    creds = sandbox.credentials
    return [creds.admin_api_key, creds.readonly_api_key, creds.password, creds.service_client_secret]
