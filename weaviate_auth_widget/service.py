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
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from . import cluster, device, hub_login, oidc
from .credentials import MAX_SECRET_LENGTH as MAX_SECRET_LENGTH
from .credentials import SECRET_KINDS, ProfileCredentials
from .credentials import validate_secrets as _validate_secrets
from .errors import LoginExpired, PolicyRefused, ProfileNotFound, WeaviateAuthError, WrongMethod
from .identity import Identity
from .logins import Logins
from .logins import LoginState as _LoginState
from .policy import Policy
from .profile_rules import check_method_change, require_api_key_profile
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
        #: the profile and secret stores, and the secrets held in memory
        self.credentials = ProfileCredentials(profiles=profiles, secrets=secrets, directory=self._directory)
        self.policy = policy or Policy()
        self.http = http or HttpSettings(ca_bundle=self.policy.ca_bundle)
        self._client: httpx.Client | None = None
        self._states: dict[str, _LoginState] = {}
        self._guard = threading.Lock()
        for given, admin_secrets in (admin_profiles or {}).items():
            profile = given.with_changes(read_only=True, url=self.policy.check_url(given.url))
            self.credentials.add_admin(profile, admin_secrets)
        #: profiles logged out: no token until an explicit ``login``
        self._logged_out: set[str] = set()
        #: token sources handed out and listeners (panels), told about each logout
        self.watch = LoginWatch()

    def __repr__(self) -> str:
        return f"AuthService(mode={self.mode!r}, profiles={len(self._states)} logged in)"

    # -- stores ---------------------------------------------------------------
    @property
    def profiles(self) -> ProfileStore:
        return self.credentials.profiles

    @property
    def secrets(self) -> SecretStore:
        return self.credentials.secrets

    @property
    def _volatile(self) -> dict[tuple[str, str], tuple[str, str]]:
        """Secrets kept in memory only (the credentials' map; tests look into it)."""
        return self.credentials.volatile

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
            stored.update(self.credentials.ephemeral)
        stored.update(self.credentials.admin)
        return sorted(stored.values(), key=lambda p: p.name)

    def get_profile(self, name: str) -> Profile:
        kept = self.credentials.in_memory(name)
        if kept is not None:
            return kept
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
        credentials = self.credentials
        cached = credentials.cache
        if cached is not None:
            return cached
        generation = credentials.generation
        values = {v for _, v in credentials.volatile.values()} | set(credentials.admin_secrets.values())
        if self.browser_client is not None and self.browser_client.client_secret:
            values.add(self.browser_client.client_secret)
        for profile in self.list_profiles():
            values.update(v for v in credentials.all(profile).values() if v)
        for state in list(self._states.values()):
            if state.access is not None:
                values.add(state.access.value)
            if state.refresh_token:
                values.add(state.refresh_token)
        result = frozenset(v for v in values if len(v) >= 4)
        if generation == credentials.generation:  # nothing changed while we looked
            credentials.cache = result
        return result

    def _invalidate_secrets(self) -> None:
        self.credentials.invalidate()

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
        self,
        profile: Profile,
        secrets: Mapping[str, str] | None = None,
        *,
        persist: bool = True,
        replace: bool = False,
    ) -> Profile:
        """Validate against policy, then store the profile and its secrets.

        Changing a profile's URL or method drops the secrets stored for it, so a
        credential can never be steered to another host by editing the profile; a
        method change while secrets are kept is refused unless ``replace`` says the
        caller means it (:func:`.profile_rules.check_method_change`). The
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
        with self.credentials.unit(stored=persist or self.profiles.path.exists()):
            self._save_unit(profile, secrets, persist=persist, replace=replace)
        log.info("saved profile %s for %s (%s)", profile.name, host_of(profile.url), profile.method)
        return profile

    def _save_unit(self, profile: Profile, secrets: dict[str, str], *, persist: bool, replace: bool) -> None:
        """``save_profile``'s compare-and-write, inside the credentials' unit."""
        credentials = self.credentials
        try:
            previous: Profile | None = credentials.current_profile(profile.name)
        except ProfileNotFound:
            previous = None
        if previous is not None and previous.read_only:
            raise PolicyRefused(
                f"Profile {profile.name!r} is provided by your administrator and cannot be changed.",
                fix="Save your own profile under another name.",
            )
        if previous is not None and previous.method != profile.method and not replace:
            check_method_change(previous, profile, list(credentials.all(previous)), replace=replace)
        if previous is not None and (
            previous.url != profile.url
            or previous.method != profile.method
            or previous.remember != profile.remember
        ):
            kept = (
                {}
                if (previous.url != profile.url or previous.method != profile.method)
                else credentials.all(previous)
            )
            self._drop_secrets(previous)
            secrets = {**kept, **secrets}
        self._drop_state(profile.name)
        if persist:
            credentials.ephemeral.pop(profile.name, None)
            self.profiles.save(profile)
        else:
            credentials.ephemeral[profile.name] = profile
        for kind, value in secrets.items():
            credentials.put(profile, kind, value)

    def forget(self, name: str) -> bool:
        """Log out, delete the profile and every secret kept for it."""
        try:
            profile = self.get_profile(name)
        except ProfileNotFound:
            return False
        if profile.read_only:
            raise PolicyRefused(f"Profile {name!r} is provided by your administrator and cannot be deleted.")
        self.logout(name)
        with self.credentials.unit(stored=self.profiles.path.exists()):
            try:
                profile = self.credentials.current_profile(name)
            except ProfileNotFound:
                return False
            self._logged_out.discard(name)  # a profile saved later under this name starts afresh
            self._drop_secrets(profile)
            self.credentials.ephemeral.pop(name, None)
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

    def connect(
        self, profile: Profile, secrets: Mapping[str, str], *, persist: bool = True, replace: bool = False
    ) -> Identity:
        """Save the profile, log in with ``secrets`` held in memory, and keep them only
        once the login worked: a rejected secret is never stored. The profile's
        non-secret fields stay either way, for a retry. ``replace``: as for ``save_profile``."""
        secrets = dict(secrets)
        _validate_secrets(profile, secrets)
        profile = self.save_profile(profile, persist=persist, replace=replace)
        trial = {kind: (profile.secret_scope, value) for kind, value in secrets.items()}
        with self.credentials.lock:
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
            with self.credentials.lock:
                if self._volatile.get((profile.name, kind)) != kept:
                    continue  # consumed by the login, or replaced meanwhile
                del self._volatile[(profile.name, kind)]
                self._invalidate_secrets()
            if keep:
                self.credentials.put(profile, kind, kept[1])

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
            token = (
                self._logins().renew(profile, state) if state.identity else self._fresh_login(profile, state)
            )
            state.access, state.url = token, profile.url
            self._invalidate_secrets()
            if state.identity is not None:
                state.identity = replace(
                    state.identity,
                    expires_at=token.expires_at,
                    refreshes=self._logins().refreshes(profile, state),
                )
            return token

    def api_key(self, name: str) -> str:
        """The API key of ``name`` itself, for the user to copy into another tool: only an
        API-key profile gives its key up, only while not logged out, and only for a
        cluster the policy allows as it is now (like every use of a credential)."""
        self._check_not_logged_out(name)
        profile = self.get_profile(name)
        require_api_key_profile(profile)
        self.policy.check_url(profile.url)
        return self.credentials.require(profile, "api_key")

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
            self._logins().revoke(profile, state or _LoginState(), refresh)
        self.credentials.delete(profile, "refresh_token")
        log.info("logged out profile %s", name)

    def replace_key(self, name: str, value: str) -> None:
        """The API key of ``name`` was rotated: keep the new one in place (same store,
        same profile) and hand it out from now on; sessions holding the old one get it
        on their next request (their cached token is dropped)."""
        profile = self.get_profile(name)
        if profile.method != "api_key":
            host = host_of(profile.url)
            raise WrongMethod(
                f"Profile {name!r} ({host}) does not log in with an API key.",
                host=host,
                fix="Keep the rotated key in an API-key profile (name a new one).",
            )
        _validate_secrets(profile, {"api_key": value})
        self.credentials.put(profile, "api_key", value)
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
    def _logins(self) -> Logins:
        """The grants, with this service's policy and client as they are now (made per use:
        nothing keeps this service alive)."""
        return Logins(self)

    def _fresh_login(
        self, profile: Profile, state: _LoginState, prompt: device.DevicePrompt | None = None
    ) -> Token:
        if profile.method == "hub":
            return self._logins().hub_token(profile, state)
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
        return self._logins().oidc_login(profile, state, prompt)

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
        return (profile, *self._logins().browser_plan(profile))

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
        logins = self._logins()
        logins.check_provider(prov, host)
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
            logins.keep_refresh(profile, state, grant.refresh_token)
            state.access, state.url = grant.access, profile.url
            state.identity = self._identity(profile, state, info)
            self._invalidate_secrets()
        self._logged_out.discard(profile.name)
        log.info("signed in profile %s to %s at its identity provider", profile.name, host)
        return state.identity

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
            refreshes=self._logins().refreshes(profile, state),
            remembered=profile.remember,
            backend=_backend_label(profile, self),
        )

    def _cluster_headers(self, profile: Profile) -> dict[str, str]:
        return cluster.cluster_headers(profile.url)

    # -- internals: login state and secrets ----------------------------------
    def _state(self, name: str) -> _LoginState:
        with self._guard:
            state = self._states.get(name)
            if state is None:
                state = self._states[name] = _LoginState()
            return state

    def _drop_state(self, name: str) -> None:
        with self._guard:
            self._states.pop(name, None)

    def _secret(self, profile: Profile, kind: str) -> str | None:
        """The secret ``kind`` kept for ``profile`` as it is (see :meth:`ProfileCredentials.get`)."""
        return self.credentials.get(profile, kind)

    def _drop_secrets(self, profile: Profile) -> None:
        self.credentials.drop(profile)
        self._drop_state(profile.name)


def _backend_label(profile: Profile, service: AuthService) -> str:
    if profile.read_only:
        return "provided by your administrator"
    if profile.method == "hub":
        return "the hub (nothing on this server)"
    return service.secrets.backend_name if profile.remember else "this process's memory"


def _usable(token: Token | None, rejected: Token | None) -> bool:
    return token is not None and token.fresh() and not (rejected is not None and token == rejected)


__all__ = ["AuthService", "Identity"]
