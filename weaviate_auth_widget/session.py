"""WeaviateSession / AsyncWeaviateSession: httpx clients that carry a login.

The session never sees a password, refresh token or client secret: it asks its
TokenSource for a bearer token before each request (the source caches it until
shortly before expiry), sends it only to the cluster's own origin, and on a 401
forces one refresh and retries once.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from . import client as official
from . import cluster
from .bearer import WeaviateAuth
from .cli_curl import shell_command
from .closing import close_at_loop_end
from .errors import UnexpectedResponse, WeaviateAuthError
from .identity import Identity
from .tokens import TokenSource
from .transport import HttpSettings, unreachable
from .urls import host_of, normalize_url


class _SessionMixin:
    """What both sessions share: identity, repr, helpers' response handling."""

    url: str
    identity: Identity | None
    token_source: TokenSource
    _method: str
    _weaviate_auth: WeaviateAuth

    def _bind(
        self,
        url: str,
        token_source: TokenSource,
        headers: Mapping[str, str] | None,
        identity: Identity | None,
        http: HttpSettings | None,
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        """Set the session's own attributes; return the httpx client arguments."""
        self.url = normalize_url(url)
        self.identity = identity
        self._method = identity.method if identity else "api_key"
        self.token_source = token_source
        self._weaviate_auth = WeaviateAuth(token_source, self.url, headers)
        settings = http or HttpSettings()
        return {
            **settings.client_kwargs(),
            "base_url": self.url,
            "auth": self._weaviate_auth,
            "follow_redirects": False,
            **kwargs,
        }

    @property
    def login_method(self) -> str:
        """``api_key``, ``password``, ``client_credentials`` or ``bearer``."""
        return self._method

    def auth_headers(self) -> dict[str, str]:
        """Headers besides Authorization that this session adds (module keys: secret)."""
        return self._weaviate_auth.extra_headers()

    def curl(self, path: str, *options: str) -> str:
        """The shell line that runs curl on ``path`` with this session's login through
        ``weaviate-auth curl``: the profile's name, never a secret, so it can be pasted."""
        if self.identity is None:
            raise WeaviateAuthError(
                "This session was made without a profile, so no command line can name its login.",
                fix="Make it from a saved profile (service.session(name), %weaviate_auth NAME).",
            )
        return shell_command(self.identity.profile, path, *options)

    def _describe(self) -> str:
        ident = self.identity
        user = ident.username if ident and ident.username else "?"
        if getattr(self.token_source, "ended", False):
            expiry = "logged out: log in again"
        elif ident is None or ident.expires_at is None:
            expiry = "no expiry"
        else:
            import time

            left = ident.expires_at - time.time()
            expiry = f"token expires in {left:.0f}s" + (
                ", refreshes automatically" if ident.refreshes else ""
            )
        return f"{type(self).__name__}(url={self.url!r}, user={user!r}, method={self._method!r}, {expiry})"

    def _json(self, response: httpx.Response) -> Any:
        cluster.raise_for_auth(
            response, method=self._method, profile=self.identity.profile if self.identity else None
        )
        if response.status_code >= 400:
            raise UnexpectedResponse(
                f"The cluster at {host_of(self.url)} answered {response.status_code} "
                f"to {response.request.method} {response.request.url.path}: {cluster.error_message(response)}",
                host=host_of(self.url),
            )
        try:
            return response.json()
        except ValueError:
            raise UnexpectedResponse(
                f"The cluster at {host_of(self.url)} sent a non-JSON answer to {response.request.url.path}.",
                host=host_of(self.url),
            ) from None

    def _graphql_body(self, query: str, variables: Mapping[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query}
        if variables:
            body["variables"] = dict(variables)
        return body

    def _whoami(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code == 200:
            data = self._json(response)
            return data if isinstance(data, dict) else {}
        if response.status_code in (401, 403, 404):
            ident = self.identity
            return {
                "username": ident.username if ident else None,
                "roles": [],
                "groups": [],
                "identity_known": False,
            }
        self._json(response)
        return {}


class WeaviateSession(_SessionMixin, httpx.Client):
    """A sync httpx client bound to one cluster and one login.

    ``session.get("/v1/schema")`` works like httpx; ``meta()``, ``ready()``,
    ``whoami()``, ``schema()`` and ``graphql()`` also turn errors into typed
    exceptions (wrong key, no permission, login expired, unreachable).
    """

    def __init__(
        self,
        url: str,
        token_source: TokenSource,
        *,
        headers: Mapping[str, str] | None = None,
        identity: Identity | None = None,
        http: HttpSettings | None = None,
        **kwargs: Any,
    ) -> None:
        merged = self._bind(url, token_source, headers, identity, http, kwargs)
        merged.setdefault("event_hooks", {}).setdefault("request", []).append(
            self._weaviate_auth.strip_foreign
        )
        super().__init__(**merged)
        # A session nobody closes (``service.session("x").weaviate_client()``) still
        # closes its sockets when it is collected or at exit.
        transports = [self._transport, *(t for t in self._mounts.values() if t is not None)]
        weakref.finalize(self, _close_transports, transports)

    def __repr__(self) -> str:
        return self._describe()

    __str__ = __repr__

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        try:
            return super().send(request, **kwargs)
        except httpx.TransportError as exc:
            raise unreachable(exc, host_of(str(request.url))) from None

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any REST call, JSON in and out, with typed errors (403 -> PermissionDenied ...)."""
        return self._json(self.request(method, path, **kwargs))

    def meta(self) -> dict[str, Any]:
        return self._json(self.get("/v1/meta"))  # type: ignore[no-any-return]

    def ready(self) -> bool:
        return self.get("/v1/.well-known/ready").status_code == 200

    def whoami(self) -> dict[str, Any]:
        return self._whoami(self.get("/v1/users/own-info"))

    def schema(self) -> dict[str, Any]:
        return self._json(self.get("/v1/schema"))  # type: ignore[no-any-return]

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self._json(self.post("/v1/graphql", json=self._graphql_body(query, variables)))  # type: ignore[no-any-return]

    def weaviate_client(self, **kwargs: Any) -> Any:
        """A connected official ``weaviate.WeaviateClient`` using this login (see ``client.py``)."""
        return official.connect(self, **kwargs)

    async def weaviate_async_client(self, **kwargs: Any) -> Any:
        """A connected ``weaviate.WeaviateAsyncClient`` using this login (``await`` it)."""
        return await official.connect_async(self, **kwargs)


class AsyncWeaviateSession(_SessionMixin, httpx.AsyncClient):
    """The async twin of ``WeaviateSession`` (same helpers, awaitable)."""

    def __init__(
        self,
        url: str,
        token_source: TokenSource,
        *,
        headers: Mapping[str, str] | None = None,
        identity: Identity | None = None,
        http: HttpSettings | None = None,
        **kwargs: Any,
    ) -> None:
        merged = self._bind(url, token_source, headers, identity, http, kwargs)
        auth = self._weaviate_auth

        async def strip(request: httpx.Request) -> None:
            auth.strip_foreign(request)

        merged.setdefault("event_hooks", {}).setdefault("request", []).append(strip)
        super().__init__(**merged)
        self._forget_close: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return self._describe()

    __str__ = __repr__

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        if self._forget_close is None:
            # opened on this loop: if nobody closes the session, the loop's end does
            transports = [self._transport, *(t for t in self._mounts.values() if t is not None)]
            self._forget_close = close_at_loop_end(lambda: _aclose_transports(transports))
        try:
            return await super().send(request, **kwargs)
        except httpx.TransportError as exc:
            raise unreachable(exc, host_of(str(request.url))) from None

    async def aclose(self) -> None:
        if self._forget_close is not None:
            self._forget_close()
        await super().aclose()

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any REST call, JSON in and out, with typed errors (403 -> PermissionDenied ...)."""
        return self._json(await self.request(method, path, **kwargs))

    async def meta(self) -> dict[str, Any]:
        return self._json(await self.get("/v1/meta"))  # type: ignore[no-any-return]

    async def ready(self) -> bool:
        return (await self.get("/v1/.well-known/ready")).status_code == 200

    async def whoami(self) -> dict[str, Any]:
        return self._whoami(await self.get("/v1/users/own-info"))

    async def schema(self) -> dict[str, Any]:
        return self._json(await self.get("/v1/schema"))  # type: ignore[no-any-return]

    async def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self._json(await self.post("/v1/graphql", json=self._graphql_body(query, variables)))  # type: ignore[no-any-return]

    async def weaviate_client(self, **kwargs: Any) -> Any:
        """A connected ``weaviate.WeaviateAsyncClient`` using this login (see ``client.py``)."""
        return await official.connect_async(self, **kwargs)


def _close_transports(transports: list[httpx.BaseTransport]) -> None:
    for transport in transports:
        transport.close()


async def _aclose_transports(transports: list[httpx.AsyncBaseTransport]) -> None:
    for transport in transports:
        await transport.aclose()
