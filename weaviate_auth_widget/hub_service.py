"""The hub side of "sign in with your hub login": a JupyterHub-managed service.

A single-user server may not read its user's ``auth_state``: that takes the
``admin:auth_state`` scope, which JupyterHub grants to no server token (and which
covers every user). So this small service holds it instead, and answers one question
for the calling server: *the current access token of the user this token belongs to*.

``GET {prefix}token`` with ``Authorization: token <the server's JUPYTERHUB_API_TOKEN>``:

1. ``GET /hub/api/user`` with the caller's token: the hub says whose token it is
   (``kind`` must be ``user``) and, because the caller is that user, runs
   ``refresh_auth`` on them first (every ``auth_refresh_age`` seconds; see
   :mod:`.hub_refresh` for renewing before expiry). A user whose refresh fails is not
   authenticated: ``403`` from the hub, ``401 hub_login_expired`` from here.
2. ``GET /hub/api/users/{name}`` with this service's token (``admin:auth_state``):
   the user's ``auth_state``; only its ``access_token`` leaves, with its expiry,
   issuer and audience. The refresh and ID tokens never leave the hub.

Run by the hub (``c.JupyterHub.services``) as ``python -m weaviate_auth_widget.hub_service``;
it reads ``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_API_URL``, ``JUPYTERHUB_SERVICE_URL`` and
``JUPYTERHUB_SERVICE_PREFIX``, which the hub sets for managed services.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from tornado import ioloop, web

from .tokens import jwt_claims, jwt_expiry

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0)
#: the address to listen on when not the host of JUPYTERHUB_SERVICE_URL (e.g. 0.0.0.0)
BIND_ENV = "WEAVIATE_AUTH_HUB_SERVICE_BIND"


class HubServiceError(Exception):
    """An answer for the caller: HTTP status, error code, message (never a token)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class HubTokens:
    """Talks to the hub API: who a token belongs to, and that user's access token."""

    def __init__(self, api_url: str, service_token: str, client: httpx.AsyncClient | None = None) -> None:
        self.api_url = api_url.rstrip("/") + "/"
        self._service_token = service_token
        self._client = client or httpx.AsyncClient(timeout=TIMEOUT, trust_env=False)

    def __repr__(self) -> str:
        return f"HubTokens({self.api_url!r})"

    async def access_token_for(self, caller_token: str) -> dict[str, Any]:
        user = await self._whoami(caller_token)
        state = await self._auth_state(user)
        access = state.get("access_token")
        if not isinstance(access, str) or not access:
            raise HubServiceError(
                409, "no_hub_token", f"The hub keeps no OpenID access token for {user} (no auth_state)."
            )
        expires_at = jwt_expiry(access)
        if expires_at is not None and expires_at <= time.time():
            raise HubServiceError(401, "hub_login_expired", f"The hub login of {user} has expired.")
        claims = jwt_claims(access)
        return {
            "access_token": access,
            "expires_at": expires_at,
            "issuer": claims.get("iss") if isinstance(claims.get("iss"), str) else None,
            "audience": _audience(claims.get("aud")),
            "user": user,
        }

    def _unreachable(self, exc: Exception) -> HubServiceError:
        return HubServiceError(
            502,
            "hub_unreachable",
            f"The hub API at {self.api_url} did not answer ({type(exc).__name__}): check "
            "JUPYTERHUB_API_URL and that the hub is running.",
        )

    def _answered(self, status: int, what: str) -> HubServiceError:
        return HubServiceError(
            502,
            "hub_error",
            f"The hub API at {self.api_url} answered {status} for {what}: check the hub's log and "
            "this service's scopes (read:users, admin:auth_state).",
        )

    def _json(self, reply: httpx.Response, what: str) -> dict[str, Any]:
        """The hub's JSON object, or a clear 502 (never a 500 with a traceback)."""
        try:
            data = reply.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise HubServiceError(
                502, "hub_error", f"The hub API at {self.api_url} sent no JSON object for {what}."
            )
        return data

    async def _whoami(self, caller_token: str) -> str:
        try:
            reply = await self._client.get(
                self.api_url + "user", headers={"Authorization": f"token {caller_token}"}
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if reply.status_code in (401, 403):
            # an unknown token, or a user whose hub login could not be refreshed
            raise HubServiceError(401, "hub_login_expired", "The hub does not accept this login any more.")
        if reply.status_code != 200:
            raise self._answered(reply.status_code, "/user")
        model = self._json(reply, "/user")
        if model.get("kind") != "user" or not isinstance(model.get("name"), str):
            raise HubServiceError(403, "not_a_user", "Only a user's own server gets that user's token.")
        return str(model["name"])

    async def _auth_state(self, user: str) -> Mapping[str, Any]:
        try:
            reply = await self._client.get(
                self.api_url + "users/" + quote(user, safe=""),
                headers={"Authorization": f"token {self._service_token}"},
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if reply.status_code != 200:
            raise self._answered(reply.status_code, "the user's model")
        model = self._json(reply, "the user's model")
        if "auth_state" not in model:
            raise HubServiceError(
                500,
                "hub_misconfigured",
                "This service cannot read auth_state: give it the admin:auth_state scope "
                "and set c.Authenticator.enable_auth_state = True (with JUPYTERHUB_CRYPT_KEY).",
            )
        return model.get("auth_state") or {}


def _audience(aud: object) -> list[str]:
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


class TokenHandler(web.RequestHandler):
    """``GET {prefix}token``: the caller's user's current access token."""

    def initialize(self, tokens: HubTokens) -> None:
        self.tokens = tokens

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "application/json")

    async def get(self) -> None:
        caller = _presented_token(self.request.headers.get("Authorization", ""))
        if caller is None:
            self._error(HubServiceError(401, "hub_login_expired", "No hub token presented."))
            return
        try:
            body = await self.tokens.access_token_for(caller)
        except HubServiceError as exc:
            self._error(exc)
            return
        log.info("access token handed to the server of %s", body["user"])
        self.finish(json.dumps(body))

    def _error(self, exc: HubServiceError) -> None:
        log.info("token request refused: %s", exc.code)
        self.set_status(exc.status)
        self.finish(json.dumps({"error": exc.code, "message": exc.message}))


def _presented_token(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


def make_app(tokens: HubTokens, prefix: str) -> web.Application:
    prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
    return web.Application([(prefix + "token", TokenHandler, {"tokens": tokens})])


def main(environ: Mapping[str, str] | None = None) -> None:  # pragma: no cover - run by the hub
    env = os.environ if environ is None else environ
    logging.basicConfig(level=logging.INFO, format="[weaviate-auth hub service] %(message)s")
    tokens = HubTokens(env["JUPYTERHUB_API_URL"], env["JUPYTERHUB_API_TOKEN"])
    bind = urlsplit(env.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
    # in a pod the URL names the Kubernetes Service, which the pod cannot bind to
    host = env.get(BIND_ENV) or bind.hostname or "127.0.0.1"
    app = make_app(tokens, env.get("JUPYTERHUB_SERVICE_PREFIX", "/"))
    app.listen(bind.port or 80, host)
    log.info("listening on %s", bind.geturl())
    ioloop.IOLoop.current().start()


if __name__ == "__main__":  # pragma: no cover
    main()
