"""BrowserLogins: the core's side of a browser sign-in through the broker (the code flow).

What to send the user to (the profile's provider, client and scopes, allowed by the
policy), and what to do with the grant the provider hands back. The redirects, PKCE and
the pending sign-ins themselves are :mod:`.code_flow`'s job.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from . import oidc
from .errors import WrongMethod
from .identity import Identity
from .logins import Logins
from .profiles import METHOD_LABELS, Profile
from .urls import host_of

if TYPE_CHECKING:
    from .service import AuthService

log = logging.getLogger(__name__)


class BrowserLogins:
    """Browser sign-ins of one service (made per use, like :class:`.Logins`)."""

    def __init__(self, service: AuthService) -> None:
        self.service = service

    def plan(self, name: str) -> tuple[Profile, oidc.Provider, str | None, str]:
        """For a browser sign-in of ``name``: the profile, its provider (discovered,
        allowed by the policy), client id and scopes."""
        profile = self.service.get_profile(name)
        host = host_of(profile.url)
        if profile.method != "browser":
            raise WrongMethod(
                f"Profile {name!r} ({host}) does not sign in at the identity provider "
                f"(its method is {METHOD_LABELS[profile.method]}).",
                host=host,
                fix="Save it with the method 'browser' first.",
            )
        self.service.policy.check_url(profile.url)
        return (profile, *Logins(self.service).browser_plan(profile))

    def finish(
        self,
        profile: Profile,
        grant: oidc.Grant,
        prov: oidc.Provider,
        client_id: str,
        scope: str,
        client_secret: str | None,
    ) -> Identity:
        """A finished code flow: keep its refresh token (remember rules), ask the cluster
        who we are, and serve tokens from now on. The policy is asked again: it may
        have changed while the user was on the provider's page."""
        host = host_of(profile.url)
        self.service.policy.check_url(profile.url)
        logins = Logins(self.service)
        logins.check_provider(prov, host)
        states = self.service.login_states
        state = states.state(profile.name)
        with state.lock:
            state.provider, state.client_id, state.scope = prov, client_id, scope
            state.client_secret = client_secret
            info = logins.probe(profile, state, grant.access)
            logins.keep_refresh(profile, state, grant.refresh_token)
            identity = logins.settle(profile, state, grant.access, info)
        states.logged_in(profile.name)
        log.info("signed in profile %s to %s at its identity provider", profile.name, host)
        return identity
