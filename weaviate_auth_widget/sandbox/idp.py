"""A small OpenID provider that signs real RS256 JWTs.

It exists so the client's OIDC code meets real tokens, real refresh-token rotation and
real provider errors in tests, without Keycloak. It keeps only what a token endpoint
needs: users, clients, issued refresh tokens and a few counters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey
from tornado.web import Application

from ._http import log_request
from .idp_config import IdPClient as IdPClient
from .idp_config import IdPConfig as IdPConfig
from .idp_config import IdPUser as IdPUser
from .idp_handlers import _Discovery, _Jwks, _ResetStats, _Revoke, _Stats, _Token, browser_routes
from .idp_interactive import (
    DEVICE_GRANT,
    GRANTS,
    CodeGrant,
    DeviceGrant,
    Interactions,
    OAuthError,
)

BAD_PASSWORD = "Invalid username or password."
DISABLED = "Account is disabled, contact your administrator."
_GRANT_ERRORS = {BAD_PASSWORD: "Invalid user credentials", DISABLED: "Account disabled"}
_SUB_NAMESPACE = uuid.UUID("6f1d2a3e-8c55-4d0b-9b57-3c5e2f0a9a10")


@dataclass
class _RefreshGrant:
    username: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float


class IdentityProvider:
    """State of one provider; :meth:`app` serves it over HTTP."""

    def __init__(self, config: IdPConfig | None = None) -> None:
        self.config = config or IdPConfig()
        self.url = ""  # set by the runner once the port is known
        self.keys: list[RSAKey] = []
        self.rotate_key(keep_old=False)
        self._refresh: dict[str, _RefreshGrant] = {}
        self._lock = threading.Lock()
        self.token_calls: dict[str, int] = {}
        self.revoke_calls = 0
        self.discovery_calls = 0
        self.jwks_calls = 0
        self.reset_stats()
        self.interactions = Interactions(self.config.interactive, self._redirect_uris)

    def _redirect_uris(self, client_id: str) -> tuple[str, ...] | None:
        client = self.config.clients.get(client_id)
        return None if client is None else client.redirect_uris

    def set_enabled(self, username: str, enabled: bool) -> None:
        """Disable (or enable again) a user: a disabled user cannot sign in or refresh,
        and their provider sessions end."""
        self.config.users[username].enabled = enabled
        if not enabled:
            self.interactions.end_sessions(username)

    @property
    def issuer(self) -> str:
        return self.url

    # -- keys and tokens -------------------------------------------------------------

    def rotate_key(self, keep_old: bool = True) -> RSAKey:
        """A new signing key; old ones stay in the JWKS when ``keep_old``."""
        key: RSAKey = RSAKey.generate_key(
            2048, parameters={"kid": secrets.token_hex(8), "use": "sig", "alg": "RS256"}
        )
        self.keys = [key, *self.keys] if keep_old else [key]
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False) for key in self.keys]}

    def mint_token(
        self,
        *,
        username: str | None = None,
        client_id: str = "sandbox",
        scope: str = "openid",
        lifetime: float | None = None,
        claims: Mapping[str, Any] | None = None,
        remove: Iterable[str] = (),
        key: RSAKey | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> str:
        """An access token as the token endpoint would issue it, bent for tests.

        ``claims`` override or add claims (``iss``, ``aud``, ``exp``, ...), ``remove``
        drops some, ``key`` signs with another key (its kid is used unless ``header``
        says otherwise).
        """
        if username is not None:
            user = self.config.users.get(username) or IdPUser(password="")
            body = self._user_claims(username, user, client_id, scope.split(), lifetime)
        else:
            body = self._client_claims(
                client_id, self.config.clients.get(client_id) or IdPClient(), scope.split()
            )
            if lifetime is not None:
                body["exp"] = int(body["iat"] + lifetime)
        body.update(claims or {})
        for name in remove:
            body.pop(name, None)
        return self._sign(body, key, header)

    def _sign(
        self, claims: Mapping[str, Any], key: RSAKey | None = None, header: Mapping[str, Any] | None = None
    ) -> str:
        key = key or self.keys[0]
        kid = key.as_dict(private=False).get("kid")
        full_header: dict[str, Any] = {"alg": "RS256", "typ": "JWT", **({"kid": kid} if kid else {})}
        full_header.update(header or {})
        return str(jwt.encode(full_header, dict(claims), key))

    def _base_claims(self, sub: str, client_id: str, lifetime: float | None) -> dict[str, Any]:
        now = int(time.time())
        client = self.config.clients.get(client_id) or IdPClient()
        aud: str | list[str] = [client_id, *client.audience] if client.audience else client_id
        return {
            "iss": self.issuer,
            "sub": sub,
            "aud": aud,
            "azp": client_id,
            "iat": now,
            "nbf": now,
            "exp": int(now + (self.config.access_token_lifetime if lifetime is None else lifetime)),
            "jti": str(uuid.uuid4()),
            "typ": "Bearer",
        }

    def _user_claims(
        self, username: str, user: IdPUser, client_id: str, scopes: list[str], lifetime: float | None = None
    ) -> dict[str, Any]:
        claims = self._base_claims(str(uuid.uuid5(_SUB_NAMESPACE, "user:" + username)), client_id, lifetime)
        claims.update(preferred_username=username, groups=list(user.groups), scope=" ".join(scopes))
        if user.email is not None:
            claims["email"] = user.email
        claims.update(user.claims)
        return claims

    def _client_claims(self, client_id: str, client: IdPClient, scopes: list[str]) -> dict[str, Any]:
        claims = self._base_claims(str(uuid.uuid5(_SUB_NAMESPACE, "client:" + client_id)), client_id, None)
        claims.update(
            preferred_username=f"service-account-{client_id}",
            groups=list(client.groups),
            scope=" ".join(scopes),
            clientId=client_id,
        )
        claims.update(client.claims)
        return claims

    # -- stats -----------------------------------------------------------------------

    def count(self, what: str) -> None:
        with self._lock:
            if what == "revoke":
                self.revoke_calls += 1
            elif what == "discovery":
                self.discovery_calls += 1
            elif what == "jwks":
                self.jwks_calls += 1
            else:
                self.token_calls[what] = self.token_calls.get(what, 0) + 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "token": dict(self.token_calls),
                "token_total": sum(self.token_calls.values()),
                "revoke": self.revoke_calls,
                "discovery": self.discovery_calls,
                "jwks": self.jwks_calls,
                "active_refresh_tokens": len(self._refresh),
            }

    def reset_stats(self) -> None:
        with self._lock:
            self.token_calls = dict.fromkeys(GRANTS, 0)
            self.revoke_calls = self.discovery_calls = self.jwks_calls = 0
            self.spans: list[tuple[str, float, float]] = []

    def record_span(self, path: str, started: float, ended: float) -> None:
        """When a request arrived and was answered (time.monotonic()), to count round trips."""
        with self._lock:
            self.spans.append((path, started, ended))

    # -- the grants ------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        base = (self.config.endpoint_base or self.url).rstrip("/")
        doc: dict[str, Any] = {
            "issuer": self.issuer,
            "token_endpoint": base + "/token",
            "jwks_uri": self.url + "/jwks",
            "response_types_supported": ["code", "token", "id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "scopes_supported": ["openid", "email", "profile", "groups", "offline_access"],
        }
        if self.config.advertise_revocation:
            doc["revocation_endpoint"] = base + "/revoke"
        grants = list(GRANTS)
        if self.config.advertise_browser_flows:
            doc.update(
                authorization_endpoint=self.url + "/authorize",
                device_authorization_endpoint=base + "/device/code",
                userinfo_endpoint=base + "/userinfo",
                end_session_endpoint=self.url + "/logout",
                code_challenge_methods_supported=["S256"],
                response_modes_supported=["query"],
                claims_supported=["sub", "iss", "aud", "exp", "iat", "nonce", "email", "preferred_username"],
                authorization_response_iss_parameter_supported=True,
            )
        else:
            grants = [g for g in grants if g not in ("authorization_code", DEVICE_GRANT)]
        if self.config.advertise_grant_types:
            doc["grant_types_supported"] = grants
        return doc

    def token(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        """Answer a token request or raise :class:`OAuthError`."""
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError(400, "invalid_request", "Missing form parameter: grant_type")
        if grant_type not in GRANTS:
            raise OAuthError(400, "unsupported_grant_type", f"Unsupported grant_type: {grant_type[:40]}")
        client_id, client = self._client(form, basic, need_secret=grant_type == "client_credentials")
        scopes = list(dict.fromkeys(form.get("scope", "").split()))
        if grant_type == "password":
            return self._password(form, client_id, scopes)
        if grant_type == "client_credentials":
            scopes = [s for s in scopes if s != "offline_access"]
            return self._response(self._client_claims(client_id, client, scopes), scopes, None)
        if grant_type == "authorization_code":
            return self._signed_in(self.interactions.redeem_code(form, client_id))
        if grant_type == DEVICE_GRANT:
            return self._signed_in(self.interactions.poll_device(form, client_id))
        return self._refresh_grant(form, client_id)

    def client_for(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> str:
        """The calling client of the device authorization endpoint (secret checked)."""
        return self._client(form, basic, need_secret=False)[0]

    def is_public(self, client_id: str) -> bool:
        client = self.config.clients.get(client_id)
        return client is None or client.secret is None

    def _signed_in(self, grant: CodeGrant | DeviceGrant) -> dict[str, Any]:
        """Tokens for a browser sign-in: access token, id_token, and a refresh token
        when ``offline_access`` was granted (and the user still may)."""
        user = self.config.users.get(grant.username)
        if user is None or not user.enabled:
            raise OAuthError(400, "invalid_grant", "Account disabled")
        scopes = list(grant.scopes)
        if "offline_access" in scopes and not user.offline_access:
            scopes.remove("offline_access")
        claims = self._user_claims(grant.username, user, grant.client_id, scopes)
        refresh = (grant.username, grant.client_id) if "offline_access" in scopes else None
        body = self._response(claims, scopes, refresh)
        if "openid" in scopes:
            nonce = grant.nonce if isinstance(grant, CodeGrant) else None
            body["id_token"] = self.id_token(grant.username, grant.client_id, grant.auth_time, nonce, body)
        return body

    def id_token(
        self, username: str, client_id: str, auth_time: int, nonce: str | None, body: Mapping[str, Any]
    ) -> str:
        user = self.config.users[username]
        claims = self._user_claims(username, user, client_id, ["openid"])
        claims.pop("scope", None)
        claims.update(typ="ID", aud=client_id, auth_time=auth_time)
        digest = hashlib.sha256(str(body["access_token"]).encode()).digest()
        claims["at_hash"] = base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")
        if nonce is not None:
            claims["nonce"] = nonce
        return self._sign(claims)

    def userinfo(self, access_token: str) -> dict[str, Any]:
        """Claims of a valid access token's user (OIDC Core 5.3)."""
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        try:
            token = jwt.decode(access_token, KeySet(list(self.keys)), algorithms=["RS256"])
        except (JoseError, ValueError):
            raise OAuthError(401, "invalid_token", "Token verification failed") from None
        claims = token.claims
        if claims.get("iss") != self.issuer or float(claims.get("exp", 0)) <= time.time():
            raise OAuthError(401, "invalid_token", "Token is not active")
        keep = ("sub", "preferred_username", "email", "groups", "name")
        return {k: claims[k] for k in keep if k in claims}

    def _client(
        self, form: Mapping[str, str], basic: tuple[str, str] | None, need_secret: bool
    ) -> tuple[str, IdPClient]:
        client_id, secret = basic if basic else (form.get("client_id", ""), form.get("client_secret"))
        if not client_id:
            raise OAuthError(400, "invalid_request", "Missing parameter: client_id")
        client = self.config.clients.get(client_id)
        if client is None:
            raise OAuthError(401, "invalid_client", "Invalid client or Invalid client credentials")
        if client.secret is None:
            if need_secret:
                raise OAuthError(400, "unauthorized_client", "Public client not allowed to use this grant")
            return client_id, client
        if secret is None or not hmac.compare_digest(secret.encode(), client.secret.encode()):
            raise OAuthError(401, "invalid_client", "Invalid client or Invalid client credentials")
        return client_id, client

    def _password(self, form: Mapping[str, str], client_id: str, scopes: list[str]) -> dict[str, Any]:
        username, password = form.get("username"), form.get("password")
        if not username or password is None:
            raise OAuthError(400, "invalid_request", "Missing parameter: username or password")
        error = self.check_password(username, password)
        if error is not None:
            raise OAuthError(400, "invalid_grant", _GRANT_ERRORS[error])
        user = self.config.users[username]
        if "offline_access" in scopes and not user.offline_access:
            scopes = [s for s in scopes if s != "offline_access"]
        refresh = "offline_access" in scopes
        claims = self._user_claims(username, user, client_id, scopes)
        return self._response(claims, scopes, (username, client_id) if refresh else None)

    def check_password(self, username: str, password: str) -> str | None:
        """None when the user may sign in, else the message the login page shows."""
        user = self.config.users.get(username)
        # compare anyway so unknown users and wrong passwords take the same time
        given = password.encode()
        ok = hmac.compare_digest(given, (user.password if user else secrets.token_hex(16)).encode())
        if user is None or not ok:
            return BAD_PASSWORD
        if not user.enabled:
            return DISABLED
        return None

    def _refresh_grant(self, form: Mapping[str, str], client_id: str) -> dict[str, Any]:
        value = form.get("refresh_token")
        if not value:
            raise OAuthError(400, "invalid_request", "Missing parameter: refresh_token")
        with self._lock:
            grant = self._refresh.pop(value, None)  # rotation: a refresh token works once
        if grant is None:
            raise OAuthError(400, "invalid_grant", "Refresh token is not active (used, revoked or unknown)")
        if grant.expires_at <= time.time():
            raise OAuthError(400, "invalid_grant", "Refresh token expired")
        if grant.client_id != client_id:
            raise OAuthError(400, "invalid_grant", "Refresh token was issued to another client")
        user = self.config.users.get(grant.username)
        if user is None or not user.enabled or not user.offline_access:
            raise OAuthError(400, "invalid_grant", "User is no longer allowed to refresh")
        scopes = list(grant.scopes)
        claims = self._user_claims(grant.username, user, client_id, scopes)
        return self._response(claims, scopes, (grant.username, client_id))

    def _response(
        self, claims: dict[str, Any], scopes: list[str], refresh_for: tuple[str, str] | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self._sign(claims),
            "token_type": "Bearer",
            "expires_in": int(claims["exp"] - claims["iat"]),
            "scope": " ".join(scopes),
        }
        if refresh_for is not None:
            value = secrets.token_urlsafe(32)
            lifetime = self.config.refresh_token_lifetime
            with self._lock:
                self._refresh[value] = _RefreshGrant(*refresh_for, tuple(scopes), time.time() + lifetime)
            body.update(refresh_token=value, refresh_expires_in=lifetime)
        return body

    def revoke(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> None:
        """RFC 7009: always succeeds; a refresh token of the calling client stops working."""
        client_id = basic[0] if basic else form.get("client_id")
        value = form.get("token", "")
        with self._lock:
            grant = self._refresh.get(value)
            if grant is not None and (not client_id or client_id == grant.client_id):
                del self._refresh[value]

    def revoke_all(self) -> None:
        """End every refresh token (an administrator logging everyone out)."""
        with self._lock:
            self._refresh.clear()

    def app(self) -> Application:
        return Application(
            [
                (r"/\.well-known/openid-configuration", _Discovery, {"idp": self}),
                (r"/jwks", _Jwks, {"idp": self}),
                (r"/token", _Token, {"idp": self}),
                (r"/revoke", _Revoke, {"idp": self}),
                *browser_routes(self),
                (r"/_sandbox/stats", _Stats, {"idp": self}),
                (r"/_sandbox/reset-stats", _ResetStats, {"idp": self}),
            ],
            log_function=log_request,
        )
