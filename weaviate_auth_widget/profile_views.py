"""ProfileViews: what a service's profiles look like from outside, secrets left out.

Read-only: the panel's and the broker's profile list (fields, which kinds of secret are
kept, login state), and the set of secret values the notebook save guard redacts. Made
per use from the service it reads (nothing keeps the service alive).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .credentials import SECRET_KINDS
from .profiles import Profile

if TYPE_CHECKING:
    from .service import AuthService


class ProfileViews:
    """Views of one service's profiles; never a secret except in :meth:`secret_values`."""

    def __init__(self, service: AuthService) -> None:
        self.service = service

    def describe(self, name: str) -> dict[str, Any]:
        """A profile as callers may see it: fields, whether a secret is kept, login state."""
        profile = self.service.get_profile(name)
        states = self.service.login_states
        identity = states.identity(name)
        kept = self.kept_secrets(profile)
        return {
            **profile.to_json(),
            "read_only": profile.read_only,
            "has_secret": profile.primary_secret in kept or "refresh_token" in kept,
            "kept_secrets": kept,
            "logged_in": identity is not None,
            "logged_out": states.is_logged_out(name),
            "identity": identity.to_json() if identity else None,
        }

    def all(self) -> list[dict[str, Any]]:
        """:meth:`describe` for every profile."""
        return [self.describe(p.name) for p in self.service.list_profiles()]

    def kept_secrets(self, profile: Profile) -> list[str]:
        """Which kinds of login secret are kept for ``profile`` (names, never values)."""
        credentials = self.service.credentials
        return [kind for kind in (*SECRET_KINDS, "refresh_token") if credentials.get(profile, kind)]

    def has_secret(self, profile: Profile) -> bool:
        credentials = self.service.credentials
        return any(credentials.get(profile, kind) for kind in (profile.primary_secret, "refresh_token"))

    def secret_values(self) -> frozenset[str]:
        """Every secret the service knows (stored, in memory, tokens). Cached until the
        service changes a secret."""
        service = self.service
        credentials = service.credentials
        cached = credentials.cache
        if cached is not None:
            return cached
        generation = credentials.generation
        values = {v for _, v in credentials.volatile.values()} | set(credentials.admin_secrets.values())
        if service.browser_client is not None and service.browser_client.client_secret:
            values.add(service.browser_client.client_secret)
        for profile in service.list_profiles():
            values.update(v for v in credentials.all(profile).values() if v)
        for state in service.login_states.all():
            if state.access is not None:
                values.add(state.access.value)
            if state.refresh_token:
                values.add(state.refresh_token)
        result = frozenset(v for v in values if len(v) >= 4)
        if generation == credentials.generation:  # nothing changed while we looked
            credentials.cache = result
        return result
