"""OIDC as Weaviate uses it: discovery on the cluster, discovery at the provider, grants.

Every optional field of every discovery document is treated as optional, and every
failure names the host (cluster or provider) that caused it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import InvalidCredentials, LoginExpired, UnexpectedResponse, WrongMethod
from .tokens import Token, jwt_expiry, jwt_lifetime
from .transport import unreachable
from .urls import host_of

DISCOVERY_TTL = 300.0
WEAVIATE_DISCOVERY_PATH = "/v1/.well-known/openid-configuration"
PROVIDER_DISCOVERY_SUFFIX = "/.well-known/openid-configuration"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: JWT times (and ``expires_in``) are whole seconds
NUMERIC_DATE_GRANULARITY = 1.0


@dataclass(frozen=True)
class ClusterOIDC:
    """What ``/v1/.well-known/openid-configuration`` says."""

    href: str
    client_id: str | None
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Provider:
    """The parts of the provider's discovery document we use."""

    issuer: str
    token_endpoint: str
    revocation_endpoint: str | None
    grant_types: tuple[str, ...] | None
    authorization_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    code_challenge_methods: tuple[str, ...] = ()

    def offers_code_flow(self) -> bool:
        """Authorization code with PKCE S256 (what a browser sign-in from the panel needs)."""
        grants_ok = self.grant_types is None or "authorization_code" in self.grant_types
        return bool(self.authorization_endpoint) and "S256" in self.code_challenge_methods and grants_ok

    def offers_device_flow(self) -> bool:
        """RFC 8628 device authorization (a browser sign-in outside the broker)."""
        grants_ok = self.grant_types is None or DEVICE_GRANT in self.grant_types
        return bool(self.device_authorization_endpoint) and grants_ok


class Grant:
    """A token endpoint's answer. The refresh token is kept here, never in a Token."""

    __slots__ = ("access", "id_token", "refresh_expires_at", "refresh_token", "scope")

    def __init__(
        self,
        access: Token,
        refresh_token: str | None,
        refresh_expires_at: float | None,
        scope: str | None,
        id_token: str | None = None,
    ) -> None:
        self.access = access
        self.refresh_token = refresh_token
        self.refresh_expires_at = refresh_expires_at
        self.scope = scope
        self.id_token = id_token

    def __repr__(self) -> str:
        return f"Grant({self.access!r}, refresh={'***' if self.refresh_token else None})"


class _TTLCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit and hit[0] > time.monotonic():
                return hit[1]
            self._items.pop(key, None)
            return None

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


#: Per-process discovery cache (both documents change rarely; the TTL bounds staleness).
discovery_cache = _TTLCache(DISCOVERY_TTL)
_MISSING = object()


def cluster_oidc(
    client: httpx.Client, base_url: str, headers: Mapping[str, str] | None = None
) -> ClusterOIDC | None:
    """The cluster's OIDC settings, or None when the cluster has no OIDC (404)."""
    url = base_url + WEAVIATE_DISCOVERY_PATH
    cached = discovery_cache.get(url)
    if cached is not None:
        return None if cached is _MISSING else cached  # type: ignore[no-any-return]
    host = host_of(base_url)
    try:
        response = client.get(url, headers=dict(headers or {}))
    except httpx.TransportError as exc:
        raise unreachable(exc, host) from None
    if response.status_code == 404:
        discovery_cache.put(url, _MISSING)
        return None
    if response.status_code != 200:
        raise UnexpectedResponse(
            f"The cluster at {host} answered {response.status_code} to its OIDC discovery request.",
            host=host,
            fix="Check that the URL points at Weaviate.",
        )
    data = json_object(response, host, "OIDC discovery document")
    href = data.get("href")
    if not isinstance(href, str) or not href.startswith(("https://", "http://")):
        raise UnexpectedResponse(f"The cluster at {host} gave no usable OIDC 'href'.", host=host)
    client_id = data.get("clientId") if isinstance(data.get("clientId"), str) else None
    scopes = tuple(s for s in data.get("scopes") or () if isinstance(s, str))
    result = ClusterOIDC(href=href, client_id=client_id, scopes=scopes)
    discovery_cache.put(url, result)
    return result


def issuer_of(href: str) -> str:
    """The issuer a discovery URL belongs to: ``href`` minus the well-known suffix."""
    return href[: -len(PROVIDER_DISCOVERY_SUFFIX)] if href.endswith(PROVIDER_DISCOVERY_SUFFIX) else href


def provider(client: httpx.Client, href: str) -> Provider:
    """The provider's discovery document at ``href``; its ``issuer`` must be the URL
    ``href`` was built from (OpenID Connect Discovery 1.0, section 4.3)."""
    cached = discovery_cache.get(href)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    host = host_of(href)
    try:
        response = client.get(href)
    except httpx.TransportError as exc:
        raise unreachable(exc, host, what="the identity provider") from None
    if response.status_code != 200:
        raise UnexpectedResponse(
            f"The identity provider at {host} answered {response.status_code} to its discovery request.",
            host=host,
            fix="Ask the cluster's administrator to check its OIDC issuer setting.",
        )
    data = json_object(response, host, "provider discovery document")
    token_endpoint = data.get("token_endpoint")
    if not isinstance(token_endpoint, str):
        raise UnexpectedResponse(f"The identity provider at {host} has no token endpoint.", host=host)
    issuer = data.get("issuer")
    expected = issuer_of(href)
    if not isinstance(issuer, str) or issuer.rstrip("/") != expected.rstrip("/"):
        raise UnexpectedResponse(
            f"The identity provider at {host} says it is {str(issuer)[:120]!r}, but the cluster "
            f"named {expected[:120]!r}: a provider may only speak for its own issuer URL.",
            host=host,
            fix="Ask the cluster's administrator to set its OIDC issuer to the provider's exact issuer URL.",
        )
    grants = data.get("grant_types_supported")
    methods = data.get("code_challenge_methods_supported")
    result = Provider(
        issuer=issuer,
        token_endpoint=token_endpoint,
        revocation_endpoint=_str(data.get("revocation_endpoint")),
        grant_types=tuple(g for g in grants if isinstance(g, str)) if isinstance(grants, list) else None,
        authorization_endpoint=_str(data.get("authorization_endpoint")),
        device_authorization_endpoint=_str(data.get("device_authorization_endpoint")),
        code_challenge_methods=tuple(m for m in methods if isinstance(m, str))
        if isinstance(methods, list)
        else (),
    )
    discovery_cache.put(href, result)
    return result


def merge_scopes(server: Sequence[str], caller: Sequence[str], *extra: str) -> str:
    """The server's scopes first, then the caller's, then ours; no duplicates."""
    return " ".join(dict.fromkeys([*server, *caller, *extra]))


def require_grant(prov: Provider, grant_type: str, cluster_host: str) -> None:
    if prov.grant_types is not None and grant_type not in prov.grant_types:
        label = {"password": "username & password", "client_credentials": "client credentials"}[grant_type]
        raise WrongMethod(
            f"The identity provider of {cluster_host} does not offer {label} logins.",
            host=cluster_host,
            fix="Use an API key, or ask the administrator to enable that grant.",
        )


def token_request(
    client: httpx.Client, prov: Provider, form: Mapping[str, str], *, refreshing: bool = False
) -> Grant:
    """POST a grant to the token endpoint and read the answer.

    Refusals become ``InvalidCredentials`` for a first login and ``LoginExpired`` for
    a refresh; the provider's ``error_description`` is included (providers never echo
    credentials in it), the form never is.
    """
    response, sent_at = post_token(client, prov, form)
    return read_grant(response, sent_at, refreshing=refreshing)


def post_token(
    client: httpx.Client, prov: Provider, form: Mapping[str, str], auth: tuple[str, str] | None = None
) -> tuple[httpx.Response, float]:
    """POST ``form`` to the token endpoint; the answer and when we asked (``auth``: a
    confidential client's id and secret, sent as HTTP Basic)."""
    host = host_of(prov.token_endpoint)
    sent_at = time.time()  # expiry counts from the request, not the answer: never late
    try:
        response = client.post(
            prov.token_endpoint,
            data=dict(form),
            headers={"Accept": "application/json"},
            auth=httpx.BasicAuth(*auth) if auth else httpx.USE_CLIENT_DEFAULT,
        )
    except httpx.TransportError as exc:
        raise unreachable(exc, host, what="the identity provider") from None
    return response, sent_at


def oauth_error(response: httpx.Response) -> tuple[str, str] | None:
    """The OAuth ``error`` and description of a 400/401 answer, else None."""
    return _oauth_error(response) if response.status_code in (400, 401) else None


def read_grant(response: httpx.Response, sent_at: float, *, refreshing: bool = False) -> Grant:
    """A token endpoint's answer as a :class:`Grant`, or the error it means."""
    host = host_of(str(response.request.url))
    if response.status_code in (400, 401):
        error, description = _oauth_error(response)
        if refreshing:
            raise LoginExpired(
                f"Your login could not be renewed by {host} ({error}).",
                host=host,
                fix="Log in again.",
            )
        if error in ("invalid_grant", "invalid_client", "unauthorized_client", "access_denied"):
            raise InvalidCredentials(
                f"The identity provider at {host} refused the credentials ({error}: {description}).",
                host=host,
                fix="Check the username and password (or client secret) and try again.",
            )
        raise UnexpectedResponse(
            f"The identity provider at {host} refused the login request ({error}: {description}).",
            host=host,
            fix="Check the scopes and client id configured for this cluster.",
        )
    if response.status_code != 200:
        raise UnexpectedResponse(
            f"The identity provider at {host} answered {response.status_code} to a token request.",
            host=host,
            fix="Try again later, or ask the provider's administrator.",
        )
    data = json_object(response, host, "token response")
    access = data.get("access_token")
    if not isinstance(access, str) or not access:
        raise UnexpectedResponse(f"The identity provider at {host} returned no access token.", host=host)
    refresh = data.get("refresh_token")
    refresh_expires_in = number(data.get("refresh_expires_in"))
    return Grant(
        access=Token(access, _expiry(access, number(data.get("expires_in")), sent_at)),
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        refresh_expires_at=sent_at + refresh_expires_in if refresh_expires_in else None,
        scope=data.get("scope") if isinstance(data.get("scope"), str) else None,
        id_token=_str(data.get("id_token")),
    )


def _expiry(access: str, expires_in: float | None, sent_at: float) -> float | None:
    """When ``access`` stops working, on *our* clock: its lifetime (``expires_in``, or
    ``exp - iat``; the shorter when both) counted from when we asked. The JWT's absolute
    ``exp`` is on the provider's clock: against a skewed local clock it would make every
    token look stale (a refresh per request) or fresh for too long. Lifetimes are whole
    seconds counted from a truncated ``iat``: the token may die up to a second early."""
    lifetimes = [t for t in (expires_in, jwt_lifetime(access)) if t is not None]
    if lifetimes:
        return sent_at + min(lifetimes) - NUMERIC_DATE_GRANULARITY
    return jwt_expiry(access)


def revoke(client: httpx.Client, prov: Provider, token: str, client_id: str | None, hint: str) -> bool:
    """Best effort RFC 7009 revocation; False when the provider has no endpoint or fails."""
    if not prov.revocation_endpoint:
        return False
    form = {"token": token, "token_type_hint": hint}
    if client_id:
        form["client_id"] = client_id
    try:
        response = client.post(prov.revocation_endpoint, data=form)
    except httpx.TransportError:
        return False
    return response.status_code == 200


def _oauth_error(response: httpx.Response) -> tuple[str, str]:
    try:
        data = response.json()
    except ValueError:
        return "error", f"HTTP {response.status_code}"
    if not isinstance(data, dict):
        return "error", f"HTTP {response.status_code}"
    error = str(data.get("error") or "error")[:64]
    description = str(data.get("error_description") or "no description")[:300]
    return error, description


def json_object(response: httpx.Response, host: str, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise UnexpectedResponse(f"The {what} from {host} is not a JSON object.", host=host)
    return data


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
