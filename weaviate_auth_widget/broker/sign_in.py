"""Routes of the browser sign-in (authorization code + PKCE), under
``{base_url}weaviate-auth/api/``: start, the provider's redirect back, the outcome.

The logic is :class:`~weaviate_auth_widget.code_flow.CodeFlow`'s; here are who may call
(Jupyter authentication, the owner rule), which redirect URI this server has, and the
small page the browser sees at the end. The callback's page carries no script and no
token, and sends no ``Referer`` (its URL held the code).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import NotOwner, WeaviateAuthError
from ..urls import host_of
from .base_handler import BrokerHandler
from .callback_url import redirect_uri
from .requests import BadRequest, profile_name

if TYPE_CHECKING:
    from ..code_flow import CodeFlow

_MAX_PARAM = 4096


def _origin(body: Any) -> str | None:
    if body is None:
        return None
    if not isinstance(body, dict) or set(body) - {"origin"}:
        raise BadRequest("A sign-in start takes only an optional 'origin'.")
    origin = body.get("origin")
    if origin is None:
        return None
    parts = urlsplit(origin) if isinstance(origin, str) and len(origin) < 512 else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.path
        or parts.query
    ):
        raise BadRequest("'origin' must be scheme://host[:port] (the page's location.origin).")
    return str(origin)


class _SignInHandler(BrokerHandler):
    @property
    def flow(self) -> CodeFlow:
        flow = self.broker.sign_ins
        if flow is None:
            raise web.HTTPError(404)
        return flow


class SignInStartHandler(_SignInHandler):
    SUPPORTED_METHODS = ("POST", "OPTIONS")  # type: ignore[assignment]
    actions: ClassVar[dict[str, str]] = {"POST": "sign_in_start"}

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        self.require_owner("sign in")
        uri = redirect_uri(self, _origin(self.json_body()))
        self.reply(await self.broker.run(self.flow.start, profile_name(name), uri))


class SignInStatusHandler(_SignInHandler):
    actions: ClassVar[dict[str, str]] = {"GET": "sign_in_status"}

    @web.authenticated
    @authorized
    async def get(self, sign_in_id: str) -> None:
        self.require_owner("see sign-ins")
        self.reply(self.flow.status(sign_in_id[:64]))


class SignInCallbackHandler(_SignInHandler):
    """Where the provider sends the browser back. Jupyter-authenticated like every
    route: a callback reaching another user's server is refused there."""

    actions: ClassVar[dict[str, str]] = {"GET": "sign_in_callback"}

    @web.authenticated
    @authorized
    async def get(self) -> None:
        params = {
            k: self.get_query_argument(k)[:_MAX_PARAM]
            for k in ("state", "code", "error", "error_description", "iss")
            if self.get_query_argument(k, None) is not None
        }
        try:
            self.require_owner("sign in")
            sign_in = await self.broker.run(self.flow.finish, params)
        except (NotOwner, WeaviateAuthError) as exc:
            self._page(exc.http_status, "Sign-in failed", str(exc))
            return
        if sign_in.status == "done" and sign_in.identity is not None:
            who = sign_in.identity.username or "an unknown user"
            self._page(
                200,
                "Signed in",
                f"Signed in to {host_of(sign_in.profile.url)} as {who}. You can close this window.",
            )
        else:
            message = (sign_in.error or {}).get("message", "The sign-in failed.")
            self._page(400, "Sign-in failed", message + " Nothing was stored. You can close this window.")

    def _page(self, status: int, title: str, message: str) -> None:
        self.set_status(status)
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{escape(title)}</title></head><body style='font-family:sans-serif'>"
            f"<h1>{escape(title)}</h1><p id='message'>{escape(message)}</p></body></html>"
        )


_API = r"/weaviate-auth/api"

sign_in_handlers: list[tuple[str, type[BrokerHandler]]] = [
    (rf"{_API}/profiles/([^/]+)/sign-in", SignInStartHandler),
    (rf"{_API}/sign-in/callback", SignInCallbackHandler),
    (rf"{_API}/sign-in/([A-Za-z0-9_-]+)", SignInStatusHandler),
]
