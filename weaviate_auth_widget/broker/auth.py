"""Who may call the broker: the per-server broker token, and the owner rule on shared servers.

Two ways in, both checked before any handler runs:

- normal Jupyter authentication (token, or login cookie + XSRF), through the server's
  IdentityProvider and Authorizer;
- the ``X-Weaviate-Auth-Broker`` header carrying this server's random broker token,
  which only processes able to read the 0600 connection file have: kernels the server
  started. Such a request acts as the server's owner.

On a JupyterHub server shared with others (``JUPYTERHUB_USER`` names the owner), only
the owner may obtain tokens or change anything; others may only read non-secret views.
"""

from __future__ import annotations

import getpass
import hmac
import os
import secrets
from collections.abc import Mapping

from ..errors import NotOwner

#: The environment variable JupyterHub sets to the name of the server's owner.
HUB_USER_ENV = "JUPYTERHUB_USER"


def new_broker_token() -> str:
    """A fresh per-server token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def broker_token_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented broker token with this server's."""
    if not presented or not expected:
        return False
    try:
        return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))
    except UnicodeEncodeError:
        return False


def hub_owner(environ: Mapping[str, str] | None = None) -> str | None:
    """The JupyterHub user owning this server, or None outside JupyterHub."""
    env = os.environ if environ is None else environ
    return env.get(HUB_USER_ENV) or None


def local_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return None


def is_owner(user: str | None, owner: str | None) -> bool:
    """``owner`` None means a single-user server: whoever authenticated owns it."""
    return owner is None or user == owner


def check_owner(user: str | None, owner: str | None, action: str) -> None:
    """Raise :class:`NotOwner` unless ``user`` may ``action`` on this server."""
    if not is_owner(user, owner):
        raise NotOwner(
            f"Only {owner} can {action} on this server (you are signed in as {user or 'an unknown user'}).",
            fix="Ask the server's owner, or use your own server.",
        )


__all__ = [
    "HUB_USER_ENV",
    "broker_token_matches",
    "check_owner",
    "hub_owner",
    "is_owner",
    "local_user",
    "new_broker_token",
]
