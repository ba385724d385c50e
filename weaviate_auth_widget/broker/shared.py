"""What every broker handler shares: the :class:`Broker` the extension app builds and
puts in the tornado settings, and the authorizer of requests from this server's kernels.

Kept apart from the handlers so the app can build it without importing any route.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from jupyter_server.auth import Authorizer, User

from . import TOKEN_RECHECK_SECONDS

if TYPE_CHECKING:
    from ..code_flow import CodeFlow
    from ..service import AuthService
    from .audit import AuditLog
    from .save_guard import SaveGuard

T = TypeVar("T")

#: the resource ``@authorized`` asks the Authorizer about
AUTH_RESOURCE = "weaviate_auth"
#: where the :class:`Broker` lives in the tornado settings
SETTINGS_KEY = "weaviate_auth_broker"


class KernelAuthorizer(Authorizer):
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
    kernel_authorizer: Authorizer = field(default_factory=KernelAuthorizer)
    #: browser sign-ins in progress, and the callback URL the administrator registered
    sign_ins: CodeFlow | None = field(default=None, repr=False)
    sign_in_redirect_uri: str | None = None
    #: how long a kernel may use a granted token before asking again (``recheck_in``)
    token_recheck: float = TOKEN_RECHECK_SECONDS

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


__all__ = ["AUTH_RESOURCE", "SETTINGS_KEY", "Broker", "KernelAuthorizer"]
