"""What the sandbox provider knows: its users, its clients, and its settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .idp_interactive import InteractiveSettings


@dataclass
class IdPUser:
    """A user of the password grant. ``email=None`` leaves the claim out of tokens."""

    password: str = field(repr=False)
    email: str | None = None
    groups: list[str] = field(default_factory=list)
    offline_access: bool = True
    enabled: bool = True
    claims: dict[str, Any] = field(default_factory=dict)


@dataclass
class IdPClient:
    """A client. With a secret it is confidential and may use client_credentials.

    ``claims`` are added to its service tokens (e.g. an ``email`` Weaviate can use as
    username); ``audience`` adds audiences to every token it gets (``aud`` is then a list).
    """

    secret: str | None = field(default=None, repr=False)
    claims: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    audience: tuple[str, ...] = ()
    #: where the authorization-code flow may send the browser back (exact match)
    redirect_uris: tuple[str, ...] = ()


@dataclass
class IdPConfig:
    """``endpoint_base``, when set, is where the discovery document says the token and
    revocation endpoints are (a provider behind a gateway that names another host);
    the issuer stays the provider's own URL. ``interactive`` holds the browser flows'
    settings (code and session lifetimes, device polling interval, loopback redirects,
    ``offline_access`` only with ``prompt=consent``)."""

    users: dict[str, IdPUser] = field(default_factory=dict)
    clients: dict[str, IdPClient] = field(default_factory=dict)
    access_token_lifetime: int = 300
    refresh_token_lifetime: int = 3600
    token_delay: float = 0.0
    #: seconds added to every request (a network's round trip, for benchmarks)
    delay: float = 0.0
    advertise_revocation: bool = True
    advertise_grant_types: bool = True
    endpoint_base: str | None = None
    advertise_browser_flows: bool = True
    interactive: InteractiveSettings = field(default_factory=InteractiveSettings)
