"""Administrator policy: which clusters credentials may go to, and how."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InsecureURL, PolicyRefused
from .urls import host_of, is_loopback, normalize_url


@dataclass(frozen=True)
class Policy:
    """What the administrator allows. The default policy allows any https cluster.

    ``allowed_urls`` are shell-style patterns matched against the normalised URL
    (``https://*.weaviate.cloud``); an empty list allows every URL.
    ``require_https`` refuses ``http://`` except to loopback hosts; turning it off
    (``allow_insecure``) is for trusted private networks only.
    """

    default_url: str | None = None
    allowed_urls: tuple[str, ...] = ()
    require_https: bool = True
    allow_remember: bool = True
    ca_bundle: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.default_url:
            object.__setattr__(self, "default_url", normalize_url(self.default_url))
        object.__setattr__(
            self, "allowed_urls", tuple(p.strip().rstrip("/") for p in self.allowed_urls if p.strip())
        )

    def check_url(self, url: str) -> str:
        """Normalise ``url`` and raise unless credentials may be sent to it."""
        url = normalize_url(url)
        if self.allowed_urls and not any(
            fnmatch.fnmatchcase(url, pattern) or fnmatch.fnmatchcase(url + "/", pattern)
            for pattern in self.allowed_urls
        ):
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

    @classmethod
    def permissive(cls, allowed: Sequence[str] = ()) -> Policy:
        return cls(allowed_urls=tuple(allowed))
