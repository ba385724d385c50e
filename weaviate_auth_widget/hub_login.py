"""The ``hub`` login method: the Weaviate login *is* the user's JupyterHub login.

On a hub whose users log in with an OpenID provider (oauthenticator, ``enable_auth_state``)
and whose Weaviate cluster trusts the same provider, the user's access token works at the
cluster. The single-user server cannot read it (``admin:auth_state`` is not a scope any
server token has), so the hub runs :mod:`.hub_service`, which hands a server its own
user's current access token — and nothing else: no refresh token ever reaches this
server, its environment or a kernel. The token is then cached and handed to kernels like
any other login's (short-lived, single-flight, owner-only).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from .cluster import json_dict
from .errors import (
    ClusterUnreachable,
    LoginExpired,
    PolicyRefused,
    UnexpectedResponse,
    WeaviateAuthError,
    WrongMethod,
)
from .policy import Policy, url_matches
from .tokens import Token
from .urls import host_of, normalize_url

#: The variable the hub administrator sets (``c.Spawner.environment``) to the hub service's URL.
HUB_SERVICE_ENV = "WEAVIATE_AUTH_HUB_SERVICE_URL"
#: What jupyterhub-singleuser gets from the hub: the server's own API token.
HUB_TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
TIMEOUT = httpx.Timeout(10.0)
RELOGIN = "Log in to the hub again (File > Log Out, then sign in), then retry."


@dataclass(frozen=True)
class HubGrant:
    """The user's current access token, as the hub service reports it."""

    access: Token = field(repr=False)
    issuer: str | None
    audience: tuple[str, ...]


def available(policy: Policy, environ: Mapping[str, str] | None = None) -> bool:
    """Whether this server can offer the hub login: switched on, under a hub, with a service."""
    env = os.environ if environ is None else environ
    return bool(policy.hub_login and policy.hub_service_url and env.get(HUB_TOKEN_ENV))


def check_allowed(policy: Policy, url: str, environ: Mapping[str, str] | None = None) -> None:
    """Raise unless the hub login may be used for the cluster at ``url``."""
    host = host_of(url)
    if not available(policy, environ):
        raise PolicyRefused(
            f"Signing in to {host} with your hub login is not available on this server.",
            host=host,
            fix="Ask your hub administrator to enable it (weaviate-auth hub service), or use another method.",
        )
    normalized = normalize_url(url)
    if policy.hub_login_urls and not any(url_matches(normalized, p) for p in policy.hub_login_urls):
        raise PolicyRefused(
            f"Your administrator does not allow signing in to {host} with your hub login.",
            host=host,
            fix=f"Clusters allowed for the hub login: {', '.join(policy.hub_login_urls)[:300]}.",
        )


def fetch(client: httpx.Client, service_url: str, environ: Mapping[str, str] | None = None) -> HubGrant:
    """Ask the hub service for the current access token of this server's user."""
    env = os.environ if environ is None else environ
    token = env.get(HUB_TOKEN_ENV)
    host = host_of(service_url)
    if not token:
        raise LoginExpired("This server has no hub token.", host=host, fix=RELOGIN)
    url = service_url.rstrip("/") + "/token"
    try:
        reply = client.get(url, headers={"Authorization": f"token {token}"}, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise ClusterUnreachable(
            f"The hub's weaviate-auth service at {host} did not answer ({type(exc).__name__}).",
            host=host,
            fix="Retry in a moment; if it persists, ask your hub administrator to check the service.",
        ) from None
    body = json_dict(reply)
    if reply.status_code == 401:
        raise LoginExpired("Your hub login has ended or could not be renewed.", host=host, fix=RELOGIN)
    if reply.status_code != 200 or not isinstance(body.get("access_token"), str):
        code = body.get("error") or reply.status_code
        raise UnexpectedResponse(
            f"The hub's weaviate-auth service at {host} answered {code}: {str(body.get('message', ''))[:200]}",
            host=host,
            fix="Ask your hub administrator to check the weaviate-auth hub service.",
        )
    access, expires_at = body["access_token"], body.get("expires_at")
    issuer, audience = body.get("issuer"), body.get("audience")
    return HubGrant(
        access=Token(str(access), float(expires_at) if isinstance(expires_at, (int, float)) else None),
        issuer=issuer if isinstance(issuer, str) else None,
        audience=tuple(a for a in audience if isinstance(a, str)) if isinstance(audience, list) else (),
    )


def check_issuer(grant: HubGrant, cluster_issuer: str, cluster_host: str) -> None:
    """The cluster must trust the provider the hub login comes from."""
    if grant.issuer is None or grant.issuer.rstrip("/") != cluster_issuer.rstrip("/"):
        raise WrongMethod(
            f"The cluster at {cluster_host} trusts the identity provider {cluster_issuer}, "
            f"but your hub login comes from {grant.issuer or 'an unknown provider'}.",
            host=cluster_host,
            fix="Use another login method for this cluster.",
        )


def explain_refusal(
    exc: WeaviateAuthError, grant: HubGrant, client_id: str | None, cluster_host: str
) -> WeaviateAuthError:
    """A cluster refusing the hub's token, explained: most often the audience."""
    if client_id and client_id not in grant.audience:
        return WrongMethod(
            f"The cluster at {cluster_host} refused your hub login: the token is for "
            f"{', '.join(grant.audience) or 'no audience'}, the cluster expects the client id "
            f"{client_id!r} (audience mismatch).",
            host=cluster_host,
            fix="Your administrator can add an audience mapper for that client id to the hub's "
            "OpenID client, or set AUTHENTICATION_OIDC_SKIP_CLIENT_ID_CHECK=true on the cluster.",
        )
    return exc


__all__ = [
    "HUB_SERVICE_ENV",
    "HUB_TOKEN_ENV",
    "HubGrant",
    "available",
    "check_allowed",
    "check_issuer",
    "explain_refusal",
    "fetch",
]
