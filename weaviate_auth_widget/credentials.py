"""ProfileCredentials: where AuthService keeps and finds each profile's secrets.

One job: bind every secret to the profile (URL and method) it was saved for, whether it
lives in the secret store, in this process's memory (``remember=False``, in-memory
profiles) or with the administrator's profiles; and change a profile and its secrets as
one unit (threads and processes alike), under the rules for changing a saved profile;
a login's trial secrets kept only once it worked. Holds secrets: never shown, never logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InvalidProfile, MissingSecret, PolicyRefused, ProfileNotFound
from .paths import store_dir
from .profile_rules import check_method_change
from .profiles import Profile, ProfileStore
from .urls import host_of

if TYPE_CHECKING:
    from .secrets import SecretStore

log = logging.getLogger(__name__)

SECRET_KINDS = ("api_key", "password", "client_secret", "bearer")
MAX_SECRET_LENGTH = 16 * 1024


class ProfileCredentials:
    """The profile and secret stores of one service, and the secrets it holds in memory."""

    def __init__(
        self,
        *,
        profiles: ProfileStore | None = None,
        secrets: SecretStore | None = None,
        directory: Path | None = None,
    ) -> None:
        self._directory = directory
        self._profiles = profiles
        self._secrets = secrets
        #: secrets kept in memory only: (profile, kind) -> (scope, value)
        self.volatile: dict[tuple[str, str], tuple[str, str]] = {}
        #: profiles kept in memory only (``persist=False``)
        self.ephemeral: dict[str, Profile] = {}
        #: held (with the store's file lock) while a profile and its secrets change
        self.lock = threading.RLock()
        #: profiles the administrator provides: usable, never readable or changeable
        self.admin: dict[str, Profile] = {}
        self.admin_secrets: dict[tuple[str, str], str] = {}
        #: bumped whenever a secret changes (the service's cache of secret values)
        self.generation = 0
        self.cache: frozenset[str] | None = None

    def __repr__(self) -> str:
        return f"ProfileCredentials(profiles={self._directory or 'default'!s})"

    # -- stores ---------------------------------------------------------------
    @property
    def profiles(self) -> ProfileStore:
        if self._profiles is None:
            self._profiles = ProfileStore(self._directory or store_dir())
        return self._profiles

    @property
    def secrets(self) -> SecretStore:
        if self._secrets is None:
            from .secrets import SecretStore

            self._secrets = SecretStore(directory=self._directory)
        return self._secrets

    def add_admin(self, profile: Profile, secrets: Mapping[str, str]) -> None:
        self.admin[profile.name] = profile
        for kind, value in secrets.items():
            self.admin_secrets[(profile.name, kind)] = value

    def in_memory(self, name: str) -> Profile | None:
        """The administrator's or in-memory profile ``name`` (these shadow saved ones)."""
        if name in self.admin:
            return self.admin[name]
        return self.ephemeral.get(name)

    def invalidate(self) -> None:
        self.generation += 1
        self.cache = None

    # -- units ----------------------------------------------------------------
    @contextmanager
    def unit(self, *, stored: bool) -> Iterator[None]:
        """Hold while a profile and its secrets change together: this service's lock, and
        the profile store's file lock (other processes) when the profile is on disk."""
        with self.lock:
            if stored:
                with self.profiles.transaction():
                    yield
            else:
                yield

    def current_profile(self, name: str) -> Profile:
        """The profile ``name`` reading the file afresh (inside :meth:`unit`)."""
        profile = self.in_memory(name)
        if profile is not None:
            return profile
        return self.profiles.get(name, fresh=True)

    def is_current(self, profile: Profile) -> bool:
        """Whether ``profile`` (as a login read it) is still what is saved (inside :meth:`unit`)."""
        try:
            current = self.current_profile(profile.name)
        except ProfileNotFound:
            return False
        return current.secret_scope == profile.secret_scope and current.remember == profile.remember

    def stored(self, profile: Profile) -> bool:
        return profile.remember and profile.name not in self.ephemeral

    def save(
        self,
        profile: Profile,
        secrets: Mapping[str, str],
        *,
        persist: bool,
        replace: bool,
        reset: Callable[[str], object],
        held: Collection[str] = (),
    ) -> tuple[Profile | None, str | None]:
        """``AuthService.save_profile``'s compare-and-write (inside :meth:`unit`): a new
        URL or method drops the secrets kept for the old one, a method change with secrets
        kept needs ``replace``; ``reset(name)`` drops the profile's login state; ``held``:
        the kinds of secret that state holds in memory only (they count as kept).

        Returns the profile as it was, and the refresh token this save dropped (for the
        caller to revoke outside the unit: it would stay valid at the provider)."""
        try:
            previous: Profile | None = self.current_profile(profile.name)
        except ProfileNotFound:
            previous = None
        dropped_refresh: str | None = None
        if previous is not None and previous.read_only:
            raise PolicyRefused(
                f"Profile {profile.name!r} is provided by your administrator and cannot be changed.",
                fix="Save your own profile under another name.",
            )
        if previous is not None and previous.method != profile.method:
            kept_kinds = list(dict.fromkeys([*self.all(previous), *held]))
            check_method_change(previous, profile, kept_kinds, replace=replace)
        if previous is not None and (
            previous.url != profile.url
            or previous.method != profile.method
            or previous.remember != profile.remember
        ):
            moved = previous.url != profile.url or previous.method != profile.method
            kept = {} if moved else self.all(previous)
            if moved:
                dropped_refresh = self.get(previous, "refresh_token")
            self.drop(previous)
            secrets = {**kept, **secrets}
        reset(profile.name)
        if persist:
            self.ephemeral.pop(profile.name, None)
            self.profiles.save(profile)
        else:
            self.ephemeral[profile.name] = profile
        for kind, value in secrets.items():
            self.put(profile, kind, value)
        return previous, dropped_refresh

    # -- secrets --------------------------------------------------------------
    def get(self, profile: Profile, kind: str) -> str | None:
        """The secret ``kind`` kept for ``profile`` *as it is*: one saved for another URL
        or method (a save in between) does not count."""
        if profile.read_only:
            return self.admin_secrets.get((profile.name, kind))
        scope = profile.secret_scope
        kept = self.volatile.get((profile.name, kind))
        if kept is not None:
            return kept[1] if kept[0] == scope else None
        if self.stored(profile):
            return self.secrets.get(profile.name, kind, scope=scope)
        return None

    def require(self, profile: Profile, kind: str) -> str:
        value = self.get(profile, kind)
        if not value:
            raise MissingSecret(
                f"No {kind.replace('_', ' ')} is kept for profile {profile.name!r}.",
                host=host_of(profile.url),
                fix="Enter it in the login panel (tick 'Remember' to keep it on this host).",
            )
        return value

    def put(self, profile: Profile, kind: str, value: str) -> None:
        """Keep ``value`` bound to ``profile``'s URL and method — unless the profile was
        saved anew since ``profile`` was read (a login finishing after a URL change)."""
        self.invalidate()
        if profile.read_only:
            return
        stored = self.stored(profile)
        with self.unit(stored=stored):
            if not self.is_current(profile):
                log.info("profile %s changed during its login; its new %s is not kept", profile.name, kind)
                return
            if stored:
                self.secrets.set(profile.name, kind, value, scope=profile.secret_scope)
                self.volatile.pop((profile.name, kind), None)
            else:
                self.volatile[(profile.name, kind)] = (profile.secret_scope, value)

    def delete(self, profile: Profile, kind: str) -> None:
        """Drop the secret ``kind`` of ``profile`` — not one saved since for another URL."""
        self.invalidate()
        if profile.read_only:
            return
        stored = self.stored(profile)
        with self.unit(stored=stored):
            kept = self.volatile.get((profile.name, kind))
            if kept is not None and kept[0] == profile.secret_scope:
                del self.volatile[(profile.name, kind)]
            if stored and self.secrets.get(profile.name, kind, scope=profile.secret_scope) is not None:
                self.secrets.delete(profile.name, kind)

    @contextmanager
    def trial(self, profile: Profile, secrets: Mapping[str, str]) -> Iterator[None]:
        """Hold ``secrets`` in memory for a login tried inside; keep them (store them, when
        remembered) once it worked, drop them all if it failed: a rejected secret is never
        stored. One the login consumed (a password traded for a refresh token) stays gone."""
        trial = {kind: (profile.secret_scope, value) for kind, value in secrets.items()}
        with self.lock:
            self.volatile.update({(profile.name, kind): kept for kind, kept in trial.items()})
            self.invalidate()
        try:
            yield
        except BaseException:
            self._settle_trial(profile, trial, keep=False)
            raise
        self._settle_trial(profile, trial, keep=True)

    def _settle_trial(self, profile: Profile, trial: dict[str, tuple[str, str]], *, keep: bool) -> None:
        for kind, kept in trial.items():
            with self.lock:
                if self.volatile.get((profile.name, kind)) != kept:
                    continue  # consumed by the login, or replaced meanwhile
                del self.volatile[(profile.name, kind)]
                self.invalidate()
            if keep:
                self.put(profile, kind, kept[1])

    def all(self, profile: Profile) -> dict[str, str]:
        found = {}
        for kind in profile.secret_kinds():
            value = self.get(profile, kind)
            if value is not None:
                found[kind] = value
        return found

    def drop(self, profile: Profile) -> None:
        """Drop every secret kept for ``profile`` (memory and store)."""
        self.invalidate()
        for key in [k for k in self.volatile if k[0] == profile.name]:
            del self.volatile[key]
        if profile.name not in self.ephemeral:
            self.secrets.delete_profile(profile.name, profile.secret_kinds())


def validate_secrets(profile: Profile, secrets: Mapping[str, str]) -> None:
    allowed = set(SECRET_KINDS) | {f"header:{h}" for h in profile.headers}
    for kind, value in secrets.items():
        if kind not in allowed:
            raise InvalidProfile(
                f"Unknown secret {kind!r:.60} for profile {profile.name!r}.",
                fix=f"Use one of: {', '.join(sorted(allowed))}.",
            )
        if not isinstance(value, str) or not value:
            raise InvalidProfile(f"The {kind.replace('_', ' ')} is empty.", fix="Enter a value.")
        if len(value) > MAX_SECRET_LENGTH:
            raise InvalidProfile(f"The {kind.replace('_', ' ')} is too long.", fix="Check what was pasted.")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise InvalidProfile(
                f"The {kind.replace('_', ' ')} contains control characters (a stray newline?).",
                fix="Paste it again without line breaks.",
            )
