"""Identity: what a login tells the caller (who, where, until when). Never a secret.

Its own module so the sessions can carry one without depending on the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .cluster import is_admin


@dataclass(frozen=True)
class Identity:
    """What a login tells the caller: who, where, until when. Never a secret."""

    profile: str
    url: str
    method: str
    server_version: str | None
    username: str | None
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    identity_known: bool = False
    expires_at: float | None = None
    refreshes: bool = False
    remembered: bool = False
    backend: str = ""

    @property
    def is_admin(self) -> bool:
        return is_admin(self.roles)

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "url": self.url,
            "method": self.method,
            "server_version": self.server_version,
            "username": self.username,
            "groups": list(self.groups),
            "roles": list(self.roles),
            "identity_known": self.identity_known,
            "expires_at": self.expires_at,
            "refreshes": self.refreshes,
            "remembered": self.remembered,
            "backend": self.backend,
            "is_admin": self.is_admin,
        }
