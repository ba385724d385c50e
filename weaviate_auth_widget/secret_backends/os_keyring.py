"""Choosing, naming and calling a real OS keyring without ever hanging.

Keyring calls can block indefinitely: a locked collection waits for an unlock prompt
nobody sees, a D-Bus peer may never answer. Every call therefore runs in a daemon worker
thread and the caller waits at most ``timeout`` seconds. A worker that overruns is left
behind (Python cannot cancel it); once a few are stuck, further calls fail at once
instead of piling up more threads.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import keyring
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null
from keyring.errors import KeyringLocked

from .file import FileKeyring

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How many overrun keyring workers may be alive before calls fail without trying.
MAX_STUCK_WORKERS = 4

_stuck: set[threading.Thread] = set()
_stuck_lock = threading.Lock()


class KeyringCallFailed(Exception):
    """A bounded keyring call timed out, raised, or was refused because earlier ones hang.

    Carries only the type and (caller-redacted) text of the underlying error, never the
    error object, so no traceback chain can drag a secret along.
    """

    def __init__(
        self, *, timed_out: bool = False, busy: bool = False, error: BaseException | None = None
    ) -> None:
        self.timed_out = timed_out
        self.busy = busy
        self.error_type = type(error).__name__ if error is not None else None
        self.error_text = str(error) if error is not None else ""
        self.locked = isinstance(error, KeyringLocked)
        super().__init__(self.error_type or ("timeout" if timed_out else "busy"))

    def describe(self, timeout: float, redact: str | None = None) -> str:
        """A short, non-secret reason: ``"did not answer within 2 s"``, ``"is locked"``..."""
        if self.busy:
            return "has not answered earlier calls yet"
        if self.timed_out:
            return f"did not answer within {timeout:g} s"
        if self.locked:
            return "is locked"
        text = self.error_text
        if redact:
            text = text.replace(redact, "***")
        text = " ".join(text.split())[:300]
        return f"failed ({self.error_type}: {text})" if text else f"failed ({self.error_type})"


def bounded(fn: Callable[[], T], timeout: float) -> T:
    """Run ``fn`` in a daemon thread; return its result or raise KeyringCallFailed."""
    with _stuck_lock:
        for thread in [t for t in _stuck if not t.is_alive()]:
            _stuck.discard(thread)
        if len(_stuck) >= MAX_STUCK_WORKERS:
            raise KeyringCallFailed(busy=True)
    result: list[T] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=run, name="weaviate-auth-keyring", daemon=True)
    worker.start()
    if not done.wait(max(timeout, 0.0)):
        with _stuck_lock:
            _stuck.add(worker)
        raise KeyringCallFailed(timed_out=True)
    if errors:
        raise KeyringCallFailed(error=errors[0])
    if not result:  # pragma: no cover - a worker cannot finish without either
        raise KeyringCallFailed(error=RuntimeError("no result"))
    return result[0]


def display_name(backend: KeyringBackend) -> str:
    """The name users see for an OS keyring."""
    module, cls = type(backend).__module__, type(backend).__name__
    if module in ("keyring.backends.SecretService", "keyring.backends.libsecret"):
        return "Secret Service"
    if module.startswith("keyring.backends.macOS"):
        return "macOS Keychain"
    if module == "keyring.backends.Windows":
        return "Windows Credential Locker"
    if module == "keyring.backends.kwallet":
        return "KWallet"
    try:
        return str(type(backend).name)
    except Exception:
        return cls


def qualname(backend: KeyringBackend) -> str:
    """``module.Class`` of a keyring backend, for messages about which one is configured."""
    return f"{type(backend).__module__}.{type(backend).__name__}"


def real_keyring(backend: KeyringBackend) -> KeyringBackend | None:
    """The OS keyring behind ``backend``, or None when it cannot keep secrets safely.

    fail/null keyrings keep nothing; an empty chainer is the same; keyrings.alt backends
    are plaintext or prompt on stdin (useless in a kernel); our own file backend is not an
    OS keyring. A chainer is unwrapped to its best real backend, so writes go to one
    known place and the name shown is that backend's.
    """
    if isinstance(backend, chainer.ChainerBackend):
        for inner in backend.backends:
            found = real_keyring(inner)
            if found is not None:
                return found
        return None
    if isinstance(backend, (fail.Keyring, null.Keyring, FileKeyring)):
        return None
    module = type(backend).__module__
    if module == "keyrings.alt" or module.startswith("keyrings.alt."):
        return None
    return backend


def probe(backend: KeyringBackend, service: str) -> None:
    """Write, read back and delete a throwaway entry; raise if any step fails."""
    username = f"probe:{os.urandom(8).hex()}"  # ':' never occurs in real entry names
    value = os.urandom(16).hex()
    backend.set_password(service, username, value)
    try:
        if backend.get_password(service, username) != value:
            raise RuntimeError("the test entry did not read back")
    finally:
        backend.delete_password(service, username)


class _DiscoveryFailed:
    """Cache marker: keyring discovery itself failed or hung in this process."""


_auto_lock = threading.Lock()
_auto_choice: tuple[object, KeyringBackend | None] | None = None


def reset_auto_choice() -> None:
    """Forget the cached "auto" choice (tests; or after the keyring set-up changed)."""
    global _auto_choice
    with _auto_lock:
        _auto_choice = None


def configured_keyring(timeout: float) -> KeyringBackend:
    """keyring's configured backend; discovery may touch D-Bus, so it is bounded too."""
    return bounded(keyring.get_keyring, timeout)


def auto_keyring(service: str, timeout: float) -> KeyringBackend | None:
    """The OS keyring "auto" should use in this process, or None for the file store.

    The first call probes the keyring; the verdict is cached per process (and per
    configured keyring object, so ``keyring.set_keyring`` is honoured) so every store in
    the process agrees on where secrets live, and the probe's cost is paid once.
    """
    global _auto_choice
    deadline = time.monotonic() + timeout
    with _auto_lock:
        if _auto_choice is not None and isinstance(_auto_choice[0], _DiscoveryFailed):
            return None
        try:
            configured = configured_keyring(timeout)
        except KeyringCallFailed as failure:
            log.warning(
                "keyring discovery %s; using the file secret store in this process.",
                failure.describe(timeout),
            )
            _auto_choice = (_DiscoveryFailed(), None)
            return None
        if _auto_choice is not None and _auto_choice[0] is configured:
            return _auto_choice[1]
        chosen: KeyringBackend | None = None
        try:
            real = bounded(lambda: real_keyring(configured), deadline - time.monotonic())
            if real is None:
                log.info(
                    "No OS keyring is available (keyring backend: %s); using the file secret store.",
                    qualname(configured),
                )
            else:
                bounded(lambda: probe(real, service), deadline - time.monotonic())
                chosen = real
        except KeyringCallFailed as failure:
            log.warning(
                "The OS keyring %s during a test write; using the file secret store in this process. "
                "Unlock your keyring and restart, or set WEAVIATE_AUTH_STORE_KEY to use the encrypted file store.",
                failure.describe(timeout),
            )
        _auto_choice = (configured, chosen)
        if chosen is not None:
            log.debug("Using the %s for secrets.", display_name(chosen))
        return chosen
