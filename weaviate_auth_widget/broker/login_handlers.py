"""Routes that sign a profile in or out: ``profiles/{name}/login`` (stored
credentials), ``.../connect`` (save and log in with the secrets in the body) and
``.../logout``. For the server's owner; answers carry the identity, never a secret."""

from __future__ import annotations

import functools
from typing import ClassVar

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base_handler import BrokerHandler
from .requests import parse_profile_input, profile_name, require_empty


class LoginHandler(BrokerHandler):
    SUPPORTED_METHODS = ("POST", "OPTIONS")  # type: ignore[assignment]
    actions: ClassVar[dict[str, str]] = {"POST": "login"}

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        self.require_owner("log in with stored credentials")
        require_empty(self.json_body(), "login")
        identity = await self.broker.run(self.service.login, profile_name(name))
        self.reply(identity.to_json())


class ConnectHandler(BrokerHandler):
    """``POST profiles/{name}/connect``: save the profile and log in with the secrets in
    the body, keeping them only when the login works. The login panel posts here
    straight from the browser, so the secrets never pass through a kernel."""

    SUPPORTED_METHODS = ("POST", "OPTIONS")  # type: ignore[assignment]
    actions: ClassVar[dict[str, str]] = {"POST": "connect"}

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        self.require_owner("change profiles")
        profile, secrets, replace = parse_profile_input(profile_name(name), self.json_body())
        connect = functools.partial(self.service.connect, replace=replace)
        identity = await self.broker.run(connect, profile, secrets)
        self.reply(identity.to_json())


class LogoutHandler(BrokerHandler):
    SUPPORTED_METHODS = ("POST", "OPTIONS")  # type: ignore[assignment]
    actions: ClassVar[dict[str, str]] = {"POST": "logout"}

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        self.require_owner("log out")
        require_empty(self.json_body(), "logout")
        await self.broker.run(self.service.logout, profile_name(name))
        self.reply_empty()


__all__ = ["ConnectHandler", "LoginHandler", "LogoutHandler"]
