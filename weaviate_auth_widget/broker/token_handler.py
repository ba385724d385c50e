"""``POST profiles/{name}/token``: the token grant, the one route whose answer carries
secret material (to its rightful caller: the owner, or a kernel with the broker token).
Kept alone so what hands out tokens is easy to review."""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base_handler import BrokerHandler
from .requests import parse_token_request, profile_name

if TYPE_CHECKING:
    from ..service import AuthService


def grant(service: AuthService, name: str, rejected_digest: str | None) -> dict[str, Any]:
    """The token grant; when the cluster refused the current token (its digest is
    ``rejected_digest``), that token is passed back as ``rejected`` to get a new one."""
    token = service.token(name)
    if rejected_digest is not None:
        current = hashlib.sha256(token.value.encode("utf-8")).hexdigest()
        if hmac.compare_digest(current, rejected_digest):
            token = service.token(name, rejected=token)
    return {"token": token.value, "expires_at": token.expires_at, "headers": service.module_headers(name)}


class TokenHandler(BrokerHandler):
    SUPPORTED_METHODS = ("POST", "OPTIONS")  # type: ignore[assignment]
    actions: ClassVar[dict[str, str]] = {"POST": "token"}

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        self.require_owner("obtain tokens")
        rejected = parse_token_request(self.json_body())
        answer = await self.broker.run(grant, self.service, profile_name(name), rejected)
        self.reply({**answer, "recheck_in": self.broker.token_recheck})


__all__ = ["TokenHandler", "grant"]
