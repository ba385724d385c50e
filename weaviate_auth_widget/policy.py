"""Administrator policy: which clusters and identity providers credentials may go to, and how."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import InsecureURL, InvalidProfile, PolicyRefused
from .urls import (
    has_encoded_separator,
    host_of,
    is_loopback,
    normalize_issuer,
    normalize_url,
    remove_dot_segments,
)

_IDP_FIX = (
    "Ask the cluster's administrator to configure an https:// identity provider (OIDC issuer); "
    "only loopback addresses are exempt."
)


@dataclass(frozen=True)
class Policy:
    """What the administrator allows. The default policy allows any https cluster.

    ``allowed_urls`` are ``scheme://host[:port][/path]`` patterns (``https://*.weaviate.cloud``),
    matched part by part by :func:`url_matches`; an empty list allows every URL.
    ``allowed_issuers`` are patterns of the same kind for the identity providers
    (OIDC issuers) credentials may be sent to; empty allows any https issuer.
    ``require_https`` refuses ``http://`` except to loopback addresses, for clusters and
    identity providers alike; turn it off only for trusted private networks.
    """

    default_url: str | None = None
    allowed_urls: tuple[str, ...] = ()
    require_https: bool = True
    allow_remember: bool = True
    ca_bundle: str | None = None
    allowed_issuers: tuple[str, ...] = ()
    #: "sign in with your hub login" (:mod:`.hub_login`): on/off, the clusters it may be
    #: used for (patterns as ``allowed_urls``; empty: every allowed URL), and the hub
    #: service handing out the user's access token (None: not on such a hub)
    hub_login: bool = True
    hub_login_urls: tuple[str, ...] = ()
    hub_service_url: str | None = None
    #: URLs :meth:`check_url` admitted (raw -> normalised): every use of a credential
    #: asks, so a repeated question must cost a dict lookup (the policy is immutable)
    _verdicts: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.default_url:
            object.__setattr__(self, "default_url", normalize_url(self.default_url))
        for name in ("allowed_urls", "allowed_issuers", "hub_login_urls"):
            patterns = getattr(self, name)
            object.__setattr__(self, name, tuple(p.strip().rstrip("/") for p in patterns if p.strip()))

    def check_url(self, url: str) -> str:
        """Normalise ``url`` and raise unless credentials may be sent to it.

        Called on every use of a credential (login, token, refresh, revocation), so
        admitted URLs are remembered; a new policy starts with none.
        """
        verdict = self._verdicts.get(url)
        if verdict is None:
            verdict = self._check_url(url)  # refusals are not remembered: not the hot path
            if len(self._verdicts) < 1024:
                self._verdicts[url] = verdict
        return verdict

    def _check_url(self, url: str) -> str:
        url = normalize_url(url)
        if self.allowed_urls and not any(url_matches(url, pattern) for pattern in self.allowed_urls):
            raise PolicyRefused(
                f"Your administrator does not allow logins to {host_of(url)}.",
                host=host_of(url),
                fix=f"Allowed clusters: {', '.join(self.allowed_urls)[:300]}.",
            )
        self._check_https(url, "the cluster at")
        return url

    def check_issuer(self, issuer: str, cluster_host: str) -> str:
        """Raise unless credentials may go to the identity provider ``issuer`` names."""
        try:
            url = normalize_issuer(issuer)
        except InvalidProfile as exc:
            raise PolicyRefused(
                f"The cluster at {cluster_host} names an unusable identity provider: {exc.reason}",
                host=cluster_host,
                fix="Ask the cluster's administrator to check its OIDC issuer setting.",
            ) from None
        if self.allowed_issuers and not any(url_matches(url, p) for p in self.allowed_issuers):
            raise PolicyRefused(
                f"Your administrator does not allow logins through the identity provider "
                f"{host_of(url)} (named by the cluster at {cluster_host}).",
                host=host_of(url),
                fix=f"Allowed identity providers: {', '.join(self.allowed_issuers)[:300]}.",
            )
        self.check_endpoint(url, "the identity provider at")
        return url

    def check_endpoint(self, url: str, what: str) -> None:
        """An identity provider's URL: https unless loopback (when required)."""
        if urlsplit(url).scheme.lower() != "https":
            self._check_https(url, what, fix=_IDP_FIX)

    def _check_https(self, url: str, what: str, fix: str | None = None) -> None:
        if not self.require_https:
            return
        scheme = urlsplit(url).scheme.lower()
        if scheme == "https" or (scheme == "http" and is_loopback(url)):
            return
        raise InsecureURL(
            f"Refusing to send credentials in clear text to {what} {host_of(url)} ({scheme}://).",
            host=host_of(url),
            fix=fix
            or "Use https:// (only loopback addresses are exempt), or allow insecure URLs "
            "explicitly for a trusted private network.",
        )

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
            "allowed_issuers": list(self.allowed_issuers),
            "require_https": self.require_https,
            "allow_remember": self.allow_remember,
            "ca_bundle": self.ca_bundle,
            "hub_login": self.hub_login and bool(self.hub_service_url),
            "hub_login_urls": list(self.hub_login_urls),
        }


def url_matches(url: str, pattern: str) -> bool:
    """Does the normalised ``url`` match ``pattern`` (``scheme://host[:port][/path]``)?

    Scheme, host, port and path are matched separately, so a wildcard can never reach
    from the host into the path (``https://*.corp.example`` does not admit
    ``https://evil.example/x.corp.example``). ``*`` in the host matches within the host
    name only; no port means the scheme's default; ``:*`` any port; a path is a prefix
    at a segment boundary, after dot segments are removed (``/prod/..`` is not under
    ``/prod``; encoded dots or slashes never match); no path admits any path on that
    origin. No scheme means https.
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
        if has_encoded_separator(parts.path):
            return False
        path = remove_dot_segments(parts.path).rstrip("/")
        return path == "/" + path_pat or path.startswith("/" + path_pat + "/")
    return True


def _split_port(hostport: str) -> tuple[str, str | None]:
    if hostport.startswith("["):  # [ipv6]:port
        host, _, after = hostport.partition("]")
        return host + "]", after[1:] if after.startswith(":") else None
    host, sep, port = hostport.rpartition(":")
    return (host, port) if sep else (hostport, None)
