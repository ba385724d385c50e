"""Tokens, the TokenSource protocol, and a cache that refreshes once however many ask."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)

#: Refresh this many seconds before expiry so a request never carries a token that
#: expires in flight (Weaviate gives no grace on ``exp``).
DEFAULT_MARGIN = 30.0


class Token:
    """A bearer value and when it stops working. Masks itself everywhere it can be shown."""

    __slots__ = ("_value", "expires_at", "lifetime")

    def __init__(self, value: str, expires_at: float | None = None) -> None:
        self._value = value
        self.expires_at = expires_at
        #: lifetime when issued; short-lived tokens get a proportionally short margin
        self.lifetime = None if expires_at is None else max(0.0, expires_at - time.time())

    @property
    def value(self) -> str:
        return self._value

    def expires_in(self) -> float | None:
        return None if self.expires_at is None else self.expires_at - time.time()

    def fresh(self, margin: float = DEFAULT_MARGIN) -> bool:
        """Usable for at least ``margin`` seconds more; a token that lived less than five
        margins gets a fifth of its lifetime instead, so 3-second test tokens work."""
        left = self.expires_in()
        if left is None:
            return True
        if self.lifetime is not None:
            margin = min(margin, self.lifetime / 5)
        return left > margin

    def __repr__(self) -> str:
        left = self.expires_in()
        return "Token(***, no expiry)" if left is None else f"Token(***, expires in {left:.0f}s)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Token) and hmac.compare_digest(
            other._value.encode("utf-8"), self._value.encode("utf-8")
        )

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Token objects are not picklable: they hold a credential.")


def _jwt_claims(value: str) -> dict[str, object]:
    """A JWT's claims read *without* verifying it: only to know when to refresh."""
    parts = value.split(".")
    if len(parts) != 3:
        return {}
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _number_claim(claims: dict[str, object], name: str) -> float | None:
    value = claims.get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def jwt_expiry(value: str) -> float | None:
    """``exp`` of a JWT: an instant on the *issuer's* clock, not necessarily ours."""
    return _number_claim(_jwt_claims(value), "exp")


def jwt_lifetime(value: str) -> float | None:
    """``exp - iat`` of a JWT: how long it lives, whoever's clock is right."""
    claims = _jwt_claims(value)
    exp, iat = _number_claim(claims, "exp"), _number_claim(claims, "iat")
    return None if exp is None or iat is None else exp - iat


def bearer_expiry(value: str, now: float) -> float | None:
    """When a pasted JWT stops working, on our clock. Its ``exp`` is on the issuer's
    clock; a token issued "in our future" (``iat > now``: our clock is behind) lives
    ``exp - iat`` from now, not until ``exp`` read on our slow clock."""
    claims = _jwt_claims(value)
    exp, iat = _number_claim(claims, "exp"), _number_claim(claims, "iat")
    if exp is None:
        return None
    return exp - max(0.0, iat - now) if iat is not None else exp


@runtime_checkable
class TokenSource(Protocol):
    """Where a session gets its bearer token. ``rejected`` is the token a server just
    refused: the source refreshes only if it still holds that one, so N requests that
    all got a 401 cause one refresh, not N."""

    def token(self, *, rejected: Token | None = None) -> Token: ...

    async def atoken(self, *, rejected: Token | None = None) -> Token: ...


class CachingTokenSource:
    """Caches a token until shortly before expiry; refreshes single-flight.

    ``fetch(rejected)`` does the real work (ask the service or the broker); ``rejected``
    is set only when the server refused the very token this cache holds. The fast path
    takes no lock; callers that find the token stale queue on one lock, and all but the
    first find a fresh token when they get it. ``check``, when given, runs on every
    call, cached token or not: it raises when the token may no longer be used (the
    administrator's policy changed); it must be cheap.
    """

    def __init__(
        self,
        fetch: Callable[[Token | None], Token],
        *,
        margin: float = DEFAULT_MARGIN,
        check: Callable[[], object] | None = None,
    ) -> None:
        self._fetch = fetch
        self._check = check
        self._margin = margin
        self._token: Token | None = None
        self._lock = threading.Lock()
        #: the login this source serves was ended (logout): what sessions show until a
        #: fetch succeeds again (after an explicit login)
        self.ended = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({'logged out' if self.ended else repr(self._token)})"

    def _usable(self, rejected: Token | None) -> Token | None:
        token = self._token
        if token is None or (rejected is not None and token == rejected):
            return None
        return token if token.fresh(self._margin) else None

    def token(self, *, rejected: Token | None = None) -> Token:
        if self._check is not None:
            self._check()
        token = self._usable(rejected)
        if token is not None:
            return token
        with self._lock:
            token = self._usable(rejected)
            if token is not None:
                return token
            refused = rejected if self._token is not None and self._token == rejected else None
            self._token = token = self._fetch(refused)
            self.ended = False
            return token

    async def atoken(self, *, rejected: Token | None = None) -> Token:
        if self._check is not None:
            self._check()
        token = self._usable(rejected)
        if token is not None:
            return token
        return await asyncio.to_thread(self.token, rejected=rejected)

    def current(self) -> Token | None:
        """The cached token if it has not expired yet (maybe due for renewal), without
        fetching: for callers that must not block, like an event loop."""
        token = self._token
        if token is None or not token.fresh(0):
            return None
        return token

    def invalidate(self) -> None:
        self._token = None

    def end(self) -> None:
        """The login was ended: drop the cached token, so the next request asks (and
        learns that it must log in again)."""
        self._token = None
        self.ended = True


class LoginWatch:
    """Who must hear that a profile's login ended: the token sources handed out for it
    (sessions and official clients hold them) and listeners such as open login panels.

    Held weakly, so a forgotten session or a closed panel is not kept alive by it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[str, weakref.WeakSet[CachingTokenSource]] = {}
        self._listeners: list[weakref.ReferenceType[Callable[[str], object]]] = []

    def __repr__(self) -> str:
        return f"LoginWatch(profiles={sorted(self._sources)!r})"

    def track(self, name: str, source: CachingTokenSource) -> CachingTokenSource:
        """Remember that ``source`` serves profile ``name``; returns it."""
        with self._lock:
            self._sources.setdefault(name, weakref.WeakSet()).add(source)
        return source

    def subscribe(self, callback: Callable[[str], object]) -> None:
        """Call ``callback(name)`` after each logout (bound methods are held weakly)."""
        ref: weakref.ReferenceType[Callable[[str], object]]
        ref = weakref.WeakMethod(callback) if hasattr(callback, "__self__") else weakref.ref(callback)  # type: ignore[arg-type]
        with self._lock:
            self._listeners.append(ref)

    def renewed(self, name: str) -> None:
        """Profile ``name``'s credential was replaced: every source for it forgets its token."""
        with self._lock:
            sources = list(self._sources.get(name, ()))
        for source in sources:
            source.invalidate()

    def ended(self, name: str) -> None:
        """Profile ``name`` logged out: every source for it drops its token; listeners hear it."""
        with self._lock:
            sources = list(self._sources.get(name, ()))
            self._listeners = [r for r in self._listeners if r() is not None]
            listeners = [r() for r in self._listeners]
        for source in sources:
            source.end()
        for listener in listeners:
            if listener is None:
                continue
            try:
                listener(name)
            except Exception:  # a broken listener (a panel) must not undo the logout
                log.exception("a logout listener failed")
