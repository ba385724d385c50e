"""REST handlers for key management (database users), under ``profiles/{name}/``.

Thin, as in :mod:`.handlers`: parse, call ``service.keys`` in a worker thread, serialise.
Writes are for the server's owner (JupyterHub); the audit log gets the profile, the
user acted on and the action, never a key. No answer carries a key except
``copy-key``, which answers only to the browser (Jupyter's login cookie with the XSRF
token, or a Jupyter token), never to the broker token kernels hold: it is what the
panel's *Copy key* button fetches on an explicit click, to put on the clipboard.
"""

from __future__ import annotations

from typing import Any, ClassVar

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import NotOwner
from .base_handler import BrokerHandler
from .keys_requests import parse_create, parse_deactivate, parse_roles, parse_rotate
from .requests import profile_name, require_empty


def _users(service: Any, name: str) -> dict[str, Any]:
    return {"users": [u.to_json() for u in service.keys.list_users(name)]}


class UsersHandler(BrokerHandler):
    actions: ClassVar[dict[str, str]] = {"GET": "keys.list"}

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.broker.run(_users, self.service, profile_name(name)))


class UsersAccessHandler(BrokerHandler):
    actions: ClassVar[dict[str, str]] = {"GET": "keys.access"}

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        can = await self.broker.run(self.service.keys.can_manage, profile_name(name))
        self.reply({"can_manage": can})


class RolesHandler(BrokerHandler):
    actions: ClassVar[dict[str, str]] = {"GET": "keys.roles"}

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply({"roles": await self.broker.run(self.service.keys.list_roles, profile_name(name))})


class UserHandler(BrokerHandler):
    SUPPORTED_METHODS = ("POST", "DELETE", "OPTIONS")  # type: ignore[assignment]
    actions: ClassVar[dict[str, str]] = {"POST": "keys.create", "DELETE": "keys.delete"}

    @web.authenticated
    @authorized
    async def post(self, name: str, user: str) -> None:
        self.require_owner("create users")
        new_profile, roles = parse_create(self.json_body())
        keys = self.service.keys
        view = await self.broker.run(
            lambda: keys.create_user(profile_name(name), user, new_profile=new_profile, roles=roles)
        )
        self.set_status(201)
        self.reply(view)

    @web.authenticated
    @authorized
    async def delete(self, name: str, user: str) -> None:
        self.require_owner("delete users")
        await self.broker.run(self.service.keys.delete_user, profile_name(name), user)
        self.reply_empty()


class UserActionHandler(BrokerHandler):
    """``rotate-key``, ``activate``, ``deactivate``, ``assign``, ``revoke``."""

    SUPPORTED_METHODS = ("POST", "OPTIONS")  # type: ignore[assignment]
    actions: ClassVar[dict[str, str]] = {"POST": "keys.change"}

    def audit_action(self) -> str | None:
        args = getattr(self, "path_args", None)
        return f"keys.{args[2]}" if args and len(args) > 2 else super().audit_action()

    @web.authenticated
    @authorized
    async def post(self, name: str, user: str, action: str) -> None:
        self.require_owner("change users")
        keys, profile, body = self.service.keys, profile_name(name), self.json_body()
        if action == "rotate-key":
            new_profile = parse_rotate(body)
            updated = await self.broker.run(lambda: keys.rotate_key(profile, user, new_profile=new_profile))
            self.reply({"updated": updated})
            return
        if action == "deactivate":
            revoke = parse_deactivate(body)
            await self.broker.run(lambda: keys.deactivate(profile, user, revoke_key=revoke))
        elif action == "activate":
            require_empty(body, "activate")
            await self.broker.run(keys.activate, profile, user)
        else:
            roles, user_type = parse_roles(body)
            change = keys.assign_roles if action == "assign" else keys.revoke_roles
            await self.broker.run(lambda: change(profile, user, roles, user_type=user_type))
        self.reply_empty()


class CopyKeyHandler(BrokerHandler):
    """``POST profiles/{name}/copy-key``: the profile's API key, for the clipboard."""

    SUPPORTED_METHODS = ("POST", "OPTIONS")  # type: ignore[assignment]
    actions: ClassVar[dict[str, str]] = {"POST": "copy-key"}

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        if self._via_kernel:
            raise NotOwner(
                "Keys are copied only from the browser (the panel's Copy key button), not from kernels.",
                fix="Use the Copy key button in the Keys section of the login panel.",
            )
        self.require_owner("copy keys")
        require_empty(self.json_body(), "copy-key")
        self.reply({"api_key": await self.broker.run(self.service.api_key, profile_name(name))})


_API = r"/weaviate-auth/api/profiles/([^/]+)"
_USER = r"([^/]+)"

keys_handlers: list[tuple[str, type[BrokerHandler]]] = [
    (rf"{_API}/users", UsersHandler),
    (rf"{_API}/users-access", UsersAccessHandler),
    (rf"{_API}/roles", RolesHandler),
    (rf"{_API}/copy-key", CopyKeyHandler),
    (rf"{_API}/users/{_USER}", UserHandler),
    (rf"{_API}/users/{_USER}/(rotate-key|activate|deactivate|assign|revoke)", UserActionHandler),
]

__all__ = ["keys_handlers"]
