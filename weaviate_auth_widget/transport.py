"""HTTP plumbing shared by every network call: timeouts, TLS trust, proxies, error names.

One place decides how we reach the network so no call can forget a timeout, and so
every failure becomes a ``ClusterUnreachable`` that names the host and the fix.
"""

from __future__ import annotations

import functools
import os
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import ClusterUnreachable

USER_AGENT = "weaviate-auth-widget"
#: httpx mount patterns (any scheme and port) that never use a proxy: loopback hosts
NO_PROXY_PATTERNS = ("all://127.0.0.1", "all://localhost", "all://[::1]")


@dataclass(frozen=True)
class HttpSettings:
    """Timeouts (seconds), TLS trust and proxy use for every outgoing request.

    ``ca_bundle`` wins over ``SSL_CERT_FILE``; both add to nothing — the bundle named is
    the whole trust store, as with curl. Proxies come from the standard environment
    variables (``HTTPS_PROXY``, ``NO_PROXY`` ...) because ``trust_env`` is on, except
    for loopback addresses: a proxy would see the credentials sent to a local server
    (in clear text over http), so those never go through one, whatever ``NO_PROXY`` says.
    """

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    ca_bundle: str | None = None
    verify: bool = True

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout)

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.verify:
            return False
        cafile = self.ca_bundle or os.environ.get("SSL_CERT_FILE") or None
        return _ssl_context(cafile, os.environ.get("SSL_CERT_DIR") or None)

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "timeout": self.timeout,
            "verify": self.ssl_context(),
            "trust_env": True,
            "headers": {"User-Agent": USER_AGENT},
            "mounts": dict.fromkeys(NO_PROXY_PATTERNS),  # None: the client's own direct transport
        }

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(**{**self.client_kwargs(), **kwargs})


@functools.lru_cache(maxsize=8)
def _ssl_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    """SSL contexts are slow to build (loading the bundle): build each one once."""
    if cafile is None and capath is None:
        import certifi

        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)


def unreachable(exc: httpx.TransportError, host: str, *, what: str = "the cluster") -> ClusterUnreachable:
    """Turn an httpx transport failure into a message a person can act on."""
    if isinstance(exc, httpx.TimeoutException):
        cause = f"{what} at {host} did not answer in time"
        fix = "Check that it is running and reachable from this machine, or raise the timeout."
    elif isinstance(exc, httpx.ConnectError) and _is_tls_error(exc):
        cause = f"the TLS certificate of {what} at {host} could not be verified"
        fix = "Configure the right CA bundle (ca_bundle or SSL_CERT_FILE)."
    elif isinstance(exc, httpx.ConnectError) and _is_dns_error(exc):
        cause = f"the host name {host} could not be resolved"
        fix = "Check the URL for typos."
    elif isinstance(exc, httpx.ProxyError):
        cause = f"the proxy refused the connection to {host}"
        fix = "Check HTTPS_PROXY / NO_PROXY."
    elif isinstance(exc, httpx.ConnectError):
        cause = f"could not connect to {what} at {host}"
        fix = "Check the URL and that the server is running."
    else:
        cause = f"the connection to {what} at {host} failed ({type(exc).__name__})"
        fix = "Try again; check the network and the URL."
    return ClusterUnreachable(cause[0].upper() + cause[1:] + ".", host=host, fix=fix)


def _is_tls_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "certificate" in text or "ssl" in text or isinstance(exc.__cause__, ssl.SSLError)


def _is_dns_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(
        s in text
        for s in ("name or service not known", "nodename nor servname", "getaddrinfo", "name resolution")
    )
