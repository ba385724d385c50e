"""The connection file: how kernels this server starts find the broker.

``<jupyter runtime dir>/weaviate-auth-broker-<pid>.json``, mode 0600::

    {"url": "http://127.0.0.1:8888/weaviate-auth/api/", "token": "<broker token>",
     "pid": 12345, "user": "alice"}

Only its *path* goes into the environment (``WEAVIATE_AUTH_BROKER_FILE``), which
kernels inherit from the server process; the token never does.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jupyter_server.utils import url_path_join

from ..paths import write_private_file
from . import API_PATH, BROKER_FILE_ENV, CONNECTION_FILE_PREFIX

log = logging.getLogger(__name__)

_ANY_V4 = ("", "0.0.0.0", "*", "localhost")  # noqa: S104 - names of addresses, not binds
_ANY_V6 = ("::", "[::]")


def connection_path(runtime_dir: str | os.PathLike[str], pid: int | None = None) -> Path:
    return Path(runtime_dir) / f"{CONNECTION_FILE_PREFIX}{os.getpid() if pid is None else pid}.json"


def local_host(ip: str) -> str:
    """The host a process on this machine uses to reach a server listening on ``ip``.

    Wildcard binds are reached on loopback (IPv4 unless the bind was IPv6-only);
    a server bound to one address is reached on that address.
    """
    ip = (ip or "").strip()
    if ip in _ANY_V4:
        return "127.0.0.1"
    if ip in _ANY_V6:
        return "[::1]"
    if ":" in ip and not ip.startswith("["):
        return f"[{ip}]"
    return ip


def broker_url(*, ip: str, port: int, base_url: str, https: bool = False, sock: str | None = None) -> str:
    """The broker API URL for a local kernel (always ends with ``/``)."""
    path = url_path_join(base_url or "/", API_PATH)
    if not path.endswith("/"):
        path += "/"
    if sock:
        return f"http+unix://{quote(sock, safe='')}{path}"
    scheme = "https" if https else "http"
    return f"{scheme}://{local_host(ip)}:{port}{path}"


def server_broker_url(serverapp: Any) -> str:
    return broker_url(
        ip=str(serverapp.ip or ""),
        port=int(serverapp.port),
        base_url=str(serverapp.base_url),
        https=bool(serverapp.certfile),
        sock=str(serverapp.sock) if getattr(serverapp, "sock", "") else None,
    )


class ConnectionFile:
    """Writes the file (again when the URL becomes known) and removes it at stop."""

    def __init__(self, path: Path, *, token: str, user: str | None) -> None:
        self.path = path
        self._token = token
        self._user = user
        self._written: bytes | None = None

    def __repr__(self) -> str:
        return f"ConnectionFile({str(self.path)!r})"

    def content(self, url: str) -> dict[str, Any]:
        return {"url": url, "token": self._token, "pid": os.getpid(), "user": self._user}

    def write(self, url: str) -> None:
        data = json.dumps(self.content(url), indent=1).encode("utf-8")
        if data == self._written and self.path.exists():
            return
        write_private_file(self.path, data)
        self._written = data
        log.debug("weaviate-auth broker connection file %s -> %s", self.path, url)

    def export(self, environ: MutableMapping[str, str] | None = None) -> None:
        """Name the file (only its path) in the environment kernels inherit."""
        env = os.environ if environ is None else environ
        env[BROKER_FILE_ENV] = str(self.path)

    def remove(self, environ: MutableMapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        if env.get(BROKER_FILE_ENV) == str(self.path):
            del env[BROKER_FILE_ENV]
        if self._written is None:
            return
        try:
            current = self.path.read_bytes()
        except OSError:
            current = None
        # another server of this process may have replaced it: leave theirs alone
        if current is None or current == self._written:
            self.path.unlink(missing_ok=True)
        self._written = None


__all__ = ["ConnectionFile", "broker_url", "connection_path", "local_host", "server_broker_url"]
