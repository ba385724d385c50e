"""Hand a login to the official ``weaviate-client`` v4 (extra ``client``).

The official client refreshes OIDC tokens in a background thread that dies silently on
the first non-network error (weaviate-python-client#2110). We give it no credential at
all: its connection asks our TokenSource for the bearer value on every REST and gRPC
call, so it keeps working past any number of expiries, through the same single-flight
cache as the session, and never holds a password or refresh token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .errors import InvalidProfile
from .urls import is_cloud, is_loopback_host

if TYPE_CHECKING:
    from .session import WeaviateSession


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


def connect_official(
    session: WeaviateSession,
    *,
    grpc_host: str | None = None,
    grpc_port: int | None = None,
    grpc_secure: bool | None = None,
    skip_init_checks: bool = False,
    additional_config: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """A connected ``weaviate.WeaviateClient`` that authenticates through ``session``.

    ``skip_init_checks=True`` skips the client's gRPC health check (useful when only REST
    is reachable). Close it with ``client.close()`` or use it in a ``with`` block.
    """
    try:
        import weaviate
        from weaviate.connect import ConnectionParams
    except ImportError:  # pragma: no cover - depends on the environment
        raise InvalidProfile(
            "The official Weaviate client is not installed.",
            fix="pip install 'weaviate-auth-widget[client]'",
        ) from None
    parts = urlsplit(session.url)
    if parts.path not in ("", "/"):
        raise InvalidProfile(
            f"The official client cannot reach a cluster under a path ({parts.path}).",
            fix="Use the session's own helpers for this cluster.",
        )
    g_host, g_port, g_secure = grpc_target(session.url)
    secure = parts.scheme == "https"
    params = ConnectionParams.from_params(
        http_host=parts.hostname or "",
        http_port=parts.port or (443 if secure else 80),
        http_secure=secure,
        grpc_host=grpc_host or g_host,
        grpc_port=grpc_port or g_port,
        grpc_secure=g_secure if grpc_secure is None else grpc_secure,
    )
    extra = {**session.auth_headers(), **dict(headers or {})}
    client = weaviate.WeaviateClient(
        connection_params=params,
        additional_headers=extra or None,
        additional_config=_direct_to_loopback(additional_config, params.grpc.host),
        skip_init_checks=skip_init_checks,
    )
    _bind_token_source(client._connection, session)
    client.connect()
    return client


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


def _bind_token_source(connection: Any, session: WeaviateSession) -> None:
    """Make the official connection ask ``session`` for the bearer value on each call."""
    source = session.token_source
    static_grpc = connection.grpc_headers

    def current_bearer() -> str:
        return f"Bearer {source.token().value}"

    def grpc_headers() -> tuple[tuple[str, str], ...]:
        base = tuple(h for h in (static_grpc() or ()) if h[0] != "authorization")
        return (*base, ("authorization", current_bearer()))

    connection.get_current_bearer_token = current_bearer
    connection.grpc_headers = grpc_headers
