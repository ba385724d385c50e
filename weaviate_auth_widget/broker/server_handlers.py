"""Routes about the broker itself: ``status``, ``proof`` (open on purpose) and
``openapi.yaml``."""

from __future__ import annotations

from typing import ClassVar

from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from tornado import web

from .base_handler import BrokerHandler
from .callback_url import redirect_uri
from .proof import broker_proof
from .requests import proof_nonce


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


__all__ = ["OpenAPIHandler", "ProofHandler", "StatusHandler"]
