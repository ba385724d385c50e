"""Voilà for the browser tests: a notebook rendered as an app, in the two ways Voilà runs.

- As a Jupyter server extension: ``{base_url}voila/render/<nb>.ipynb`` on a real
  ``jupyter lab`` server (:class:`~.harness.JupyterServer`), next to the broker.
- Standalone: ``voila <nb>.ipynb`` (:class:`VoilaServer`), its own tornado server that
  loads no Jupyter server extension: no broker is reachable from the page.

:class:`VoilaPage` opens either in its own tab; :func:`block_remote` aborts every request
that leaves the machine (and records it), so a CDN fetch fails the test.
"""

from __future__ import annotations

import html
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .harness import JupyterServer, NotebookPage

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class VoilaServer(JupyterServer):
    """``voila <notebook>`` in a subprocess, everything under ``home`` (as JupyterServer)."""

    def __init__(
        self, home: Path, notebook: str, *, name: str = "voila", runtime_dir: Path | None = None
    ) -> None:
        """``runtime_dir``: another server's (its kernels then find that server's broker,
        as next to a running JupyterLab; the page still cannot reach it)."""
        super().__init__(home, broker=None, name=name)
        self.notebook = notebook
        if runtime_dir is not None:
            self.runtime_dir = runtime_dir

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "voila",
            str(self.root_dir / self.notebook),
            "--no-browser",
            f"--port={self.port}",
            "--Voila.ip=127.0.0.1",
            "--Voila.port_retries=0",
            "--Voila.log_level=DEBUG",
        ]

    def answering(self) -> None:
        # "/" would render the notebook (a kernel per request): the open port is enough
        socket.create_connection(("127.0.0.1", self.port), timeout=2).close()


class VoilaPage(NotebookPage):
    """A notebook rendered by Voilà: no cells to run, the outputs are the page."""

    def __init__(self, server: JupyterServer, context: Any, path: str) -> None:
        super().__init__(server, context, "voila", path)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        if isinstance(self.server, VoilaServer):
            return f"{self.server.base_url}/"
        return f"{self.server.base_url}/voila/render/{self.path}?token={self.server.token}"

    def open(self) -> VoilaPage:
        """Load the page (Voilà runs the notebook before it answers); keep its HTML."""
        response = self.page.goto(self.url, wait_until="domcontentloaded", timeout=120_000)
        assert response is not None and response.ok, f"Voilà answered {response and response.status}"
        self.served = str(response.text())
        return self


def fetched_at_run_time(blocked: list[str], served: str) -> list[str]:
    """The blocked URLs that Voilà's served HTML does not name.

    Voilà's own ``lab`` template links Font Awesome and MathJax from CDNs (in the HTML
    it serves); the page works without them. Anything else was asked for by code running
    in the page (a widget loading its module from a CDN, say).
    """
    named = html.unescape(served)
    return [url for url in blocked if unquote(html.unescape(url).split("?")[0]) not in named]


def assert_nothing_from_outside(page: VoilaPage, blocked: list[str]) -> None:
    """Nothing but the template's own links was asked of another host; and the block
    does see such a request (a fetch made here for the purpose)."""
    probe = "https://cdn.jsdelivr.net/npm/weaviate-auth-widget-probe/index.js"
    page.page.evaluate("(url) => fetch(url).catch(() => null)", probe)
    assert probe in blocked, "the block did not see a request to a CDN"
    assert not fetched_at_run_time([url for url in blocked if url != probe], page.served), blocked


def block_remote(page: Any) -> list[str]:
    """Abort every request of ``page`` to a host other than this machine; the list
    returned fills with their URLs (a Voilà page must need nothing from a CDN)."""
    blocked: list[str] = []

    def route(r: Any) -> None:
        parts = urlsplit(r.request.url)
        if parts.scheme in ("data", "blob") or parts.hostname in LOCAL_HOSTS:
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return blocked


__all__ = ["VoilaPage", "VoilaServer", "assert_nothing_from_outside", "block_remote", "fetched_at_run_time"]
