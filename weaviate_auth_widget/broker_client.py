""":class:`BrokerClient`: the broker's REST API with the surface of ``AuthService``.

Kernel code (the panel, the magic, scripts) uses it like the in-process service. The
kernel never receives a password, a refresh token or a client secret: only the
short-lived bearer tokens (and module-key headers) the ``token`` endpoint hands out,
cached by the sessions made here until shortly before they expire. The connection
itself (proof check, retries, following a restarted server) is :mod:`.broker_transport`.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .broker import TOKEN_RECHECK_SECONDS
from .broker_transport import PROBE_TIMEOUT, BrokerTransport
from .errors import LoginExpired, ProfileNotFound, UnexpectedResponse, WeaviateAuthError, from_code
from .profile_rules import require_api_key_profile
from .profiles import Profile, profile_from_view, validate_name
from .tokens import CachingTokenSource, Token
from .transport import HttpSettings

if TYPE_CHECKING:
    from .identity import Identity
    from .kernel_keys import BrokerKeys
    from .session import AsyncWeaviateSession, WeaviateSession

#: The broker's CA-bundle setting by environment (a path): kernels it starts inherit it.
CA_BUNDLE_ENV = "WEAVIATE_AUTH_CA_BUNDLE"


class _Grant(NamedTuple):
    """One answer of the broker's token route."""

    token: Token
    headers: dict[str, str]
    #: seconds the token may be used before asking again (the broker's ``recheck_in``)
    recheck_in: float


class _BrokerTokenSource(CachingTokenSource):
    """A CachingTokenSource for broker grants: it uses a token for at most the
    ``recheck_in`` seconds the broker granted it with, expired or not, then asks again.

    So a logout in another kernel or a narrowed policy, which the broker enforces at
    once, stops this kernel's sessions within that bound (an API key never expires).
    When the broker refuses (``login_expired``, ``policy_refused`` ...), the token is
    dropped and the refusal is the caller's error; every later call asks again.
    Concurrent callers still share one broker call (the base class's single flight).
    """

    def __init__(self, grant: Callable[[Token | None], _Grant]) -> None:
        super().__init__(self._ask)
        self._grant = grant
        #: time.monotonic() after which the cached token is not used without asking
        self._recheck_at = 0.0

    def prime(self, grant: _Grant) -> None:
        """Start with the grant the session was built with."""
        self._recheck_at = time.monotonic() + grant.recheck_in
        self._token = grant.token

    def _usable(self, rejected: Token | None) -> Token | None:
        # the base class's check plus the bound, inline: this runs on every request
        token = self._token
        if (
            token is None
            or time.monotonic() >= self._recheck_at
            or (rejected is not None and token == rejected)
        ):
            return None
        return token if token.fresh(self._margin) else None

    def current(self) -> Token | None:
        """The base class's cached token, but never past the bound: a caller that must
        not block (the async client's gRPC headers) gets None rather than a key the
        broker may refuse by now."""
        return None if time.monotonic() >= self._recheck_at else super().current()

    def _ask(self, rejected: Token | None) -> Token:
        try:
            grant = self._grant(rejected)
        except WeaviateAuthError as exc:
            self._token = None  # refused or unreachable: nothing uses the old token
            if isinstance(exc, LoginExpired):
                self.ended = True
            raise
        self._recheck_at = time.monotonic() + grant.recheck_in
        return grant.token


def _rejected_digest(token: Token) -> str:
    return hashlib.sha256(token.value.encode("utf-8")).hexdigest()


class BrokerClient(BrokerTransport):
    """The broker's REST API with the surface of ``AuthService`` that the doors use.

    Thread-safe. Each request carries the broker token (and the kernel id when known).
    When the broker does not answer, or refuses the token (401/403), the client reads
    the connection file again and, if it now names another broker (the Jupyter server
    restarted: new port, new token), retries there once and keeps using it.
    """

    mode = "broker"

    def __repr__(self) -> str:
        return f"BrokerClient(url={self._info.url!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("BrokerClient objects are not picklable: they hold the broker token.")

    def __enter__(self) -> BrokerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- status and mode ---------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Store backend, policy, version (``GET status``)."""
        data = self._json_object(self._request("GET", "status"))
        self._status = data
        return data

    def probe(self, timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
        """``status`` with a short read timeout: does a broker answer here?"""
        data = self._json_object(self._request("GET", "status", timeout=timeout))
        self._status = data
        return data

    def describe_mode(self) -> str:
        """One line for the UI: where secrets live."""
        status = self._status
        if status is None:
            try:
                status = self.status()
            except WeaviateAuthError:
                status = {}
        store = status.get("store") or "unknown"
        info = self._info
        where = f"at {info.server_url}" if info.socket is None else f"on {info.socket}"
        return f"broker {where} (secrets stay in the Jupyter server; store: {store})"

    # -- profiles ------------------------------------------------------------------
    def profile_views(self) -> list[dict[str, Any]]:
        """Every profile the user can see, as the broker describes them (no secrets)."""
        data = self._json_object(self._request("GET", "profiles"))
        views = data.get("profiles")
        if not isinstance(views, list) or not all(isinstance(v, dict) for v in views):
            raise self._unexpected("GET profiles", "no profile list")
        return views

    def list_profiles(self, *, include_ephemeral: bool = True) -> list[Profile]:
        """The broker keeps no in-memory-only profiles, so ``include_ephemeral`` changes nothing."""
        return [profile_from_view(view) for view in self.profile_views()]

    def describe(self, name: str) -> dict[str, Any]:
        """One profile: fields, whether a secret is kept, login state and identity."""
        return self._json_object(self._request("GET", _profile_path(name)))

    def get_profile(self, name: str) -> Profile:
        return profile_from_view(self.describe(name))

    def save_profile(
        self, profile: Profile, secrets: Mapping[str, str] | None = None, *, replace: bool = False
    ) -> Profile:
        """Create or replace ``profile`` and store ``secrets`` (kind -> value) in the broker.

        The secrets travel once, in the request body over the authenticated connection
        to the broker; nothing here keeps them. ``replace``: as for ``AuthService``.
        """
        body = _profile_body(profile, secrets, replace)
        data = self._json_object(self._request("PUT", _profile_path(profile.name), body=body))
        return profile_from_view(data)

    def connect(self, profile: Profile, secrets: Mapping[str, str], *, replace: bool = False) -> Identity:
        """Save and log in in one request: the broker keeps the secrets only when the
        login works (the profile stays for a retry when it fails)."""
        body = _profile_body(profile, secrets, replace)
        data = self._request("POST", _profile_path(profile.name, "connect"), body=body)
        return _identity_from_json(self._json_object(data))

    def forget(self, name: str) -> bool:
        """Log out, delete the profile and every secret kept for it; False if unknown."""
        try:
            self._request("DELETE", _profile_path(name))
        except ProfileNotFound:
            return False
        return True

    # -- login and tokens --------------------------------------------------------------
    def login(self, name: str) -> Identity:
        """Log in with what the broker stores for ``name``; identity only, never a secret."""
        return _identity_from_json(self._json_object(self._request("POST", _profile_path(name, "login"))))

    def start_sign_in(self, name: str, origin: str | None = None) -> dict[str, Any]:
        """Start a browser sign-in of ``name`` at its identity provider: the broker keeps
        state, nonce and PKCE verifier and answers the authorize URL to open, and an id
        to ask :meth:`sign_in_status` about. ``origin``: the page's location.origin."""
        body = {"origin": origin} if origin else None
        return self._json_object(self._request("POST", _profile_path(name, "sign-in"), body=body))

    def sign_in_status(self, sign_in_id: str) -> dict[str, Any]:
        """``pending``, ``done`` (with the identity) or ``failed`` (with the error)."""
        if not sign_in_id.replace("-", "").replace("_", "").isalnum() or len(sign_in_id) > 64:
            raise ValueError("not a sign-in id")
        return self._json_object(self._request("GET", f"sign-in/{sign_in_id}"))

    def sign_in_result(self, sign_in_id: str) -> Identity | None:
        """None while the sign-in is pending, the identity once done; a failed one raises
        its typed error (``sign_in_failed`` ...)."""
        outcome = self.sign_in_status(sign_in_id)
        if outcome.get("status") == "done" and isinstance(outcome.get("identity"), dict):
            return _identity_from_json(outcome["identity"])
        if outcome.get("status") == "pending":
            return None
        found = outcome.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        raise from_code(
            str(error.get("code") or "sign_in_failed"), str(error.get("message") or "The sign-in failed.")
        )

    def identity(self, name: str) -> Identity | None:
        """The identity of the current login of ``name``, None when not logged in."""
        try:
            view = self.describe(name)
        except ProfileNotFound:
            return None
        ident = view.get("identity")
        return _identity_from_json(ident) if isinstance(ident, dict) else None

    def token(self, name: str, *, rejected: Token | None = None) -> Token:
        """A bearer token for ``name`` (one HTTP round trip; sessions cache it).

        ``rejected`` is a token the cluster just refused; only its SHA-256 digest is sent.
        """
        return self._grant(name, rejected).token

    def api_key(self, name: str) -> str:
        """The API key of an API-key profile (``weaviate-auth keys copy``). The broker
        token's one route to a credential is ``token`` (it checks the policy and the
        logout); the rule that only an API-key profile gives its key up is the core's."""
        require_api_key_profile(self.get_profile(name))
        return self.token(name).value

    def module_headers(self, name: str) -> dict[str, str]:
        """Module keys (``X-OpenAI-Api-Key`` ...) to send to the cluster. Secret: never print."""
        return self._grant(name, None).headers

    def logout(self, name: str) -> None:
        """Revoke the refresh token at the provider; the broker drops its tokens and
        refuses new ones until an explicit login; sessions made here drop theirs."""
        self._request("POST", _profile_path(name, "logout"))
        self.watch.ended(name)

    @property
    def keys(self) -> BrokerKeys:
        """Key management (database users) run by the broker: see :mod:`.kernel_keys`."""
        from .kernel_keys import BrokerKeys

        return BrokerKeys(self._request)

    def token_source(self, name: str) -> _BrokerTokenSource:
        validate_name(name)
        source = _BrokerTokenSource(lambda rejected: self._grant(name, rejected))
        self.watch.track(name, source)
        return source

    def session(self, name: str, **kwargs: Any) -> WeaviateSession:
        """A ready ``WeaviateSession`` for ``name`` (logs in first if needed)."""
        from .session import WeaviateSession

        identity, source, headers = self._session_parts(name)
        kwargs.setdefault("http", self.http_settings())
        return WeaviateSession(identity.url, source, headers=headers, identity=identity, **kwargs)

    def async_session(self, name: str, **kwargs: Any) -> AsyncWeaviateSession:
        from .session import AsyncWeaviateSession

        identity, source, headers = self._session_parts(name)
        kwargs.setdefault("http", self.http_settings())
        return AsyncWeaviateSession(identity.url, source, headers=headers, identity=identity, **kwargs)

    def http_settings(self) -> HttpSettings:
        """How sessions reach the cluster: trusting the administrator's CA bundle when the
        broker's status names one (``policy.ca_bundle``) or the server's environment does
        (``WEAVIATE_AUTH_CA_BUNDLE``, inherited by its kernels), as the broker itself does."""
        policy = (self._status or {}).get("policy")
        bundle = policy.get("ca_bundle") if isinstance(policy, dict) else None
        if not isinstance(bundle, str) or not bundle:
            bundle = os.environ.get(CA_BUNDLE_ENV, "").strip() or None
        return HttpSettings(ca_bundle=bundle)

    def _session_parts(self, name: str) -> tuple[Identity, CachingTokenSource, dict[str, str]]:
        identity = self.identity(name) or self.login(name)
        grant = self._grant(name, None)
        source = self.token_source(name)
        source.prime(grant)
        return identity, source, grant.headers

    def _grant(self, name: str, rejected: Token | None) -> _Grant:
        body = {"rejected": _rejected_digest(rejected)} if rejected is not None else None
        data = self._json_object(self._request("POST", _profile_path(name, "token"), body=body))
        value, expires_at, headers = data.get("token"), data.get("expires_at"), data.get("headers") or {}
        recheck_in = data.get("recheck_in", TOKEN_RECHECK_SECONDS)  # an older broker sends none
        if (
            not isinstance(value, str)
            or not value
            or not (expires_at is None or _is_number(expires_at))
            or not isinstance(headers, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
            or not (_is_number(recheck_in) and math.isfinite(recheck_in) and recheck_in >= 0)
        ):
            raise self._unexpected(f"POST {_profile_path(name, 'token')}", "a malformed token grant")
        token = Token(value, None if expires_at is None else float(expires_at))
        return _Grant(token, headers, float(recheck_in))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _profile_body(profile: Profile, secrets: Mapping[str, str] | None, replace: bool) -> dict[str, Any]:
    body: dict[str, Any] = profile.to_json()
    body.pop("name", None)
    if secrets:
        body["secrets"] = dict(secrets)
    if replace:
        body["replace"] = True
    return body


def _profile_path(name: str, action: str | None = None) -> str:
    validate_name(name)  # also keeps the path inside the API: no '/', no '..'
    return f"profiles/{name}" + (f"/{action}" if action else "")


def _identity_from_json(data: Mapping[str, Any]) -> Identity:
    from .identity import Identity

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) else None

    def strings(key: str) -> tuple[str, ...]:
        value = data.get(key)
        return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()

    expires = data.get("expires_at")
    profile, url, method = text("profile"), text("url"), text("method")
    if not profile or not url or not method:
        raise UnexpectedResponse("The weaviate-auth broker sent an identity without profile, url or method.")
    return Identity(
        profile=profile,
        url=url,
        method=method,
        server_version=text("server_version"),
        username=text("username"),
        groups=strings("groups"),
        roles=strings("roles"),
        identity_known=bool(data.get("identity_known", False)),
        expires_at=float(expires)
        if isinstance(expires, (int, float)) and not isinstance(expires, bool)
        else None,
        refreshes=bool(data.get("refreshes", False)),
        remembered=bool(data.get("remembered", False)),
        backend=text("backend") or "",
    )


__all__ = ["CA_BUNDLE_ENV", "BrokerClient"]
