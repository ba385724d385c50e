"""The credential chain for scripts: explicit arguments, a saved profile, the environment."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import MissingSecret, ProfileNotFound
from .profiles import Method, Profile

if TYPE_CHECKING:
    from .service import AuthService
    from .session import WeaviateSession

URL_ENV = "WEAVIATE_URL"
API_KEY_ENV = "WEAVIATE_API_KEY"
PROFILE_ENV = "WEAVIATE_PROFILE"
DEFAULT_PROFILE = "default"
_EXPLICIT = "explicit"
_FROM_ENV = "environment"

_service: AuthService | None = None
_service_lock = threading.Lock()


def default_service() -> AuthService:
    """The process-wide in-process service on the user's own stores."""
    global _service
    with _service_lock:
        if _service is None:
            from .service import AuthService

            _service = AuthService()
        return _service


def connect(
    profile: str | None = None,
    *,
    url: str | None = None,
    api_key: str | None = None,
    username: str | None = None,
    password: str | None = None,
    headers: Mapping[str, str] | None = None,
    service: AuthService | None = None,
) -> WeaviateSession:
    """A logged-in ``WeaviateSession`` from the first source that has credentials:

    1. explicit ``url`` with ``api_key`` or ``username`` + ``password`` (kept in memory only);
    2. the saved profile ``profile``, else ``$WEAVIATE_PROFILE``, else one named ``default``,
       else the only saved profile;
    3. ``$WEAVIATE_URL`` + ``$WEAVIATE_API_KEY``.
    """
    local = service or default_service()  # secrets given here stay in this process
    module_keys = dict(headers or {})
    if url is not None:
        if api_key is not None:
            return _adhoc(local, _EXPLICIT, url, "api_key", {"api_key": api_key}, module_keys)
        if username is not None and password is not None:
            return _adhoc(
                local, _EXPLICIT, url, "password", {"password": password}, module_keys, username=username
            )
        raise MissingSecret(
            f"connect(url={url!r}) needs api_key=..., or username=... and password=....",
            fix="Or save a profile with the login panel and pass its name.",
        )
    saved = service or _saved_profiles_backend()
    name = profile or os.environ.get(PROFILE_ENV)
    if name:
        return saved.session(name)
    names = [p.name for p in saved.list_profiles(include_ephemeral=False)]
    name = _implicit_profile(saved, names)
    if name:
        return saved.session(name)
    env_url, env_key = os.environ.get(URL_ENV), os.environ.get(API_KEY_ENV)
    if env_url and env_key:
        return _adhoc(local, _FROM_ENV, env_url, "api_key", {"api_key": env_key}, module_keys)
    if names:
        raise MissingSecret(_which_profile(names), fix=_pick_fix(names[0]))
    raise MissingSecret(
        "No credentials found: no arguments, no saved profile, and no WEAVIATE_URL + WEAVIATE_API_KEY.",
        fix="Log in once with the login panel (tick 'Remember'), or pass url= and api_key=.",
    )


def _which_profile(names: list[str], shown: int = 10) -> str:
    """Several saved profiles and nothing says which: name them (a few), never guess."""
    listed = ", ".join(repr(n) for n in names[:shown])
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"Several saved profiles and none chosen: {listed}{more}."


def _pick_fix(example: str) -> str:
    return (
        f"Pick one: waw.connect({example!r}), or set {PROFILE_ENV}={example}, "
        f"or name the one to use by default {DEFAULT_PROFILE!r}."
    )


def _saved_profiles_backend() -> Any:
    """Saved profiles live with the broker when the kernel has one, else in-process."""
    from .kernel import get_backend

    return get_backend()


def _implicit_profile(svc: Any, names: list[str]) -> str | None:
    """``default`` if it exists, else the only saved profile."""
    try:
        svc.get_profile(DEFAULT_PROFILE)
        return DEFAULT_PROFILE
    except ProfileNotFound:
        pass
    return names[0] if len(names) == 1 else None


def _adhoc(
    svc: AuthService,
    name: str,
    url: str,
    method: Method,
    secrets: dict[str, str],
    module_keys: dict[str, str],
    *,
    username: str | None = None,
) -> WeaviateSession:
    profile = Profile(
        name=name,
        url=url,
        method=method,
        username=username,
        headers=tuple(module_keys),
        remember=False,  # type: ignore[arg-type]
    )
    secrets.update({f"header:{h}": v for h, v in module_keys.items()})
    svc.connect(profile, secrets, persist=False, replace=True)  # the caller's own new credentials
    return svc.session(name)
