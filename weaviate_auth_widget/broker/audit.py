"""The audit log: one JSON line per broker operation — who, which profile, what, outcome.

Never a value: no secret, no token, not even a digest. The file is created 0600 and
appended to with one ``write`` per line (``O_APPEND``), so lines from concurrent
requests never interleave; it is reopened for every line so log rotation (rename +
new file) just works.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)

_KERNEL_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_MAX_FIELD = 256


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
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.path, flags, 0o600)
        if os.name == "posix":
            try:
                if os.fstat(fd).st_mode & 0o077:
                    os.fchmod(fd, 0o600)
            except OSError:
                pass
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
        line = (json.dumps(entry, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
        with self._lock:
            try:
                fd = self._open()
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
            except OSError as exc:
                cause = f"{type(exc).__name__}:{exc.errno}"
                if cause != self._failed:
                    log.error("Cannot write the weaviate-auth audit log %s (%s).", self.path, exc.strerror)
                    self._failed = cause
            else:
                self._failed = None


__all__ = ["AuditLog"]
