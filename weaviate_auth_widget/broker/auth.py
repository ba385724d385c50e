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


def hub_kind(user: object) -> str:
    """``user`` or ``service``: what JupyterHub says authenticated the request.

    jupyterhub-singleuser's identity provider keeps the hub's model on the user
    (``hub_user``, with ``kind``). A hub *service* is named like a user in that model, so
    a service called ``alice`` must not pass for the user ``alice``. Requests without a
    hub model (a plain Jupyter server, the broker token) are the user's own."""
    model = getattr(user, "hub_user", None)
    kind = model.get("kind", "user") if isinstance(model, Mapping) else "user"
    return str(kind)


def is_owner(user: str | None, owner: str | None, kind: str = "user") -> bool:
    """``owner`` None means a single-user server: whoever authenticated owns it. Under a
    hub, only the *user* named ``owner`` does (not a service of the same name)."""
    return owner is None or (kind == "user" and user == owner)


def check_owner(user: str | None, owner: str | None, action: str, kind: str = "user") -> None:
    """Raise :class:`NotOwner` unless ``user`` (a hub ``kind``) may ``action`` on this server."""
    if not is_owner(user, owner, kind):
        who = f"the hub service {user}" if kind != "user" else (user or "an unknown user")
        raise NotOwner(
            f"Only {owner} can {action} on this server (you are signed in as {who}).",
            fix="Ask the server's owner, or use your own server.",
        )


__all__ = [
    "HUB_USER_ENV",
    "broker_token_matches",
    "check_owner",
    "hub_kind",
    "hub_owner",
    "is_owner",
    "local_user",
    "new_broker_token",
]
