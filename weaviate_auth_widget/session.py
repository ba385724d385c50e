"""WeaviateSession / AsyncWeaviateSession: httpx clients that carry a login.

The session never sees a password, refresh token or client secret: it asks its
TokenSource for a bearer token before each request (the source caches it until
shortly before expiry), sends it only to the cluster's own origin, and on a 401
forces one refresh and retries once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from . import cluster
from .errors import UnexpectedResponse
from .tokens import Token, TokenSource
from .transport import HttpSettings, unreachable
from .urls import host_of, normalize_url, origin

if TYPE_CHECKING:
    from .service import Identity


class WeaviateAuth(httpx.Auth):
    """Bearer token + module-key headers, for the cluster's origin only."""

    def __init__(self, source: TokenSource, base_url: str, headers: Mapping[str, str] | None = None) -> None:
        self._source = source
        self._origin = origin(base_url)
        self._headers = {**cluster.cluster_headers(base_url), **dict(headers or {})}

    def __repr__(self) -> str:
        return f"WeaviateAuth(origin={self._origin!r})"

    def _mine(self, request: httpx.Request) -> bool:
        url = request.url
        scheme = url.scheme
        return (scheme, url.host, url.port or (443 if scheme == "https" else 80)) == self._origin

    def _apply(self, request: httpx.Request, token: Token) -> None:
        request.headers.update(self._headers)
        request.headers["Authorization"] = f"Bearer {token.value}"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._mine(request):
            yield request
            return
        token = self._source.token()
        self._apply(request, token)
        response = yield request
        if response.status_code == 401:
            self._apply(request, self._source.token(rejected=token))
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._mine(request):
            yield request
            return
        token = await self._source.atoken()
        self._apply(request, token)
        response = yield request
        if response.status_code == 401:
            self._apply(request, await self._source.atoken(rejected=token))
            yield request

    def extra_headers(self) -> dict[str, str]:
        """Cluster and module-key headers (module keys are secrets: never print these)."""
        return dict(self._headers)

    def strip_foreign(self, request: httpx.Request) -> None:
        """Request hook, run for every hop of a redirect chain: no credential leaves
        the cluster's origin, whatever follows the redirect."""
        if not self._mine(request):
            request.headers.pop("Authorization", None)
            for name in self._headers:
                request.headers.pop(name, None)


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

    def auth_headers(self) -> dict[str, str]:
        """Headers besides Authorization that this session adds (module keys: secret)."""
        return self._weaviate_auth.extra_headers()

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
        """A connected official ``weaviate-client`` v4 client using this login."""
        from .client import connect_official

        return connect_official(self, **kwargs)


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

    def __repr__(self) -> str:
        return self._describe()

    __str__ = __repr__

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        try:
            return await super().send(request, **kwargs)
        except httpx.TransportError as exc:
            raise unreachable(exc, host_of(str(request.url))) from None

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
