"""Run the provider and any number of Weaviate doubles on one background event loop.

Tests, demos and ``make run`` all need real HTTP servers on free loopback ports that
start in well under a second and stop cleanly; one thread with its own asyncio loop
keeps them out of the way of whatever loop the caller runs.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import grpc
from tornado.httpserver import HTTPServer

from . import users_api
from ._http import base_url, check_loopback, serve
from .db_users import USERS_SINCE
from .grpc_api import serve_grpc, stop_grpc
from .idp import IdentityProvider, IdPClient, IdPConfig, IdPUser
from .weaviate import WeaviateConfig, WeaviateDouble, parse_version

T = TypeVar("T")

DEMO_USERNAME = "demo@example.com"
DEMO_CLIENT_ID = "weaviate"
DEMO_SERVICE_CLIENT_ID = "sandbox-service"
DEMO_SERVICE_EMAIL = "service@example.com"

#: Cluster shapes :meth:`Sandbox.demo` can take: which authentication schemes are on.
SHAPES = {"cloud": (True, True), "apikey": (True, False), "oidc": (False, True)}


@dataclass(frozen=True)
class DemoCredentials:
    """Throwaway credentials made at start; ``repr`` hides the secret halves."""

    admin_api_key: str = field(repr=False)
    readonly_api_key: str = field(repr=False)
    username: str
    password: str = field(repr=False)
    client_id: str
    service_client_id: str
    service_client_secret: str = field(repr=False)
    admin_user: str = "admin"
    readonly_user: str = "reader"

    @classmethod
    def generate(cls) -> DemoCredentials:
        return cls(
            admin_api_key="admin-" + secrets.token_urlsafe(24),
            readonly_api_key="reader-" + secrets.token_urlsafe(24),
            username=DEMO_USERNAME,
            password=secrets.token_urlsafe(12),
            client_id=DEMO_CLIENT_ID,
            service_client_id=DEMO_SERVICE_CLIENT_ID,
            service_client_secret=secrets.token_urlsafe(24),
        )

    @classmethod
    def derive(cls, seed: bytes) -> DemoCredentials:
        """The same credentials for the same seed: a demo profile saved today works tomorrow."""

        def secret(label: str, size: int) -> str:
            digest = hmac.new(seed, label.encode(), hashlib.sha256).digest()
            return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:size]

        return cls(
            admin_api_key="admin-" + secret("admin_api_key", 32),
            readonly_api_key="reader-" + secret("readonly_api_key", 32),
            username=DEMO_USERNAME,
            password=secret("password", 16),
            client_id=DEMO_CLIENT_ID,
            service_client_id=DEMO_SERVICE_CLIENT_ID,
            service_client_secret=secret("service_client_secret", 32),
        )

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="weaviate-auth-sandbox", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float = 15.0) -> T:
        async def run() -> T:
            return await fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Sandbox:
    """An OpenID provider plus Weaviate doubles, on loopback, in a background thread.

    ``weaviate`` is the first double's config (None: none started). Doubles with OIDC
    and no issuer get this sandbox's provider as issuer.
    """

    def __init__(
        self,
        idp: IdPConfig | None = None,
        weaviate: WeaviateConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        idp_port: int = 0,
        grpc_port: int = 0,
        credentials: DemoCredentials | None = None,
    ) -> None:
        self.host = check_loopback(host)
        self.port = port
        self.idp_port = idp_port
        self.grpc_port = grpc_port
        self.idp = IdentityProvider(idp)
        self.credentials = credentials
        self.weaviates: dict[str, WeaviateDouble] = {}
        self._first_config = weaviate
        self._servers: dict[str, HTTPServer] = {}
        self._grpc_servers: dict[str, grpc.Server] = {}
        self._loop: _LoopThread | None = None
        self.weaviate_url = ""

    # -- life cycle ------------------------------------------------------------------

    @property
    def idp_url(self) -> str:
        return self.idp.url

    @property
    def weaviate(self) -> WeaviateDouble:
        """The first double."""
        if not self.weaviate_url:
            raise RuntimeError("this sandbox runs no Weaviate double")
        return self.weaviates[self.weaviate_url]

    @property
    def weaviate_config(self) -> WeaviateConfig:
        return self.weaviate.config

    @property
    def idp_config(self) -> IdPConfig:
        return self.idp.config

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self) -> Sandbox:
        if self._loop is not None:
            return self
        self._loop = _LoopThread()
        try:

            async def start_idp() -> None:
                server, port = serve(self.idp.app(), self.host, self.idp_port)
                self.idp.url = base_url(self.host, port)
                self._servers[self.idp.url] = server

            self._loop.call(start_idp)
            if self._first_config is not None:
                self.weaviate_url = self.add_weaviate(
                    self._first_config, port=self.port, grpc_port=self.grpc_port
                )
        except BaseException:
            self.stop()
            raise
        return self

    def add_weaviate(self, config: WeaviateConfig | None = None, *, port: int = 0, grpc_port: int = 0) -> str:
        """Start another double (sharing this provider) with its REST and gRPC servers;
        returns its base URL (``double.grpc_port`` is the gRPC port)."""
        if self._loop is None:
            raise RuntimeError("start the sandbox first")
        config = config or WeaviateConfig()
        if config.oidc_enabled and config.oidc_issuer is None:
            config = dataclasses.replace(config, oidc_issuer=self.idp.issuer)
        double = WeaviateDouble(config)

        async def start() -> str:
            server, bound = serve(double.app(users_api.routes(double)), self.host, port)
            double.url = base_url(self.host, bound)
            self._servers[double.url] = server
            return double.url

        url = self._loop.call(start)
        self._grpc_servers[url], double.grpc_port = serve_grpc(double, self.host, grpc_port, self._loop.loop)
        self.weaviates[url] = double
        if not self.weaviate_url:
            self.weaviate_url = url
        return url

    def remove_weaviate(self, url: str) -> None:
        """Stop one double."""
        double = self.weaviates.pop(url)
        server = self._servers.pop(url)
        grpc_server = self._grpc_servers.pop(url, None)
        if grpc_server is not None:
            stop_grpc(grpc_server)
        if self._loop is not None:

            async def stop() -> None:
                await _stop_server(server)
                double.close()

            self._loop.call(stop)
        if url == self.weaviate_url:
            self.weaviate_url = next(iter(self.weaviates), "")

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        servers, doubles = list(self._servers.values()), list(self.weaviates.values())
        grpc_servers = list(self._grpc_servers.values())
        self._servers.clear()
        self._grpc_servers.clear()
        for grpc_server in grpc_servers:
            stop_grpc(grpc_server)

        async def stop_all() -> None:
            for server in servers:
                await _stop_server(server)
            for double in doubles:
                double.close()

        try:
            loop.call(stop_all)
        finally:
            loop.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- stats -----------------------------------------------------------------------

    def idp_stats(self) -> dict[str, Any]:
        return self.idp.stats()

    def reset_stats(self) -> None:
        """Zero the provider's counters and every double's request log."""
        self.idp.reset_stats()
        for double in self.weaviates.values():
            double.reset()

    # -- the demo --------------------------------------------------------------------

    @classmethod
    def demo(
        cls,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        idp_port: int = 0,
        grpc_port: int = 0,
        token_lifetime: int = 300,
        refresh_token_lifetime: int = 3600,
        token_delay: float = 0.0,
        delay: float = 0.0,
        shape: str = "cloud",
        version: str = "1.33.2",
        credentials: DemoCredentials | None = None,
    ) -> Sandbox:
        """RBAC on, fresh random credentials (see :class:`DemoCredentials`).

        ``shape``: ``cloud`` (API keys and OIDC, as on Weaviate Cloud), ``apikey`` or
        ``oidc`` only. ``delay``: seconds added to every request to either server.
        """
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}, not {shape!r}")
        apikey_on, oidc_on = SHAPES[shape]
        creds = credentials or DemoCredentials.generate()
        idp = IdPConfig(
            users={
                creds.username: IdPUser(
                    password=creds.password, email=creds.username, groups=["demo-users"], offline_access=True
                )
            },
            clients={
                creds.client_id: IdPClient(),
                creds.service_client_id: IdPClient(
                    secret=creds.service_client_secret,
                    claims={"email": DEMO_SERVICE_EMAIL},
                    audience=(creds.client_id,),
                ),
            },
            access_token_lifetime=token_lifetime,
            refresh_token_lifetime=refresh_token_lifetime,
            token_delay=token_delay,
            delay=delay,
        )
        weaviate = WeaviateConfig(
            version=version,
            apikey_enabled=apikey_on,
            api_keys={creds.admin_api_key: creds.admin_user, creds.readonly_api_key: creds.readonly_user},
            oidc_enabled=oidc_on,
            delay=delay,
            oidc_client_id=creds.client_id,
            oidc_username_claim="email",
            oidc_groups_claim="groups",
            oidc_scopes=["openid", "email"],
            rbac=True,
            db_users_enabled=parse_version(version) >= USERS_SINCE,
            root_users={creds.admin_user},
            roles={
                creds.admin_user: ["admin"],
                creds.readonly_user: ["viewer"],
                creds.username: ["admin"],
                DEMO_SERVICE_EMAIL: ["viewer"],
            },
        )
        return cls(
            idp, weaviate, host=host, port=port, idp_port=idp_port, grpc_port=grpc_port, credentials=creds
        )

    def describe(self) -> dict[str, Any]:
        """URLs and (demo) credentials, as ``--json`` prints them."""
        return {
            "weaviate_url": self.weaviate_url,
            "idp_url": self.idp_url,
            "grpc_port": self.weaviate.grpc_port if self.weaviate_url else None,
            "version": self.weaviate.config.version if self.weaviate_url else None,
            "credentials": self.credentials.as_dict() if self.credentials else None,
        }


async def _stop_server(server: HTTPServer) -> None:
    server.stop()
    await server.close_all_connections()


@contextmanager
def sandbox_process(*args: str) -> Iterator[dict[str, Any]]:
    """``python -m weaviate_auth_widget.sandbox --json`` in its own process (no shared GIL
    with the caller: what benchmarks want); yields its ``describe()``."""
    fresh = [
        "--port",
        "0",
        "--idp-port",
        "0",
        "--grpc-port",
        "0",
        "--fresh-credentials",
    ]  # never the demo's fixed ones
    proc = subprocess.Popen(  # noqa: S603 - our own module, arguments from the caller's code
        [sys.executable, "-m", "weaviate_auth_widget.sandbox", "--json", *fresh, *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
