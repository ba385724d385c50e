"""Administrator policy: which clusters credentials may go to, and how."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import InsecureURL, PolicyRefused
from .urls import host_of, is_loopback, normalize_url


@dataclass(frozen=True)
class Policy:
    """What the administrator allows. The default policy allows any https cluster.

    ``allowed_urls`` are ``scheme://host[:port][/path]`` patterns (``https://*.weaviate.cloud``),
    matched part by part by :func:`url_matches`; an empty list allows every URL.
    ``require_https`` refuses ``http://`` except to loopback hosts; turn it off only for
    trusted private networks.
    """

    default_url: str | None = None
    allowed_urls: tuple[str, ...] = ()
    require_https: bool = True
    allow_remember: bool = True
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        if self.default_url:
            object.__setattr__(self, "default_url", normalize_url(self.default_url))
        object.__setattr__(
            self, "allowed_urls", tuple(p.strip().rstrip("/") for p in self.allowed_urls if p.strip())
        )

    def check_url(self, url: str) -> str:
        """Normalise ``url`` and raise unless credentials may be sent to it."""
        url = normalize_url(url)
        if self.allowed_urls and not any(url_matches(url, pattern) for pattern in self.allowed_urls):
            raise PolicyRefused(
                f"Your administrator does not allow logins to {host_of(url)}.",
                host=host_of(url),
                fix=f"Allowed clusters: {', '.join(self.allowed_urls)[:300]}.",
            )
        if url.startswith("http://") and not is_loopback(url) and self.require_https:
            raise InsecureURL(
                f"Refusing to send credentials in clear text to {host_of(url)} (http://).",
                host=host_of(url),
                fix="Use https://, or allow insecure URLs explicitly for a trusted private network.",
            )
        return url

    def check_remember(self, remember: bool) -> None:
        if remember and not self.allow_remember:
            raise PolicyRefused(
                "Your administrator does not allow remembering credentials on this host.",
                fix="Untick 'Remember' and log in again.",
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "default_url": self.default_url,
            "allowed_urls": list(self.allowed_urls),
            "require_https": self.require_https,
            "allow_remember": self.allow_remember,
            "ca_bundle": self.ca_bundle,
        }


def url_matches(url: str, pattern: str) -> bool:
    """Does the normalised ``url`` match ``pattern`` (``scheme://host[:port][/path]``)?

    Scheme, host, port and path are matched separately, so a wildcard can never reach
    from the host into the path (``https://*.corp.example`` does not admit
    ``https://evil.example/x.corp.example``). ``*`` in the host matches within the host
    name only; no port means the scheme's default; ``:*`` any port; a path is a prefix
    at a segment boundary; no path admits any path on that origin. No scheme means https.
    """
    scheme_pat, sep, rest = pattern.partition("://")
    if not sep:
        scheme_pat, rest = "https", pattern
    hostport_pat, slash, path_pat = rest.partition("/")
    host_pat, port_pat = _split_port(hostport_pat)
    parts = urlsplit(url)
    scheme = parts.scheme
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return False
    if not fnmatch.fnmatchcase(scheme, scheme_pat.lower()):
        return False
    if not fnmatch.fnmatchcase(host, host_pat.lower().strip("[]")):
        return False
    if port_pat is None:
        if port != (443 if scheme == "https" else 80):
            return False
    elif port_pat != "*" and port_pat != str(port):
        return False
    path_pat = path_pat.rstrip("/")
    if slash and path_pat:
        path = parts.path.rstrip("/")
        return path == "/" + path_pat or path.startswith("/" + path_pat + "/")
    return True


def _split_port(hostport: str) -> tuple[str, str | None]:
    if hostport.startswith("["):  # [ipv6]:port
        host, _, after = hostport.partition("]")
        return host + "]", after[1:] if after.startswith(":") else None
    host, sep, port = hostport.rpartition(":")
    return (host, port) if sep else (hostport, None)
