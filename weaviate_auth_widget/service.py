"""AuthService: the one core. Saves and forgets profiles, logs in, issues tokens, logs out.

No tornado, no widgets: the broker wraps it in REST handlers, and kernels without a
broker use it in-process. Secrets enter through ``save_profile`` and leave only as
bearer tokens from ``token`` (and module-key headers from ``module_headers``).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from . import cluster, oidc
from .errors import (
    InvalidProfile,
    LoginExpired,
    MissingSecret,
    PolicyRefused,
    ProfileNotFound,
    WrongMethod,
)
from .identity import Identity
from .paths import store_dir
from .policy import Policy
from .profiles import METHOD_LABELS, Profile, ProfileStore
from .session import AsyncWeaviateSession, WeaviateSession
from .tokens import CachingTokenSource, Token, jwt_expiry
from .transport import HttpSettings
from .urls import host_of

if TYPE_CHECKING:
    from .secrets import SecretStore

log = logging.getLogger(__name__)

SECRET_KINDS = ("api_key", "password", "client_secret", "bearer")
MAX_SECRET_LENGTH = 16 * 1024


@dataclass
class _LoginState:
    """In-memory state of one profile's login. Holds secrets: never shown, never logged."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    access: Token | None = None
    refresh_token: str | None = field(default=None, repr=False)
    provider: oidc.Provider | None = None
    client_id: str | None = None
    scope: str = ""
    identity: Identity | None = None

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
    ) -> None:
        self._directory = Path(directory) if directory else None
        self._profiles = profiles
        self._secrets = secrets
        self.policy = policy or Policy()
        self.http = http or HttpSettings(ca_bundle=self.policy.ca_bundle)
        self._client: httpx.Client | None = None
        self._states: dict[str, _LoginState] = {}
        self._volatile: dict[tuple[str, str], str] = {}
        self._ephemeral: dict[str, Profile] = {}
        self._guard = threading.Lock()
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
        return self.profiles.get(name)

    def secret_values(self) -> frozenset[str]:
        """Every secret this service knows (stored, in memory, tokens): what the
        notebook save guard redacts. Cached until this service changes a secret."""
        cached = self._secret_cache
        if cached is not None:
            return cached
        generation = self._secret_generation
        values = set(self._volatile.values()) | set(self._admin_secrets.values())
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
        return {
            **profile.to_json(),
            "read_only": profile.read_only,
            "has_secret": self.has_secret(profile),
            "logged_in": identity is not None,
            "identity": identity.to_json() if identity else None,
        }

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
        credential can never be steered to another host by editing the profile.
        ``persist=False`` keeps the profile in memory only (scripts, the env chain).
        """
        secrets = dict(secrets or {})
        url = self.policy.check_url(profile.url)
        profile = profile.with_changes(url=url)
        self.policy.check_remember(profile.remember)
        _validate_secrets(profile, secrets)
        try:
            previous: Profile | None = self.get_profile(profile.name)
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
        self._drop_secrets(profile)
        self._ephemeral.pop(name, None)
        self.profiles.delete(name)
        log.info("forgot profile %s", name)
        return True

    # -- login ----------------------------------------------------------------
    def login(self, name: str) -> Identity:
        """Log in with what is stored for ``name``; return who we are on the cluster."""
        profile = self.get_profile(name)
        self.policy.check_url(profile.url)
        state = self._state(name)
        with state.lock:
            token = self._fresh_login(profile, state)
            info = cluster.probe(
                self.client,
                profile.url,
                token.value,
                method=profile.method,
                headers=self._cluster_headers(profile),
            )
            state.access = token
            state.identity = self._identity(profile, state, info)
            self._invalidate_secrets()
        log.info("logged in profile %s to %s (%s)", name, host_of(profile.url), profile.method)
        return state.identity

    def connect(self, profile: Profile, secrets: Mapping[str, str], *, persist: bool = True) -> Identity:
        """Save then log in, undoing nothing on failure: the profile stays for a retry."""
        self.save_profile(profile, secrets, persist=persist)
        return self.login(profile.name)

    def token(self, name: str, *, rejected: Token | None = None) -> Token:
        """A bearer token for ``name`` that stays fresh for a while; refreshes single-flight.

        ``rejected`` is a token the cluster just refused: if it is still the current
        one, get a new one even though it looks fresh. However many callers ask at
        once, one of them renews and the others receive its result.
        """
        state = self._state(name)
        access = state.access
        if _usable(access, rejected):
            assert access is not None
            return access
        profile = self.get_profile(name)
        with state.lock:
            access = state.access
            if _usable(access, rejected):
                assert access is not None
                return access
            token = self._renew(profile, state) if state.identity else self._fresh_login(profile, state)
            state.access = token
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
        """End the login: revoke the refresh token at the provider, drop tokens held here."""
        profile = self.get_profile(name)
        state = self._states.pop(name, None)
        refresh = (state.refresh_token if state else None) or self._secret(profile, "refresh_token")
        if refresh and state and state.provider:
            oidc.revoke(self.client, state.provider, refresh, state.client_id, "refresh_token")
        self._del_secret(profile, "refresh_token")
        log.info("logged out profile %s", name)

    def session(self, name: str, **kwargs: Any) -> WeaviateSession:
        """A ready ``WeaviateSession`` for ``name`` (logs in first if needed)."""
        return WeaviateSession(**self._session_args(name), **kwargs)

    def async_session(self, name: str, **kwargs: Any) -> AsyncWeaviateSession:
        return AsyncWeaviateSession(**self._session_args(name), **kwargs)

    def _session_args(self, name: str) -> dict[str, Any]:
        identity = self.identity(name) or self.login(name)
        return {
            "url": identity.url,
            "token_source": self.token_source(name),
            "headers": self.module_headers(name),
            "identity": identity,
            "http": self.http,
        }

    def token_source(self, name: str) -> CachingTokenSource:
        return CachingTokenSource(lambda rejected: self.token(name, rejected=rejected))

    def status(self) -> dict[str, Any]:
        from . import __version__

        return {
            "version": __version__,
            "mode": self.mode,
            "store": self.secrets.backend_name,
            "policy": self.policy.to_json(),
        }

    # -- internals: logins and refreshes --------------------------------------
    def _fresh_login(self, profile: Profile, state: _LoginState) -> Token:
        if profile.method == "api_key":
            return Token(self._require(profile, "api_key"))
        if profile.method == "bearer":
            value = self._require(profile, "bearer")
            token = Token(value, jwt_expiry(value))
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
        if profile.method in ("api_key", "bearer"):
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

    def _discover(self, profile: Profile, state: _LoginState) -> None:
        host = host_of(profile.url)
        info = oidc.cluster_oidc(self.client, profile.url, self._cluster_headers(profile))
        if info is None:
            raise WrongMethod(
                f"The cluster at {host} does not accept {METHOD_LABELS[profile.method]} logins (it has no OIDC).",
                host=host,
                fix="Use an API key instead.",
            )
        state.provider = oidc.provider(self.client, info.href)
        grant = "password" if profile.method == "password" else "client_credentials"
        oidc.require_grant(state.provider, grant, host)
        state.client_id = profile.client_id or info.client_id
        extra = ("offline_access",) if profile.method == "password" else ()
        state.scope = oidc.merge_scopes(info.scopes, profile.scopes, *extra)

    def _password(self, profile: Profile, state: _LoginState, password: str) -> Token:
        assert state.provider is not None and profile.username
        form = {"grant_type": "password", "username": profile.username, "password": password}
        grant = oidc.token_request(self.client, state.provider, self._with_client(form, state))
        self._keep_refresh(profile, state, grant.refresh_token)
        if grant.refresh_token or not profile.remember:
            # "remember" keeps the least that allows a silent re-login.
            self._del_secret(profile, "password")
        return grant.access

    def _client_credentials(self, profile: Profile, state: _LoginState) -> Token:
        if state.provider is None:
            self._discover(profile, state)
        assert state.provider is not None
        form = {"grant_type": "client_credentials", "client_secret": self._require(profile, "client_secret")}
        grant = oidc.token_request(self.client, state.provider, self._with_client(form, state))
        return grant.access

    def _refresh(self, profile: Profile, state: _LoginState) -> Token:
        if state.provider is None:
            self._discover(profile, state)
        assert state.provider is not None and state.refresh_token
        form = {"grant_type": "refresh_token", "refresh_token": state.refresh_token}
        grant = oidc.token_request(
            self.client, state.provider, self._with_client(form, state), refreshing=True
        )
        self._keep_refresh(profile, state, grant.refresh_token or state.refresh_token)
        return grant.access

    def _with_client(self, form: dict[str, str], state: _LoginState) -> dict[str, str]:
        if state.client_id:
            form["client_id"] = state.client_id
        if state.scope:
            form["scope"] = state.scope
        return form

    def _keep_refresh(self, profile: Profile, state: _LoginState, refresh: str | None) -> None:
        state.refresh_token = refresh
        if refresh and profile.remember:
            self._put_secret(profile, "refresh_token", refresh)

    def _refreshes(self, profile: Profile, state: _LoginState) -> bool:
        if profile.method == "api_key":
            return True
        if profile.method == "bearer":
            return False
        if profile.method == "client_credentials":
            return True
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

    def _secret(self, profile: Profile, kind: str) -> str | None:
        if profile.read_only:
            return self._admin_secrets.get((profile.name, kind))
        value = self._volatile.get((profile.name, kind))
        if value is None and profile.remember and profile.name not in self._ephemeral:
            value = self.secrets.get(profile.name, kind)
        return value

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
        self._invalidate_secrets()
        if profile.read_only:
            return
        if profile.remember and profile.name not in self._ephemeral:
            self.secrets.set(profile.name, kind, value)
            self._volatile.pop((profile.name, kind), None)
        else:
            self._volatile[(profile.name, kind)] = value

    def _del_secret(self, profile: Profile, kind: str) -> None:
        self._invalidate_secrets()
        if profile.read_only:
            return
        self._volatile.pop((profile.name, kind), None)
        if profile.remember and profile.name not in self._ephemeral:
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
