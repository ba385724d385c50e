"""Tokens, the TokenSource protocol, and a cache that refreshes once however many ask."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

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


def jwt_expiry(value: str) -> float | None:
    """Read ``exp`` from a JWT *without* verifying it: only to know when to refresh."""
    parts = value.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
        exp = claims.get("exp") if isinstance(claims, dict) else None
        return float(exp) if isinstance(exp, (int, float)) else None
    except (ValueError, TypeError):
        return None


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
    first find a fresh token when they get it.
    """

    def __init__(self, fetch: Callable[[Token | None], Token], *, margin: float = DEFAULT_MARGIN) -> None:
        self._fetch = fetch
        self._margin = margin
        self._token: Token | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._token!r})"

    def _usable(self, rejected: Token | None) -> Token | None:
        token = self._token
        if token is None or (rejected is not None and token == rejected):
            return None
        return token if token.fresh(self._margin) else None

    def token(self, *, rejected: Token | None = None) -> Token:
        token = self._usable(rejected)
        if token is not None:
            return token
        with self._lock:
            token = self._usable(rejected)
            if token is not None:
                return token
            refused = rejected if self._token is not None and self._token == rejected else None
            self._token = token = self._fetch(refused)
            return token

    async def atoken(self, *, rejected: Token | None = None) -> Token:
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
