"""Request bodies of the key-management routes (``profiles/{name}/users/...``): shapes only.

What the values mean (a valid user or role name, an unused profile name) is for
:mod:`weaviate_auth_widget.keys` to judge.
"""

from __future__ import annotations

from typing import Any

from .requests import BadRequest, _object, _string, _strings


def _fields(data: Any, what: str, allowed: set[str]) -> dict[str, Any]:
    body = {} if data is None else _object(data, what)
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(
            f"The {what} has unknown field(s).", fix=f"It takes: {', '.join(sorted(allowed)) or 'nothing'}."
        )
    return body


def parse_create(data: Any) -> tuple[str, tuple[str, ...]]:
    """``POST profiles/{name}/users/{user}``: the new profile's name and the roles."""
    body = _fields(data, "create request", {"new_profile", "roles"})
    if "new_profile" not in body:
        raise BadRequest("The field 'new_profile' is required: the new key is kept as that profile.")
    name = _string(body, "new_profile", 64)
    assert name is not None
    return name, _strings(body, "roles")


def parse_rotate(data: Any) -> str | None:
    """``POST .../rotate-key``: where to keep the key when no saved profile holds it."""
    body = _fields(data, "rotate request", {"new_profile"})
    return _string(body, "new_profile", 64, nullable=True)


def parse_deactivate(data: Any) -> bool:
    body = _fields(data, "deactivate request", {"revoke_key"})
    revoke = body.get("revoke_key", False)
    if not isinstance(revoke, bool):
        raise BadRequest("The field 'revoke_key' must be true or false.")
    return revoke


def parse_roles(data: Any) -> tuple[tuple[str, ...], str]:
    """``POST .../assign`` and ``.../revoke``: role names and the user type (``db``/``oidc``)."""
    body = _fields(data, "roles request", {"roles", "user_type"})
    user_type = _string(body, "user_type", 8, nullable=True) or "db"
    return _strings(body, "roles"), user_type
