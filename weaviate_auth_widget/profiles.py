"""Profiles: everything about a login except its secrets, and the JSON file they live in."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock, Timeout

from .errors import InvalidProfile, ProfileNotFound, StoreUnavailable
from .paths import check_owned, check_private_dir, ensure_private_dir, read_private_file, write_private_file
from .urls import host_of, normalize_url

log = logging.getLogger(__name__)

Method = Literal["api_key", "password", "client_credentials", "bearer", "hub", "browser"]
METHODS: tuple[Method, ...] = ("api_key", "password", "client_credentials", "bearer", "hub", "browser")
METHOD_LABELS: dict[str, str] = {
    "api_key": "API key",
    "password": "username & password",
    "client_credentials": "client credentials",
    "bearer": "bearer token",
    "hub": "your hub login",
    "browser": "sign-in at the identity provider",
}
#: The secret a method needs to log in from scratch.
PRIMARY_SECRET: dict[str, str] = {
    "api_key": "api_key",
    "password": "password",
    "client_credentials": "client_secret",
    "bearer": "bearer",
    # nothing is kept: the hub service hands out the hub login's access token (hub_login.py)
    "hub": "hub",
    # signed in on the provider's own page: what is kept is the refresh token it gave
    "browser": "refresh_token",
}

_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HEADER_RE = re.compile(r"^X-[A-Za-z0-9-]{1,60}$")
_SCOPE_RE = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]{1,128}$")  # RFC 6749 scope-token
_FILE_VERSION = 1


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name in (".", ".."):
        raise InvalidProfile(
            f"Profile name {name!r:.80} is not allowed.",
            fix="Use 1-64 letters, digits, '-', '_' or '.'.",
        )
    return name


def validate_method(method: str) -> Method:
    if method not in METHODS:
        raise InvalidProfile(
            f"Unknown login method {method!r:.40}.",
            fix=f"Use one of: {', '.join(METHODS)}.",
        )
    return method  # type: ignore[return-value]


def validate_header_name(name: str) -> str:
    if not isinstance(name, str) or not _HEADER_RE.fullmatch(name):
        raise InvalidProfile(
            f"Header name {name!r:.80} is not a module-key header.",
            fix="Module keys travel in headers such as X-OpenAI-Api-Key.",
        )
    if name.lower() in ("x-weaviate-cluster-url",):
        raise InvalidProfile(f"Header {name} is set by the session itself.")
    return name


def _validate_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE_RE.fullmatch(scope):
            raise InvalidProfile(f"Scope {scope!r:.80} is not a valid OAuth scope.")
        if scope not in out:
            out.append(scope)
    return tuple(out)


@dataclass(frozen=True)
class Profile:
    """A named login target. Holds no secret, so it is safe to show, log and serialise."""

    name: str
    url: str
    method: Method = "api_key"
    username: str | None = None
    client_id: str | None = None
    scopes: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    remember: bool = True
    read_only: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        validate_name(self.name)
        object.__setattr__(self, "url", normalize_url(self.url))
        validate_method(self.method)
        object.__setattr__(self, "scopes", _validate_scopes(self.scopes))
        object.__setattr__(
            self, "headers", tuple(dict.fromkeys(validate_header_name(h) for h in self.headers))
        )
        if self.username is not None and (
            not isinstance(self.username, str) or len(self.username) > 256 or not self.username
        ):
            raise InvalidProfile("The username must be 1-256 characters.")
        if self.method == "password" and not self.username:
            raise InvalidProfile("A username & password profile needs a username.")
        if self.method == "client_credentials" and not self.client_id:
            raise InvalidProfile("A client-credentials profile needs a client id.")
        if self.client_id is not None and (not self.client_id or len(self.client_id) > 256):
            raise InvalidProfile("The client id must be 1-256 characters.")

    @property
    def primary_secret(self) -> str:
        return PRIMARY_SECRET[self.method]

    @property
    def secret_scope(self) -> str:
        """What this profile's stored secrets are bound to: its URL and method. A secret
        kept under another scope is never used for this profile, so no interleaving of
        saves and logins can hand a credential to a URL it was not saved for."""
        return hashlib.sha256(f"{self.method}\n{self.url}".encode()).hexdigest()[:32]

    def secret_kinds(self) -> tuple[str, ...]:
        """Every secret kind this profile may have stored."""
        kinds = ["api_key", "password", "client_secret", "bearer", "refresh_token"]
        kinds += [f"header:{h}" for h in self.headers]
        return tuple(kinds)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["scopes"] = list(self.scopes)
        data["headers"] = list(self.headers)
        data.pop("read_only")
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, read_only: bool = False) -> Profile:
        if not isinstance(data, Mapping):
            raise InvalidProfile("A profile must be a JSON object.")
        known = {"name", "url", "method", "username", "client_id", "scopes", "headers", "remember"}
        unknown = set(data) - known
        if unknown:
            raise InvalidProfile(f"Unknown profile field(s): {', '.join(sorted(unknown))[:200]}.")
        try:
            return cls(
                name=data["name"],
                url=data["url"],
                method=data.get("method", "api_key"),
                username=data.get("username"),
                client_id=data.get("client_id"),
                scopes=tuple(data.get("scopes") or ()),
                headers=tuple(data.get("headers") or ()),
                remember=bool(data.get("remember", True)),
                read_only=read_only,
            )
        except KeyError as exc:
            raise InvalidProfile(f"A profile needs the field {exc.args[0]!s}.") from None
        except TypeError:
            raise InvalidProfile("A profile field has the wrong type.") from None

    def with_changes(self, **changes: Any) -> Profile:
        return replace(self, **changes)


class ProfileStore:
    """``profiles.json``: 0600 in a 0700 directory, replaced atomically under a file lock.

    Every write re-reads the file inside the lock, so concurrent writers in several
    processes never lose each other's profiles; :meth:`transaction` holds the same lock
    across several steps (a profile and its secrets change as one unit).
    """

    def __init__(self, directory: Path, *, lock_timeout: float = 10.0) -> None:
        self.directory = Path(directory)
        self.path = self.directory / "profiles.json"
        self._lock_timeout = lock_timeout
        self._lock = FileLock(str(self.directory / ".profiles.lock"), timeout=lock_timeout, mode=0o600)
        self._thread_lock = threading.RLock()
        self._cache: tuple[tuple[int, int, int], dict[str, Profile]] | None = None
        #: entries stricter rules refuse now (e.g. an invalid host name saved by an older
        #: version): ignored, never lost; written back as they are, deleted by name
        self._unusable: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"ProfileStore({str(self.path)!r})"

    def list(self) -> list[Profile]:
        return sorted(self._read().values(), key=lambda p: p.name)

    def get(self, name: str, *, fresh: bool = False) -> Profile:
        """The profile ``name``; ``fresh`` re-reads the file (inside a transaction)."""
        validate_name(name)
        try:
            return self._read(fresh=fresh)[name]
        except KeyError:
            raise ProfileNotFound(
                f"There is no saved profile named {name!r}.",
                fix="List profiles with %weaviate_auth --list, or save one first.",
            ) from None

    def save(self, profile: Profile) -> None:
        with self._locked():
            profiles = self._read(fresh=True)
            profiles[profile.name] = profile
            self._write(profiles)

    def delete(self, name: str) -> bool:
        validate_name(name)
        with self._locked():
            profiles = self._read(fresh=True)
            kept = [raw for raw in self._unusable if raw.get("name") != name]
            existed = profiles.pop(name, None) is not None or len(kept) != len(self._unusable)
            self._unusable = kept
            if existed:
                self._write(profiles)
            return existed

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the store's lock — this process's threads and other processes alike —
        across several steps. Re-entrant in the holding thread."""
        with self._locked():
            yield

    # -- internals -------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            ensure_private_dir(self.directory)
            try:
                self._lock.acquire()
            except Timeout:
                raise StoreUnavailable(
                    f"{self.path} is locked by another process (waited {self._lock_timeout:g} s).",
                    fix="Try again. If it persists and no Jupyter process is running, delete "
                    f"{self.directory / '.profiles.lock'}.",
                ) from None
            try:
                yield
            finally:
                self._lock.release()

    def _read(self, *, fresh: bool = False) -> dict[str, Profile]:
        """The profiles in the file: only from a directory and a file of this user's own,
        never through a symbolic link (see :mod:`.paths`)."""
        check_private_dir(self.directory)
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StoreUnavailable(f"Cannot read {self.path} ({exc.strerror}).") from None
        check_owned(self.path, st, "profile file")
        key = (st.st_mtime_ns, st.st_size, st.st_ino)  # atomic replace changes the inode
        if not fresh and self._cache and self._cache[0] == key:
            return dict(self._cache[1])
        found = read_private_file(self.path, "profile file")
        if found is None:
            return {}
        data, st = found
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        try:
            raw = json.loads(data.decode("utf-8"))
            profiles = self._parse(raw["profiles"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreUnavailable(
                f"The profile file {self.path} is damaged ({type(exc).__name__}).",
                fix="Move it aside and save your profiles again; it was left untouched.",
            ) from None
        self._cache = (key, profiles)
        return dict(profiles)

    def _parse(self, items: Iterable[Any]) -> dict[str, Profile]:
        profiles: dict[str, Profile] = {}
        unusable = []
        for item in items:
            try:
                profile = Profile.from_json(item)
            except InvalidProfile as exc:
                if not isinstance(item, dict):
                    raise
                unusable.append(item)
                log.warning(
                    "Ignoring saved profile %.64r: %s Save it again or forget it.",
                    item.get("name"),
                    exc.reason,
                )
                continue
            profiles[profile.name] = profile
        self._unusable = unusable
        return profiles

    def _write(self, profiles: dict[str, Profile]) -> None:
        unusable = [raw for raw in self._unusable if raw.get("name") not in profiles]
        body = {
            "version": _FILE_VERSION,
            "profiles": [p.to_json() for p in sorted(profiles.values(), key=lambda p: p.name)] + unusable,
        }
        try:
            write_private_file(self.path, json.dumps(body, indent=2).encode("utf-8"))
        except OSError as exc:
            raise StoreUnavailable(f"Cannot write {self.path} ({exc.strerror}).") from None
        self._cache = None


__all__ = ["METHODS", "METHOD_LABELS", "Method", "Profile", "ProfileStore"]


# -- what login forms need to know about a saved profile ------------------------------
_VIEW_FIELDS = ("name", "url", "method", "username", "client_id", "scopes", "headers", "remember")


def profile_from_view(view: Mapping[str, Any]) -> Profile:
    """The ``Profile`` a ``describe()`` view (or the broker's JSON for it) shows."""
    fields = {k: view[k] for k in _VIEW_FIELDS if k in view}
    return Profile.from_json(fields, read_only=bool(view.get("read_only", False)))


def login_changes(view: Mapping[str, Any], method: str, url: str) -> list[str]:
    """What a form's ``method`` and ``url`` would change in a saved profile (its
    ``describe()`` view): ``"method"``, ``"URL"``. Either drops every secret kept for it
    (``AuthService.save_profile``), so forms ask before doing it."""
    changes = []
    if view.get("method") != method:
        changes.append("method")
    try:
        same_url = normalize_url(url) == view.get("url")
    except InvalidProfile:
        same_url = False
    if not same_url:
        changes.append("URL")
    return changes


def kept_secret_covers(view: Mapping[str, Any] | None, method: str, url: str) -> bool:
    """Whether a login with ``method`` at ``url`` can use what is kept for the saved
    profile ``view`` — its method's own secret, or a refresh token for a password login —
    so the secret field may stay empty."""
    if not view or login_changes(view, method, url):
        return False
    kept = set(view.get("kept_secrets") or ())
    return PRIMARY_SECRET.get(method) in kept or (method == "password" and "refresh_token" in kept)


def default_name(url: str) -> str:
    """A profile name for a new login to ``url``: the host's first label (or the IP)."""
    try:
        host = host_of(normalize_url(url)).split(":")[0]
    except InvalidProfile:
        return "default"
    label = host.split(".")[0] if not host.replace(".", "").isdigit() else host
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)[:64]
    return cleaned or "default"


def free_name(base: str, taken: Iterable[str]) -> str:
    """``base``, or ``base-2``, ``base-3`` … whichever no saved profile uses."""
    used = set(taken)
    if base not in used:
        return base
    stem = base[:60]
    n = 2
    while f"{stem}-{n}" in used:
        n += 1
    return f"{stem}-{n}"
