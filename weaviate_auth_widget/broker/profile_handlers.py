"""Routes of saved profiles: ``profiles`` (list) and ``profiles/{name}`` (get, save,
forget). Writes are for the server's owner; no answer carries a secret."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import ProfileNotFound
from .base_handler import BrokerHandler
from .requests import parse_profile_input, profile_name

if TYPE_CHECKING:
    from ..profiles import Profile
    from ..service import AuthService


# -- what the handlers call in worker threads -------------------------------------------
def save_and_describe(
    service: AuthService, profile: Profile, secrets: dict[str, str], replace: bool = False
) -> dict[str, Any]:
    service.save_profile(profile, secrets, replace=replace)
    return service.describe(profile.name)


def forget_or_404(service: AuthService, name: str) -> None:
    if not service.forget(name):
        raise ProfileNotFound(f"There is no saved profile named {name!r}.")


# -- the routes ------------------------------------------------------------------------
class ProfilesHandler(BrokerHandler):
    actions: ClassVar[dict[str, str]] = {"GET": "list"}

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"profiles": await self.broker.run(self.service.profile_views)})


class ProfileHandler(BrokerHandler):
    SUPPORTED_METHODS = ("GET", "PUT", "DELETE", "OPTIONS")  # type: ignore[assignment]
    actions: ClassVar[dict[str, str]] = {"GET": "get", "PUT": "save", "DELETE": "forget"}

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.broker.run(self.service.describe, profile_name(name)))

    @web.authenticated
    @authorized
    async def put(self, name: str) -> None:
        self.require_owner("change profiles")
        profile, secrets, replace = parse_profile_input(profile_name(name), self.json_body())
        self.reply(await self.broker.run(save_and_describe, self.service, profile, secrets, replace))

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        self.require_owner("delete profiles")
        await self.broker.run(forget_or_404, self.service, profile_name(name))
        self.reply_empty()


__all__ = ["ProfileHandler", "ProfilesHandler", "forget_or_404", "save_and_describe"]
