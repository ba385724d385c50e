"""Profiles the administrator provides: usable by everyone on the server, readable by no one.

Each entry of ``WeaviateAuthApp.admin_profiles`` is a profile (``name``, ``url``,
``method``, ``username``, ``client_id``, ``scopes``, ``headers``) plus where its secret
comes from::

    {"name": "team", "url": "https://team.weaviate.cloud", "method": "api_key",
     "secret_kind": "api_key",            # default: what the method needs
     "secret_env": "TEAM_WEAVIATE_KEY"}   # or "secret_file": "/etc/weaviate/team.key"

Secrets are read once at start. A variable named by ``secret_env`` is then removed
from the server's environment, so kernels (which inherit it) never see it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from ..errors import WeaviateAuthError
from ..policy import Policy
from ..profiles import PRIMARY_SECRET, Profile

log = logging.getLogger(__name__)

SOURCE_KEYS = ("secret_kind", "secret_env", "secret_file")
MAX_SECRET_FILE = 64 * 1024


class AdminProfileError(ValueError):
    """An administrator profile entry is unusable (the message names the entry, never a value)."""


def load_admin_profiles_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The JSON list named by ``WEAVIATE_AUTH_ADMIN_PROFILES``."""
    file = Path(path).expanduser()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AdminProfileError(
            f"Cannot read the administrator profiles file {file} ({exc.strerror})."
        ) from None
    except ValueError:
        raise AdminProfileError(f"The administrator profiles file {file} is not valid JSON.") from None
    if isinstance(data, dict) and isinstance(data.get("profiles"), list):
        data = data["profiles"]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise AdminProfileError(f"The administrator profiles file {file} must hold a JSON list of objects.")
    return data


def _read_secret_file(path: str) -> str:
    file = Path(path).expanduser()
    try:
        with open(file, "rb") as fh:
            raw = fh.read(MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise AdminProfileError(f"cannot read its secret file {file} ({exc.strerror})") from None
    if len(raw) > MAX_SECRET_FILE:
        raise AdminProfileError(f"its secret file {file} is too large")
    try:
        value = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise AdminProfileError(f"its secret file {file} is not UTF-8 text") from None
    if not value:
        raise AdminProfileError(f"its secret file {file} is empty")
    return value


def resolve_admin_profiles(
    entries: Iterable[Mapping[str, Any]],
    policy: Policy,
    *,
    environ: MutableMapping[str, str] | None = None,
) -> dict[Profile, dict[str, str]]:
    """Build ``{Profile: {kind: secret}}``; unusable entries are logged and skipped.

    Every environment variable used is removed from ``environ`` afterwards (also when
    its entry was skipped), so that kernels started later do not inherit it.
    """
    env = os.environ if environ is None else environ
    resolved: dict[Profile, dict[str, str]] = {}
    used_env: set[str] = set()
    entries = list(entries)
    for entry in entries:  # every variable named goes, whatever becomes of its entry
        if isinstance(entry, Mapping) and isinstance(entry.get("secret_env"), str):
            used_env.add(entry["secret_env"])
    for index, entry in enumerate(entries):
        label = f"#{index + 1}"
        try:
            if not isinstance(entry, Mapping):
                raise AdminProfileError("it is not an object")
            label = f"{entry.get('name')!r:.80}" if isinstance(entry.get("name"), str) else label
            fields = {k: v for k, v in entry.items() if k not in SOURCE_KEYS}
            fields.pop("remember", None)
            fields.pop("read_only", None)
            profile = Profile.from_json(fields, read_only=True)
            policy.check_url(profile.url)
            kind = entry.get("secret_kind") or PRIMARY_SECRET[profile.method]
            allowed = {profile.primary_secret, *(f"header:{h}" for h in profile.headers)}
            if kind not in allowed:
                raise AdminProfileError(f"its secret_kind must be one of {', '.join(sorted(allowed))}")
            env_name, file_name = entry.get("secret_env"), entry.get("secret_file")
            if bool(env_name) == bool(file_name):
                raise AdminProfileError("it needs exactly one of secret_env and secret_file")
            if env_name:
                if not isinstance(env_name, str):
                    raise AdminProfileError("its secret_env is not a string")
                value = env.get(env_name)
                if not value:
                    raise AdminProfileError(f"the environment variable {env_name} is not set")
            else:
                if not isinstance(file_name, str):
                    raise AdminProfileError("its secret_file is not a string")
                value = _read_secret_file(file_name)
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
                raise AdminProfileError("its secret contains control characters")
            if profile in resolved or any(p.name == profile.name for p in resolved):
                raise AdminProfileError("another administrator profile has the same name")
            resolved[profile] = {kind: value}
        except (AdminProfileError, WeaviateAuthError) as exc:
            log.error("weaviate-auth: administrator profile %s skipped: %s", label, str(exc).rstrip("."))
    for name in used_env:
        env.pop(name, None)
    return resolved


__all__ = ["AdminProfileError", "load_admin_profiles_file", "resolve_admin_profiles"]
