"""The audit log: one JSON line per broker operation — who, which profile, what, outcome.

Never a value: no secret, no token, not even a digest. The file is created 0600 and
appended to with one ``write`` per line (``O_APPEND``), so lines from concurrent
requests never interleave; it is reopened for every line so log rotation (rename +
new file) just works. It is opened with ``O_NOFOLLOW`` and must be a regular file of
this user: a symbolic link or a file of someone else planted there is refused (at
start-up with an error saying what to fix; later, logged), never written or chmodded.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import threading
from datetime import datetime, timezone
from pathlib import Path

from ..errors import StoreUnavailable
from ..paths import check_owned, symlink_refused

log = logging.getLogger(__name__)

_KERNEL_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_MAX_FIELD = 256
_ELSEWHERE = "or set WeaviateAuthApp.audit_log (WEAVIATE_AUTH_AUDIT_LOG) to another path"


def _clip(value: str | None) -> str | None:
    return None if value is None else value[:_MAX_FIELD]


class AuditLog:
    """Appends JSON lines to ``path``; failures are logged (once per cause), never raised."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._failed: str | None = None
        parent = self.path.parent
        if not parent.exists():
            parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = self._open()
        os.close(fd)

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    def _open(self) -> int:
        """The log opened for appending; raises StoreUnavailable for a link or a file
        that is not this user's regular file (nothing is written or chmodded then)."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError:
            if os.path.islink(self.path):
                raise symlink_refused(self.path, "audit log", elsewhere=_ELSEWHERE) from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StoreUnavailable(
                    f"The audit log {self.path} is not a regular file.",
                    fix=f"Move it aside and try again, {_ELSEWHERE}.",
                )
            check_owned(self.path, st, "audit log", elsewhere=_ELSEWHERE)
            if os.name == "posix" and st.st_mode & 0o077:
                os.fchmod(fd, 0o600)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def record(
        self,
        *,
        user: str | None,
        profile: str | None,
        action: str,
        outcome: str,
        kernel: str | None = None,
        via: str | None = None,
        target: str | None = None,
    ) -> None:
        """One line. ``outcome`` is ``ok`` or an error code; ``kernel`` a kernel id (if sane)."""
        entry: dict[str, str | None] = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "user": _clip(user),
            "profile": _clip(profile),
            "action": action,
            "outcome": outcome,
        }
        if kernel and _KERNEL_ID_RE.match(kernel):
            entry["kernel"] = kernel
        if via:
            entry["via"] = via
        if target:
            entry["target"] = _clip(target)  # the database user acted on (a name, never a key)
        line = (json.dumps(entry, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
        with self._lock:
            try:
                fd = self._open()
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
            except (OSError, StoreUnavailable) as exc:
                if isinstance(exc, OSError):
                    cause, why = f"{type(exc).__name__}:{exc.errno}", str(exc.strerror)
                else:
                    cause = why = str(exc)
                if cause != self._failed:
                    log.error("Cannot write the weaviate-auth audit log %s (%s).", self.path, why)
                    self._failed = cause
            else:
                self._failed = None


__all__ = ["AuditLog"]
