"""How kernel code reaches the broker; falls back to an in-process AuthService.

A Jupyter server running the weaviate-auth extension (the *broker*) writes a
connection file ``<runtime dir>/weaviate-auth-broker-<pid>.json`` (mode 0600) holding
its API URL and a random per-server token, and puts only that file's *path* into the
environment of the kernels it starts (``WEAVIATE_AUTH_BROKER_FILE``). Kernel code
finds the file with :func:`find_broker` (:mod:`.broker_discovery`), talks to the broker
with :class:`BrokerClient` (:mod:`.broker_client` over :mod:`.broker_transport`: the same
surface as :class:`~weaviate_auth_widget.service.AuthService` that the panel and the
magic use), and :func:`get_backend` (here) picks the broker when one answers, else the
process-wide in-process service. This module is also where kernel code imports all of
that from.

The kernel never receives a password, a refresh token or a client secret: only the
short-lived bearer tokens (and module-key headers) the ``token`` endpoint hands out,
cached here until shortly before they expire. When the Jupyter server restarts (new
port, new token, new connection file), a client or session created before recovers on
its next request by reading the connection file again.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Literal

from .broker import API_PATH, BROKER_FILE_ENV, BROKER_HEADER, KERNEL_HEADER

# What kernel code and tests have always imported from here (``X as X``: re-exported).
from .broker_client import CA_BUNDLE_ENV as CA_BUNDLE_ENV
from .broker_client import BrokerClient
from .broker_client import _rejected_digest as _rejected_digest
from .broker_discovery import FILE_GLOB as FILE_GLOB
from .broker_discovery import BrokerInfo, find_broker, kernel_id, pid_alive, read_broker_file
from .broker_transport import CONNECT_TIMEOUT as CONNECT_TIMEOUT
from .broker_transport import PROBE_TIMEOUT as PROBE_TIMEOUT
from .broker_transport import READ_TIMEOUT as READ_TIMEOUT
from .broker_transport import NotTheBroker
from .errors import BrokerUnavailable, WeaviateAuthError

if TYPE_CHECKING:
    from .backend import AuthBackend

log = logging.getLogger(__name__)

Prefer = Literal["auto", "broker", "in-process"]


# -- choosing a backend ----------------------------------------------------------------
_choice_lock = threading.Lock()
_chosen: AuthBackend | None = None
_broker: BrokerClient | None = None
_in_process_reason = "no Jupyter server extension found"
#: the URL whose listener last failed to prove it is the broker (for the mode line)
_impostor_at: str | None = None


def get_backend(prefer: Prefer = "auto") -> AuthBackend:
    """The broker when one is found and answers, else the in-process ``AuthService``.

    ``prefer="broker"`` raises :class:`BrokerUnavailable` instead of falling back;
    ``prefer="in-process"`` skips the broker. The choice is cached: while a broker is
    in use, each call only re-reads its connection file (no network) and adopts a new
    one if the server restarted; if it vanished, the next working broker or the
    in-process service takes over. An in-process choice stays (``reset_backend()``
    forgets it).
    """
    global _chosen, _in_process_reason
    if prefer not in ("auto", "broker", "in-process"):
        raise ValueError(f"prefer must be 'auto', 'broker' or 'in-process', not {prefer!r}")
    from .chain import default_service

    if prefer == "in-process":
        return default_service()
    with _choice_lock:
        if prefer == "auto" and _chosen is not None and not isinstance(_chosen, BrokerClient):
            return _chosen
        found = find_broker()
        broker = _broker_for(found, prefer == "broker") if found is not None else None
        if broker is not None:
            _chosen = broker
            return broker
        if prefer == "broker":
            raise BrokerUnavailable(
                "No weaviate-auth broker answered"
                + (f" at {found.url}." if found is not None else " (no usable connection file)."),
                fix="Start Jupyter with the weaviate-auth server extension enabled, or use the in-process mode.",
            )
        if found is None:
            _in_process_reason = "no Jupyter server extension found"
        elif _impostor_at == found.url:
            _in_process_reason = (
                f"the process at {found.server_url} could not prove it is the weaviate-auth broker "
                "(stale connection file)"
            )
        else:
            _in_process_reason = f"the weaviate-auth broker at {found.server_url} did not answer"
        if isinstance(_chosen, BrokerClient):
            log.warning("weaviate-auth broker gone; using the in-process service (%s)", _in_process_reason)
        _chosen = default_service()
        return _chosen


def _broker_for(found: BrokerInfo, must: bool) -> BrokerClient | None:
    """The process's BrokerClient pointed at ``found``; probed unless it is the one in use."""
    global _broker, _impostor_at
    _impostor_at = None
    client = _broker
    if client is not None and _chosen is client and client.info.same_as(found):
        return client  # cheap path: same file contents as last time, no network
    if client is None:
        client = _broker = BrokerClient(found)  # kept even if it does not answer: reused later
    else:
        client.adopt(found)
    try:
        client.probe()
    except WeaviateAuthError as exc:
        log.info("weaviate-auth broker at %s did not answer status: %s", found.url, exc)
        if isinstance(exc, NotTheBroker):
            _impostor_at = found.url
        if must and not isinstance(exc, BrokerUnavailable):
            raise
        return None
    return client


def reset_backend() -> None:
    """Forget the cached choice: the next ``get_backend()`` looks for a broker again."""
    global _chosen, _broker, _in_process_reason
    with _choice_lock:
        if _broker is not None:
            _broker.close()
        _chosen = _broker = None
        _in_process_reason = "no Jupyter server extension found"


def current_mode() -> str:
    """``"broker"`` or ``"in-process"``: what ``get_backend()`` uses."""
    return get_backend().mode


def describe_mode(backend: AuthBackend | None = None) -> str:
    """The line the UI shows about where secrets live, for ``backend`` (default: the chosen one)."""
    if backend is None:
        backend = get_backend()
    if isinstance(backend, BrokerClient):
        return backend.describe_mode()
    reason = _in_process_reason if backend is _chosen else "chosen explicitly"
    return f"in-process ({reason}; secrets stay in this kernel's memory and your store)"


__all__ = [
    "API_PATH",
    "BROKER_FILE_ENV",
    "BROKER_HEADER",
    "KERNEL_HEADER",
    "BrokerClient",
    "BrokerInfo",
    "NotTheBroker",
    "current_mode",
    "describe_mode",
    "find_broker",
    "get_backend",
    "kernel_id",
    "pid_alive",
    "read_broker_file",
    "reset_backend",
]
