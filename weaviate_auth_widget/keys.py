"""Key management: Weaviate's database users (v1.30+) for a logged-in profile.

One place used by every door (the in-process service, the broker, the panel, the
magic, the terminal). A key the cluster hands out (create, rotate) goes straight into
the store as a profile and is never returned, shown or logged: callers get profile
names and user facts only. Errors name the cause and the fix; texts from the server
are shown as they are (they never echo keys), the status decides the error type.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from . import cluster
from .errors import (
    InvalidProfile,
    NotSupported,
    PermissionDenied,
    ProfileNotFound,
    UnexpectedResponse,
    UserConflict,
    UserNotFound,
    UserRefused,
    WeaviateAuthError,
)
from .profiles import Profile, validate_name
from .tokens import Token
from .transport import unreachable
from .urls import host_of

if TYPE_CHECKING:
    from .service import AuthService

log = logging.getLogger(__name__)

NEVER = "0001-01-01T00:00:00.000Z"
USERS_SINCE = "1.30"
_USER_ID = re.compile(r"^[A-Za-z][A-Za-z0-9\-_@.]{0,127}$")
_ROLE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_PERMISSION = re.compile(r"insufficient permissions to (\w+)")
#: what the panel shows for a profile: roles that can read users
_USER_ADMIN_ROLES = frozenset({"admin", "root"})


@dataclass(frozen=True)
class DbUser:
    """A user as the cluster describes it. Never a key: ``key_prefix`` is the few
    first letters the server shows to root callers (None otherwise)."""

    user_id: str
    user_type: str
    roles: tuple[str, ...]
    active: bool
    created_at: str | None
    last_used_at: str | None
    key_prefix: str | None

    @property
    def static(self) -> bool:
        return self.user_type == "db_env_user"

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DbUser:
        def when(name: str) -> str | None:
            value = doc.get(name)
            return value if isinstance(value, str) and value and value != NEVER else None

        prefix = doc.get("apiKeyFirstLetters")
        return cls(
            user_id=str(doc.get("userId", "")),
            user_type=str(doc.get("dbUserType", "db_user")),
            roles=tuple(str(r) for r in doc.get("roles") or ()),
            active=bool(doc.get("active", True)),
            created_at=when("createdAt"),
            last_used_at=when("lastUsedAt"),
            key_prefix=prefix if isinstance(prefix, str) and prefix else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "user_type": self.user_type,
            "roles": list(self.roles),
            "active": self.active,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "key_prefix": self.key_prefix,
        }


def validate_user_id(user_id: str) -> str:
    if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
        raise UserRefused(
            f"{user_id!r:.80} is not a valid Weaviate user name.",
            fix="Start with a letter; then letters, digits, '-', '_', '@' or '.'; at most 128 characters.",
        )
    return user_id


def validate_roles(roles: Any) -> tuple[str, ...]:
    if isinstance(roles, str) or not all(isinstance(r, str) and _ROLE.fullmatch(r) for r in roles or ()):
        raise InvalidProfile("Role names must be a list of names like 'viewer'.", fix="Check the role names.")
    return tuple(dict.fromkeys(roles or ()))


class KeyManager:
    """Database users of the cluster a profile is logged in to, with that profile's rights."""

    def __init__(self, service: AuthService) -> None:
        self._service = service

    def __repr__(self) -> str:
        return f"KeyManager({self._service!r})"

    # -- reading -----------------------------------------------------------------
    def list_users(self, profile: str) -> list[DbUser]:
        """Users the profile may read (root callers also see static ones, and key prefixes)."""
        response = self._call(profile, "GET", "/v1/users/db", params={"includeLastUsedTime": "true"})
        data = cluster.json_body(response)
        if not isinstance(data, list):
            raise self._unexpected(profile, response)
        return [DbUser.from_json(d) for d in data if isinstance(d, dict)]

    def list_roles(self, profile: str) -> list[str]:
        """Role names the profile may read (and so may assign)."""
        data = cluster.json_body(self._call(profile, "GET", "/v1/authz/roles"))
        return (
            [str(r["name"]) for r in data if isinstance(r, dict) and "name" in r]
            if isinstance(data, list)
            else []
        )

    def can_manage(self, profile: str) -> bool:
        """Whether the profile's roles can read users (what the panel's Keys section needs)."""
        try:
            response = self._call(profile, "GET", "/v1/users/own-info")
        except WeaviateAuthError:
            return False
        data = cluster.json_body(response)
        for role in data.get("roles") or () if isinstance(data, dict) else ():
            if not isinstance(role, dict):
                continue
            perms = role.get("permissions") or ()
            if role.get("name") in _USER_ADMIN_ROLES or any(
                isinstance(p, dict) and p.get("action") == "read_users" for p in perms
            ):
                return True
        return False

    # -- changing ------------------------------------------------------------------
    def create_user(
        self, profile: str, user_id: str, *, new_profile: str, roles: tuple[str, ...] | list[str] = ()
    ) -> dict[str, Any]:
        """Create ``user_id`` with ``roles``; its key becomes the API-key profile
        ``new_profile`` (same cluster). Returns that profile's description, never the key."""
        validate_user_id(user_id)
        wanted = validate_roles(roles)
        source = self._service.get_profile(profile)
        target = self._new_profile(new_profile, source)
        response = self._call(profile, "POST", f"/v1/users/db/{quote(user_id, safe='')}", json={})
        key = _key_of(response)
        if key is None:
            raise self._unexpected(profile, response)
        try:
            self._service.save_profile(target, {"api_key": key})
        except WeaviateAuthError:
            # the key exists nowhere else: a user nobody can log in as helps no one
            self._best_effort_delete(profile, user_id)
            raise
        finally:
            del key
        log.info(
            "created database user %s on %s, key kept as profile %s",
            user_id,
            host_of(source.url),
            new_profile,
        )
        if wanted:
            self.assign_roles(profile, user_id, wanted)
        return self._service.describe(new_profile)

    def rotate_key(self, profile: str, user_id: str, *, new_profile: str | None = None) -> list[str]:
        """Give ``user_id`` a new key; the old one dies at once. Every saved profile that
        used the old key gets the new one in place (live sessions pick it up on their
        next request); with none, ``new_profile`` receives it. Returns the profiles updated."""
        validate_user_id(user_id)
        source = self._service.get_profile(profile)
        users = self.holders(profile, user_id)
        target = None if users else self._new_profile(new_profile, source) if new_profile else None
        if not users and target is None:
            raise InvalidProfile(
                f"No saved profile holds the key of user {user_id!r}, so a new key would be lost.",
                fix="Name a new profile to keep the new key in (the Keys section's Profile field).",
            )
        response = self._call(profile, "POST", f"/v1/users/db/{quote(user_id, safe='')}/rotate-key", json={})
        key = _key_of(response)
        if key is None:
            raise self._unexpected(profile, response)
        try:
            if target is not None:
                self._service.save_profile(target, {"api_key": key})
                users = [target.name]
            for name in users:
                self._service.replace_key(name, key)
        finally:
            del key
        log.info("rotated the key of database user %s on %s; updated %s", user_id, host_of(source.url), users)
        return users

    def holders(self, profile: str, user_id: str) -> list[str]:
        """Saved API-key profiles for the same cluster whose key is ``user_id``'s: asked
        of the cluster itself (own-info with each candidate key)."""
        url = self._service.get_profile(profile).url
        found = []
        for candidate in self._service.list_profiles():
            if candidate.method != "api_key" or candidate.url != url or candidate.read_only:
                continue
            if self._username_of(candidate) == user_id:
                found.append(candidate.name)
        return found

    def delete_user(self, profile: str, user_id: str) -> None:
        self._call(profile, "DELETE", f"/v1/users/db/{quote(validate_user_id(user_id), safe='')}")
        log.info("deleted database user %s (profile %s)", user_id, profile)

    def activate(self, profile: str, user_id: str) -> None:
        self._call(profile, "POST", f"/v1/users/db/{quote(validate_user_id(user_id), safe='')}/activate")
        log.info("activated database user %s (profile %s)", user_id, profile)

    def deactivate(self, profile: str, user_id: str, *, revoke_key: bool = False) -> None:
        path = f"/v1/users/db/{quote(validate_user_id(user_id), safe='')}/deactivate"
        self._call(profile, "POST", path, json={"revoke_key": bool(revoke_key)})
        log.info("deactivated database user %s (profile %s, key revoked: %s)", user_id, profile, revoke_key)

    def assign_roles(
        self, profile: str, user_id: str, roles: tuple[str, ...] | list[str], *, user_type: str = "db"
    ) -> None:
        self._roles(profile, "assign", user_id, roles, user_type)

    def revoke_roles(
        self, profile: str, user_id: str, roles: tuple[str, ...] | list[str], *, user_type: str = "db"
    ) -> None:
        self._roles(profile, "revoke", user_id, roles, user_type)

    # -- internals -----------------------------------------------------------------
    def _roles(self, profile: str, action: str, user_id: str, roles: Any, user_type: str) -> None:
        wanted = validate_roles(roles)
        if not wanted:
            raise InvalidProfile("No role names given.", fix="Name at least one role.")
        if user_type not in ("db", "oidc"):
            raise InvalidProfile(f"Unknown user type {user_type!r:.20}.", fix="Use 'db' or 'oidc'.")
        path = f"/v1/authz/users/{quote(validate_user_id(user_id), safe='')}/{action}"
        self._call(profile, "POST", path, json={"roles": list(wanted), "userType": user_type})
        log.info("%s roles %s for user %s (profile %s)", action, list(wanted), user_id, profile)

    def _new_profile(self, name: str | None, source: Profile) -> Profile:
        validate_name(name or "")
        assert name is not None
        try:
            self._service.get_profile(name)
        except ProfileNotFound:
            return Profile(name=name, url=source.url, method="api_key", headers=source.headers)
        raise InvalidProfile(
            f"A profile named {name!r} exists already.", fix="Pick another name for the new key."
        )

    def _username_of(self, candidate: Profile) -> str | None:
        identity = self._service.identity(candidate.name)
        if identity is not None and identity.username:
            return identity.username
        try:
            data = cluster.json_body(self._call(candidate.name, "GET", "/v1/users/own-info"))
        except WeaviateAuthError:  # not usable (policy, logged out, refused): not a holder
            return None
        return str(data.get("username")) if isinstance(data, dict) and data.get("username") else None

    def _best_effort_delete(self, profile: str, user_id: str) -> None:
        try:
            self.delete_user(profile, user_id)
        except WeaviateAuthError as exc:
            log.warning("could not delete database user %s after a failed save: %s", user_id, exc.reason)

    def _call(self, profile: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request with the profile's token (one retry after a 401 with a new token);
        statuses other than 2xx become typed errors."""
        service = self._service
        prof = service.get_profile(profile)
        url, host = prof.url.rstrip("/") + path, host_of(prof.url)
        rejected: Token | None = None
        for _ in range(2):
            token = service.token(profile, rejected=rejected)
            headers = {"Authorization": f"Bearer {token.value}", **cluster.cluster_headers(prof.url)}
            try:
                response = service.client.request(method, url, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                raise unreachable(exc, host) from None
            if response.status_code != 401:
                break
            rejected = token
        if response.status_code >= 400:
            raise self._error(profile, prof, response)
        return response

    def _error(self, name: str, prof: Profile, response: httpx.Response) -> WeaviateAuthError:
        status, host = response.status_code, host_of(prof.url)
        text = cluster.error_message(response)
        if status == 403:
            missing = _PERMISSION.search(text)
            need = f"the '{missing[1]}' permission" if missing else "a role that allows it"
            return PermissionDenied(
                f"Profile {name!r} may not do this on {host}: its roles lack {need}.",
                host=host,
                fix=f"Use a profile whose role has {need} (admin or root), or ask the cluster's administrator.",
            )
        if status == 404 and "was not found" in text:
            version = self._version(name)
            return NotSupported(
                f"The cluster at {host} has no database users (Weaviate {version or 'older than 1.30'}).",
                host=host,
                fix=f"Database users need Weaviate {USERS_SINCE} or newer; upgrade the cluster or use its console.",
            )
        if status == 404:
            return UserNotFound(
                f"No such user on {host}{': ' + text if text else ''}.",
                host=host,
                fix="Check the name; list the users.",
            )
        if status == 409:
            return UserConflict(
                f"The cluster at {host} refused: {text or 'the user is already in that state'}.",
                host=host,
                fix="Pick another name." if "exists" in text else "Nothing to do.",
            )
        if status == 422 and "not enabled" in text:
            return NotSupported(
                f"Database users are switched off on {host}.",
                host=host,
                fix="Ask the administrator to set AUTHENTICATION_DB_USERS_ENABLED=true.",
            )
        if status in (400, 422):
            return UserRefused(
                f"The cluster at {host} refused: {text or status}.", host=host, fix=_fix_for(text)
            )
        try:
            cluster.raise_for_auth(response, method=prof.method, profile=name)
        except WeaviateAuthError as exc:
            return exc
        return self._unexpected(name, response)

    def _version(self, name: str) -> str | None:
        identity = self._service.identity(name)
        return identity.server_version if identity else None

    def _unexpected(self, name: str, response: httpx.Response) -> UnexpectedResponse:
        host = host_of(str(response.request.url))
        return UnexpectedResponse(
            f"The cluster at {host} answered HTTP {response.status_code} in an unexpected shape.",
            host=host,
            fix="Check that the URL points at Weaviate.",
        )


def _key_of(response: httpx.Response) -> str | None:
    data = cluster.json_body(response)
    key = data.get("apikey") if isinstance(data, dict) else None
    return key if isinstance(key, str) and key else None


def _fix_for(text: str) -> str:
    lowered = text.lower()
    if "static user" in lowered:
        return "Static users come from the cluster's AUTHENTICATION_APIKEY_* settings; change them there."
    if "root" in lowered:
        return "Root users are set in AUTHORIZATION_RBAC_ROOT_USERS and cannot be changed here."
    if "own user" in lowered or "self-deactivate" in lowered:
        return "Use another admin profile to change your own user."
    if "valid user name" in lowered:
        return "Start with a letter; then letters, digits, '-', '_', '@' or '.'."
    return "Check the request."
