"""Small real servers for tests: a header recorder and a redirector (stdlib http.server)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Recorder:
    """Remembers the headers of every request it receives; answers 200 ``{}``,
    or redirects to ``redirect_to`` when set."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.redirect_to: str | None = None
        self.url = ""


@contextmanager
def recorder() -> Iterator[Recorder]:
    rec = Recorder()

    class Handler(QuietHandler):
        def _answer(self) -> None:
            rec.seen.append({k.lower(): v for k, v in self.headers.items()})
            if rec.redirect_to:
                self.send_response(307)
                self.send_header("Location", rec.redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_json(b"{}")

        do_GET = do_POST = _answer

    with serving(Handler) as url:
        rec.url = url.rstrip("/")
        yield rec


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_json(self, data: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], port: int = 0) -> Iterator[str]:
    """Serve ``handler`` on loopback (``port``, or a free one) in a thread; yields
    ``http://127.0.0.1:<port>/``."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: the shape of a hung host."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@contextmanager
def byte_sink() -> Iterator[tuple[str, list[bytes]]]:
    """A TCP server that records every byte it receives and answers nothing: the shape
    of a proxy that reads what goes through it. Yields ``(url, received)``."""
    received: list[bytes] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    while data := conn.recv(65536):
                        received.append(data)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", received
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return int(port)


def password_profile(sandbox: Any) -> dict[str, Any]:
    """The broker's JSON body for a username & password profile on ``sandbox``."""
    creds = sandbox.credentials
    return {
        "url": sandbox.weaviate_url,
        "method": "password",
        "username": creds.username,
        "secrets": {"password": creds.password},
    }
