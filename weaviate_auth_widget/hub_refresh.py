"""Keeps a hub user's OpenID access token fresh inside JupyterHub (runs in the hub).

oauthenticator's ``refresh_user`` renews the access token only once the provider's
userinfo endpoint refuses it, i.e. after it expired, and JupyterHub calls
``refresh_user`` at most every ``auth_refresh_age`` seconds, for the user making a
request. A token handed to a kernel should instead be renewed *before* it expires.
This hook (``c.GenericOAuthenticator.refresh_user_hook``, oauthenticator >= 17.3)
renews it with the refresh token in ``auth_state`` once fewer than ``margin`` seconds
are left, and says "up to date" otherwise (no provider call at all).

The refresh token stays in the hub's encrypted ``auth_state``: nothing here sends it
anywhere but the provider's token endpoint the authenticator is configured with.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .tokens import jwt_expiry

log = logging.getLogger(__name__)

#: Seconds before expiry at which the hook renews the access token.
DEFAULT_MARGIN = 60.0

Hook = Callable[[Any, Any, Mapping[str, Any] | None], Awaitable[bool | dict[str, Any] | None]]


def refresh_before_expiry(margin: float = DEFAULT_MARGIN) -> Hook:
    """A ``refresh_user_hook`` renewing the access token ``margin`` seconds before expiry.

    Returns ``True`` (nothing to do) while the token has more than ``margin`` seconds
    left, a new auth model after a renewal, ``False`` (log in again) when the provider
    refuses the refresh token or there is none, and ``None`` (oauthenticator's own
    behaviour) when the access token is not a JWT with an expiry."""

    async def hook(
        authenticator: Any, user: Any, auth_state: Mapping[str, Any] | None
    ) -> bool | dict[str, Any] | None:
        access = (auth_state or {}).get("access_token")
        if not isinstance(access, str):
            return None
        expires_at = jwt_expiry(access)
        if expires_at is None:
            return None
        if expires_at - time.time() > margin:
            return True
        assert auth_state is not None
        refresh = auth_state.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            log.info("access token of %s expires and there is no refresh token: new login needed", user.name)
            return False
        params = authenticator.build_refresh_token_request_params(refresh)
        try:
            token_info = await authenticator.get_token_info(None, params)
        except Exception as exc:  # the provider refused (or is unreachable): the user logs in again
            log.info(
                "refreshing the access token of %s failed (%s): new login needed",
                user.name,
                type(exc).__name__,
            )
            return False
        return {"name": user.name, "auth_state": renewed_auth_state(auth_state, token_info)}

    return hook


def renewed_auth_state(auth_state: Mapping[str, Any], token_info: Mapping[str, Any]) -> dict[str, Any]:
    """``auth_state`` with the tokens of a refresh response, in oauthenticator's layout
    (a provider may omit a new refresh or ID token: the old ones stay)."""
    state = dict(auth_state)
    state["access_token"] = token_info["access_token"]
    state["refresh_token"] = token_info.get("refresh_token") or auth_state.get("refresh_token")
    state["id_token"] = token_info.get("id_token") or auth_state.get("id_token")
    state["token_response"] = dict(token_info)
    return state


__all__ = ["DEFAULT_MARGIN", "refresh_before_expiry", "renewed_auth_state"]
