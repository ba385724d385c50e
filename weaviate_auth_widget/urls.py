"""Cluster URLs: normalisation, origins, loopback and Weaviate Cloud detection."""

from __future__ import annotations

import concurrent.futures
import functools
import ipaddress
import re
import socket
from urllib.parse import urlsplit, urlunsplit

import idna

from .errors import InvalidProfile

CLOUD_SUFFIXES = (".weaviate.cloud", ".weaviate.network", ".weaviate.io")
_MAX_URL = 2048
#: ``%2e`` (.) and ``%2f`` (/) in a path: servers may decode them into dot segments or
#: separators after our allowlist has matched the undecoded path.
_ENCODED_DOT_OR_SLASH = re.compile(r"%2[ef]|%5c", re.IGNORECASE)
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
#: how long resolving ``localhost`` may take before it counts as not loopback
_RESOLVE_TIMEOUT = 2.0


def normalize_url(raw: str, *, what: str = "cluster URL") -> str:
    """Return ``scheme://host[:port][/path]`` with no trailing slash.

    A bare host (``abc.weaviate.cloud``) means https, as in the official clients.
    Query strings, fragments and user-info are refused: a URL with ``user:pass@``
    would carry a secret, and a query would be dropped silently otherwise. Dot segments
    are removed (RFC 3986) and encoded dots or slashes refused, so a path cannot climb
    out of the prefix an allowlist admitted; host names must be valid (IDNA 2008).
    """
    url = _normalize(raw, what)
    scheme, netloc, path, _, _ = urlsplit(url)
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((scheme, netloc, path, "", ""))


def normalize_issuer(raw: str) -> str:
    """An identity provider's issuer URL, normalised as cluster URLs are (no ``/v1`` rule)."""
    return _normalize(raw, "identity provider URL")


def _normalize(raw: str, what: str) -> str:
    text = (raw or "").strip()
    example = "https://my-cluster.weaviate.cloud" if what == "cluster URL" else "https://host/path"
    if not text:
        raise InvalidProfile(f"The {what} is empty.", fix=f"Enter e.g. {example}")
    if len(text) > _MAX_URL:
        raise InvalidProfile(f"The {what} is too long.", fix="Use the base URL.")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidProfile(f"The {what} is not valid ({exc}).", fix="Use e.g. https://host:8080") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidProfile(
            f"The {what} must start with http:// or https://, not {scheme}://.", fix=f"Use e.g. {example}"
        )
    host = (parts.hostname or "").lower()
    if not host or any(c.isspace() for c in host):
        raise InvalidProfile(f"The {what} has no host name.", fix="Use e.g. https://host:8080")
    if parts.username is not None or parts.password is not None:
        raise InvalidProfile(
            f"The {what} must not contain a user name or password.",
            fix="Enter credentials in their own fields; they are stored separately.",
        )
    if parts.query or parts.fragment:
        raise InvalidProfile(f"The {what} must not have a query or fragment.", fix="Use the base URL only.")
    _check_host(host, what)
    if has_encoded_separator(parts.path):
        raise InvalidProfile(
            f"The {what} has an encoded '.', '/' or a backslash in its path.",
            host=host,
            fix="Write the path plainly, without %2e, %2f or \\.",
        )
    netloc = f"[{host}]" if ":" in host else host
    default_port = 443 if scheme == "https" else 80
    if port is not None and port != default_port:
        netloc = f"{netloc}:{port}"
    path = remove_dot_segments(parts.path).rstrip("/")
    return urlunsplit((scheme, netloc, path, "", ""))


def has_encoded_separator(path: str) -> bool:
    """``%2e``, ``%2f``, ``%5c`` or a backslash: what a server may turn into ``..`` or ``/``."""
    return bool(_ENCODED_DOT_OR_SLASH.search(path)) or "\\" in path


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4: ``/a/b/../c/./d`` -> ``/a/c/d``; never above the root."""
    out: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        elif segment == ".":
            if last:
                out.append("")
        else:
            out.append(segment)
    result = "/".join(out)
    return result if not path.startswith("/") or result.startswith("/") else "/" + result


def _check_host(host: str, what: str) -> None:
    """Refuse host names the HTTP stack would choke on later (a 500 instead of a message)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return
    except ValueError:
        pass
    bad = InvalidProfile(
        f"The host name in the {what} is not valid: {host[:80]!r}.",
        host=host[:80],
        fix="Check the host name for typos (each part: letters, digits and '-').",
    )
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii") if not host.isascii() else host
        labels = ascii_host.rstrip(".").split(".")
        if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            raise bad
        for label in labels:
            if label.startswith("xn--"):
                idna.decode(label)
    except (idna.IDNAError, UnicodeError):
        raise bad from None


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in: what "same origin" compares."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def host_of(url: str) -> str:
    """Host[:port] for messages."""
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] or url


def is_loopback_host(host: str) -> bool:
    """A loopback IP address, or exactly ``localhost`` when it resolves to loopback only.

    Other names (``x.localhost``) go through DNS and proxies like any name, so they
    are not exempt from https.
    """
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost":
        return _localhost_is_loopback()
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=1)
def _localhost_is_loopback() -> bool:
    """Whether every address ``localhost`` resolves to is a loopback one (bounded wait)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="resolve-localhost")
    try:
        infos = pool.submit(socket.getaddrinfo, "localhost", None).result(timeout=_RESOLVE_TIMEOUT)
    except (OSError, concurrent.futures.TimeoutError):
        return False
    finally:
        pool.shutdown(wait=False)
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses)


def is_loopback(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def is_cloud(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(CLOUD_SUFFIXES)
