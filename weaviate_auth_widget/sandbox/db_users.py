"""Database users (Weaviate v1.30+) as the double keeps them: hashed keys, roles, states.

Follows section 1 of ``spec/weaviate-users-grpc-client.md``: keys are shown once (on
create and rotate) and kept only as a hash; deactivation can revoke the key until it
is rotated; rotation kills the old key at once. The checks every endpoint runs, in the
spec's order, live in :mod:`.users_api`; this module is the state and its rules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

USERS_SINCE = (1, 30, 0)
#: ``apiKeyFirstLetters``, ``lastUsedAt``; listing answers ``[]`` when DB users are off
DETAILS_SINCE = (1, 30, 1)
NEVER = "0001-01-01T00:00:00.000Z"
NOT_ENABLED = "db user management is not enabled"
NAME_RULE = re.compile(r"^[A-Za-z][A-Za-z0-9\-_@.]{0,127}$")
PREFIX_LETTERS = 3


def timestamp(when: float) -> str:
    """Go's strfmt.DateTime as Weaviate writes it (milliseconds, UTC, ``Z``)."""
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when))
    return f"{text}.{int(when * 1000) % 1000:03d}Z"


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_key() -> str:
    """A generated key: base64 text, as the server makes them."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class DbUser:
    """One database user. Only the key's hash and first letters are kept."""

    user_id: str
    roles: list[str] = field(default_factory=list)
    key_hash: bytes = field(default=b"", repr=False)
    key_prefix: str = field(default="", repr=False)
    active: bool = True
    revoked: bool = False
    created_at: float = field(default_factory=time.time)
    last_used_at: float | None = None

    def set_key(self, key: str) -> None:
        self.key_hash = _hash(key)
        self.key_prefix = key[:PREFIX_LETTERS]
        self.revoked = False


class KeyRejected(Exception):
    """A DB user's key that matched but may not be used: the reason Weaviate appends."""


class DbUsers:
    """The double's database users (thread-safe: gRPC checks keys from other threads)."""

    def __init__(self) -> None:
        self._users: dict[str, DbUser] = {}
        self._lock = threading.Lock()

    def get(self, user_id: str) -> DbUser | None:
        with self._lock:
            return self._users.get(user_id)

    def all(self) -> list[DbUser]:
        with self._lock:
            return sorted(self._users.values(), key=lambda u: u.user_id)

    def create(self, user_id: str, roles: list[str] | None = None) -> str:
        """Add a user and return its key (the only time it exists in clear)."""
        key = new_key()
        user = DbUser(user_id, list(roles or []))
        user.set_key(key)
        with self._lock:
            self._users[user_id] = user
        return key

    def rotate(self, user_id: str) -> str:
        key = new_key()
        with self._lock:
            self._users[user_id].set_key(key)
        return key

    def delete(self, user_id: str) -> None:
        with self._lock:
            self._users.pop(user_id, None)

    def set_active(self, user_id: str, active: bool, *, revoke: bool = False) -> None:
        with self._lock:
            user = self._users[user_id]
            user.active = active
            if revoke:
                user.revoked = True

    def set_roles(self, user_id: str, roles: list[str]) -> None:
        with self._lock:
            self._users[user_id].roles = list(roles)

    def check_key(self, key: str) -> DbUser | None:
        """The user this key belongs to (its use recorded), None if none; raises
        :class:`KeyRejected` for a revoked key or a deactivated user."""
        given = _hash(key)
        with self._lock:
            found = None
            for user in self._users.values():
                if hmac.compare_digest(given, user.key_hash):
                    found = user
            if found is None:
                return None
            if found.revoked:
                raise KeyRejected("key is revoked")
            if not found.active:
                raise KeyRejected("user deactivated")
            found.last_used_at = time.time()
            return found


def user_json(
    user: DbUser | None,
    *,
    static_name: str | None = None,
    static_roles: list[str] | None = None,
    details: bool,
    show_prefix: bool,
    last_used: bool = False,
) -> dict[str, Any]:
    """A user as ``GET /v1/users/db`` writes it (``dbUserType`` and all); ``details``:
    the v1.30.1 fields, ``last_used``: ``includeLastUsedTime=true`` was asked."""
    if user is None:
        doc: dict[str, Any] = {
            "userId": static_name,
            "roles": list(static_roles or []),
            "dbUserType": "db_env_user",
            "active": True,
            "createdAt": NEVER,
        }
        if details:
            doc["lastUsedAt"] = NEVER
        return doc
    doc = {
        "userId": user.user_id,
        "roles": list(user.roles),
        "dbUserType": "db_user",
        "active": user.active,
        "createdAt": timestamp(user.created_at),
    }
    if details:
        used = user.last_used_at if last_used else None
        doc["lastUsedAt"] = timestamp(used) if used else NEVER
        if show_prefix and user.key_prefix:
            doc["apiKeyFirstLetters"] = user.key_prefix
    return doc
