"""Talking to a Weaviate cluster: the headers it wants and what its answers mean.

Turns Weaviate's status codes and error bodies (spec: "Error bodies") into typed errors
that name the cause — wrong key, wrong method, expired login, no permission — instead
of a bare "401".
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from .errors import (
    InvalidCredentials,
    LoginExpired,
    PermissionDenied,
    UnexpectedResponse,
    WeaviateAuthError,
    WrongMethod,
)
from .transport import unreachable
from .urls import host_of, is_cloud, normalize_url

#: Runs the identity half of :func:`probe` next to the token check.
_PROBES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="weaviate-auth-probe")
_NO_SCHEME_MARKERS = ("no authentication scheme is configured", "oidc auth is not configured")
_ADMIN_ROLES = frozenset({"admin", "root"})


def cluster_headers(url: str) -> dict[str, str]:
    """Headers every request to this cluster carries (Weaviate Cloud wants its own URL)."""
    if is_cloud(url):
        return {"X-Weaviate-Cluster-URL": normalize_url(url)}
    return {}


def error_message(response: httpx.Response) -> str:
    """The human part of a Weaviate error body, whichever of its two shapes it has."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:300]
    if isinstance(data, dict):
        if isinstance(data.get("message"), str):
            return str(data["message"])[:300]
        errors = data.get("error")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message", ""))[:300]
    return ""


def raise_for_auth(response: httpx.Response, *, method: str, profile: str | None = None) -> None:
    """Raise a typed error for 401 / 403 / 5xx answers; return quietly otherwise."""
    status = response.status_code
    if status < 400 or (status not in (401, 403) and status < 500):
        return
    host = host_of(str(response.request.url))
    message = error_message(response)
    who = f"profile {profile!r}" if profile else "these credentials"
    if status == 403:
        raise PermissionDenied(
            f"The cluster at {host} refused this action for {who}: {message or 'forbidden'}.",
            host=host,
            fix="Use a key or user with a role that allows it (ask the cluster's administrator).",
        )
    if status == 401:
        raise unauthorized(message, host=host, method=method)
    if "required claim" in message:
        raise UnexpectedResponse(
            f"The cluster at {host} cannot read the user name from the token ({message}).",
            host=host,
            fix="Ask the administrator to check AUTHENTICATION_OIDC_USERNAME_CLAIM.",
        )
    raise UnexpectedResponse(
        f"The cluster at {host} failed with HTTP {status}: {message or 'no details'}.",
        host=host,
        fix="Try again later; if it persists, check the cluster's logs.",
    )


def unauthorized(message: str, *, host: str, method: str) -> WeaviateAuthError:
    """The typed error for a refused token (HTTP 401, or gRPC UNKNOWN ``unauthorized``)."""
    lowered = message.lower()
    if any(marker in lowered for marker in _NO_SCHEME_MARKERS):
        return WrongMethod(
            f"The cluster at {host} has authentication turned off and rejects any credential sent to it.",
            host=host,
            fix="This is an anonymous cluster: connect without a key or password.",
        )
    if "anonymous access not enabled" in lowered:
        return InvalidCredentials(
            f"The cluster at {host} needs credentials and none were sent.", host=host, fix="Log in first."
        )
    if "expired" in lowered:
        return LoginExpired(f"The login to {host} has expired ({message}).", host=host, fix="Log in again.")
    if method == "api_key":
        return InvalidCredentials(
            f"The cluster at {host} refused the API key ({message or '401'}).",
            host=host,
            fix=(
                "Check the key: copy it again from the Weaviate Cloud console."
                if is_cloud(f"https://{host}")
                else "Check the key: copy it again from wherever it was issued, or ask your administrator."
            ),
        )
    return InvalidCredentials(
        f"The cluster at {host} refused the token ({message or '401'}).",
        host=host,
        fix="Log in again; if it persists, the cluster's OIDC settings (issuer, client id) may not match.",
    )


@dataclass(frozen=True)
class ServerInfo:
    version: str | None
    username: str | None = None
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    identity_known: bool = False
    raw_own_info: Mapping[str, Any] = field(default_factory=dict, compare=False)


def probe(
    client: httpx.Client, base_url: str, token: str, *, method: str, headers: Mapping[str, str]
) -> ServerInfo:
    """Validate ``token`` with ``/v1/meta`` and read identity from ``/v1/users/own-info``,
    both at once (one round trip, not two: a login's last step).

    own-info is optional (older servers, no RBAC): anything but 200 means "identity
    unknown", never a failed login; its answer counts only once meta accepted the token.
    """
    host = host_of(base_url)
    auth = {**headers, "Authorization": f"Bearer {token}"}
    own_info = _PROBES.submit(client.get, base_url + "/v1/users/own-info", headers=auth)
    try:
        meta = client.get(base_url + "/v1/meta", headers=auth)
        raise_for_auth(meta, method=method)
        if meta.status_code != 200:
            raise UnexpectedResponse(
                f"The cluster at {host} answered {meta.status_code} to /v1/meta.",
                host=host,
                fix="Check that the URL points at a Weaviate cluster.",
            )
        version = json_dict(meta).get("version")
        own = own_info.result()
    except httpx.TransportError as exc:
        raise unreachable(exc, host) from None
    info = json_dict(own) if own.status_code == 200 else {}
    if not info:
        return ServerInfo(version=version if isinstance(version, str) else None)
    roles = tuple(
        str(r.get("name")) for r in info.get("roles") or () if isinstance(r, dict) and r.get("name")
    )
    groups = tuple(str(g) for g in info.get("groups") or () if isinstance(g, str))
    username = info.get("username")
    return ServerInfo(
        version=version if isinstance(version, str) else None,
        username=username if isinstance(username, str) else None,
        groups=groups,
        roles=roles,
        identity_known=True,
        raw_own_info=info,
    )


def is_admin(roles: tuple[str, ...]) -> bool:
    return bool(_ADMIN_ROLES.intersection(roles))


def json_body(response: httpx.Response) -> Any:
    """The body as JSON, None when it is not (a proxy's HTML page, an empty body)."""
    try:
        return response.json()
    except ValueError:
        return None


def json_dict(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object, ``{}`` when it is anything else."""
    data = json_body(response)
    return data if isinstance(data, dict) else {}


__all__ = [
    "ServerInfo",
    "cluster_headers",
    "error_message",
    "is_admin",
    "json_body",
    "json_dict",
    "probe",
    "raise_for_auth",
    "unauthorized",
]
