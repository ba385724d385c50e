"""Tornado plumbing shared by the two sandbox servers.

Weaviate is a Go server, so its answers carry exact Content-Types (or none at all)
and compact JSON; tornado's defaults (``text/html``, ETags, request dumps in error
logs) would blur that, and a logged query string could carry ``?access_token=``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, HTTPError, RequestHandler

log = logging.getLogger("weaviate_auth_widget.sandbox")

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


def dumps(value: Any) -> str:
    """JSON as Go's encoder writes it: compact."""
    return json.dumps(value, separators=(",", ":"))


class BaseHandler(RequestHandler):
    """No default Content-Type, no ETags, and logs that never show a request's secrets."""

    def set_default_headers(self) -> None:
        self.clear_header("Content-Type")
        self.clear_header("Server")

    def compute_etag(self) -> str | None:
        return None

    def check_xsrf_cookie(self) -> None:
        return None

    def send_json(self, status: int, value: Any, content_type: str = JSON) -> None:
        self.set_status(status)
        self.set_header("Content-Type", content_type)
        self.finish(dumps(value))

    def send_empty(self, status: int) -> None:
        self.set_status(status)
        self.clear_header("Content-Type")
        self.finish()

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # The default dumps the request (headers included): never do that here.
        if isinstance(value, HTTPError):
            log.warning("%d %s %s", value.status_code, self.request.method, self.request.path)
            return
        log.error(
            "sandbox handler error on %s %s",
            self.request.method,
            self.request.path,
            exc_info=(typ, value, tb),
        )


def log_request(handler: RequestHandler) -> None:
    """Access log with the path only: a query string may hold ``access_token``."""
    request = handler.request
    log.info(
        "%d %s %s %.1fms", handler.get_status(), request.method, request.path, 1000 * request.request_time()
    )


def check_loopback(host: str) -> str:
    """The address to bind; anything but loopback is refused (the sandbox's secrets are throwaway)."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"the sandbox binds loopback addresses only, not {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"the sandbox binds loopback addresses only, not {host!r}")
    return host


def base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(app: Application, host: str, port: int) -> tuple[HTTPServer, int]:
    """Start ``app`` on the running loop; port 0 picks a free port, which is returned."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets = bind_sockets(port, check_loopback(host), family=family)
    server = HTTPServer(app)
    server.add_sockets(sockets)
    return server, int(sockets[0].getsockname()[1])
