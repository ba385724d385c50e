"""Key management through the broker (kernel side): :class:`~.backend.KeyOps` over REST.

The broker runs :mod:`.keys`; this only turns calls into requests and answers back
into values. No answer carries a key: created and rotated keys stay in the broker's store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from .errors import UnexpectedResponse
from .keys import DbUser, validate_roles, validate_user_id
from .profiles import validate_name

Request = Callable[..., Any]


def users_path(profile: str, user_id: str | None = None, action: str | None = None) -> str:
    """``profiles/{profile}/users[/{user}[/{action}]]`` with both names checked."""
    path = f"profiles/{validate_name(profile)}/users"
    if user_id is not None:
        path += "/" + quote(validate_user_id(user_id), safe="")
    return path + (f"/{action}" if action else "")


class BrokerKeys:
    """:class:`~.backend.KeyOps` for a :class:`~.kernel.BrokerClient`."""

    def __init__(self, request: Request) -> None:
        #: ``request(method, path, body=None)`` -> decoded JSON (the client's ``_request``)
        self._request = request

    def __repr__(self) -> str:
        return "BrokerKeys()"

    def list_users(self, profile: str) -> list[DbUser]:
        data = self._request("GET", users_path(profile))
        users = data.get("users") if isinstance(data, dict) else None
        if not isinstance(users, list):
            raise UnexpectedResponse("The broker sent no user list.", fix="Restart the Jupyter server.")
        return [
            DbUser.from_json(
                {
                    "userId": u.get("user_id"),
                    "dbUserType": u.get("user_type"),
                    "roles": u.get("roles"),
                    "active": u.get("active"),
                    "createdAt": u.get("created_at"),
                    "lastUsedAt": u.get("last_used_at"),
                    "apiKeyFirstLetters": u.get("key_prefix"),
                }
            )
            for u in users
            if isinstance(u, dict)
        ]

    def list_roles(self, profile: str) -> list[str]:
        data = self._request("GET", f"profiles/{validate_name(profile)}/roles")
        roles = data.get("roles") if isinstance(data, dict) else None
        return [str(r) for r in roles] if isinstance(roles, list) else []

    def can_manage(self, profile: str) -> bool:
        data = self._request("GET", f"profiles/{validate_name(profile)}/users-access")
        return bool(isinstance(data, dict) and data.get("can_manage"))

    def create_user(
        self, profile: str, user_id: str, *, new_profile: str, roles: tuple[str, ...] | list[str] = ()
    ) -> dict[str, Any]:
        body = {"new_profile": validate_name(new_profile), "roles": list(validate_roles(roles))}
        data = self._request("POST", users_path(profile, user_id), body=body)
        return data if isinstance(data, dict) else {}

    def rotate_key(self, profile: str, user_id: str, *, new_profile: str | None = None) -> list[str]:
        body = {"new_profile": validate_name(new_profile)} if new_profile else {}
        data = self._request("POST", users_path(profile, user_id, "rotate-key"), body=body)
        updated = data.get("updated") if isinstance(data, dict) else None
        return [str(n) for n in updated] if isinstance(updated, list) else []

    def delete_user(self, profile: str, user_id: str) -> None:
        self._request("DELETE", users_path(profile, user_id))

    def activate(self, profile: str, user_id: str) -> None:
        self._request("POST", users_path(profile, user_id, "activate"), body={})

    def deactivate(self, profile: str, user_id: str, *, revoke_key: bool = False) -> None:
        self._request(
            "POST", users_path(profile, user_id, "deactivate"), body={"revoke_key": bool(revoke_key)}
        )

    def assign_roles(
        self, profile: str, user_id: str, roles: tuple[str, ...] | list[str], *, user_type: str = "db"
    ) -> None:
        body = {"roles": list(validate_roles(roles)), "user_type": user_type}
        self._request("POST", users_path(profile, user_id, "assign"), body=body)

    def revoke_roles(
        self, profile: str, user_id: str, roles: tuple[str, ...] | list[str], *, user_type: str = "db"
    ) -> None:
        body = {"roles": list(validate_roles(roles)), "user_type": user_type}
        self._request("POST", users_path(profile, user_id, "revoke"), body=body)
