"""AuthService: the one core. Saves and forgets profiles, logs in, issues tokens, logs out.

No tornado, no widgets: the broker wraps it in REST handlers, and kernels without a
broker use it in-process. Secrets enter through ``save_profile`` and leave only as
bearer tokens from ``token`` (and module-key headers from ``module_headers``).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from . import device, oidc
from .browser_logins import BrowserLogins
from .credentials import MAX_SECRET_LENGTH as MAX_SECRET_LENGTH
from .credentials import ProfileCredentials
from .credentials import validate_secrets as _validate_secrets
from .errors import LoginExpired, PolicyRefused, ProfileNotFound, WrongMethod
from .identity import Identity
from .login_states import LoginState, LoginStates
from .logins import Logins
from .policy import Policy
from .profile_rules import require_api_key_profile
from .profile_views import ProfileViews
from .profiles import Profile, ProfileStore
from .session import AsyncWeaviateSession, WeaviateSession
from .tokens import CachingTokenSource, LoginWatch, Token
from .transport import HttpSettings
from .urls import host_of

if TYPE_CHECKING:
    from .code_flow import BrowserClient
    from .keys import KeyManager
    from .secrets import SecretStore

log = logging.getLogger(__name__)

#: ``finish_browser_sign_in(profile, grant, provider, client_id, scope, client_secret)``
_FinishSignIn = Callable[[Profile, oidc.Grant, oidc.Provider, str, str, str | None], Identity]


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
        #: every profile's login state, and which profiles are logged out
        self.login_states = LoginStates()
        self._guard = threading.Lock()
        for given, admin_secrets in (admin_profiles or {}).items():
            profile = given.with_changes(read_only=True, url=self.policy.check_url(given.url))
            self.credentials.add_admin(profile, admin_secrets)
        #: token sources handed out and listeners (panels), told about each logout
        self.watch = LoginWatch()

    def __repr__(self) -> str:
        return f"AuthService(mode={self.mode!r}, profiles={len(self.login_states)} logged in)"

    # -- stores ---------------------------------------------------------------
    @property
    def profiles(self) -> ProfileStore:
        return self.credentials.profiles

    @property
    def secrets(self) -> SecretStore:
        return self.credentials.secrets

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

    # -- views (what the panel, the broker's list and the save guard read) ----
    def secret_values(self) -> frozenset[str]:
        """Every secret this service knows: what the notebook save guard redacts."""
        return ProfileViews(self).secret_values()

    def describe(self, name: str) -> dict[str, Any]:
        """A profile as callers may see it: fields, whether a secret is kept, login state."""
        return ProfileViews(self).describe(name)

    def kept_secrets(self, profile: Profile) -> list[str]:
        """Which kinds of login secret are kept for ``profile`` (names, never values)."""
        return ProfileViews(self).kept_secrets(profile)

    def profile_views(self) -> list[dict[str, Any]]:
        """``describe`` for every profile: what the panel and the broker's list show."""
        return ProfileViews(self).all()

    def has_secret(self, profile: Profile) -> bool:
        return ProfileViews(self).has_secret(profile)

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
        dropped: list[LoginState | None] = []
        live = self.login_states.get(profile.name)
        held = ("refresh_token",) if live is not None and live.refresh_token else ()
        with self.credentials.unit(stored=persist or self.profiles.path.exists()):
            previous, stored_refresh = self.credentials.save(
                profile,
                secrets,
                persist=persist,
                replace=replace,
                reset=lambda name: dropped.append(self.login_states.drop(name)),
                held=held,
            )
        if previous is not None:
            kept = self.credentials.get(profile, "refresh_token")
            self._logins().revoke_discarded(previous, dropped[-1] if dropped else None, stored_refresh, kept)
        log.info("saved profile %s for %s (%s)", profile.name, host_of(profile.url), profile.method)
        return profile

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
            self.login_states.logged_in(name)  # a profile saved later under this name starts afresh
            self.credentials.drop(profile)
            self.login_states.drop(name)
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
        state = self.login_states.state(name)
        with state.lock:
            identity = self._logins().login(profile, state, device_prompt or self.device_prompt)
        self.login_states.logged_in(name)  # only an explicit login ends a logout
        log.info("logged in profile %s to %s (%s)", name, host_of(profile.url), profile.method)
        return identity

    def connect(
        self, profile: Profile, secrets: Mapping[str, str], *, persist: bool = True, replace: bool = False
    ) -> Identity:
        """Save the profile, log in with ``secrets`` held in memory, and keep them only
        once the login worked: a rejected secret is never stored. The profile's
        non-secret fields stay either way, for a retry. ``replace``: as for ``save_profile``."""
        secrets = dict(secrets)
        _validate_secrets(profile, secrets)
        profile = self.save_profile(profile, persist=persist, replace=replace)
        with self.credentials.trial(profile, secrets):
            return self.login(profile.name)

    def token(self, name: str, *, rejected: Token | None = None) -> Token:
        """A bearer token for ``name`` that stays fresh for a while; refreshes single-flight.

        ``rejected`` is a token the cluster just refused: if it is still the current
        one, get a new one even though it looks fresh. However many callers ask at
        once, one of them renews and the others receive its result.

        Every call checks the policy as it is now (the administrator may have narrowed
        it since the profile was saved); the check is remembered per URL by the policy.
        """
        self._check_not_logged_out(name)
        state = self.login_states.state(name)
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
            return self._logins().renewed(profile, state)

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
            value = self.credentials.get(profile, f"header:{header}")
            if value:
                headers[header] = value
        return headers

    def identity(self, name: str) -> Identity | None:
        return self.login_states.identity(name)

    def logout(self, name: str) -> None:
        """End the login: revoke the refresh token at the provider, drop tokens held here
        and in every session made for it; until an explicit ``login``, ``token`` raises
        ``LoginExpired`` instead of silently logging in again.

        Revocation sends the refresh token, so it is skipped (the token is still
        dropped here) when the policy no longer allows the cluster or its provider.
        """
        profile = self.get_profile(name)
        state = self.login_states.log_out(name)
        self.credentials.invalidate()
        self.watch.ended(name)
        refresh = (state.refresh_token if state else None) or self.credentials.get(profile, "refresh_token")
        if refresh:
            self._logins().revoke(profile, state or LoginState(), refresh)
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
        state = self.login_states.get(name)
        if state is not None:
            with state.lock:
                if state.url == profile.url:
                    state.access = Token(value)
        self.credentials.invalidate()
        self.watch.renewed(name)
        log.info("replaced the API key of profile %s", name)

    @property
    def keys(self) -> KeyManager:
        """Database users (create, rotate, deactivate ...) of the clusters profiles log in to."""
        from .keys import KeyManager

        return KeyManager(self)

    def _check_not_logged_out(self, name: str) -> None:
        if self.login_states.is_logged_out(name):
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

    # -- browser sign-ins through the broker (code_flow) ------------------------
    def browser_plan(self, name: str) -> tuple[Profile, oidc.Provider, str | None, str]:
        """For the broker's code flow: see :meth:`.BrowserLogins.plan`."""
        return BrowserLogins(self).plan(name)

    @property
    def finish_browser_sign_in(self) -> _FinishSignIn:
        """A finished code flow, called as a method: see :meth:`.BrowserLogins.finish`."""
        return BrowserLogins(self).finish

    # -- internals --------------------------------------------------------------
    def _logins(self) -> Logins:
        """The grants, with this service's policy and client as they are now (made per use:
        nothing keeps this service alive)."""
        return Logins(self)


def _usable(token: Token | None, rejected: Token | None) -> bool:
    return token is not None and token.fresh() and not (rejected is not None and token == rejected)


__all__ = ["AuthService", "Identity"]
