"""The browser sign-in's callback URL on this server (the redirect URI to register)."""

from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join

CALLBACK_PATH = "weaviate-auth/api/sign-in/callback"


def redirect_uri(handler: Any, origin: str | None = None) -> str:
    """Where the provider sends the browser back: the administrator's URL
    (``browser_redirect_uri``), else this server's as the browser reaches it (``origin``,
    from the page), else as this request reached it."""
    configured: str | None = handler.broker.sign_in_redirect_uri
    if configured:
        return configured
    if origin is None:
        origin = f"{handler.request.protocol}://{handler.request.host}"
    return origin + url_path_join(str(handler.base_url), CALLBACK_PATH)
