"""REST handlers for ``api.yaml``, under ``{base_url}weaviate-auth/api/``.

Each method parses, calls the AuthService (in a worker thread whenever it may touch the
store or the network), and serialises. There is no auth logic here: who may call is
settled in :meth:`BrokerHandler.prepare` (Jupyter authentication, or the broker token)
and by ``@web.authenticated`` / ``@authorized`` / the owner rule of :mod:`.auth`. The one
exception is ``GET proof`` (:class:`ProofHandler`), open on purpose: see there.

Every error is ``{"error": {"code", "message"}}`` with the status of its code; bad
input never causes a 500, and no response but ``token`` carries secret material.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from jupyter_server.auth import Authorizer, User
from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from jupyter_server.base.call_context import CallContext
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..errors import ProfileNotFound, RequestTooLarge, WeaviateAuthError
from . import BROKER_HEADER, KERNEL_HEADER, MAX_BODY_BYTES
from .auth import broker_token_matches, check_owner, hub_kind
from .callback_url import redirect_uri
from .proof import broker_proof
from .requests import (
    check_content_type,
    parse_json,
    parse_profile_input,
    parse_token_request,
    profile_name,
    proof_nonce,
    require_empty,
)

if TYPE_CHECKING:
    from ..code_flow import CodeFlow
    from ..profiles import Profile
    from ..service import AuthService
    from .audit import AuditLog
    from .save_guard import SaveGuard

T = TypeVar("T")

AUTH_RESOURCE = "weaviate_auth"
SETTINGS_KEY = "weaviate_auth_broker"
#: Bodies larger than this (chunked, no Content-Length) make tornado drop the connection.
BODY_BACKSTOP = 4 * MAX_BODY_BYTES

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    500: "internal_error",
    503: "unavailable",
}
_STATUS_MESSAGES = {
    400: "The request is malformed.",
    401: "Authentication is required.",
    403: "Forbidden: authenticate with Jupyter (a token, or the login cookie with the XSRF token) "
    "or, from a kernel of this server, with the broker token.",
    404: "Not found.",
    405: "This method is not allowed here.",
    413: f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB.",
    500: "Internal error in the weaviate-auth broker; see the Jupyter server log.",
}


class _KernelAuthorizer(Authorizer):
    """Requests carrying the broker token come from this server's own kernels, acting
    as its owner: the token is the authorization (a hub authorizer would need a hub
    user the request does not have)."""

    def is_authorized(self, handler: Any, user: User, action: str, resource: str) -> bool:
        return resource == AUTH_RESOURCE


@dataclass(eq=False)
class Broker:
    """Everything the handlers share; created by the extension app."""

    service: AuthService
    token: str = field(repr=False)
    #: JupyterHub user owning the server; None on a single-user server
    owner: str | None
    #: the user a broker-token request acts as (hub owner, else the local user)
    owner_name: str
    executor: Executor
    openapi: bytes = field(repr=False)
    audit: AuditLog | None = None
    guard: SaveGuard | None = None
    kernel_authorizer: Authorizer = field(default_factory=_KernelAuthorizer)
    #: browser sign-ins in progress, and the callback URL the administrator registered
    sign_ins: CodeFlow | None = field(default=None, repr=False)
    sign_in_redirect_uri: str | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread; then refresh the save guard's secret set
        (in the background: the service changes it on logins, saves and refreshes)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, functools.partial(fn, *args))
        finally:
            if self.guard is not None:
                with contextlib.suppress(RuntimeError):  # the executor shut down (server stopping)
                    self.executor.submit(self.guard.warm)


# -- what handlers call in worker threads --------------------------------------------
def save_and_describe(
    service: AuthService, profile: Profile, secrets: dict[str, str], replace: bool = False
) -> dict[str, Any]:
    service.save_profile(profile, secrets, replace=replace)
    return service.describe(profile.name)


def forget_or_404(service: AuthService, name: str) -> None:
    if not service.forget(name):
        raise ProfileNotFound(f"There is no saved profile named {name!r}.")


def grant(service: AuthService, name: str, rejected_digest: str | None) -> dict[str, Any]:
    """The token grant; when the cluster refused the current token (its digest is
    ``rejected_digest``), that token is passed back as ``rejected`` to get a new one."""
    token = service.token(name)
    if rejected_digest is not None:
        current = hashlib.sha256(token.value.encode("utf-8")).hexdigest()
        if hmac.compare_digest(current, rejected_digest):
            token = service.token(name, rejected=token)
    return {"token": token.value, "expires_at": token.expires_at, "headers": service.module_headers(name)}


# -- the base handler ----------------------------------------------------------------
@web.stream_request_body
class BrokerHandler(APIHandler):
    """Authentication (Jupyter or broker token), body limits, JSON errors, audit."""

    auth_resource = AUTH_RESOURCE
    SUPPORTED_METHODS = ("GET", "OPTIONS")  # type: ignore[assignment]
    #: HTTP method -> audit action
    actions: ClassVar[dict[str, str]] = {}

    def initialize(self) -> None:
        self._chunks: list[bytes] = []
        self._received = 0
        self._too_large = False
        self._via_kernel = False
        self._error_code: str | None = None

    @property
    def broker(self) -> Broker:
        return self.settings[SETTINGS_KEY]  # type: ignore[no-any-return]

    @property
    def service(self) -> AuthService:
        return self.broker.service

    # -- authentication ----------------------------------------------------------
    async def prepare(self) -> None:  # type: ignore[override]
        presented = self.request.headers.get(BROKER_HEADER)
        self._via_kernel = presented is not None
        if presented is None:
            await super().prepare()
        else:
            self._prepare_kernel_request(presented)
        self._limit_body()

    def _prepare_kernel_request(self, presented: str) -> None:
        """A request with the broker token: it acts as the server's owner, needs no XSRF,
        and skips the IdentityProvider. Host and Origin are still checked."""
        CallContext.set(CallContext.JUPYTER_HANDLER, self)
        self.current_user = self._jupyter_current_user = None
        if not self.check_host():
            raise web.HTTPError(403)
        if not broker_token_matches(presented, self.broker.token):
            raise web.HTTPError(403, "invalid broker token")
        user = User(username=self.broker.owner_name)
        self.current_user = self._jupyter_current_user = user
        if not self.check_origin():
            raise web.HTTPError(404)

    def skip_check_origin(self) -> bool:
        """Unlike the rest of Jupyter, a foreign ``Origin`` is refused even with a token:
        browsers on the server's own origin, kernels and scripts never send one."""
        return self.request.method == "OPTIONS"

    @property
    def authorizer(self) -> Authorizer:
        if self._via_kernel and self.current_user is not None:
            return self.broker.kernel_authorizer
        return super().authorizer

    @property
    def user_name(self) -> str | None:
        """The authenticated user's name (None before or without authentication)."""
        user = getattr(self, "_jupyter_current_user", None)
        return user.username if isinstance(user, User) else None

    def require_owner(self, action: str) -> None:
        user = getattr(self, "_jupyter_current_user", None)
        check_owner(self.user_name, self.broker.owner, action, hub_kind(user))

    # -- the body ------------------------------------------------------------------
    def _limit_body(self) -> None:
        length = self.request.headers.get("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > MAX_BODY_BYTES:
            raise self._too_large_error()
        set_max = getattr(self.request.connection, "set_max_body_size", None)
        if set_max is not None:
            set_max(BODY_BACKSTOP)

    def data_received(self, chunk: bytes) -> None:
        if self._too_large:
            return
        self._received += len(chunk)
        if self._received > MAX_BODY_BYTES:
            self._too_large = True
            self._chunks.clear()
        else:
            self._chunks.append(chunk)

    @staticmethod
    def _too_large_error() -> RequestTooLarge:
        return RequestTooLarge(
            f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB.",
            fix="Secrets and profiles are small; check what is being sent.",
        )

    def json_body(self) -> Any:
        """The parsed JSON body, None when there is none."""
        if self._too_large:
            raise self._too_large_error()
        body = b"".join(self._chunks)
        if not body:
            return None
        check_content_type(self.request.headers.get("Content-Type"))
        return parse_json(body)

    # -- responses -------------------------------------------------------------------
    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    def reply(self, data: Any) -> None:
        self.finish(json.dumps(data), set_content_type="application/json; charset=utf-8")

    def reply_empty(self) -> None:
        self.set_status(204)
        self.finish()

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, WeaviateAuthError):
            status_code = exc.http_status
        super().send_error(status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        prepared = self._prepared_future
        if prepared is not None and not prepared.done():
            # Refused in prepare(): the streamed body was never read, so tornado closes
            # the connection. Say so, or a proxy reusing it fails the next request.
            self.set_header("Connection", "close")
        if isinstance(exc, WeaviateAuthError):
            error = exc.to_dict()
        else:
            error = {
                "code": _STATUS_CODES.get(status_code, f"http_{status_code}"),
                "message": _STATUS_MESSAGES.get(status_code, "The request failed."),
            }
        self._error_code = error["code"]
        self.finish(json.dumps({"error": error}), set_content_type="application/json; charset=utf-8")

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        if isinstance(value, WeaviateAuthError):
            level = self.log.warning if value.http_status >= 500 else self.log.info
            level("weaviate-auth %s %s: %s", self.request.method, self.request.path, value.code)
        else:
            super().log_exception(typ, value, tb)

    def audit_action(self) -> str | None:
        """What the audit log calls this request (None: not logged)."""
        return self.actions.get(self.request.method or "")

    def on_finish(self) -> None:
        audit = self.broker.audit
        action = self.audit_action()
        if audit is None or action is None:
            return
        status = self.get_status()
        path_args = getattr(self, "path_args", None)
        audit.record(
            user=self.user_name,
            profile=path_args[0] if path_args else None,
            action=action,
            target=path_args[1] if path_args and len(path_args) > 1 else None,
            outcome="ok" if status < 400 else (self._error_code or f"http_{status}"),
            kernel=self.request.headers.get(KERNEL_HEADER),
            via="kernel" if self._via_kernel else "jupyter",
        )


# -- the routes ------------------------------------------------------------------------
class StatusHandler(BrokerHandler):
    actions: ClassVar[dict[str, str]] = {"GET": "status"}

    @web.authenticated
    @authorized
    async def get(self) -> None:
        if not self._via_kernel:
            # the view's broker check comes here first: a page that set no XSRF cookie
            # (Voilà's render page; Lab's and Notebook's do) gets one for the POSTs after
            self.xsrf_token  # noqa: B018 - reading it sets the cookie when missing
        status = self.service.status()
        self.reply(
            {
                **status,
                "user": self.user_name,
                "owner": self.broker.owner,
                "sign_in_redirect_uri": redirect_uri(self),
            }
        )


class ProofHandler(BrokerHandler):
    """``GET proof?nonce=``: the broker proves it holds the token of its connection file.

    Unauthenticated on purpose (``@allow_unauthenticated`` instead of
    ``@web.authenticated``): kernels ask it *before* sending the broker token, to make
    sure what listens at the file's address is the server that wrote the file (see
    :mod:`.proof`). The answer is an HMAC of the caller's nonce: it reveals neither the
    token nor anything else, and convinces only someone who already holds the token.
    Requests carrying a broker token are authenticated as usual (a wrong one gets 403).
    """

    @allow_unauthenticated
    async def get(self) -> None:
        nonce = proof_nonce(self.request.query_arguments.get("nonce", []))
        self.reply({"proof": broker_proof(self.broker.token, nonce)})


class OpenAPIHandler(BrokerHandler):
    actions: ClassVar[dict[str, str]] = {"GET": "openapi"}

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(self.broker.openapi, set_content_type="application/yaml; charset=utf-8")


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
        identity = await self.broker.run(
            functools.partial(self.service.connect, replace=replace), profile, secrets
        )
        self.reply(identity.to_json())


class TokenHandler(BrokerHandler):
    SUPPORTED_METHODS = ("POST", "OPTIONS")  # type: ignore[assignment]
    actions: ClassVar[dict[str, str]] = {"POST": "token"}

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        self.require_owner("obtain tokens")
        rejected = parse_token_request(self.json_body())
        self.reply(await self.broker.run(grant, self.service, profile_name(name), rejected))


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


_API = r"/weaviate-auth/api"
_NAME = r"([^/]+)"

default_handlers: list[tuple[str, type[BrokerHandler]]] = [
    (rf"{_API}/status", StatusHandler),
    (rf"{_API}/proof", ProofHandler),
    (rf"{_API}/openapi\.yaml", OpenAPIHandler),
    (rf"{_API}/profiles", ProfilesHandler),
    (rf"{_API}/profiles/{_NAME}", ProfileHandler),
    (rf"{_API}/profiles/{_NAME}/login", LoginHandler),
    (rf"{_API}/profiles/{_NAME}/connect", ConnectHandler),
    (rf"{_API}/profiles/{_NAME}/token", TokenHandler),
    (rf"{_API}/profiles/{_NAME}/logout", LogoutHandler),
]

__all__ = [
    "AUTH_RESOURCE",
    "SETTINGS_KEY",
    "Broker",
    "BrokerHandler",
    "default_handlers",
    "forget_or_404",
    "grant",
    "save_and_describe",
]
