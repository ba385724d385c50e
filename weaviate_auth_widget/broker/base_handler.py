"""``BrokerHandler``: the base of every broker route under ``{base_url}weaviate-auth/api/``.

Routes parse, call the AuthService (in a worker thread whenever it may touch the store
or the network), and serialise. There is no auth logic in them: who may call is settled
here in :meth:`BrokerHandler.prepare` (Jupyter authentication, or the broker token) and
by ``@web.authenticated`` / ``@authorized`` / the owner rule of :mod:`.auth`. The one
exception is ``GET proof`` (:class:`~.server_handlers.ProofHandler`), open on purpose.

Every error is ``{"error": {"code", "message"}}`` (:mod:`.error_replies`) with the
status of its code; bad input never causes a 500, and no response but ``token``
carries secret material.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_server.auth import Authorizer, User
from jupyter_server.base.call_context import CallContext
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..errors import RequestTooLarge, WeaviateAuthError
from . import BROKER_HEADER, KERNEL_HEADER, MAX_BODY_BYTES
from .auth import broker_token_matches, check_owner, hub_kind
from .error_replies import error_body, status_of
from .requests import check_content_type, parse_json
from .shared import AUTH_RESOURCE, SETTINGS_KEY, Broker

if TYPE_CHECKING:
    from ..service import AuthService

#: Bodies larger than this (chunked, no Content-Length) make tornado drop the connection.
BODY_BACKSTOP = 4 * MAX_BODY_BYTES


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
        super().send_error(status_of(status_code, exc), **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        prepared = self._prepared_future
        if prepared is not None and not prepared.done():
            # Refused in prepare(): the streamed body was never read, so tornado closes
            # the connection. Say so, or a proxy reusing it fails the next request.
            self.set_header("Connection", "close")
        error = error_body(status_code, exc)
        self._error_code = error["code"]
        self.finish(json.dumps({"error": error}), set_content_type="application/json; charset=utf-8")

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        if isinstance(value, WeaviateAuthError):
            level = self.log.warning if value.http_status >= 500 else self.log.info
            level("weaviate-auth %s %s: %s", self.request.method, self.request.path, value.code)
        else:
            super().log_exception(typ, value, tb)

    # -- the audit log ---------------------------------------------------------------
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


__all__ = ["BODY_BACKSTOP", "BrokerHandler"]
