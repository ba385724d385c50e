"""Access-token checks as Weaviate makes them (go-oidc under the hood).

Order and wording follow the server: parse, issuer, audience, expiry (no grace),
not-before (5 minutes of grace), then the RS256 signature against the issuer's JWKS,
which is fetched over HTTP (discovery document first, whose ``issuer`` must match).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

NBF_LEEWAY = 300.0


class OIDCRejected(Exception):
    """The token is not acceptable; ``str()`` is the reason Weaviate would give."""


class ClaimMissing(Exception):
    """The username claim is absent: Weaviate answers 500, not 401."""


@dataclass(frozen=True)
class Verified:
    username: str
    groups: list[str]
    claims: dict[str, Any]


def _b64json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWS, or ValueError."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError(f"compact JWS format must have three parts, got {len(parts)}")
    header, claims = _b64json(parts[0]), _b64json(parts[1])
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("header and payload must be JSON objects")
    return header, claims


def looks_like_jwt(token: str) -> bool:
    """Weaviate sends a token to OIDC when it parses as a JWT, to API keys otherwise."""
    try:
        decode_unverified(token)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def go_time(epoch: float) -> str:
    """A time as Go's ``time.Time.String`` prints it in UTC."""
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + " +0000 UTC"


def go_quote_list(values: list[str]) -> str:
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


class TokenVerifier:
    def __init__(
        self,
        issuer: str,
        client_id: str | None,
        skip_client_id_check: bool,
        username_claim: str,
        groups_claim: str,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.skip_client_id_check = skip_client_id_check
        self.username_claim = username_claim
        self.groups_claim = groups_claim
        self._keys: KeySet | None = None
        self._http: AsyncHTTPClient | None = None  # made on the loop thread, when first needed

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    async def verify(self, token: str) -> Verified:
        try:
            header, claims = decode_unverified(token)
        except (ValueError, UnicodeDecodeError) as exc:
            raise OIDCRejected(f"oidc: malformed jwt: {exc}") from None
        self._check_claims(claims, time.time())
        alg = header.get("alg")
        if alg != "RS256":
            raise OIDCRejected(
                f'oidc: id token signed with unsupported algorithm, expected ["RS256"] got "{alg}"'
            )
        await self._check_signature(token)
        return Verified(self._username(claims), self._groups(claims), claims)

    def _check_claims(self, claims: dict[str, Any], now: float) -> None:
        iss = claims.get("iss")
        if iss != self.issuer:
            raise OIDCRejected(
                f'oidc: id token issued by a different provider, expected "{self.issuer}" got "{iss}"'
            )
        if not self.skip_client_id_check:
            aud = claims.get("aud")
            audiences = [aud] if isinstance(aud, str) else [a for a in aud or [] if isinstance(a, str)]
            if self.client_id not in audiences:
                raise OIDCRejected(
                    f'oidc: expected audience "{self.client_id}" got {go_quote_list(audiences)}'
                )
        exp = claims.get("exp")
        expiry = float(exp) if isinstance(exp, (int, float)) else -62135596800.0  # Go's zero time
        if now > expiry:
            raise OIDCRejected(f"oidc: token is expired (Token Expiry: {go_time(expiry)})")
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and now + NBF_LEEWAY < nbf:
            raise OIDCRejected(
                f"oidc: current time {go_time(now)} before the nbf (not before) time: {go_time(nbf)}"
            )

    async def _check_signature(self, token: str) -> None:
        # As go-oidc's remote key set: try the cached keys, and on failure fetch them again once.
        for refresh in (False, True):
            keys = await self._key_set(refresh=refresh)
            try:
                jwt.decode(token, keys, algorithms=["RS256"])
                return
            except (JoseError, ValueError):
                continue
        raise OIDCRejected("failed to verify signature: failed to verify id token signature")

    async def _key_set(self, refresh: bool) -> KeySet:
        if self._keys is not None and not refresh:
            return self._keys
        discovery = await self._get_json(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
        if discovery.get("issuer") != self.issuer:
            raise OIDCRejected(
                f'oidc: issuer did not match the issuer returned by provider, expected "{self.issuer}" '
                f'got "{discovery.get("issuer")}"'
            )
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise OIDCRejected("oidc: provider discovery document has no jwks_uri")
        try:
            self._keys = KeySet.import_key_set(await self._get_json(jwks_uri))  # type: ignore[arg-type]
        except (JoseError, ValueError) as exc:
            raise OIDCRejected(f"oidc: unusable JWKS: {type(exc).__name__}") from None
        return self._keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        if self._http is None:
            self._http = AsyncHTTPClient(force_instance=True)
        try:
            response = await self._http.fetch(url, request_timeout=5.0)
            data = json.loads(response.body)
        except (HTTPClientError, OSError, ValueError) as exc:
            raise OIDCRejected(f"oidc: failed to get {url}: {type(exc).__name__}") from None
        if not isinstance(data, dict):
            raise OIDCRejected(f"oidc: {url} is not a JSON object")
        return data

    def _username(self, claims: dict[str, Any]) -> str:
        value = claims.get(self.username_claim)
        if not isinstance(value, str):
            raise ClaimMissing(f"oidc: token doesn't contain required claim '{self.username_claim}'")
        return value

    def _groups(self, claims: dict[str, Any]) -> list[str]:
        value = claims.get(self.groups_claim)
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [g for g in value if isinstance(g, str)]
        return []
