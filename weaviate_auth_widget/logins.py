"""Logins: how AuthService gets and renews tokens at a cluster's identity provider.

OIDC discovery (policy-checked), the password, client-credentials, refresh and device
grants, the hub login, revocation, and the identity a login ends with. A ``Logins`` is made for each use from the service it
serves (so the current policy, HTTP client and administrator's browser client apply) and
keeps nothing itself: a profile's login state lives in its :class:`LoginState`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import httpx

from . import cluster, device, hub_login, oidc
from .errors import LoginExpired, MissingSecret, PolicyRefused, WeaviateAuthError, WrongMethod
from .identity import Identity
from .login_states import LoginState as LoginState
from .policy import Policy
from .profiles import METHOD_LABELS, Profile
from .tokens import Token, bearer_expiry
from .urls import host_of

if TYPE_CHECKING:
    from .credentials import ProfileCredentials
    from .service import AuthService

log = logging.getLogger(__name__)


class Logins:
    """The grants of one service, with its policy, HTTP client and kept secrets."""

    def __init__(self, service: AuthService) -> None:
        self.service = service

    @property
    def client(self) -> httpx.Client:
        return self.service.client

    @property
    def policy(self) -> Policy:
        return self.service.policy

    @property
    def credentials(self) -> ProfileCredentials:
        return self.service.credentials

    def login(self, profile: Profile, state: LoginState, prompt: device.DevicePrompt | None) -> Identity:
        """A first login of ``profile`` (``state``'s lock held): get a token, ask the
        cluster who it is, and serve it from now on."""
        token = self.fresh(profile, state, prompt)
        return self.settle(profile, state, token, self.probe(profile, state, token))

    def renewed(self, profile: Profile, state: LoginState) -> Token:
        """A new token for ``profile`` (``state``'s lock held), served from now on."""
        token = self.renew(profile, state) if state.identity else self.fresh(profile, state)
        state.access, state.url = token, profile.url
        self.credentials.invalidate()
        if state.identity is not None:
            state.identity = replace(
                state.identity, expires_at=token.expires_at, refreshes=self.refreshes(profile, state)
            )
        return token

    def fresh(self, profile: Profile, state: LoginState, prompt: device.DevicePrompt | None = None) -> Token:
        """A token from what is kept for ``profile``, without a refresh token of this process."""
        if profile.method == "hub":
            return self.hub_token(profile, state)
        if profile.method == "api_key":
            return Token(self.credentials.require(profile, "api_key"))
        if profile.method == "bearer":
            value = self.credentials.require(profile, "bearer")
            token = Token(value, bearer_expiry(value, time.time()))
            if not token.fresh(0):
                raise LoginExpired(
                    f"The bearer token saved for profile {profile.name!r} has expired.",
                    host=host_of(profile.url),
                    fix="Save a new token, or use a login method that can renew itself.",
                )
            return token
        return self.oidc_login(profile, state, prompt)

    def probe(self, profile: Profile, state: LoginState, access: Token) -> cluster.ServerInfo:
        """Who the cluster says ``access`` is; a refused hub token says why (its audience)."""
        try:
            return cluster.probe(
                self.client,
                profile.url,
                access.value,
                method=profile.method,
                headers=cluster.cluster_headers(profile.url),
            )
        except WeaviateAuthError as exc:
            if state.hub_grant is None or exc.code not in ("invalid_credentials", "login_expired"):
                raise
            raise hub_login.explain_refusal(
                exc, state.hub_grant, state.client_id, host_of(profile.url)
            ) from None

    def settle(
        self, profile: Profile, state: LoginState, access: Token, info: cluster.ServerInfo
    ) -> Identity:
        """Serve ``access`` for ``profile`` from now on, as the identity ``info`` describes."""
        state.access, state.url = access, profile.url
        state.identity = Identity(
            profile=profile.name,
            url=profile.url,
            method=profile.method,
            server_version=info.version,
            username=info.username or (profile.username if profile.method == "password" else None),
            groups=info.groups,
            roles=info.roles,
            identity_known=info.identity_known,
            expires_at=access.expires_at,
            refreshes=self.refreshes(profile, state),
            remembered=profile.remember,
            backend=self.backend_label(profile),
        )
        self.credentials.invalidate()
        return state.identity

    def backend_label(self, profile: Profile) -> str:
        """Where the login's secrets are kept, in words (the identity card shows it)."""
        if profile.read_only:
            return "provided by your administrator"
        if profile.method == "hub":
            return "the hub (nothing on this server)"
        return self.service.secrets.backend_name if profile.remember else "this process's memory"

    def oidc_login(self, profile: Profile, state: LoginState, prompt: device.DevicePrompt | None) -> Token:
        """A first login of a ``password``, ``client_credentials`` or ``browser`` profile."""
        self.discover(profile, state)
        if profile.method == "client_credentials":
            return self.client_credentials(profile, state)
        if profile.method == "browser":
            return self.browser(profile, state, prompt)
        password = self.credentials.get(profile, "password")
        if password is None:
            refresh = self.credentials.get(profile, "refresh_token")
            if refresh:
                state.refresh_token = refresh
                return self.refresh(profile, state)
            raise MissingSecret(
                f"No password is kept for profile {profile.name!r}.",
                host=host_of(profile.url),
                fix="Enter the password in the login panel (tick 'Remember' to keep it).",
            )
        return self.password(profile, state, password)

    def renew(self, profile: Profile, state: LoginState) -> Token:
        """A new token for a profile logged in before: refresh, or log in again."""
        if profile.method in ("api_key", "bearer", "hub"):
            return self.fresh(profile, state)
        if profile.method == "client_credentials":
            return self.client_credentials(profile, state)
        if state.refresh_token:
            try:
                return self.refresh(profile, state)
            except LoginExpired:
                password = self.credentials.get(profile, "password") if profile.remember else None
                if password is None:
                    self.service.login_states.drop(profile.name)
                    raise
                log.info(
                    "refresh failed for profile %s; logging in again with the remembered password",
                    profile.name,
                )
                return self.password(profile, state, password)
        password = self.credentials.get(profile, "password") if profile.remember else None
        if password is None:
            self.service.login_states.drop(profile.name)
            raise LoginExpired(
                f"The login of profile {profile.name!r} to {host_of(profile.url)} has expired and cannot be renewed.",
                host=host_of(profile.url),
                fix=f"Log in again (login panel, or %weaviate_auth {profile.name}).",
            )
        return self.password(profile, state, password)

    def hub_token(self, profile: Profile, state: LoginState) -> Token:
        """The hub login's current access token, for a cluster trusting the hub's provider."""
        host = host_of(profile.url)
        hub_login.check_allowed(self.policy, profile.url)
        info = self.cluster_oidc(profile)
        assert self.policy.hub_service_url
        grant = hub_login.fetch(self.client, self.policy.hub_service_url)
        hub_login.check_issuer(grant, oidc.issuer_of(info.href), host)
        state.hub_grant, state.client_id = grant, info.client_id
        return grant.access

    def cluster_oidc(self, profile: Profile) -> oidc.ClusterOIDC:
        """The cluster's OIDC settings; a cluster without OIDC takes no OIDC login."""
        host = host_of(profile.url)
        info = oidc.cluster_oidc(self.client, profile.url, cluster.cluster_headers(profile.url))
        if info is None:
            raise WrongMethod(
                f"The cluster at {host} does not accept {METHOD_LABELS[profile.method]} logins (it has no OIDC).",
                host=host,
                fix="Use an API key instead.",
            )
        return info

    def discover(self, profile: Profile, state: LoginState) -> None:
        host = host_of(profile.url)
        info = self.cluster_oidc(profile)
        self.policy.check_issuer(oidc.issuer_of(info.href), host)
        prov = oidc.provider(self.client, info.href)
        self.check_provider(prov, host)
        state.provider = prov
        if profile.method != "browser":
            grant = "password" if profile.method == "password" else "client_credentials"
            oidc.require_grant(state.provider, grant, host)
        state.client_id = profile.client_id or info.client_id
        extra = {"password": ("offline_access",), "browser": ("openid", "offline_access")}
        scopes = [*extra.get(profile.method, ())]
        admin = self.service.browser_client if profile.method == "browser" else None
        if admin is not None:
            state.client_id = admin.client_id or state.client_id
            state.client_secret = admin.client_secret
            scopes.extend(admin.extra_scopes)
        state.scope = oidc.merge_scopes(info.scopes, profile.scopes, *scopes)

    def provider(self, profile: Profile, state: LoginState) -> oidc.Provider:
        """The provider to send a grant to, discovered if need be, allowed by the policy now."""
        if state.provider is None:
            self.discover(profile, state)
        assert state.provider is not None
        self.check_provider(state.provider, host_of(profile.url))
        return state.provider

    def revoke(self, profile: Profile, state: LoginState, refresh: str) -> None:
        """Best-effort revocation at the provider, discovered first when this process never
        logged in (a logout from another process, the terminal); never past the policy."""
        try:
            self.policy.check_url(profile.url)
            if state.provider is None:
                self.discover(profile, state)
            assert state.provider is not None
            self.check_provider(state.provider, host_of(profile.url))
        except PolicyRefused as exc:
            log.warning("not revoking the login of profile %s: %s", profile.name, exc.reason)
        except WeaviateAuthError as exc:
            log.warning("could not revoke the login of profile %s: %s", profile.name, exc.reason)
        else:
            oidc.revoke(self.client, state.provider, refresh, state.client_id, "refresh_token")

    def revoke_discarded(
        self, previous: Profile, state: LoginState | None, stored: str | None, kept: str | None
    ) -> None:
        """A save that leaves a refresh token unreachable (a new URL or method, or a login
        held only in memory) revokes it as logout does: forgotten here, it would stay
        valid at the provider until it expires. ``kept`` is the one still kept."""
        held = state.refresh_token if state else None
        for refresh in dict.fromkeys(t for t in (stored, held) if t and t != kept):
            self.revoke(previous, state or LoginState(), refresh)

    def check_provider(self, prov: oidc.Provider, cluster_host: str) -> None:
        """Every provider URL a credential goes to: an allowed issuer, https unless loopback."""
        self.policy.check_issuer(prov.issuer, cluster_host)
        self.policy.check_endpoint(prov.token_endpoint, "the token endpoint at")
        if prov.revocation_endpoint:
            self.policy.check_endpoint(prov.revocation_endpoint, "the revocation endpoint at")

    def password(self, profile: Profile, state: LoginState, password: str) -> Token:
        assert profile.username
        form = {"grant_type": "password", "username": profile.username, "password": password}
        prov = self.provider(profile, state)
        grant = oidc.token_request(self.client, prov, self.with_client(form, state))
        self.keep_refresh(profile, state, grant.refresh_token)
        if grant.refresh_token or not profile.remember:
            # "remember" keeps the least that allows a silent re-login.
            self.credentials.delete(profile, "password")
        return grant.access

    def browser(self, profile: Profile, state: LoginState, prompt: device.DevicePrompt | None) -> Token:
        """A kept refresh token if there is one, else a device sign-in when we can show
        its code (in the broker there is no one to show it to: the panel's button does)."""
        refresh = self.credentials.get(profile, "refresh_token")
        if refresh:
            state.refresh_token = refresh
            return self.refresh(profile, state)
        host = host_of(profile.url)
        if prompt is None:
            raise LoginExpired(
                f"Profile {profile.name!r} ({host}) needs a sign-in at its identity provider.",
                host=host,
                fix="Use the login panel's 'Sign in with …' button, or %weaviate_auth in a kernel.",
            )
        prov = self.provider(profile, state)
        if not prov.offers_device_flow():
            raise WrongMethod(
                f"The identity provider of {host} ({host_of(prov.issuer)}) does not offer device sign-in.",
                host=host,
                fix="Sign in from the Jupyter login panel (it uses the browser redirect), or use another method.",
            )
        form = self.with_client({}, state)
        code = device.start(self.client, prov, form, self.policy)
        log.info("device sign-in for profile %s started at %s", profile.name, code.provider_host)
        prompt(code)
        grant = device.poll(self.client, prov, code, self.with_client({}, state))
        self.check_provider(prov, host)  # the policy may have changed while the user signed in
        self.keep_refresh(profile, state, grant.refresh_token)
        return grant.access

    def browser_plan(self, profile: Profile) -> tuple[oidc.Provider, str | None, str]:
        """A browser sign-in's provider (discovered, allowed by the policy), client id and scopes."""
        plan = LoginState()
        self.discover(profile, plan)
        assert plan.provider is not None
        return plan.provider, plan.client_id, plan.scope

    def client_credentials(self, profile: Profile, state: LoginState) -> Token:
        prov = self.provider(profile, state)
        form = {
            "grant_type": "client_credentials",
            "client_secret": self.credentials.require(profile, "client_secret"),
        }
        grant = oidc.token_request(self.client, prov, self.with_client(form, state))
        return grant.access

    def refresh(self, profile: Profile, state: LoginState) -> Token:
        prov = self.provider(profile, state)
        assert state.refresh_token
        form = {"grant_type": "refresh_token", "refresh_token": state.refresh_token}
        grant = oidc.token_request(self.client, prov, self.with_client(form, state), refreshing=True)
        self.keep_refresh(profile, state, grant.refresh_token or state.refresh_token)
        return grant.access

    @staticmethod
    def with_client(form: dict[str, str], state: LoginState) -> dict[str, str]:
        if state.client_id:
            form["client_id"] = state.client_id
        if state.client_secret:
            form["client_secret"] = state.client_secret
        if state.scope:
            form["scope"] = state.scope
        return form

    def keep_refresh(self, profile: Profile, state: LoginState, refresh: str | None) -> None:
        state.refresh_token = refresh
        if refresh and profile.remember:
            self.credentials.put(profile, "refresh_token", refresh)

    def refreshes(self, profile: Profile, state: LoginState) -> bool:
        """Whether the login of ``profile`` renews itself (the identity says so)."""
        if profile.method in ("api_key", "hub"):
            return True
        if profile.method == "bearer":
            return False
        if profile.method == "client_credentials":
            return True
        if profile.method == "browser":
            return bool(state.refresh_token)
        return bool(state.refresh_token) or (
            profile.remember and self.credentials.get(profile, "password") is not None
        )
