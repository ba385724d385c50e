"""The double's ``/v1/users/db`` and ``/v1/authz`` routes (Weaviate v1.30+ database users).

Every handler runs the checks of ``spec/weaviate-users-grpc-client.md`` section 1 in
the order the spec lists them, with its statuses and texts; the state lives in
:class:`.db_users.DbUsers` on the double.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .db_users import DETAILS_SINCE, NAME_RULE, NOT_ENABLED, USERS_SINCE, user_json
from .weaviate import ROLE_PERMISSIONS, WeaviateDouble, _Handler

#: the 403 text names the resource from this version (before: ``[]``)
RESOURCE_TEXT_SINCE = (1, 31, 1)
#: "cannot delete its own user" (and the newer self-deactivation text) from these patches
OWN_USER_SINCE = {(1, 33): 17, (1, 34): 15, (1, 35): 8}
READ_ONLY_PROTECTED_SINCE = (1, 33, 0)
LESS_OR_EQUAL_SINCE = (1, 38, 0)


def _own_user_check(version: tuple[int, int, int]) -> bool:
    if version >= (1, 36, 0):
        return True
    patch = OWN_USER_SINCE.get(version[:2])
    return patch is not None and version[2] >= patch


def _error(message: str) -> dict[str, Any]:
    return {"error": [{"message": message}]}


class _UsersHandler(_Handler):
    """Helpers for the checks every users/authz route makes; each sends the answer and
    returns True when the request must stop."""

    since: ClassVar[tuple[int, int, int] | None] = USERS_SINCE

    @property
    def version(self) -> tuple[int, int, int]:
        return self.double.config.version_tuple

    def static_names(self) -> set[str]:
        return set(self.double.config.api_keys.values())

    def denied(self, action: str, user_id: str) -> bool:
        if self.double.may(self.principal, action):
            return False
        resource = "[]" if self.version < RESOURCE_TEXT_SINCE else f"[[Domain: users, User: {user_id}]]"
        self.send_json(403, _error(self.double.forbidden_text(self.principal, action, resource)))
        return True

    def not_enabled(self) -> bool:
        if self.double.config.db_users_enabled:
            return False
        self.send_json(422, _error(NOT_ENABLED))
        return True

    def fail(self, status: int, message: str | None = None) -> bool:
        if message is None:
            self.send_empty(status)
        else:
            self.send_json(status, _error(message))
        return True

    def own(self, user_id: str) -> bool:
        return self.principal is not None and self.principal.username == user_id

    def body_or_empty(self) -> dict[str, Any] | None:
        if not self.request.body:
            return {}
        return self.json_body()

    def flag(self, name: str) -> bool:
        return (self.get_query_argument(name, "false") or "").lower() == "true"

    def user_doc(self, user_id: str) -> dict[str, Any] | None:
        double, details = self.double, self.version >= DETAILS_SINCE
        user = double.db_users.get(user_id)
        if user is None and user_id not in self.static_names():
            return None
        return user_json(
            user,
            static_name=user_id,
            static_roles=double.config.roles.get(user_id, []),
            details=details,
            show_prefix=double.is_root(self.principal),
            last_used=self.flag("includeLastUsedTime"),
        )

    def roles_for(self, user_id: str, user_type: str) -> list[str] | None:
        double = self.double
        if user_type == "oidc":
            return list(double.config.roles.get(user_id, []))
        user = double.db_users.get(user_id)
        if user is not None:
            return list(user.roles)
        if user_id in self.static_names():
            return list(double.config.roles.get(user_id, []))
        return None


class _UserList(_UsersHandler):
    def get(self) -> None:
        double = self.double
        if not double.config.db_users_enabled:
            if self.version >= DETAILS_SINCE:
                self.send_json(200, [])
            else:
                self.fail(422, NOT_ENABLED)
            return
        if not double.may(self.principal, "read_users"):
            self.send_json(200, [])
            return
        names = [u.user_id for u in double.db_users.all()]
        if double.is_root(self.principal):
            names += sorted(self.static_names() - set(names))
        self.send_json(200, [doc for doc in map(self.user_doc, names) if doc is not None])


class _User(_UsersHandler):
    methods = ("GET", "POST", "DELETE")

    def get(self, user_id: str) -> None:
        if self.denied("read_users", user_id) or self.not_enabled():
            return
        doc = self.user_doc(user_id)
        if doc is None:
            self.fail(404)
        else:
            self.send_json(200, doc)

    def post(self, user_id: str) -> None:
        double = self.double
        if not NAME_RULE.match(user_id):
            self.fail(422, f"'{user_id}' is not a valid user name")
        elif self.denied("create_users", user_id) or self.not_enabled():
            return
        elif double.db_users.get(user_id) is not None or user_id in self.static_names():
            self.fail(409, f"user '{user_id}' already exists")
        elif user_id in double.config.root_users:
            self.fail(422, "cannot create db user with root user name")
        else:
            self.send_json(201, {"apikey": double.db_users.create(user_id)})

    def delete(self, user_id: str) -> None:
        double = self.double
        if self.denied("delete_users", user_id) or self.not_enabled():
            return
        if self.own(user_id) and _own_user_check(self.version):
            self.fail(422, f'cannot delete its own user "{user_id}"')
        elif user_id in double.config.root_users:
            self.fail(422, "cannot delete root user")
        elif user_id in self.static_names():
            self.fail(422, f"user '{user_id}' is static user")
        elif double.db_users.get(user_id) is None:
            self.fail(404)
        else:
            double.db_users.delete(user_id)
            self.send_empty(204)


class _UserAction(_UsersHandler):
    """``rotate-key``, ``activate``, ``deactivate``: ``update_users``."""

    methods = ("POST",)

    def post(self, user_id: str, action: str) -> None:
        double = self.double
        body = self.body_or_empty()
        if body is None or self.denied("update_users", user_id) or self.not_enabled():
            return
        if action == "deactivate" and self.own(user_id):
            new = _own_user_check(self.version)
            text = (
                f'cannot deactivate its own user "{user_id}"'
                if new
                else f"user '{user_id}' cannot self-deactivate"
            )
            self.fail(422, text)
            return
        if action != "rotate-key" and user_id in double.config.root_users:
            self.fail(422, f"cannot {action} root user")
            return
        if user_id in self.static_names():
            self.fail(422, f"user '{user_id}' is static user")
            return
        user = double.db_users.get(user_id)
        if user is None:
            self.fail(404)
        elif action == "rotate-key":
            self.send_json(200, {"apikey": double.db_users.rotate(user_id)})
        elif user.active == (action == "activate"):
            self.fail(409)
        else:
            double.db_users.set_active(user_id, action == "activate", revoke=bool(body.get("revoke_key")))
            self.send_empty(200)


class _Roles(_UsersHandler):
    since = None

    def get(self) -> None:
        double = self.double
        if not double.config.rbac or not double.may(self.principal, "read_roles"):
            self.send_json(200, [])
            return
        root = double.is_root(self.principal)
        self.send_json(
            200,
            [{"name": n, "permissions": p} for n, p in ROLE_PERMISSIONS.items() if root or n != "root"],
        )


class _UserRoles(_UsersHandler):
    def get(self, user_id: str, user_type: str) -> None:
        double = self.double
        if not double.config.rbac:
            self.send_json(200, [])
            return
        if not self.own(user_id) and self.denied("read_users", user_id):
            return
        if user_type not in ("db", "oidc"):
            self.fail(400, f"unknown userType: {user_type}")
            return
        names = self.roles_for(user_id, user_type)
        if names is None:
            self.fail(404, f"user '{user_id}' not found")
            return
        full = self.flag("includeFullRoles")
        self.send_json(
            200, [{"name": n, "permissions": ROLE_PERMISSIONS.get(n) if full else None} for n in names]
        )


class _Assign(_UsersHandler):
    methods = ("POST",)

    def post(self, user_id: str, action: str) -> None:
        double = self.double
        body = self.json_body()
        if body is None:
            return
        if not double.config.rbac:
            self.send_empty(200)
            return
        roles, user_type = body.get("roles"), body.get("userType", "db")
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and r for r in roles):
            self.fail(400, "one or more of the role names is empty")
            return
        protected = {"root"} | ({"read-only"} if self.version >= READ_ONLY_PROTECTED_SINCE else set())
        if protected & set(roles):
            self.fail(403, "modifying 'root' role or changing its assignments is not allowed")
            return
        if self.denied("assign_and_revoke_users", user_id):
            return
        if user_type not in ("db", "oidc"):
            self.fail(400, f"unknown userType: {user_type}")
            return
        if any(r not in ROLE_PERMISSIONS for r in roles):
            self.fail(404, "one or more of the roles requested doesn't exist")
            return
        current = self.roles_for(user_id, user_type)
        if current is None:
            self.fail(404, "username to assign role to doesn't exist")
            return
        if self.version >= LESS_OR_EQUAL_SINCE and not double.is_root(self.principal):
            mine = double.permissions_of(self.principal)
            if any(p not in mine for r in roles for p in ROLE_PERMISSIONS[r]):
                self.fail(
                    403, f"can only assign roles with less or equal permissions as the current user: {roles}"
                )
                return
        wanted = (
            list(dict.fromkeys(current + roles))
            if action == "assign"
            else [r for r in current if r not in roles]
        )
        if user_type == "db" and double.db_users.get(user_id) is not None:
            double.db_users.set_roles(user_id, wanted)
        else:
            double.config.roles[user_id] = wanted
        self.send_empty(200)


def routes(double: WeaviateDouble) -> list[tuple[str, type, dict[str, Any]]]:
    """The routes to pass to :meth:`WeaviateDouble.app`."""
    args = {"double": double}
    return [
        (r"/v1/users/db", _UserList, args),
        (r"/v1/users/db/([^/]+)", _User, args),
        (r"/v1/users/db/([^/]+)/(rotate-key|activate|deactivate)", _UserAction, args),
        (r"/v1/authz/roles", _Roles, args),
        (r"/v1/authz/users/([^/]+)/roles/([^/]+)", _UserRoles, args),
        (r"/v1/authz/users/([^/]+)/(assign|revoke)", _Assign, args),
    ]
