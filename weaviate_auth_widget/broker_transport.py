"""The broker connection under :class:`~.broker_client.BrokerClient`: HTTP transport,
the proof check, and following the broker when the Jupyter server restarts.

Before the broker token leaves this process, whatever listens at the connection
file's address proves it holds that token (:mod:`.broker.proof`); answers are decoded
into typed errors. When the server restarts (new port, new token, new connection file)
the next request reads the connection file again and moves to the new broker.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from .broker import BROKER_HEADER, KERNEL_HEADER
from .broker.proof import PROOF_PATH, new_nonce, proof_matches
from .broker_discovery import BrokerInfo, find_broker, kernel_id
from .errors import BrokerUnavailable, UnexpectedResponse, WeaviateAuthError, from_code
from .tokens import LoginWatch
from .transport import USER_AGENT

#: the logger kernel.py always used: log settings that name it keep working
log = logging.getLogger("weaviate_auth_widget.kernel")

CONNECT_TIMEOUT = 2.0
#: Logins go through the identity provider and the cluster: they may take a while.
READ_TIMEOUT = 30.0
#: ``get_backend`` gives an unknown broker this long to answer ``status``.
PROBE_TIMEOUT = 5.0
#: After this long without an answer from the broker, it proves itself again before
#: the next request carries the token (it may have stopped and its port been taken).
TRUST_SECONDS = 5.0

_UNSET: Any = object()


class NotTheBroker(BrokerUnavailable):
    """What listens at a connection file's address could not prove it holds the file's
    token: the file is stale and another process has the port. Nothing was sent to it."""

    def __init__(self, info: BrokerInfo, *, no_route: bool = False) -> None:
        where = f" {info.path}" if info.path else " the connection file"
        older = (
            " If that server is running, it may have a weaviate-auth-widget older than this "
            "kernel's (no proof route): restart it."
            if no_route
            else ""
        )
        super().__init__(
            f"The process listening at {info.url} is not the Jupyter server that wrote{where}: "
            "it could not prove it holds that file's broker token, so neither the token nor "
            "any secret was sent to it (the file is stale and another program has its port)." + older,
            fix="Restart this kernel from a running Jupyter server with the weaviate-auth extension"
            + (f", or delete {info.path}." if info.path else "."),
        )


class BrokerTransport:
    """Requests to the broker named by a connection file, with the broker token.

    Thread-safe. Each request carries the broker token (and the kernel id when known).
    When the broker does not answer, or refuses the token (401/403), it reads the
    connection file again and, if it now names another broker (the Jupyter server
    restarted: new port, new token), retries there once and keeps using it.
    """

    def __init__(
        self,
        info: BrokerInfo | None = None,
        *,
        finder: Callable[[], BrokerInfo | None] = find_broker,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        kernel: str | None = _UNSET,
    ) -> None:
        if info is None:
            info = finder()
            if info is None:
                raise BrokerUnavailable(
                    "No weaviate-auth broker was found (no usable connection file in the Jupyter runtime directory).",
                    fix="Start JupyterLab / Jupyter Server with the weaviate-auth extension enabled, "
                    "or use the in-process mode.",
                )
        self._info = info
        self._finder = finder
        self._lock = threading.Lock()
        self._kernel = kernel_id() if kernel is _UNSET else kernel
        self._status: dict[str, Any] | None = None
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        #: one httpx client per transport: TCP (key None), or each Unix socket
        self._clients: dict[str | None, httpx.Client] = {}
        #: clients of the broker before the last move: closed at the next move (requests
        #: other threads started on them have finished by then) or at close()
        self._retired: list[httpx.Client] = []
        #: token sources handed out here and listeners (panels), told about each logout
        self.watch = LoginWatch()
        #: the broker that last proved it holds its token, and until when that holds
        self._trusted: BrokerInfo | None = None
        self._trusted_until = 0.0

    @property
    def info(self) -> BrokerInfo:
        return self._info

    @property
    def url(self) -> str:
        """The broker API URL in use."""
        return self._info.url

    def close(self) -> None:
        with self._lock:
            clients, self._clients = [*self._retired, *self._clients.values()], {}
            self._retired = []
        for client in clients:
            client.close()

    def _client(self, info: BrokerInfo) -> httpx.Client:
        key = info.socket
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._clients[key] = httpx.Client(
                        timeout=self._timeout,
                        trust_env=False,  # never through a proxy, never with .netrc credentials
                        follow_redirects=False,
                        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                        transport=httpx.HTTPTransport(uds=key) if key else None,
                    )
        return client

    def adopt(self, info: BrokerInfo) -> bool:
        """Use ``info`` from now on; True if it names another broker than before."""
        with self._lock:
            if info.same_as(self._info):
                return False
            stale = self._move_to(info)
        for client in stale:
            client.close()
        log.info("weaviate-auth broker now at %s", info.url)
        return True

    def _move_to(self, info: BrokerInfo) -> list[httpx.Client]:
        """Switch to ``info`` (lock held) with fresh connections: pooled ones lead to the
        old server, or were closed by the new one after refusing the old token. Returns
        the clients retired at the previous move, for the caller to close."""
        self._info = info
        self._status = None
        stale, self._retired = self._retired, list(self._clients.values())
        self._clients = {}
        return stale

    # -- transport ---------------------------------------------------------------------
    def _request(self, method: str, path: str, *, body: Any = None, timeout: float | None = None) -> Any:
        """Send; decode JSON or raise typed errors. Retries once: at the broker's new
        address when the connection file names another one after a connection failure or
        a 401/403 (the server restarted), else on a fresh connection after a connection
        failure that was not a timeout (a kept-alive connection the server had closed)."""
        info = self._info
        try:
            response = self._send(info, method, path, body, timeout)
        except NotTheBroker:
            moved = self._rediscover(info)
            if moved is None:
                raise
            info = moved
            try:
                response = self._send(info, method, path, body, timeout)
            except httpx.TransportError as again:
                raise self._unavailable(info, again) from None
        except httpx.TransportError as exc:
            self._trusted = None
            moved = self._rediscover(info)
            if moved is None and isinstance(exc, httpx.TimeoutException):
                raise self._unavailable(info, exc) from None
            info = moved or info
            try:
                response = self._send(info, method, path, body, timeout)
            except httpx.TransportError as again:
                raise self._unavailable(info, again) from None
        else:
            if response.status_code in (401, 403):
                moved = self._rediscover(info)
                if moved is not None:
                    info = moved
                    try:
                        response = self._send(info, method, path, body, timeout)
                    except httpx.TransportError as again:
                        raise self._unavailable(info, again) from None
        return self._decode(info, response, f"{method} {path}")

    def _verify(self, info: BrokerInfo, timeout: float | None) -> None:
        """Before the broker token leaves this process: whatever listens at ``info.url``
        must answer a fresh nonce with ``HMAC(token, nonce)`` (see :mod:`.broker.proof`).
        Raises :class:`NotTheBroker` otherwise; re-checked after ``TRUST_SECONDS`` of
        silence, after a connection failure, and for every new broker."""
        if self._trusted is info and time.monotonic() < self._trusted_until:
            return
        nonce = new_nonce()
        limit = min(timeout or PROBE_TIMEOUT, PROBE_TIMEOUT)
        response = self._client(info).get(
            info.base + PROOF_PATH,
            params={"nonce": nonce},
            timeout=httpx.Timeout(limit, connect=min(limit, CONNECT_TIMEOUT)),
        )
        answer = None
        if response.status_code == 200:
            try:
                data = response.json()
            except ValueError:
                data = None
            answer = data.get("proof") if isinstance(data, dict) else None
        if not proof_matches(info.token, nonce, answer):
            log.warning("weaviate-auth: %s could not prove it is the broker of %s", info.url, info.path)
            raise NotTheBroker(info, no_route=response.status_code == 404)
        self._trusted, self._trusted_until = info, time.monotonic() + TRUST_SECONDS

    def _send(
        self, info: BrokerInfo, method: str, path: str, body: Any, timeout: float | None
    ) -> httpx.Response:
        self._verify(info, timeout)
        headers = {BROKER_HEADER: info.token}
        if self._kernel:
            headers[KERNEL_HEADER] = self._kernel
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))
        if body is not None:
            extra["content"] = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        response = self._client(info).request(method, info.base + path, headers=headers, **extra)
        if response.status_code not in (401, 403) and self._trusted is info:
            self._trusted_until = time.monotonic() + TRUST_SECONDS  # it answered: still the same server
        log.debug(
            "broker %s %s -> %s (%.1f ms)",
            method,
            path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    def _rediscover(self, used: BrokerInfo) -> BrokerInfo | None:
        """Read the connection file again; the new broker if it moved, else None."""
        with self._lock:
            current = self._info
            if not current.same_as(used):  # another thread already moved on
                return current
            try:
                found = self._finder()
            except Exception:  # a broken finder must not hide the original failure
                log.debug("finding the broker again failed", exc_info=True)
                return None
            if found is None or found.same_as(used):
                return None
            stale = self._move_to(found)
        for client in stale:
            client.close()
        log.info("weaviate-auth broker moved from %s to %s", used.url, found.url)
        return found

    def _decode(self, info: BrokerInfo, response: httpx.Response, what: str) -> Any:
        status = response.status_code
        if status == 204:
            return None
        if 200 <= status < 300:
            try:
                return response.json()
            except ValueError:
                raise self._unexpected(what, "a non-JSON answer", info) from None
        code, message = _error_of(response)
        if code:
            error = from_code(code, message or f"The weaviate-auth broker answered {status} to {what}.")
            if type(error) is WeaviateAuthError:
                error.code = code
            raise error
        if status in (401, 403):
            raise BrokerUnavailable(
                f"The weaviate-auth broker at {info.url} refused this kernel's broker token (HTTP {status}): "
                "the Jupyter server has probably restarted.",
                fix="Restart this kernel so it gets the new server's connection file.",
            )
        if status == 404:
            raise BrokerUnavailable(
                f"There is no weaviate-auth broker API at {info.url} (HTTP 404 to {what}).",
                fix="Check that the weaviate-auth server extension is enabled (jupyter server extension list).",
            )
        if status in (502, 503, 504):
            raise BrokerUnavailable(
                f"The weaviate-auth broker at {info.url} is not available (HTTP {status}): "
                "the Jupyter server may be restarting.",
                fix="Try again in a moment.",
            )
        raise self._unexpected(what, f"HTTP {status}", info)

    def _unavailable(self, info: BrokerInfo, exc: httpx.TransportError) -> BrokerUnavailable:
        if isinstance(exc, httpx.TimeoutException):
            cause = "did not answer in time"
        elif isinstance(exc, httpx.ConnectError):
            cause = "refused the connection"
        else:
            cause = f"dropped the connection ({type(exc).__name__})"
        return BrokerUnavailable(
            f"The weaviate-auth broker at {info.url} {cause}: the Jupyter server may be restarting or stopped.",
            fix="Try again in a moment; if the server was restarted, restart this kernel.",
        )

    def _unexpected(self, what: str, detail: str, info: BrokerInfo | None = None) -> UnexpectedResponse:
        url = (info or self._info).url
        return UnexpectedResponse(f"The weaviate-auth broker at {url} sent {detail} to {what}.")

    @staticmethod
    def _json_object(data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise UnexpectedResponse("The weaviate-auth broker sent something other than a JSON object.")
        return data


def _error_of(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        data = response.json()
    except ValueError:
        return None, None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, None
    code, message = error.get("code"), error.get("message")
    return (
        code if isinstance(code, str) and code else None,
        message if isinstance(message, str) else None,
    )


__all__ = [
    "CONNECT_TIMEOUT",
    "PROBE_TIMEOUT",
    "READ_TIMEOUT",
    "TRUST_SECONDS",
    "BrokerTransport",
    "NotTheBroker",
]
