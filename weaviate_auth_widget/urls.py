"""Cluster URLs: normalisation, origins, loopback and Weaviate Cloud detection."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

from .errors import InvalidProfile

CLOUD_SUFFIXES = (".weaviate.cloud", ".weaviate.network", ".weaviate.io")
_MAX_URL = 2048


def normalize_url(raw: str) -> str:
    """Return ``scheme://host[:port][/path]`` with no trailing slash.

    A bare host (``abc.weaviate.cloud``) means https, as in the official clients.
    Query strings, fragments and user-info are refused: a URL with ``user:pass@``
    would carry a secret, and a query would be dropped silently otherwise.
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidProfile("The cluster URL is empty.", fix="Enter e.g. https://my-cluster.weaviate.cloud")
    if len(text) > _MAX_URL:
        raise InvalidProfile("The cluster URL is too long.", fix="Use the cluster's base URL.")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidProfile(
            f"The cluster URL is not valid ({exc}).", fix="Use e.g. https://host:8080"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidProfile(
            f"The cluster URL must start with http:// or https://, not {scheme}://.",
            fix="Use e.g. https://my-cluster.weaviate.cloud",
        )
    host = (parts.hostname or "").lower()
    if not host or any(c.isspace() for c in host):
        raise InvalidProfile("The cluster URL has no host name.", fix="Use e.g. https://host:8080")
    if parts.username is not None or parts.password is not None:
        raise InvalidProfile(
            "The cluster URL must not contain a user name or password.",
            fix="Enter credentials in their own fields; they are stored separately.",
        )
    if parts.query or parts.fragment:
        raise InvalidProfile(
            "The cluster URL must not have a query or fragment.", fix="Use the base URL only."
        )
    netloc = f"[{host}]" if ":" in host else host
    default_port = 443 if scheme == "https" else 80
    if port is not None and port != default_port:
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((scheme, netloc, path, "", ""))


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
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def is_cloud(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(CLOUD_SUFFIXES)
