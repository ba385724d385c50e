"""How kernel code reaches the broker; falls back to an in-process AuthService.

A Jupyter server running the weaviate-auth extension (the *broker*) writes a
connection file ``<runtime dir>/weaviate-auth-broker-<pid>.json`` (mode 0600) holding
its API URL and a random per-server token, and puts only that file's *path* into the
environment of the kernels it starts (``WEAVIATE_AUTH_BROKER_FILE``). Kernel code
finds the file with :func:`find_broker`, talks to the broker with :class:`BrokerClient`
(the same surface as :class:`~weaviate_auth_widget.service.AuthService` that the panel
and the magic use), and :func:`get_backend` picks the broker when one answers, else the
process-wide in-process service.

The kernel never receives a password, a refresh token or a client secret: only the
short-lived bearer tokens (and module-key headers) the ``token`` endpoint hands out,
cached here until shortly before they expire. When the Jupyter server restarts (new
port, new token, new connection file), a client or session created before recovers on
its next request by reading the connection file again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

import httpx

from .broker import API_PATH, BROKER_FILE_ENV, BROKER_HEADER, CONNECTION_FILE_PREFIX, KERNEL_HEADER
from .broker.proof import PROOF_PATH, new_nonce, proof_matches
from .errors import (
    BrokerUnavailable,
    ProfileNotFound,
    UnexpectedResponse,
    WeaviateAuthError,
    from_code,
)
from .profiles import Profile, profile_from_view, validate_name
from .tokens import CachingTokenSource, LoginWatch, Token
from .transport import USER_AGENT, HttpSettings
from .urls import is_loopback_host

if TYPE_CHECKING:
    from .backend import AuthBackend
    from .identity import Identity
    from .kernel_keys import BrokerKeys
    from .session import AsyncWeaviateSession, WeaviateSession

log = logging.getLogger(__name__)

FILE_GLOB = f"{CONNECTION_FILE_PREFIX}*.json"
#: The broker's CA-bundle setting by environment (a path): kernels it starts inherit it.
CA_BUNDLE_ENV = "WEAVIATE_AUTH_CA_BUNDLE"
CONNECT_TIMEOUT = 2.0
#: Logins go through the identity provider and the cluster: they may take a while.
READ_TIMEOUT = 30.0
#: ``get_backend`` gives an unknown broker this long to answer ``status``.
PROBE_TIMEOUT = 5.0
#: After this long without an answer from the broker, it proves itself again before
#: the next request carries the token (it may have stopped and its port been taken).
TRUST_SECONDS = 5.0

_MAX_FILE_SIZE = 64 * 1024
_KERNEL_ID_RE = re.compile(r"kernel-([A-Za-z0-9_-]{1,128})\.json")
_TOKEN_RE = re.compile(r"[\x21-\x7e]{1,1024}")  # fits in a header as is
_UNSET: Any = object()

Prefer = Literal["auto", "broker", "in-process"]


# -- finding the broker ------------------------------------------------------------
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


# -- the client ----------------------------------------------------------------------
class _BrokerTokenSource(CachingTokenSource):
    """A CachingTokenSource that can start with the token its session was built with."""

    def prime(self, token: Token) -> None:
        self._token = token


def _rejected_digest(token: Token) -> str:
    return hashlib.sha256(token.value.encode("utf-8")).hexdigest()


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


class BrokerClient:
    """The broker's REST API with the surface of ``AuthService`` that the doors use.

    Thread-safe. Each request carries the broker token (and the kernel id when known).
    When the broker does not answer, or refuses the token (401/403), the client reads
    the connection file again and, if it now names another broker (the Jupyter server
    restarted: new port, new token), retries there once and keeps using it.
    """

    mode = "broker"

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

    def __repr__(self) -> str:
        return f"BrokerClient(url={self._info.url!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("BrokerClient objects are not picklable: they hold the broker token.")

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

    def __enter__(self) -> BrokerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- status and mode ---------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Store backend, policy, version (``GET status``)."""
        data = self._json_object(self._request("GET", "status"))
        self._status = data
        return data

    def probe(self, timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
        """``status`` with a short read timeout: does a broker answer here?"""
        data = self._json_object(self._request("GET", "status", timeout=timeout))
        self._status = data
        return data

    def describe_mode(self) -> str:
        """One line for the UI: where secrets live."""
        status = self._status
        if status is None:
            try:
                status = self.status()
            except WeaviateAuthError:
                status = {}
        store = status.get("store") or "unknown"
        info = self._info
        where = f"at {info.server_url}" if info.socket is None else f"on {info.socket}"
        return f"broker {where} (secrets stay in the Jupyter server; store: {store})"

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

    # -- profiles ------------------------------------------------------------------
    def profile_views(self) -> list[dict[str, Any]]:
        """Every profile the user can see, as the broker describes them (no secrets)."""
        data = self._json_object(self._request("GET", "profiles"))
        views = data.get("profiles")
        if not isinstance(views, list) or not all(isinstance(v, dict) for v in views):
            raise self._unexpected("GET profiles", "no profile list")
        return views

    def list_profiles(self, *, include_ephemeral: bool = True) -> list[Profile]:
        """The broker keeps no in-memory-only profiles, so ``include_ephemeral`` changes nothing."""
        return [profile_from_view(view) for view in self.profile_views()]

    def describe(self, name: str) -> dict[str, Any]:
        """One profile: fields, whether a secret is kept, login state and identity."""
        return self._json_object(self._request("GET", _profile_path(name)))

    def get_profile(self, name: str) -> Profile:
        return profile_from_view(self.describe(name))

    def save_profile(self, profile: Profile, secrets: Mapping[str, str] | None = None) -> Profile:
        """Create or replace ``profile`` and store ``secrets`` (kind -> value) in the broker.

        The secrets travel once, in the request body over the authenticated connection
        to the broker; nothing here keeps them.
        """
        body: dict[str, Any] = profile.to_json()
        body.pop("name", None)
        if secrets:
            body["secrets"] = dict(secrets)
        data = self._json_object(self._request("PUT", _profile_path(profile.name), body=body))
        return profile_from_view(data)

    def connect(self, profile: Profile, secrets: Mapping[str, str]) -> Identity:
        """Save and log in in one request: the broker keeps the secrets only when the
        login works (the profile stays for a retry when it fails)."""
        body: dict[str, Any] = profile.to_json()
        body.pop("name", None)
        body["secrets"] = dict(secrets)
        data = self._request("POST", _profile_path(profile.name, "connect"), body=body)
        return _identity_from_json(self._json_object(data))

    def forget(self, name: str) -> bool:
        """Log out, delete the profile and every secret kept for it; False if unknown."""
        try:
            self._request("DELETE", _profile_path(name))
        except ProfileNotFound:
            return False
        return True

    # -- login and tokens --------------------------------------------------------------
    def login(self, name: str) -> Identity:
        """Log in with what the broker stores for ``name``; identity only, never a secret."""
        return _identity_from_json(self._json_object(self._request("POST", _profile_path(name, "login"))))

    def identity(self, name: str) -> Identity | None:
        """The identity of the current login of ``name``, None when not logged in."""
        try:
            view = self.describe(name)
        except ProfileNotFound:
            return None
        ident = view.get("identity")
        return _identity_from_json(ident) if isinstance(ident, dict) else None

    def token(self, name: str, *, rejected: Token | None = None) -> Token:
        """A bearer token for ``name`` (one HTTP round trip; sessions cache it).

        ``rejected`` is a token the cluster just refused; only its SHA-256 digest is sent.
        """
        return self._grant(name, rejected)[0]

    def module_headers(self, name: str) -> dict[str, str]:
        """Module keys (``X-OpenAI-Api-Key`` ...) to send to the cluster. Secret: never print."""
        return self._grant(name, None)[1]

    def logout(self, name: str) -> None:
        """Revoke the refresh token at the provider; the broker drops its tokens and
        refuses new ones until an explicit login; sessions made here drop theirs."""
        self._request("POST", _profile_path(name, "logout"))
        self.watch.ended(name)

    @property
    def keys(self) -> BrokerKeys:
        """Key management (database users) run by the broker: see :mod:`.kernel_keys`."""
        from .kernel_keys import BrokerKeys

        return BrokerKeys(self._request)

    def token_source(self, name: str) -> _BrokerTokenSource:
        validate_name(name)
        source = _BrokerTokenSource(lambda rejected: self.token(name, rejected=rejected))
        self.watch.track(name, source)
        return source

    def session(self, name: str, **kwargs: Any) -> WeaviateSession:
        """A ready ``WeaviateSession`` for ``name`` (logs in first if needed)."""
        from .session import WeaviateSession

        identity, source, headers = self._session_parts(name)
        kwargs.setdefault("http", self.http_settings())
        return WeaviateSession(identity.url, source, headers=headers, identity=identity, **kwargs)

    def async_session(self, name: str, **kwargs: Any) -> AsyncWeaviateSession:
        from .session import AsyncWeaviateSession

        identity, source, headers = self._session_parts(name)
        kwargs.setdefault("http", self.http_settings())
        return AsyncWeaviateSession(identity.url, source, headers=headers, identity=identity, **kwargs)

    def http_settings(self) -> HttpSettings:
        """How sessions reach the cluster: trusting the administrator's CA bundle when the
        broker's status names one (``policy.ca_bundle``) or the server's environment does
        (``WEAVIATE_AUTH_CA_BUNDLE``, inherited by its kernels), as the broker itself does."""
        policy = (self._status or {}).get("policy")
        bundle = policy.get("ca_bundle") if isinstance(policy, dict) else None
        if not isinstance(bundle, str) or not bundle:
            bundle = os.environ.get(CA_BUNDLE_ENV, "").strip() or None
        return HttpSettings(ca_bundle=bundle)

    def _session_parts(self, name: str) -> tuple[Identity, CachingTokenSource, dict[str, str]]:
        identity = self.identity(name) or self.login(name)
        token, headers = self._grant(name, None)
        source = self.token_source(name)
        source.prime(token)
        return identity, source, headers

    def _grant(self, name: str, rejected: Token | None) -> tuple[Token, dict[str, str]]:
        body = {"rejected": _rejected_digest(rejected)} if rejected is not None else None
        data = self._json_object(self._request("POST", _profile_path(name, "token"), body=body))
        value, expires_at, headers = data.get("token"), data.get("expires_at"), data.get("headers") or {}
        if (
            not isinstance(value, str)
            or not value
            or not (
                expires_at is None
                or (isinstance(expires_at, (int, float)) and not isinstance(expires_at, bool))
            )
            or not isinstance(headers, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            raise self._unexpected(f"POST {_profile_path(name, 'token')}", "a malformed token grant")
        return Token(value, None if expires_at is None else float(expires_at)), headers

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


def _profile_path(name: str, action: str | None = None) -> str:
    validate_name(name)  # also keeps the path inside the API: no '/', no '..'
    return f"profiles/{name}" + (f"/{action}" if action else "")


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


def _identity_from_json(data: Mapping[str, Any]) -> Identity:
    from .identity import Identity

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) else None

    def strings(key: str) -> tuple[str, ...]:
        value = data.get(key)
        return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()

    expires = data.get("expires_at")
    profile, url, method = text("profile"), text("url"), text("method")
    if not profile or not url or not method:
        raise UnexpectedResponse("The weaviate-auth broker sent an identity without profile, url or method.")
    return Identity(
        profile=profile,
        url=url,
        method=method,
        server_version=text("server_version"),
        username=text("username"),
        groups=strings("groups"),
        roles=strings("roles"),
        identity_known=bool(data.get("identity_known", False)),
        expires_at=float(expires)
        if isinstance(expires, (int, float)) and not isinstance(expires, bool)
        else None,
        refreshes=bool(data.get("refreshes", False)),
        remembered=bool(data.get("remembered", False)),
        backend=text("backend") or "",
    )


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
