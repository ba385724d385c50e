"""The provider's interactive side: browser sessions, authorization codes, device codes.

Kept apart from the token endpoint's grants (``idp.py``) and from the HTML
(``idp_pages.py``): this is the state a real provider keeps between the user's browser
and the client's back channel, with the checks that make the flows safe (single-use,
short-lived codes, PKCE S256, registered redirect URIs, polling discipline).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
GRANTS = ("password", "client_credentials", "refresh_token", "authorization_code", DEVICE_GRANT)
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels: no words, no 0/O or 1/I confusion


class OAuthError(Exception):
    """An OAuth error response: ``status``, ``error`` code and a description."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class PageError(Exception):
    """An authorize request too broken to redirect back (unknown client, foreign
    redirect URI): the provider shows the error on its own page instead."""


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of ``verifier`` (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def is_loopback_http(uri: str) -> bool:
    parts = urlsplit(uri)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


@dataclass
class Interaction:
    """One sign-in waiting for the user: an authorize request or a device's user code."""

    kind: str  # "code" or "device"
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    redirect_uri: str = ""
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    prompt: tuple[str, ...] = ()
    device_code: str = ""


@dataclass
class CodeGrant:
    username: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    nonce: str | None
    code_challenge: str | None
    auth_time: int
    expires_at: float


@dataclass
class DeviceGrant:
    client_id: str
    user_code: str
    scopes: tuple[str, ...]
    expires_at: float
    interval: int
    last_poll: float = 0.0
    status: str = "pending"  # pending, approved, denied
    username: str = ""
    auth_time: int = 0
    consented: bool = False


@dataclass
class Session:
    username: str
    auth_time: int
    expires_at: float


@dataclass
class InteractiveSettings:
    code_lifetime: int = 60
    interaction_lifetime: int = 600
    device_code_lifetime: int = 600
    device_interval: int = 5
    session_lifetime: int = 3600
    allow_loopback_redirects: bool = False
    offline_needs_consent: bool = False


@dataclass
class Interactions:
    """State between the browser and the back channel. Thread-safe (one lock)."""

    settings: InteractiveSettings
    #: (client_id) -> registered redirect URIs, None for an unknown client
    redirect_uris: Callable[[str], tuple[str, ...] | None]
    clock: Callable[[], float] = time.time
    sessions: dict[str, Session] = field(default_factory=dict)
    pending: dict[str, Interaction] = field(default_factory=dict)
    codes: dict[str, CodeGrant] = field(default_factory=dict)
    used_codes: set[str] = field(default_factory=set)
    devices: dict[str, DeviceGrant] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- authorize -------------------------------------------------------------------

    def check_redirect(self, client_id: str, redirect_uri: str) -> None:
        registered = self.redirect_uris(client_id)
        if registered is None:
            raise PageError(f"Unknown client: {client_id[:60]!r}")
        if not redirect_uri:
            raise PageError("Missing parameter: redirect_uri")
        if redirect_uri in registered:
            return
        if self.settings.allow_loopback_redirects and is_loopback_http(redirect_uri):
            return
        raise PageError("Invalid parameter: redirect_uri (not registered for this client)")

    def begin_authorize(self, query: Mapping[str, str], public_client: bool) -> tuple[str, Interaction]:
        """Check an authorize request; returns its interaction id, or raises
        :class:`PageError` (shown on the page) or :class:`OAuthError` (sent back to the
        redirect URI, which is known good by then)."""
        client_id = query.get("client_id", "")
        redirect_uri = query.get("redirect_uri", "")
        self.check_redirect(client_id, redirect_uri)
        if query.get("response_type") != "code":
            raise OAuthError(400, "unsupported_response_type", "Only response_type=code is supported")
        method = query.get("code_challenge_method", "plain" if query.get("code_challenge") else "")
        challenge = query.get("code_challenge") or None
        if challenge is not None and method != "S256":
            raise OAuthError(400, "invalid_request", "Invalid parameter: code_challenge_method (S256 only)")
        if challenge is None and public_client:
            raise OAuthError(400, "invalid_request", "Missing parameter: code_challenge (PKCE is required)")
        interaction = Interaction(
            kind="code",
            client_id=client_id,
            scopes=tuple(dict.fromkeys(query.get("scope", "openid").split())),
            expires_at=self.clock() + self.settings.interaction_lifetime,
            redirect_uri=redirect_uri,
            state=query.get("state"),
            nonce=query.get("nonce"),
            code_challenge=challenge,
            prompt=tuple(query.get("prompt", "").split()),
        )
        return self._park(interaction), interaction

    def _park(self, interaction: Interaction) -> str:
        rid = secrets.token_urlsafe(16)
        with self._lock:
            now = self.clock()
            for key in [k for k, v in self.pending.items() if v.expires_at <= now]:
                del self.pending[key]
            self.pending[rid] = interaction
        return rid

    def interaction(self, rid: str) -> Interaction:
        with self._lock:
            found = self.pending.get(rid)
            if found is None or found.expires_at <= self.clock():
                self.pending.pop(rid, None)
                raise PageError(
                    "This sign-in has expired or is unknown. Start it again from the application."
                )
            return found

    def finish(self, rid: str) -> Interaction:
        with self._lock:
            found = self.pending.pop(rid, None)
        if found is None or found.expires_at <= self.clock():
            raise PageError("This sign-in has expired or is unknown. Start it again from the application.")
        return found

    def issue_code(self, interaction: Interaction, username: str, auth_time: int, consented: bool) -> str:
        scopes = self.granted_scopes(interaction.scopes, consented)
        code = secrets.token_urlsafe(32)
        grant = CodeGrant(
            username=username,
            client_id=interaction.client_id,
            redirect_uri=interaction.redirect_uri,
            scopes=scopes,
            nonce=interaction.nonce,
            code_challenge=interaction.code_challenge,
            auth_time=auth_time,
            expires_at=self.clock() + self.settings.code_lifetime,
        )
        with self._lock:
            self.codes[code] = grant
        return code

    def granted_scopes(self, scopes: tuple[str, ...], consented: bool) -> tuple[str, ...]:
        """``offline_access`` only with consent when the provider is set up that way."""
        if self.settings.offline_needs_consent and not consented:
            return tuple(s for s in scopes if s != "offline_access")
        return scopes

    def redeem_code(self, form: Mapping[str, str], client_id: str) -> CodeGrant:
        """The token endpoint's side: single use, not expired, same client, same
        redirect URI, PKCE verifier matching."""
        code = form.get("code", "")
        if not code:
            raise OAuthError(400, "invalid_request", "Missing parameter: code")
        with self._lock:
            grant = self.codes.pop(code, None)
            replayed = grant is None and code in self.used_codes
            self.used_codes.add(code)
        if replayed:
            raise OAuthError(400, "invalid_grant", "Code not valid (already used)")
        if grant is None:
            raise OAuthError(400, "invalid_grant", "Code not valid")
        if grant.expires_at <= self.clock():
            raise OAuthError(400, "invalid_grant", "Code not valid (expired)")
        if grant.client_id != client_id:
            raise OAuthError(400, "invalid_grant", "Code was issued to another client")
        if form.get("redirect_uri", "") != grant.redirect_uri:
            raise OAuthError(400, "invalid_grant", "Incorrect redirect_uri")
        verifier = form.get("code_verifier")
        if grant.code_challenge is not None:
            if not verifier:
                raise OAuthError(400, "invalid_grant", "Missing parameter: code_verifier")
            if not hmac.compare_digest(s256(verifier), grant.code_challenge):
                raise OAuthError(
                    400, "invalid_grant", "PKCE verification failed: code_verifier does not match"
                )
        elif verifier:
            raise OAuthError(400, "invalid_grant", "PKCE verification failed: no code_challenge was sent")
        return grant

    # -- sessions --------------------------------------------------------------------

    def open_session(self, username: str) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(username, int(now), now + self.settings.session_lifetime)
        with self._lock:
            self.sessions[sid] = session
        return sid, session

    def session(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            found = self.sessions.get(sid)
            if found is not None and found.expires_at <= self.clock():
                del self.sessions[sid]
                return None
            return found

    def end_session(self, sid: str | None) -> None:
        with self._lock:
            self.sessions.pop(sid or "", None)

    def end_sessions(self, username: str | None = None) -> None:
        """Log users out at the provider (all, or one)."""
        with self._lock:
            for sid in [k for k, v in self.sessions.items() if username is None or v.username == username]:
                del self.sessions[sid]

    # -- device authorization (RFC 8628) ---------------------------------------------

    def begin_device(self, client_id: str, scopes: tuple[str, ...]) -> tuple[str, DeviceGrant]:
        device_code = secrets.token_urlsafe(32)
        user_code = "-".join("".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(4)) for _ in range(2))
        grant = DeviceGrant(
            client_id=client_id,
            user_code=user_code,
            scopes=scopes,
            expires_at=self.clock() + self.settings.device_code_lifetime,
            interval=self.settings.device_interval,
        )
        with self._lock:
            self.devices[device_code] = grant
        return device_code, grant

    def device_by_user_code(self, user_code: str) -> tuple[str, DeviceGrant]:
        wanted = normalise_user_code(user_code)
        with self._lock:
            for device_code, grant in self.devices.items():
                if normalise_user_code(grant.user_code) == wanted and grant.status == "pending":
                    if grant.expires_at <= self.clock():
                        break
                    return device_code, grant
        raise PageError("That code is not valid or has expired. Check the code shown by the application.")

    def begin_device_login(self, user_code: str) -> tuple[str, Interaction]:
        device_code, grant = self.device_by_user_code(user_code)
        interaction = Interaction(
            kind="device",
            client_id=grant.client_id,
            scopes=grant.scopes,
            expires_at=min(grant.expires_at, self.clock() + self.settings.interaction_lifetime),
            device_code=device_code,
        )
        return self._park(interaction), interaction

    def decide_device(self, device_code: str, username: str, auth_time: int, approve: bool) -> None:
        with self._lock:
            grant = self.devices.get(device_code)
            if grant is None or grant.status != "pending" or grant.expires_at <= self.clock():
                raise PageError("That code is not valid or has expired. Start again from the application.")
            grant.status = "approved" if approve else "denied"
            grant.username, grant.auth_time, grant.consented = username, auth_time, approve

    def poll_device(self, form: Mapping[str, str], client_id: str) -> DeviceGrant:
        """One poll of the token endpoint: the grant once approved, else the RFC's errors."""
        device_code = form.get("device_code", "")
        if not device_code:
            raise OAuthError(400, "invalid_request", "Missing parameter: device_code")
        now = self.clock()
        with self._lock:
            grant = self.devices.get(device_code)
            if grant is None or grant.client_id != client_id:
                raise OAuthError(400, "invalid_grant", "Device code not valid")
            if grant.expires_at <= now:
                del self.devices[device_code]
                raise OAuthError(400, "expired_token", "Device code expired")
            if grant.status == "denied":
                del self.devices[device_code]
                raise OAuthError(400, "access_denied", "The user refused the sign-in")
            if grant.status == "approved":
                del self.devices[device_code]
                return grant
            too_soon = now - grant.last_poll < grant.interval
            grant.last_poll = now
            if too_soon:
                grant.interval += 5
                raise OAuthError(400, "slow_down", "Polling too fast: wait longer between requests")
            raise OAuthError(400, "authorization_pending", "The user has not finished signing in")

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "sessions": len(self.sessions),
                "pending_codes": len(self.codes),
                "pending_devices": sum(1 for g in self.devices.values() if g.status == "pending"),
            }


def normalise_user_code(value: str) -> str:
    return "".join(c for c in value.upper() if c in string.ascii_uppercase)
