"""Finding the broker: its connection file, checked before anything is sent.

A Jupyter server running the weaviate-auth extension (the *broker*) writes a
connection file ``<runtime dir>/weaviate-auth-broker-<pid>.json`` (mode 0600) holding
its API URL and a random per-server token, and puts only that file's *path* into the
environment of the kernels it starts (``WEAVIATE_AUTH_BROKER_FILE``). This module reads
and checks such files (owner, mode, live server process, https or loopback URL) and
picks the one this process should use; no network.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .broker import API_PATH, BROKER_FILE_ENV, CONNECTION_FILE_PREFIX
from .urls import is_loopback_host

#: the logger kernel.py always used: log settings that name it keep working
log = logging.getLogger("weaviate_auth_widget.kernel")

FILE_GLOB = f"{CONNECTION_FILE_PREFIX}*.json"

_MAX_FILE_SIZE = 64 * 1024
_KERNEL_ID_RE = re.compile(r"kernel-([A-Za-z0-9_-]{1,128})\.json")
_TOKEN_RE = re.compile(r"[\x21-\x7e]{1,1024}")  # fits in a header as is


class BrokerInfo:
    """One broker connection file, read and checked. The token never shows in ``repr``."""

    __slots__ = ("_token", "base", "path", "pid", "socket", "url", "user")

    def __init__(
        self,
        url: str,
        token: str,
        *,
        pid: int | None = None,
        user: str | None = None,
        path: Path | None = None,
    ) -> None:
        self.url = url
        self._token = token
        self.pid = pid
        self.user = user
        self.path = path
        parts = urlsplit(url)
        #: the Unix socket of a server listening on one (``http+unix://`` URLs), else None
        self.socket = unquote(parts.netloc) if parts.scheme == "http+unix" else None
        #: what request URLs start with (for a Unix socket, an http URL on ``localhost``)
        self.base = url if self.socket is None else "http://localhost" + parts.path

    @property
    def token(self) -> str:
        return self._token

    @property
    def server_url(self) -> str:
        """The Jupyter server's own URL (``http://127.0.0.1:8888/``)."""
        url = self.url
        return url[: -len(API_PATH)] if url.endswith(API_PATH) else url

    def same_as(self, other: BrokerInfo | None) -> bool:
        """Same URL and same token: the same running broker."""
        return (
            other is not None
            and other.url == self.url
            and hmac.compare_digest(other._token.encode(), self._token.encode())
        )

    def __repr__(self) -> str:
        return f"BrokerInfo(url={self.url!r}, pid={self.pid!r}, user={self.user!r}, path={str(self.path)!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("BrokerInfo objects are not picklable: they hold the broker token.")


def read_broker_file(path: str | os.PathLike[str]) -> BrokerInfo | None:
    """Read one connection file; None (and a debug log line saying why) if it is not
    a regular file owned by this user and private to it (no group/other bits), or
    does not hold a broker URL (https, or http to a loopback host) and a token.
    Symbolic links are not followed."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        log.debug("broker file %s not usable: %s", path, exc.strerror)
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            log.debug("broker file %s is not a regular file", path)
            return None
        if os.name == "posix":
            if st.st_uid != os.geteuid():
                log.debug("broker file %s is owned by uid %s, not by us: ignored", path, st.st_uid)
                return None
            if st.st_mode & 0o077:
                log.warning(
                    "broker file %s is accessible to other users (mode %o): ignored", path, st.st_mode
                )
                return None
        if st.st_size > _MAX_FILE_SIZE:
            log.debug("broker file %s is too large", path)
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(_MAX_FILE_SIZE + 1)
    except OSError as exc:
        log.debug("broker file %s not readable: %s", path, exc.strerror)
        return None
    finally:
        os.close(fd)
    try:
        data = json.loads(raw)
    except ValueError:
        log.debug("broker file %s is not JSON", path)
        return None
    if not isinstance(data, dict):
        return None
    url, token, pid, user = data.get("url"), data.get("token"), data.get("pid"), data.get("user")
    if (
        not isinstance(token, str)
        or not _TOKEN_RE.fullmatch(token)
        or not isinstance(url, str)
        or not _acceptable_url(url)
    ):
        log.debug("broker file %s lacks a usable url or token", path)
        return None
    if not (isinstance(pid, int) and not isinstance(pid, bool) and pid > 0):
        pid = None
    return BrokerInfo(
        url if url.endswith("/") else url + "/",
        token,
        pid=pid,
        user=user if isinstance(user, str) else None,
        path=path,
    )


def _acceptable_url(url: str) -> bool:
    """The broker token (and, on save, secrets) travel to this URL: https, loopback
    http, or a Unix socket."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return False
    if parts.scheme == "https" and host:
        return True
    if parts.scheme == "http+unix":  # jupyter server --sock: a path named in our own file
        return unquote(parts.netloc).startswith("/")
    return parts.scheme == "http" and is_loopback_host(host)


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists (any owner). Unknown pids count as dead."""
    if pid is None or pid <= 0:
        return False
    if os.name == "nt":  # os.kill would terminate it; no cheap check without psutil
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def find_broker(
    *, runtime_dir: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> BrokerInfo | None:
    """The broker this process should use, or None.

    1. The file named by ``$WEAVIATE_AUTH_BROKER_FILE`` when it is usable (see
       :func:`read_broker_file`) and its server process is alive.
    2. Else the newest ``weaviate-auth-broker-*.json`` in the Jupyter runtime directory
       that is usable and whose server process is alive (after a restart the server
       writes a new file; scripts and IDE kernels find a running server this way).
    3. Else the file from (1) even though its process looks gone (requests then fail
       with :class:`BrokerUnavailable` naming its URL), else None.

    Cheap (a few file reads, no network): call it again whenever the broker may have moved.
    """
    env = os.environ if environ is None else environ
    named_path = env.get(BROKER_FILE_ENV)
    named = read_broker_file(named_path) if named_path else None
    if named is not None and pid_alive(named.pid):
        return named
    if runtime_dir is None:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = jupyter_runtime_dir()
    candidates: list[tuple[float, Path]] = []
    try:
        for path in Path(runtime_dir).glob(FILE_GLOB):
            if named is not None and path == named.path:
                continue
            try:
                candidates.append((path.lstat().st_mtime, path))
            except OSError:
                continue
    except OSError:
        pass
    for _, path in sorted(candidates, reverse=True):
        info = read_broker_file(path)
        if info is not None and pid_alive(info.pid):
            return info
    return named


def kernel_id() -> str | None:
    """This kernel's id, from ipykernel's connection file ``kernel-<id>.json``; None
    outside an ipykernel (scripts, plain IPython)."""
    if "ipykernel" not in sys.modules:
        return None
    try:
        from ipykernel.connect import get_connection_file

        name = Path(get_connection_file()).name
    except Exception:  # no running kernel app
        return None
    match = _KERNEL_ID_RE.fullmatch(name)
    return match.group(1) if match else None


__all__ = ["FILE_GLOB", "BrokerInfo", "find_broker", "kernel_id", "pid_alive", "read_broker_file"]
