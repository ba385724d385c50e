"""Hand a login to the official ``weaviate-client`` v4 (extra ``client``); the only module
that knows that client.

The client gets no credential it could keep. It is built with a placeholder
``Authorization`` header, which makes its ``connect()`` skip the OIDC discovery that
would otherwise fail with "No login credentials provided" on any cluster with OIDC on
(spec ``weaviate-users-grpc-client.md`` section 3); then, on every call, its REST
requests (an ``httpx.Auth`` on the httpx clients it makes) and its gRPC calls (a
wrapper around its stub) replace the placeholder with the current token from the
session's TokenSource: the same single-flight cache as the session, refreshed on
expiry, retried once with a fresh token when the server refuses one. A login that can
no longer be renewed raises our ``LoginExpired`` / ``InvalidCredentials`` (cause and
fix), not the client's opaque gRPC UNKNOWN. No password, refresh token or client
secret ever reaches the client.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from . import cluster
from .bearer import WeaviateAuth
from .closing import close_at_loop_end
from .errors import InvalidProfile, WeaviateAuthError
from .identity import Identity
from .tokens import Token, TokenSource
from .urls import host_of, is_cloud, is_loopback_host

#: What the client holds instead of a credential; a server that ever saw it would answer 401.
PLACEHOLDER = "Bearer weaviate-auth-widget-sets-the-token-per-call"

#: The unary methods a token-refusing server can be asked again (streams cannot be replayed).
_UNARY = ("Search", "BatchObjects", "BatchDelete", "BatchReferences", "TenantsGet", "Aggregate")


class Login(Protocol):
    """What the hand-off needs from a session (``WeaviateSession`` / ``AsyncWeaviateSession``)."""

    url: str
    token_source: TokenSource
    identity: Identity | None

    @property
    def login_method(self) -> str: ...

    def auth_headers(self) -> dict[str, str]: ...


def grpc_target(url: str) -> tuple[str, int, bool]:
    """Where the cluster's gRPC API lives: Weaviate Cloud naming, else same host, port 50051."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "https"
    if is_cloud(url):
        if host.endswith(".weaviate.network"):
            ident, _, rest = host.partition(".")
            return f"{ident}.grpc.{rest}", 443, True
        return f"grpc-{host}", 443, True
    return host, 50051, secure


def connect(login: Login, **kwargs: Any) -> Any:
    """A connected ``weaviate.WeaviateClient`` that authenticates through ``login``.

    Keyword arguments: ``grpc_host``, ``grpc_port``, ``grpc_secure`` (default: Weaviate
    Cloud naming, else the REST host on 50051), ``headers`` (more headers), and the
    client's own ``additional_config`` and ``skip_init_checks``. Close it with
    ``client.close()`` or a ``with`` block; one left open is closed when it is
    collected or at exit.
    """
    weaviate = _weaviate()
    client = weaviate.WeaviateClient(**_client_args(login, **kwargs))
    _bind(client._connection, login, is_async=False)
    try:
        client.connect()
    except BaseException:
        client.close()
        raise
    weakref.finalize(client, _close_quietly, client._connection)
    return client


async def connect_async(login: Login, **kwargs: Any) -> Any:
    """A connected ``weaviate.WeaviateAsyncClient`` (same arguments as :func:`connect`).

    Close it with ``await client.close()`` or ``async with``; one left open is closed
    when its event loop shuts down.
    """
    weaviate = _weaviate()
    client = weaviate.WeaviateAsyncClient(**_client_args(login, **kwargs))
    _bind(client._connection, login, is_async=True)
    try:
        await client.connect()
    except BaseException:
        await client.close()
        raise
    connection = client._connection
    close_at_loop_end(lambda: connection.close("async"))  # a second close is a no-op
    return client


def _weaviate() -> Any:
    try:
        import weaviate
    except ImportError:  # pragma: no cover - depends on the environment
        raise InvalidProfile(
            "The official Weaviate client is not installed.",
            fix="pip install 'weaviate-auth-widget[client]'",
        ) from None
    return weaviate


def _client_args(
    login: Login,
    *,
    grpc_host: str | None = None,
    grpc_port: int | None = None,
    grpc_secure: bool | None = None,
    headers: Mapping[str, str] | None = None,
    additional_config: Any = None,
    skip_init_checks: bool = False,
) -> dict[str, Any]:
    from weaviate.connect import ConnectionParams

    parts = urlsplit(login.url)
    if parts.path not in ("", "/"):
        raise InvalidProfile(
            f"The official client cannot reach a cluster under a path ({host_of(login.url)}{parts.path}).",
            host=host_of(login.url),
            fix="Use the session's own helpers (session.get/graphql) for this cluster.",
        )
    g_host, g_port, g_secure = grpc_target(login.url)
    secure = parts.scheme == "https"
    params = ConnectionParams.from_params(
        http_host=parts.hostname or "",
        http_port=parts.port or (443 if secure else 80),
        http_secure=secure,
        grpc_host=grpc_host or g_host,
        grpc_port=grpc_port or g_port,
        grpc_secure=g_secure if grpc_secure is None else grpc_secure,
    )
    extra = {
        **{k: v for k, v in (headers or {}).items() if k.lower() != "authorization"},
        **login.auth_headers(),
        "Authorization": PLACEHOLDER,
    }
    return {
        "connection_params": params,
        "additional_headers": extra,
        "additional_config": _direct_to_loopback(additional_config, params.grpc.host),
        "skip_init_checks": skip_init_checks,
    }


def _direct_to_loopback(config: Any, grpc_host: str) -> Any:
    """gRPC reads ``http_proxy``/``grpc_proxy`` from the environment by itself; calls to a
    loopback cluster (in clear, bearer inside) must never go through a proxy."""
    if not is_loopback_host(grpc_host):
        return config
    from weaviate.config import AdditionalConfig, GrpcConfig

    config = config or AdditionalConfig()
    grpc = config.grpc_config or GrpcConfig()
    options = [*(grpc.channel_options or ()), ("grpc.enable_http_proxy", 0)]
    return config.model_copy(update={"grpc_config": grpc.model_copy(update={"channel_options": options})})


class _ClientAuth(WeaviateAuth):
    """The session's auth flow, but a second 401 raises the typed error right away (the
    official client would only say "Unexpected status code: 401")."""

    def __init__(self, login: Login) -> None:
        super().__init__(login.token_source, login.url, login.auth_headers())
        self._method = login.login_method
        self._profile = login.identity.profile if login.identity else None

    def refused(self, response: Any) -> None:
        cluster.raise_for_auth(response, method=self._method, profile=self._profile)


def _bind(connection: Any, login: Login, *, is_async: bool) -> None:
    """Make ``connection`` take the current token from ``login`` on every REST and gRPC call."""
    source = login.token_source
    auth = _ClientAuth(login)
    make_client = connection._make_client
    open_grpc = connection.open_connection_grpc
    static_grpc = connection.grpc_headers

    def make_client_with_auth(colour: str) -> Any:
        http = make_client(colour)
        http.auth = auth
        # as in the sessions: no credential or module key follows a redirect elsewhere
        hooks = http.event_hooks
        hooks["request"] = [*hooks.get("request", []), _strip_hook(auth, is_async)]
        http.event_hooks = hooks
        return http

    cached = getattr(source, "current", None) if is_async else None

    def grpc_headers() -> tuple[tuple[str, str], ...]:
        # The async client calls this on its event loop: take the cached token if it still
        # works (the stub wrapper renews off the loop, with atoken); fetch only if none.
        token = cached() if cached is not None else None
        return _with_token(static_grpc(), token or source.token())

    def open_connection_grpc(colour: str) -> None:
        open_grpc(colour)
        guard = _Guard(login)
        stub_type = _AsyncStub if is_async else _SyncStub
        connection._grpc_stub = stub_type(connection._grpc_stub, source, guard)

    connection._make_client = make_client_with_auth
    connection.grpc_headers = grpc_headers
    connection.get_current_bearer_token = lambda: f"Bearer {source.token().value}"
    connection.open_connection_grpc = open_connection_grpc


def _strip_hook(auth: WeaviateAuth, is_async: bool) -> Callable[[Any], Any]:
    """``auth.strip_foreign`` as the request hook the (sync or async) httpx client wants."""
    if not is_async:
        return auth.strip_foreign

    async def strip(request: Any) -> None:
        auth.strip_foreign(request)

    return strip


def _with_token(metadata: Sequence[tuple[str, str]] | None, token: Token) -> tuple[tuple[str, str], ...]:
    """The client's metadata with ``authorization`` last and current (spec: it goes last)."""
    base = tuple((k, v) for k, v in (metadata or ()) if k != "authorization")
    return (*base, ("authorization", f"Bearer {token.value}"))


class _Guard:
    """Which gRPC errors mean "token refused", and the typed error they become."""

    def __init__(self, login: Login) -> None:
        self.host = host_of(login.url)
        self.method = login.login_method

    @staticmethod
    def refused(exc: Exception) -> bool:
        """UNAUTHENTICATED, or UNKNOWN with ``unauthorized`` (spec section 2: treat them alike)."""
        import grpc

        if not isinstance(exc, grpc.RpcError):
            return False
        code, details = exc.code(), str(exc.details() or "")  # type: ignore[attr-defined]
        return bool(
            code == grpc.StatusCode.UNAUTHENTICATED
            or (code == grpc.StatusCode.UNKNOWN and "unauthorized" in details.lower())
        )

    def error(self, exc: Exception) -> WeaviateAuthError:
        details = str(exc.details() or "")  # type: ignore[attr-defined]
        return cluster.unauthorized(details, host=self.host, method=self.method)


class _SyncStub:
    """The client's ``WeaviateStub`` with the current token in each call's metadata."""

    def __init__(self, stub: Any, source: TokenSource, guard: _Guard) -> None:
        self._stub = stub
        self._source = source
        self._guard = guard

    def __getattr__(self, name: str) -> Any:
        inner = getattr(self._stub, name)
        return self._unary(inner) if name in _UNARY else inner

    def _unary(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        source, guard = self._source, self._guard

        def call(request: Any, *args: Any, metadata: Any = None, **kwargs: Any) -> Any:
            token = source.token()
            try:
                return inner(request, *args, metadata=_with_token(metadata, token), **kwargs)
            except Exception as exc:
                if not guard.refused(exc):
                    raise
            fresh = source.token(rejected=token)
            try:
                return inner(request, *args, metadata=_with_token(metadata, fresh), **kwargs)
            except Exception as exc:
                if guard.refused(exc):
                    raise guard.error(exc) from None
                raise

        return call


class _AsyncStub(_SyncStub):
    """The same for ``grpc.aio`` (the async client awaits what the stub returns)."""

    def _unary(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        source, guard = self._source, self._guard

        async def call(request: Any, *args: Any, metadata: Any = None, **kwargs: Any) -> Any:
            token = await source.atoken()
            try:
                return await inner(request, *args, metadata=_with_token(metadata, token), **kwargs)
            except Exception as exc:
                if not guard.refused(exc):
                    raise
            fresh = await source.atoken(rejected=token)
            try:
                return await inner(request, *args, metadata=_with_token(metadata, fresh), **kwargs)
            except Exception as exc:
                if guard.refused(exc):
                    raise guard.error(exc) from None
                raise

        return call


def _close_quietly(connection: Any) -> None:
    """Close a sync client nobody closed (collected, or at exit)."""
    with contextlib.suppress(Exception):  # best effort at collection or exit
        connection.close("sync")
