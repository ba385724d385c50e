"""SecretStore: where the package keeps secrets on the host, always through ``keyring``.

One keyring service name (``"weaviate-auth-widget"``); one entry per profile and kind,
under the username ``"<profile>/<kind>"`` (profile names never contain ``/``, so the
pair is unambiguous). Backends:

``auto``
    a real OS keyring when one passes a test write within ``timeout``, else the file
    store. With a store key configured, the encrypted file store directly.
``keyring``
    the configured OS keyring, or an error when there is none.
``file``
    ``secrets.json`` (encrypted when a store key is configured, else plain 0600).
``encrypted-file``
    ``secrets.json`` encrypted with AES-GCM; a store key is required.

A value stored with a ``scope`` (what ``Profile.secret_scope`` gives: its URL and method)
is kept as ``waw-bound-v1:<scope>:<value>`` and read back only under the same scope,
in the same entry, so the binding and the value can never be written apart.

The store key comes from ``key=``, else ``$WEAVIATE_AUTH_STORE_KEY``, else the file
named by ``$WEAVIATE_AUTH_STORE_KEY_FILE``. A plain ``secrets.json`` opened with a key is
migrated to the encrypted form by the next write that changes it.

Every failure is a :class:`~weaviate_auth_widget.errors.StoreUnavailable` whose message
names the backend and the fix; no secret ever reaches a message, a log line or a repr.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from .errors import InvalidProfile, StoreUnavailable, WeaviateAuthError
from .paths import store_dir
from .secret_backends import os_keyring
from .secret_backends.file import (
    ENCRYPTED_NAME,
    KEY_ENV,
    KEY_FILE_ENV,
    PLAIN_NAME,
    FileKeyring,
    StoreKey,
)
from .secret_backends.os_keyring import KeyringCallFailed, reset_auto_choice

__all__ = [
    "BACKENDS",
    "ENCRYPTED_NAME",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "PLAIN_NAME",
    "SERVICE",
    "SecretStore",
    "reset_auto_choice",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The one keyring service name every entry lives under.
SERVICE = "weaviate-auth-widget"
BACKENDS = ("auto", "keyring", "file", "encrypted-file")

_PROFILE_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_KIND_RE = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces
_MAX_DUPLICATE_DELETES = 16
_BOUND = "waw-bound-v1:"


def _username(profile: str, kind: str) -> str:
    if not isinstance(profile, str) or not _PROFILE_RE.match(profile) or profile in (".", ".."):
        raise InvalidProfile("A profile name uses 1-64 letters, digits, '.', '_' or '-'.")
    if not isinstance(kind, str) or not _KIND_RE.match(kind):
        raise InvalidProfile("A secret kind is 1-128 printable ASCII characters without spaces.")
    return f"{profile}/{kind}"


def _check_value(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a secret value must be str, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidProfile("The secret is not valid text (it contains an unpaired surrogate).") from None
    return value


def _load_key(key: str | bytes | None) -> StoreKey | None:
    """The store key from the argument, the environment, or a key file; None if unset."""
    if key is not None:
        return StoreKey(_encode_key(key, "the key argument"))
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        return StoreKey(_encode_key(from_env, KEY_ENV))
    key_file = os.environ.get(KEY_FILE_ENV)
    if not key_file:
        return None
    path = Path(key_file).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StoreUnavailable(
            f"Cannot read the secret store key file {path} ({exc.strerror}).",
            fix=f"Point {KEY_FILE_ENV} at a readable file holding the key, or unset it.",
        ) from None
    data = data.rstrip(b"\r\n")
    if not data:
        raise StoreUnavailable(
            f"The secret store key file {path} is empty.",
            fix=f"Write the key into it, or unset {KEY_FILE_ENV}.",
        )
    if os.name == "posix":
        try:
            if path.stat().st_mode & 0o077:
                log.warning("The secret store key file %s is readable by other users; chmod 600 it.", path)
        except OSError:
            pass
    return StoreKey(data)


def _encode_key(key: str | bytes, source: str) -> bytes:
    if isinstance(key, bytes):
        return key
    if not isinstance(key, str):
        raise TypeError(f"the store key must be str or bytes, not {type(key).__name__}")
    try:
        return key.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise StoreUnavailable(
            f"The secret store key from {source} is not valid text.",
            fix="Use a key made of ordinary characters.",
        ) from None


class SecretStore:
    """Keeps secrets on the host, in the best place that works here.

    The backend is chosen when the store is created (for ``auto``, once per process);
    :attr:`backend_name` is what to show users. Calls to an OS keyring never block longer
    than ``timeout`` seconds: a locked keyring or a dead D-Bus becomes StoreUnavailable.
    """

    backend_name: str

    def __init__(
        self,
        backend: str = "auto",
        *,
        directory: Path | None = None,
        key: str | bytes | None = None,
        timeout: float = 5.0,
    ) -> None:
        if backend not in BACKENDS:
            raise StoreUnavailable(
                f"Unknown secret store backend {backend!r}.",
                fix="Use one of: " + ", ".join(BACKENDS) + ".",
            )
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        self._requested = backend
        self._timeout = float(timeout)
        store_key = None if backend == "keyring" else _load_key(key)
        if backend == "encrypted-file" and store_key is None:
            raise StoreUnavailable(
                "The encrypted-file secret store needs a key.",
                fix=f"Set {KEY_ENV}, or {KEY_FILE_ENV} to a file holding it.",
            )
        chosen: KeyringBackend | None = None
        if backend == "keyring":
            chosen = self._configured_keyring()
        elif backend == "auto" and store_key is None:
            chosen = os_keyring.auto_keyring(SERVICE, self._timeout)
        if chosen is not None:
            self._keyring: KeyringBackend = chosen
            self._bounded = True
            self.backend_name = os_keyring.display_name(chosen)
        else:
            file_keyring = FileKeyring(
                Path(directory) if directory is not None else store_dir(),
                key=store_key,
                timeout=self._timeout,
            )
            self._keyring = file_keyring
            self._bounded = False
            self.backend_name = file_keyring.display_name
        log.debug("Secret store: %s (requested %s).", self.backend_name, backend)

    def __repr__(self) -> str:
        return f"SecretStore(backend_name={self.backend_name!r})"

    __str__ = __repr__

    # -- public API -------------------------------------------------------------
    def get(self, profile: str, kind: str, *, scope: str | None = None) -> str | None:
        """The stored value, or None when there is none — or when ``scope`` is given and
        the value was stored for another scope. Values stored without a scope (by earlier
        versions) are returned under any scope."""
        username = _username(profile, kind)
        stored = self._call("read", lambda kr: kr.get_password(SERVICE, username), profile, kind)
        value = stored
        if stored is not None and stored.startswith(_BOUND):
            bound_to, _, value = stored[len(_BOUND) :].partition(":")
            if scope is not None and bound_to != scope:
                log.debug("Secret %s of profile %s was stored for another URL or method.", kind, profile)
                return None
        log.debug(
            "Secret %s of profile %s %s in the %s.",
            kind,
            profile,
            "found" if value is not None else "not found",
            self.backend_name,
        )
        return value

    def set(self, profile: str, kind: str, value: str, *, scope: str | None = None) -> None:
        """Store ``value`` (bound to ``scope`` when given), replacing any previous one."""
        username = _username(profile, kind)
        secret = _check_value(value)
        if scope is not None:
            if ":" in scope:
                raise InvalidProfile("A secret scope cannot contain ':'.")
            stored = f"{_BOUND}{scope}:{secret}"
        else:
            stored = secret
        self._call("write", lambda kr: kr.set_password(SERVICE, username, stored), profile, kind, secret)
        log.debug("Secret %s of profile %s stored in the %s.", kind, profile, self.backend_name)

    def delete(self, profile: str, kind: str) -> None:
        """Remove the value; a missing one is fine."""
        self.delete_profile(profile, [kind])

    def delete_profile(self, profile: str, kinds: Iterable[str]) -> None:
        """Remove every listed kind of ``profile`` in one bounded call (missing ones are fine)."""
        kinds = list(kinds)
        usernames = [_username(profile, kind) for kind in kinds]
        if not usernames:
            return
        self._call("delete", lambda kr: _delete_all(kr, usernames), profile, ",".join(kinds))
        log.debug(
            "Secrets %s of profile %s deleted from the %s.", ",".join(kinds), profile, self.backend_name
        )

    # -- internals ----------------------------------------------------------------
    def _configured_keyring(self) -> KeyringBackend:
        try:
            configured = os_keyring.configured_keyring(self._timeout)
            real = os_keyring.bounded(lambda: os_keyring.real_keyring(configured), self._timeout)
        except KeyringCallFailed as failure:
            reason = failure.describe(self._timeout)
            raise StoreUnavailable(
                f"The OS keyring {reason}.",
                fix="Start or unlock your keyring, or configure the 'file' or 'encrypted-file' store backend.",
            ) from None
        if real is None:
            raise StoreUnavailable(
                f"No OS keyring is available (keyring backend: {os_keyring.qualname(configured)}).",
                fix="Install and start one (e.g. gnome-keyring), or configure the 'file' or "
                "'encrypted-file' store backend.",
            )
        return real

    def _call(
        self,
        action: str,
        fn: Callable[[KeyringBackend], T],
        profile: str,
        kind: str,
        secret: str | None = None,
    ) -> T:
        """Run one backend operation; every failure becomes a secret-free StoreUnavailable."""
        backend = self._keyring
        if not self._bounded:
            try:
                return fn(backend)
            except WeaviateAuthError:
                raise
            except Exception as exc:
                error_type = type(exc).__name__
            raise StoreUnavailable(
                f"Could not {action} secret {kind} of profile {profile!r} in the {self.backend_name} "
                f"({error_type}).",
            )
        try:
            return os_keyring.bounded(lambda: fn(backend), self._timeout)
        except KeyringCallFailed as failure:
            reason = failure.describe(self._timeout, redact=secret)
            locked = failure.locked or failure.timed_out or failure.busy
        log.warning("The %s %s (%s %s of profile %s).", self.backend_name, reason, action, kind, profile)
        raise StoreUnavailable(
            f"Could not {action} secret {kind} of profile {profile!r}: the {self.backend_name} {reason}.",
            fix=self._fix(locked),
        )

    def _fix(self, locked: bool) -> str:
        first = "Unlock your keyring" if locked else "Check that your keyring works (unlock or restart it)"
        if self._requested == "keyring":
            return f"{first}, or configure the 'encrypted-file' store backend with {KEY_ENV}."
        return f"{first}, or set {KEY_ENV} (or {KEY_FILE_ENV}) to use the encrypted file store."


def _delete_all(backend: KeyringBackend, usernames: list[str]) -> None:
    """Delete entries, ignoring missing ones; repeat for duplicates other tools may have made."""
    if isinstance(backend, FileKeyring):
        backend.delete_many(SERVICE, usernames)
        return
    for username in usernames:
        for _ in range(_MAX_DUPLICATE_DELETES):
            try:
                backend.delete_password(SERVICE, username)
            except PasswordDeleteError:
                break
