"""The administrator's settings for browser sign-ins (authorization code + PKCE).

A mixin of :class:`~weaviate_auth_widget.broker.app.WeaviateAuthApp`'s traits, so they
are set as ``c.WeaviateAuthApp.browser_client_id = ...`` or from the environment:

==========================  =========================================  =======================
trait                       environment variable                       default
==========================  =========================================  =======================
browser_client_id           WEAVIATE_AUTH_BROWSER_CLIENT_ID            the cluster's clientId
(client secret)             WEAVIATE_AUTH_BROWSER_CLIENT_SECRET        none (public client)
browser_client_secret_file  WEAVIATE_AUTH_BROWSER_CLIENT_SECRET_FILE   none
browser_scopes              WEAVIATE_AUTH_BROWSER_SCOPES (a,b)         none beyond the cluster's
browser_prompt_consent      WEAVIATE_AUTH_BROWSER_PROMPT_CONSENT       false
browser_redirect_uri        WEAVIATE_AUTH_BROWSER_REDIRECT_URI         this server's callback
==========================  =========================================  =======================

The client secret is never a trait value one could print: it comes from the environment
(removed once read, so kernels never inherit it) or from a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from traitlets import Bool, HasTraits, List, Unicode, default

from ..code_flow import BrowserClient
from ..errors import StoreUnavailable
from .settings_env import env, env_list

ENV_CLIENT_ID = "WEAVIATE_AUTH_BROWSER_CLIENT_ID"
ENV_CLIENT_SECRET = "WEAVIATE_AUTH_BROWSER_CLIENT_SECRET"
ENV_CLIENT_SECRET_FILE = "WEAVIATE_AUTH_BROWSER_CLIENT_SECRET_FILE"
ENV_SCOPES = "WEAVIATE_AUTH_BROWSER_SCOPES"
ENV_PROMPT_CONSENT = "WEAVIATE_AUTH_BROWSER_PROMPT_CONSENT"
ENV_REDIRECT_URI = "WEAVIATE_AUTH_BROWSER_REDIRECT_URI"


class BrowserSignInSettings(HasTraits):
    browser_client_id = Unicode(
        None,
        allow_none=True,
        config=True,
        help=f"OAuth client id for browser sign-ins; default the cluster's clientId. Env: {ENV_CLIENT_ID}.",
    )
    browser_client_secret_file = Unicode(
        None,
        allow_none=True,
        config=True,
        help="File holding the client secret, for providers that register this server as a "
        f"confidential client. Env: {ENV_CLIENT_SECRET_FILE}; or the secret itself in "
        f"{ENV_CLIENT_SECRET} (removed from the environment once read).",
    )
    browser_scopes = List(
        Unicode(),
        config=True,
        help=f"Scopes asked for besides the cluster's, openid and offline_access. Env: {ENV_SCOPES}.",
    )
    browser_prompt_consent = Bool(
        False,
        config=True,
        help="Send prompt=consent (providers that grant offline_access, hence a refresh token, "
        f"only then). Env: {ENV_PROMPT_CONSENT}.",
    )
    browser_redirect_uri = Unicode(
        None,
        allow_none=True,
        config=True,
        help="The callback URL registered at the provider, when the server's own URL (as the "
        "browser reaches it) is not it, e.g. behind a proxy. Shown by GET status. "
        f"Env: {ENV_REDIRECT_URI}.",
    )

    @default("browser_client_id")
    def _default_browser_client_id(self) -> str | None:
        return env(ENV_CLIENT_ID)

    @default("browser_client_secret_file")
    def _default_browser_client_secret_file(self) -> str | None:
        return env(ENV_CLIENT_SECRET_FILE)

    @default("browser_scopes")
    def _default_browser_scopes(self) -> list[str]:
        return env_list(ENV_SCOPES)

    @default("browser_prompt_consent")
    def _default_browser_prompt_consent(self) -> bool:
        return (env(ENV_PROMPT_CONSENT) or "").lower() in ("1", "true", "yes", "on")

    @default("browser_redirect_uri")
    def _default_browser_redirect_uri(self) -> str | None:
        return env(ENV_REDIRECT_URI)

    def browser_client(self) -> BrowserClient:
        return BrowserClient(
            client_id=self.browser_client_id or None,
            client_secret=self._browser_client_secret(),
            extra_scopes=tuple(self.browser_scopes),
            prompt_consent=bool(self.browser_prompt_consent),
            redirect_uri=self.browser_redirect_uri or None,
        )

    def _browser_client_secret(self) -> str | None:
        secret = os.environ.pop(ENV_CLIENT_SECRET, None)
        if secret:
            return secret.strip()
        if not self.browser_client_secret_file:
            return None
        path = Path(self.browser_client_secret_file).expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreUnavailable(
                f"Cannot read the browser sign-in client secret file {path} ({exc}).",
                fix="Point WeaviateAuthApp.browser_client_secret_file at a readable file.",
            ) from None
        return value or None
