"""WeaviateAuth: the httpx.Auth that carries a login to one cluster, and only there.

Shared by the sessions and the official-client hand-off (``client.py``), so both send
the current token on every request, refresh once on a 401, and never send a
credential to another origin.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Mapping

import httpx

from . import cluster
from .tokens import Token, TokenSource
from .urls import origin


class WeaviateAuth(httpx.Auth):
    """Bearer token + module-key headers, for the cluster's origin only."""

    def __init__(self, source: TokenSource, base_url: str, headers: Mapping[str, str] | None = None) -> None:
        self._source = source
        self._origin = origin(base_url)
        self._headers = {**cluster.cluster_headers(base_url), **dict(headers or {})}

    def __repr__(self) -> str:
        return f"WeaviateAuth(origin={self._origin!r})"

    def _mine(self, request: httpx.Request) -> bool:
        url = request.url
        scheme = url.scheme
        return (scheme, url.host, url.port or (443 if scheme == "https" else 80)) == self._origin

    def _apply(self, request: httpx.Request, token: Token) -> None:
        request.headers.update(self._headers)
        request.headers["Authorization"] = f"Bearer {token.value}"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._mine(request):
            yield request
            return
        token = self._source.token()
        self._apply(request, token)
        response = yield request
        if response.status_code == 401:
            self._apply(request, self._source.token(rejected=token))
            response = yield request
            if response.status_code == 401:
                response.read()
                self.refused(response)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._mine(request):
            yield request
            return
        token = await self._source.atoken()
        self._apply(request, token)
        response = yield request
        if response.status_code == 401:
            self._apply(request, await self._source.atoken(rejected=token))
            response = yield request
            if response.status_code == 401:
                await response.aread()
                self.refused(response)

    def refused(self, response: httpx.Response) -> None:
        """The fresh token got a 401 too. Sessions hand the answer to their caller (their
        helpers raise the typed error); the official-client hand-off raises here."""

    def extra_headers(self) -> dict[str, str]:
        """Cluster and module-key headers (module keys are secrets: never print these)."""
        return dict(self._headers)

    def strip_foreign(self, request: httpx.Request) -> None:
        """Request hook, run for every hop of a redirect chain: no credential leaves
        the cluster's origin, whatever follows the redirect."""
        if not self._mine(request):
            request.headers.pop("Authorization", None)
            for name in self._headers:
                request.headers.pop(name, None)
