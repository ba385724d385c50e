"""AuthService: the one core. Saves and forgets profiles, logs in, issues tokens, logs out.

No tornado, no widgets: the broker wraps it in REST handlers, and kernels without a
broker use it in-process. Secrets enter through ``save_profile`` and leave only as
bearer tokens from ``token`` (and module-key headers from ``module_headers``).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from . import cluster, device, hub_login, oidc
from .errors import (
    InvalidProfile,
    LoginExpired,
    MissingSecret,
    PolicyRefused,
    ProfileNotFound,
    WeaviateAuthError,
    WrongMethod,
)
from .identity import Identity
from .paths import store_dir
from .policy import Policy
from .profiles import METHOD_LABELS, Profile, ProfileStore
from .session import AsyncWeaviateSession, WeaviateSession
from .tokens import CachingTokenSource, LoginWatch, Token, bearer_expiry
from .transport import HttpSettings
from .urls import host_of

if TYPE_CHECKING:
    from .code_flow import BrowserClient
    from .keys import KeyManager
    from .secrets import SecretStore

log = logging.getLogger(__name__)

SECRET_KINDS = ("api_key", "password", "client_secret", "bearer")
MAX_SECRET_LENGTH = 16 * 1024


@dataclass
class _LoginState:
    """In-memory state of one profile's login. Holds secrets: never shown, never logged."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    access: Token | None = None
    #: the cluster ``access`` is for: every hand-out re-checks the policy against it
    url: str | None = None
    refresh_token: str | None = field(default=None, repr=False)
    provider: oidc.Provider | None = None
    client_id: str | None = None
    #: a confidential client's secret (browser sign-ins the administrator configured)
    client_secret: str | None = field(default=None, repr=False)
    scope: str = ""
    identity: Identity | None = None
    #: the hub login's last grant (method ``hub``): its audience explains a refusal
    hub_grant: hub_login.HubGrant | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"_LoginState(access={self.access!r}, identity={self.identity!r})"


class AuthService:
    """The single place where credentials are used.

    ``remember=False`` profiles keep their secrets in this object's memory only; a
    password that is not remembered is dropped right after the login that used it.
    """

    mode = "in-process"

    def __init__(
        self,
        *,
        profiles: ProfileStore | None = None,
        secrets: SecretStore | None = None,
        policy: Policy | None = None,
        http: HttpSettings | None = None,
        directory: Path | None = None,
        admin_profiles: Mapping[Profile, Mapping[str, str]] | None = None,
        device_prompt: device.DevicePrompt | None = device.show_device_code,
    ) -> None:
        #: how a browser sign-in outside the broker shows its code (None: not here)
        self.device_prompt = device_prompt
        #: the administrator's client for browser sign-ins (the broker sets it)
        self.browser_client: BrowserClient | None = None
        self._directory = Path(directory) if directory else None
        self._profiles = profiles
        self._secrets = secrets
        self.policy = policy or Policy()
        self.http = http or HttpSettings(ca_bundle=self.policy.ca_bundle)
        self._client: httpx.Client | None = None
        self._states: dict[str, _LoginState] = {}
        #: secrets kept in memory only: (profile, kind) -> (scope, value)
        self._volatile: dict[tuple[str, str], tuple[str, str]] = {}
        self._ephemeral: dict[str, Profile] = {}
        self._guard = threading.Lock()
        #: held (with the store's file lock) while a profile and its secrets change
        self._unit_lock = threading.RLock()
        #: profiles the administrator provides: usable, never readable or changeable
        self._admin: dict[str, Profile] = {}
        self._admin_secrets: dict[tuple[str, str], str] = {}
        for given, admin_secrets in (admin_profiles or {}).items():
            profile = given.with_changes(read_only=True, url=self.policy.check_url(given.url))
            self._admin[profile.name] = profile
            for kind, value in admin_secrets.items():
                self._admin_secrets[(profile.name, kind)] = value
        self._secret_cache: frozenset[str] | None = None
        self._secret_generation = 0
        #: profiles logged out: no token until an explicit ``login``
        self._logged_out: set[str] = set()
        #: token sources handed out and listeners (panels), told about each logout
        self.watch = LoginWatch()

    def __repr__(self) -> str:
        return f"AuthService(mode={self.mode!r}, profiles={len(self._states)} logged in)"

    # -- stores ---------------------------------------------------------------
    @property
    def profiles(self) -> ProfileStore:
        if self._profiles is None:
            self._profiles = ProfileStore(self._directory or store_dir())
        return self._profiles

    @property
    def secrets(self) -> SecretStore:
        if self._secrets is None:
            from .secrets import SecretStore

            self._secrets = SecretStore(directory=self._directory)
        return self._secrets

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            with self._guard:
                if self._client is None:
                    self._client = self.http.client()
                    # closed when the service is collected or at exit, if close() never came
                    weakref.finalize(self, self._client.close)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- profiles -------------------------------------------------------------
    def list_profiles(self, *, include_ephemeral: bool = True) -> list[Profile]:
        """Saved, administrator-provided and (unless told not to) in-memory profiles."""
        stored = {p.name: p for p in self.profiles.list()}
        if include_ephemeral:
            stored.update(self._ephemeral)
        stored.update(self._admin)
        return sorted(stored.values(), key=lambda p: p.name)

    def get_profile(self, name: str) -> Profile:
        if name in self._admin:
            return self._admin[name]
        if name in self._ephemeral:
            return self._ephemeral[name]
        try:
            return self.profiles.get(name)
        except ProfileNotFound:
            saved = [p.name for p in self.list_profiles()]
            raise ProfileNotFound(
                f"No profile {name!r}; saved: {', '.join(saved) if saved else 'none'}.",
                fix=f"Create it in the login panel (%weaviate_auth {name} opens it with that name),"
                " or pick a saved one.",
            ) from None

    def secret_values(self) -> frozenset[str]:
        """Every secret this service knows (stored, in memory, tokens): what the
        notebook save guard redacts. Cached until this service changes a secret."""
        cached = self._secret_cache
        if cached is not None:
            return cached
        generation = self._secret_generation
        values = {v for _, v in self._volatile.values()} | set(self._admin_secrets.values())
        if self.browser_client is not None and self.browser_client.client_secret:
            values.add(self.browser_client.client_secret)
        for profile in self.list_profiles():
            values.update(v for v in self._all_secrets(profile).values() if v)
        for state in list(self._states.values()):
            if state.access is not None:
                values.add(state.access.value)
            if state.refresh_token:
                values.add(state.refresh_token)
        result = frozenset(v for v in values if len(v) >= 4)
        if generation == self._secret_generation:  # nothing changed while we looked
            self._secret_cache = result
        return result

    def _invalidate_secrets(self) -> None:
        self._secret_generation += 1
        self._secret_cache = None

    def describe(self, name: str) -> dict[str, Any]:
        """A profile as callers may see it: fields, whether a secret is kept, login state."""
        profile = self.get_profile(name)
        state = self._states.get(name)
        identity = state.identity if state else None
        kept = self.kept_secrets(profile)
        return {
            **profile.to_json(),
            "read_only": profile.read_only,
            "has_secret": profile.primary_secret in kept or "refresh_token" in kept,
            "kept_secrets": kept,
            "logged_in": identity is not None,
            "logged_out": name in self._logged_out,
            "identity": identity.to_json() if identity else None,
        }

    def kept_secrets(self, profile: Profile) -> list[str]:
        """Which kinds of login secret are kept for ``profile`` (names, never values)."""
        return [kind for kind in (*SECRET_KINDS, "refresh_token") if self._secret(profile, kind)]

    def profile_views(self) -> list[dict[str, Any]]:
        """``describe`` for every profile: what the panel and the broker's list show."""
        return [self.describe(p.name) for p in self.list_profiles()]

    def has_secret(self, profile: Profile) -> bool:
        return any(self._secret(profile, kind) for kind in (profile.primary_secret, "refresh_token"))

    def save_profile(
        self, profile: Profile, secrets: Mapping[str, str] | None = None, *, persist: bool = True
    ) -> Profile:
        """Validate against policy, then store the profile and its secrets.

        Changing a profile's URL or method drops the secrets stored for it, so a
        credential can never be steered to another host by editing the profile. The
        read of the previous profile, the profile write and the secret writes are one
        unit (threads and processes alike), and every secret is bound to the URL and
        method it was saved for. ``persist=False`` keeps the profile in memory only
        (scripts, the env chain).
        """
        secrets = dict(secrets or {})
        url = self.policy.check_url(profile.url)
        profile = profile.with_changes(url=url)
        self.policy.check_remember(profile.remember)
        _validate_secrets(profile, secrets)
        with self._unit(stored=persist or self.profiles.path.exists()):
            self._save_unit(profile, secrets, persist=persist)
        log.info("saved profile %s for %s (%s)", profile.name, host_of(profile.url), profile.method)
        return profile

    def _save_unit(self, profile: Profile, secrets: dict[str, str], *, persist: bool) -> None:
        """``save_profile``'s compare-and-write, inside :meth:`_unit`."""
        try:
            previous: Profile | None = self._current_profile(profile.name)
        except ProfileNotFound:
            previous = None
        if previous is not None and previous.read_only:
            raise PolicyRefused(
                f"Profile {profile.name!r} is provided by your administrator and cannot be changed.",
                fix="Save your own profile under another name.",
            )
        if previous is not None and (
            previous.url != profile.url
            or previous.method != profile.method
            or previous.remember != profile.remember
        ):
            kept = (
                {}
                if (previous.url != profile.url or previous.method != profile.method)
                else self._all_secrets(previous)
            )
            self._drop_secrets(previous)
            secrets = {**kept, **secrets}
        self._drop_state(profile.name)
        if persist:
            self._ephemeral.pop(profile.name, None)
            self.profiles.save(profile)
        else:
            self._ephemeral[profile.name] = profile
        for kind, value in secrets.items():
            self._put_secret(profile, kind, value)

    def forget(self, name: str) -> bool:
        """Log out, delete the profile and every secret kept for it."""
        try:
            profile = self.get_profile(name)
        except ProfileNotFound:
            return False
        if profile.read_only:
            raise PolicyRefused(f"Profile {name!r} is provided by your administrator and cannot be deleted.")
        self.logout(name)
        with self._unit(stored=self.profiles.path.exists()):
            try:
                profile = self._current_profile(name)
            except ProfileNotFound:
                return False
            self._logged_out.discard(name)  # a profile saved later under this name starts afresh
            self._drop_secrets(profile)
            self._ephemeral.pop(name, None)
            self.profiles.delete(name)
        log.info("forgot profile %s", name)
        return True

    # -- login ----------------------------------------------------------------
    def login(self, name: str, *, device_prompt: device.DevicePrompt | None = None) -> Identity:
        """Log in with what is stored for ``name``; return who we are on the cluster.

        A ``browser`` profile with no kept refresh token signs in at the provider's
        page (device grant): ``device_prompt`` (default: this service's) shows the
        user the page and the code, then this call waits until the sign-in finishes.
        """
        profile = self.get_profile(name)
        self.policy.check_url(profile.url)
        state = self._state(name)
        with state.lock:
            token = self._fresh_login(profile, state, device_prompt or self.device_prompt)
            try:
                info = cluster.probe(
                    self.client,
                    profile.url,
                    token.value,
                    method=profile.method,
                    headers=self._cluster_headers(profile),
                )
            except WeaviateAuthError as exc:
                if state.hub_grant is None or exc.code not in ("invalid_credentials", "login_expired"):
                    raise
                raise hub_login.explain_refusal(
                    exc, state.hub_grant, state.client_id, host_of(profile.url)
                ) from None
            state.access, state.url = token, profile.url
            state.identity = self._identity(profile, state, info)
            self._invalidate_secrets()
        self._logged_out.discard(name)  # only an explicit login ends a logout
        log.info("logged in profile %s to %s (%s)", name, host_of(profile.url), profile.method)
        return state.identity

    def connect(self, profile: Profile, secrets: Mapping[str, str], *, persist: bool = True) -> Identity:
        """Save the profile, log in with ``secrets`` held in memory, and keep them only
        once the login worked: a rejected secret is never stored. The profile's
        non-secret fields stay either way, for a retry."""
        secrets = dict(secrets)
        _validate_secrets(profile, secrets)
        profile = self.save_profile(profile, persist=persist)
        trial = {kind: (profile.secret_scope, value) for kind, value in secrets.items()}
        with self._unit_lock:
            self._volatile.update({(profile.name, kind): kept for kind, kept in trial.items()})
            self._invalidate_secrets()
        try:
            identity = self.login(profile.name)
        except BaseException:
            self._settle_trial(profile, trial, keep=False)
            raise
        self._settle_trial(profile, trial, keep=True)
        return identity

    def _settle_trial(self, profile: Profile, trial: dict[str, tuple[str, str]], *, keep: bool) -> None:
        """After a :meth:`connect` login: keep (store, when remembered) the trial secrets
        the login left in memory, or drop them all. One the login consumed (a password
        traded for a refresh token) stays gone."""
        for kind, kept in trial.items():
            with self._unit_lock:
                if self._volatile.get((profile.name, kind)) != kept:
                    continue  # consumed by the login, or replaced meanwhile
                del self._volatile[(profile.name, kind)]
                self._invalidate_secrets()
            if keep:
                self._put_secret(profile, kind, kept[1])

    def token(self, name: str, *, rejected: Token | None = None) -> Token:
        """A bearer token for ``name`` that stays fresh for a while; refreshes single-flight.

        ``rejected`` is a token the cluster just refused: if it is still the current
        one, get a new one even though it looks fresh. However many callers ask at
        once, one of them renews and the others receive its result.

        Every call checks the policy as it is now (the administrator may have narrowed
        it since the profile was saved); the check is remembered per URL by the policy.
        """
        self._check_not_logged_out(name)
        state = self._state(name)
        access, url = state.access, state.url
        if url is not None and _usable(access, rejected):
            assert access is not None
            self.policy.check_url(url)
            return access
        profile = self.get_profile(name)
        self.policy.check_url(profile.url)
        with state.lock:
            access = state.access
            if state.url == profile.url and _usable(access, rejected):
                assert access is not None
                return access
            token = self._renew(profile, state) if state.identity else self._fresh_login(profile, state)
            state.access, state.url = token, profile.url
            self._invalidate_secrets()
            if state.identity is not None:
                state.identity = replace(
                    state.identity, expires_at=token.expires_at, refreshes=self._refreshes(profile, state)
                )
            return token

    def module_headers(self, name: str) -> dict[str, str]:
        """Module keys (``X-OpenAI-Api-Key`` ...) to send to the cluster with each request."""
        profile = self.get_profile(name)
        headers = {}
        for header in profile.headers:
            value = self._secret(profile, f"header:{header}")
            if value:
                headers[header] = value
        return headers

    def identity(self, name: str) -> Identity | None:
        state = self._states.get(name)
        return state.identity if state else None

    def logout(self, name: str) -> None:
        """End the login: revoke the refresh token at the provider, drop tokens held here
        and in every session made for it; until an explicit ``login``, ``token`` raises
        ``LoginExpired`` instead of silently logging in again.

        Revocation sends the refresh token, so it is skipped (the token is still
        dropped here) when the policy no longer allows the cluster or its provider.
        """
        profile = self.get_profile(name)
        self._logged_out.add(name)
        state = self._states.pop(name, None)
        self._invalidate_secrets()
        self.watch.ended(name)
        refresh = (state.refresh_token if state else None) or self._secret(profile, "refresh_token")
        if refresh:
            self._revoke(profile, state or _LoginState(), refresh)
        self._del_secret(profile, "refresh_token")
        log.info("logged out profile %s", name)

    def replace_key(self, name: str, value: str) -> None:
        """The API key of ``name`` was rotated: keep the new one in place (same store,
        same profile) and hand it out from now on; sessions holding the old one get it
        on their next request (their cached token is dropped)."""
        profile = self.get_profile(name)
        if profile.method != "api_key":
            raise WrongMethod(f"Profile {name!r} does not log in with an API key.")
        _validate_secrets(profile, {"api_key": value})
        self._put_secret(profile, "api_key", value)
        state = self._states.get(name)
        if state is not None:
            with state.lock:
                if state.url == profile.url:
                    state.access = Token(value)
        self._invalidate_secrets()
        self.watch.renewed(name)
        log.info("replaced the API key of profile %s", name)

    @property
    def keys(self) -> KeyManager:
        """Database users (create, rotate, deactivate ...) of the clusters profiles log in to."""
        from .keys import KeyManager

        return KeyManager(self)

    def _check_not_logged_out(self, name: str) -> None:
        if name in self._logged_out:
            host = host_of(self.get_profile(name).url)
            raise LoginExpired(
                f"You logged out of profile {name!r} ({host}); log in again.",
                host=host,
                fix=f"Run %weaviate_auth {name}, connect in the login panel, or call login({name!r}).",
            )

    def session(self, name: str, **kwargs: Any) -> WeaviateSession:
        """A ready ``WeaviateSession`` for ``name`` (logs in first if needed)."""
        return WeaviateSession(**self._session_args(name), **kwargs)

    def async_session(self, name: str, **kwargs: Any) -> AsyncWeaviateSession:
        return AsyncWeaviateSession(**self._session_args(name), **kwargs)

    def _session_args(self, name: str) -> dict[str, Any]:
        identity = self.identity(name) or self.login(name)
        self.policy.check_url(identity.url)
        return {
            "url": identity.url,
            "token_source": self.token_source(name),
            "headers": self.module_headers(name),
            "identity": identity,
            "http": self.http,
        }

    def token_source(self, name: str) -> CachingTokenSource:
        """A cache in front of :meth:`token` that still asks the policy on every use."""
        url = self.get_profile(name).url
        source = CachingTokenSource(
            lambda rejected: self.token(name, rejected=rejected), check=lambda: self.policy.check_url(url)
        )
        return self.watch.track(name, source)

    def status(self) -> dict[str, Any]:
        from . import __version__

        return {
            "version": __version__,
            "mode": self.mode,
            "store": self.secrets.backend_name,
            "policy": self.policy.to_json(),
        }

    # -- internals: logins and refreshes --------------------------------------
    def _fresh_login(
        self, profile: Profile, state: _LoginState, prompt: device.DevicePrompt | None = None
    ) -> Token:
        if profile.method == "hub":
            return self._hub_token(profile, state)
        if profile.method == "api_key":
            return Token(self._require(profile, "api_key"))
        if profile.method == "bearer":
            value = self._require(profile, "bearer")
            token = Token(value, bearer_expiry(value, time.time()))
            if not token.fresh(0):
                raise LoginExpired(
                    f"The bearer token saved for profile {profile.name!r} has expired.",
                    host=host_of(profile.url),
                    fix="Save a new token, or use a login method that can renew itself.",
                )
            return token
        self._discover(profile, state)
        if profile.method == "client_credentials":
            return self._client_credentials(profile, state)
        if profile.method == "browser":
            return self._browser(profile, state, prompt)
        password = self._secret(profile, "password")
        if password is None:
            refresh = self._secret(profile, "refresh_token")
            if refresh:
                state.refresh_token = refresh
                return self._refresh(profile, state)
            raise MissingSecret(
                f"No password is kept for profile {profile.name!r}.",
                host=host_of(profile.url),
                fix="Enter the password in the login panel (tick 'Remember' to keep it).",
            )
        return self._password(profile, state, password)

    def _renew(self, profile: Profile, state: _LoginState) -> Token:
        if profile.method in ("api_key", "bearer", "hub"):
            return self._fresh_login(profile, state)
        if profile.method == "client_credentials":
            return self._client_credentials(profile, state)
        if state.refresh_token:
            try:
                return self._refresh(profile, state)
            except LoginExpired:
                password = self._secret(profile, "password") if profile.remember else None
                if password is None:
                    self._drop_state(profile.name)
                    raise
                log.info(
                    "refresh failed for profile %s; logging in again with the remembered password",
                    profile.name,
                )
                return self._password(profile, state, password)
        password = self._secret(profile, "password") if profile.remember else None
        if password is None:
            self._drop_state(profile.name)
            raise LoginExpired(
                f"The login of profile {profile.name!r} to {host_of(profile.url)} has expired and cannot be renewed.",
                host=host_of(profile.url),
                fix=f"Log in again (login panel, or %weaviate_auth {profile.name}).",
            )
        return self._password(profile, state, password)

    def _hub_token(self, profile: Profile, state: _LoginState) -> Token:
        """The hub login's current access token, for a cluster trusting the hub's provider."""
        host = host_of(profile.url)
        hub_login.check_allowed(self.policy, profile.url)
        info = self._cluster_oidc(profile)
        assert self.policy.hub_service_url
        grant = hub_login.fetch(self.client, self.policy.hub_service_url)
        hub_login.check_issuer(grant, oidc.issuer_of(info.href), host)
        state.hub_grant, state.client_id = grant, info.client_id
        return grant.access

    def _cluster_oidc(self, profile: Profile) -> oidc.ClusterOIDC:
        """The cluster's OIDC settings; a cluster without OIDC takes no OIDC login."""
        host = host_of(profile.url)
        info = oidc.cluster_oidc(self.client, profile.url, self._cluster_headers(profile))
        if info is None:
            raise WrongMethod(
                f"The cluster at {host} does not accept {METHOD_LABELS[profile.method]} logins (it has no OIDC).",
                host=host,
                fix="Use an API key instead.",
            )
        return info

    def _discover(self, profile: Profile, state: _LoginState) -> None:
        host = host_of(profile.url)
        info = self._cluster_oidc(profile)
        self.policy.check_issuer(oidc.issuer_of(info.href), host)
        prov = oidc.provider(self.client, info.href)
        self._check_provider(prov, host)
        state.provider = prov
        if profile.method != "browser":
            grant = "password" if profile.method == "password" else "client_credentials"
            oidc.require_grant(state.provider, grant, host)
        state.client_id = profile.client_id or info.client_id
        extra = {"password": ("offline_access",), "browser": ("openid", "offline_access")}
        scopes = [*extra.get(profile.method, ())]
        admin = self.browser_client if profile.method == "browser" else None
        if admin is not None:
            state.client_id = admin.client_id or state.client_id
            state.client_secret = admin.client_secret
            scopes.extend(admin.extra_scopes)
        state.scope = oidc.merge_scopes(info.scopes, profile.scopes, *scopes)

    def _provider(self, profile: Profile, state: _LoginState) -> oidc.Provider:
        """The provider to send a grant to, discovered if need be, allowed by the policy now."""
        if state.provider is None:
            self._discover(profile, state)
        assert state.provider is not None
        self._check_provider(state.provider, host_of(profile.url))
        return state.provider

    def _revoke(self, profile: Profile, state: _LoginState, refresh: str) -> None:
        """Best-effort revocation at the provider, discovered first when this process never
        logged in (a logout from another process, the terminal); never past the policy."""
        try:
            self.policy.check_url(profile.url)
            if state.provider is None:
                self._discover(profile, state)
            assert state.provider is not None
            self._check_provider(state.provider, host_of(profile.url))
        except PolicyRefused as exc:
            log.warning("not revoking the login of profile %s: %s", profile.name, exc.reason)
        except WeaviateAuthError as exc:
            log.warning("could not revoke the login of profile %s: %s", profile.name, exc.reason)
        else:
            oidc.revoke(self.client, state.provider, refresh, state.client_id, "refresh_token")

    def _check_provider(self, prov: oidc.Provider, cluster_host: str) -> None:
        """Every provider URL a credential goes to: an allowed issuer, https unless loopback."""
        self.policy.check_issuer(prov.issuer, cluster_host)
        self.policy.check_endpoint(prov.token_endpoint, "the token endpoint at")
        if prov.revocation_endpoint:
            self.policy.check_endpoint(prov.revocation_endpoint, "the revocation endpoint at")

    def _password(self, profile: Profile, state: _LoginState, password: str) -> Token:
        assert profile.username
        form = {"grant_type": "password", "username": profile.username, "password": password}
        prov = self._provider(profile, state)
        grant = oidc.token_request(self.client, prov, self._with_client(form, state))
        self._keep_refresh(profile, state, grant.refresh_token)
        if grant.refresh_token or not profile.remember:
            # "remember" keeps the least that allows a silent re-login.
            self._del_secret(profile, "password")
        return grant.access

    def _browser(self, profile: Profile, state: _LoginState, prompt: device.DevicePrompt | None) -> Token:
        """A kept refresh token if there is one, else a device sign-in when we can show
        its code (in the broker there is no one to show it to: the panel's button does)."""
        refresh = self._secret(profile, "refresh_token")
        if refresh:
            state.refresh_token = refresh
            return self._refresh(profile, state)
        host = host_of(profile.url)
        if prompt is None:
            raise LoginExpired(
                f"Profile {profile.name!r} ({host}) needs a sign-in at its identity provider.",
                host=host,
                fix="Use the login panel's 'Sign in with …' button, or %weaviate_auth in a kernel.",
            )
        prov = self._provider(profile, state)
        if not prov.offers_device_flow():
            raise WrongMethod(
                f"The identity provider of {host} ({host_of(prov.issuer)}) does not offer device sign-in.",
                host=host,
                fix="Sign in from the Jupyter login panel (it uses the browser redirect), or use another method.",
            )
        form = self._with_client({}, state)
        code = device.start(self.client, prov, form, self.policy)
        log.info("device sign-in for profile %s started at %s", profile.name, code.provider_host)
        prompt(code)
        grant = device.poll(self.client, prov, code, self._with_client({}, state))
        self._check_provider(prov, host)  # the policy may have changed while the user signed in
        self._keep_refresh(profile, state, grant.refresh_token)
        return grant.access

    def browser_plan(self, name: str) -> tuple[Profile, oidc.Provider, str | None, str]:
        """For a browser sign-in of ``name`` (the broker's code flow): the profile, its
        provider (discovered, allowed by the policy), client id and scopes."""
        profile = self.get_profile(name)
        host = host_of(profile.url)
        if profile.method != "browser":
            raise WrongMethod(
                f"Profile {name!r} ({host}) does not sign in at the identity provider "
                f"(its method is {METHOD_LABELS[profile.method]}).",
                host=host,
                fix="Save it with the method 'browser' first.",
            )
        self.policy.check_url(profile.url)
        plan = _LoginState()
        self._discover(profile, plan)
        assert plan.provider is not None
        return profile, plan.provider, plan.client_id, plan.scope

    def finish_browser_sign_in(
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
        self.policy.check_url(profile.url)
        self._check_provider(prov, host)
        state = self._state(profile.name)
        with state.lock:
            state.provider, state.client_id, state.scope = prov, client_id, scope
            state.client_secret = client_secret
            info = cluster.probe(
                self.client,
                profile.url,
                grant.access.value,
                method=profile.method,
                headers=self._cluster_headers(profile),
            )
            self._keep_refresh(profile, state, grant.refresh_token)
            state.access, state.url = grant.access, profile.url
            state.identity = self._identity(profile, state, info)
            self._invalidate_secrets()
        self._logged_out.discard(profile.name)
        log.info("signed in profile %s to %s at its identity provider", profile.name, host)
        return state.identity

    def _client_credentials(self, profile: Profile, state: _LoginState) -> Token:
        prov = self._provider(profile, state)
        form = {"grant_type": "client_credentials", "client_secret": self._require(profile, "client_secret")}
        grant = oidc.token_request(self.client, prov, self._with_client(form, state))
        return grant.access

    def _refresh(self, profile: Profile, state: _LoginState) -> Token:
        prov = self._provider(profile, state)
        assert state.refresh_token
        form = {"grant_type": "refresh_token", "refresh_token": state.refresh_token}
        grant = oidc.token_request(self.client, prov, self._with_client(form, state), refreshing=True)
        self._keep_refresh(profile, state, grant.refresh_token or state.refresh_token)
        return grant.access

    def _with_client(self, form: dict[str, str], state: _LoginState) -> dict[str, str]:
        if state.client_id:
            form["client_id"] = state.client_id
        if state.client_secret:
            form["client_secret"] = state.client_secret
        if state.scope:
            form["scope"] = state.scope
        return form

    def _keep_refresh(self, profile: Profile, state: _LoginState, refresh: str | None) -> None:
        state.refresh_token = refresh
        if refresh and profile.remember:
            self._put_secret(profile, "refresh_token", refresh)

    def _refreshes(self, profile: Profile, state: _LoginState) -> bool:
        if profile.method in ("api_key", "hub"):
            return True
        if profile.method == "bearer":
            return False
        if profile.method == "client_credentials":
            return True
        if profile.method == "browser":
            return bool(state.refresh_token)
        return bool(state.refresh_token) or (
            profile.remember and self._secret(profile, "password") is not None
        )

    def _identity(self, profile: Profile, state: _LoginState, info: cluster.ServerInfo) -> Identity:
        token = state.access
        return Identity(
            profile=profile.name,
            url=profile.url,
            method=profile.method,
            server_version=info.version,
            username=info.username or (profile.username if profile.method == "password" else None),
            groups=info.groups,
            roles=info.roles,
            identity_known=info.identity_known,
            expires_at=token.expires_at if token else None,
            refreshes=self._refreshes(profile, state),
            remembered=profile.remember,
            backend=_backend_label(profile, self),
        )

    def _cluster_headers(self, profile: Profile) -> dict[str, str]:
        return cluster.cluster_headers(profile.url)

    # -- internals: secrets ----------------------------------------------------
    def _state(self, name: str) -> _LoginState:
        with self._guard:
            state = self._states.get(name)
            if state is None:
                state = self._states[name] = _LoginState()
            return state

    def _drop_state(self, name: str) -> None:
        with self._guard:
            self._states.pop(name, None)

    @contextmanager
    def _unit(self, *, stored: bool) -> Iterator[None]:
        """Hold while a profile and its secrets change together: this service's lock, and
        the profile store's file lock (other processes) when the profile is on disk."""
        with self._unit_lock:
            if stored:
                with self.profiles.transaction():
                    yield
            else:
                yield

    def _current_profile(self, name: str) -> Profile:
        """``get_profile`` reading the file afresh (inside :meth:`_unit`)."""
        if name in self._admin or name in self._ephemeral:
            return self.get_profile(name)
        return self.profiles.get(name, fresh=True)

    def _is_current(self, profile: Profile) -> bool:
        """Whether ``profile`` (as a login read it) is still what is saved (inside :meth:`_unit`)."""
        try:
            current = self._current_profile(profile.name)
        except ProfileNotFound:
            return False
        return current.secret_scope == profile.secret_scope and current.remember == profile.remember

    def _stored(self, profile: Profile) -> bool:
        return profile.remember and profile.name not in self._ephemeral

    def _secret(self, profile: Profile, kind: str) -> str | None:
        """The secret ``kind`` kept for ``profile`` *as it is*: one saved for another URL
        or method (a save in between) does not count."""
        if profile.read_only:
            return self._admin_secrets.get((profile.name, kind))
        scope = profile.secret_scope
        kept = self._volatile.get((profile.name, kind))
        if kept is not None:
            return kept[1] if kept[0] == scope else None
        if self._stored(profile):
            return self.secrets.get(profile.name, kind, scope=scope)
        return None

    def _require(self, profile: Profile, kind: str) -> str:
        value = self._secret(profile, kind)
        if not value:
            raise MissingSecret(
                f"No {kind.replace('_', ' ')} is kept for profile {profile.name!r}.",
                host=host_of(profile.url),
                fix="Enter it in the login panel (tick 'Remember' to keep it on this host).",
            )
        return value

    def _put_secret(self, profile: Profile, kind: str, value: str) -> None:
        """Keep ``value`` bound to ``profile``'s URL and method — unless the profile was
        saved anew since ``profile`` was read (a login finishing after a URL change)."""
        self._invalidate_secrets()
        if profile.read_only:
            return
        stored = self._stored(profile)
        with self._unit(stored=stored):
            if not self._is_current(profile):
                log.info("profile %s changed during its login; its new %s is not kept", profile.name, kind)
                return
            if stored:
                self.secrets.set(profile.name, kind, value, scope=profile.secret_scope)
                self._volatile.pop((profile.name, kind), None)
            else:
                self._volatile[(profile.name, kind)] = (profile.secret_scope, value)

    def _del_secret(self, profile: Profile, kind: str) -> None:
        """Drop the secret ``kind`` of ``profile`` — not one saved since for another URL."""
        self._invalidate_secrets()
        if profile.read_only:
            return
        stored = self._stored(profile)
        with self._unit(stored=stored):
            kept = self._volatile.get((profile.name, kind))
            if kept is not None and kept[0] == profile.secret_scope:
                del self._volatile[(profile.name, kind)]
            if stored and self.secrets.get(profile.name, kind, scope=profile.secret_scope) is not None:
                self.secrets.delete(profile.name, kind)

    def _all_secrets(self, profile: Profile) -> dict[str, str]:
        found = {}
        for kind in profile.secret_kinds():
            value = self._secret(profile, kind)
            if value is not None:
                found[kind] = value
        return found

    def _drop_secrets(self, profile: Profile) -> None:
        self._invalidate_secrets()
        for key in [k for k in self._volatile if k[0] == profile.name]:
            del self._volatile[key]
        if profile.name not in self._ephemeral:
            self.secrets.delete_profile(profile.name, profile.secret_kinds())
        self._drop_state(profile.name)


def _backend_label(profile: Profile, service: AuthService) -> str:
    if profile.read_only:
        return "provided by your administrator"
    if profile.method == "hub":
        return "the hub (nothing on this server)"
    return service.secrets.backend_name if profile.remember else "this process's memory"


def _usable(token: Token | None, rejected: Token | None) -> bool:
    return token is not None and token.fresh() and not (rejected is not None and token == rejected)


def _validate_secrets(profile: Profile, secrets: Mapping[str, str]) -> None:
    allowed = set(SECRET_KINDS) | {f"header:{h}" for h in profile.headers}
    for kind, value in secrets.items():
        if kind not in allowed:
            raise InvalidProfile(
                f"Unknown secret {kind!r:.60} for profile {profile.name!r}.",
                fix=f"Use one of: {', '.join(sorted(allowed))}.",
            )
        if not isinstance(value, str) or not value:
            raise InvalidProfile(f"The {kind.replace('_', ' ')} is empty.", fix="Enter a value.")
        if len(value) > MAX_SECRET_LENGTH:
            raise InvalidProfile(f"The {kind.replace('_', ' ')} is too long.", fix="Check what was pasted.")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise InvalidProfile(
                f"The {kind.replace('_', ' ')} contains control characters (a stray newline?).",
                fix="Paste it again without line breaks.",
            )


__all__ = ["AuthService", "Identity"]
