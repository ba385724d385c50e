"""The administrator's policy settings: a mixin of
:class:`~weaviate_auth_widget.broker.app.WeaviateAuthApp`'s traits, so they are set as
``c.WeaviateAuthApp.allowed_urls = [...]`` or from the environment (table in :mod:`.app`).

:meth:`PolicySettings.policy` assembles them into the :class:`~weaviate_auth_widget.policy.Policy`
the AuthService checks every use of a credential against.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from traitlets import Bool, Dict, HasTraits, List, Unicode, default

from ..hub_login import HUB_SERVICE_ENV
from ..policy import Policy
from .admin import AdminProfileError, load_admin_profiles_file
from .settings_env import env, env_bool, env_list

ENV_DEFAULT_URL = "WEAVIATE_AUTH_DEFAULT_URL"
ENV_ALLOWED_URLS = "WEAVIATE_AUTH_ALLOWED_URLS"
ENV_ALLOWED_ISSUERS = "WEAVIATE_AUTH_ALLOWED_ISSUERS"
ENV_REQUIRE_HTTPS = "WEAVIATE_AUTH_REQUIRE_HTTPS"
ENV_ALLOW_REMEMBER = "WEAVIATE_AUTH_ALLOW_REMEMBER"
ENV_CA_BUNDLE = "WEAVIATE_AUTH_CA_BUNDLE"
ENV_ADMIN_PROFILES = "WEAVIATE_AUTH_ADMIN_PROFILES"
ENV_HUB_LOGIN = "WEAVIATE_AUTH_HUB_LOGIN"
ENV_HUB_LOGIN_URLS = "WEAVIATE_AUTH_HUB_LOGIN_URLS"

#: the traits :meth:`PolicySettings.policy` reads (a change takes effect at once)
POLICY_TRAITS = (
    "default_cluster_url",
    "allowed_urls",
    "allowed_issuers",
    "require_https",
    "allow_remember",
    "hub_login",
    "hub_login_urls",
    "hub_service_url",
)


class PolicySettings(HasTraits):
    if TYPE_CHECKING:
        log: logging.Logger  # the application's

    default_cluster_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help=f"Cluster URL offered by default in the login panel. Env: {ENV_DEFAULT_URL}.",
    )
    allowed_urls = List(
        Unicode(),
        config=True,
        help="Patterns 'scheme://host[:port][/path]' of the cluster URLs credentials may go to "
        "(e.g. 'https://*.weaviate.cloud'; '*' matches within the host only); empty allows any. "
        f"Env: {ENV_ALLOWED_URLS} (comma-separated).",
    )
    allowed_issuers = List(
        Unicode(),
        config=True,
        help="Patterns 'scheme://host[:port][/path]' of the identity providers (OIDC issuers) "
        "credentials may go to (e.g. 'https://login.example.com/realms/*'); empty allows any "
        f"https issuer. Env: {ENV_ALLOWED_ISSUERS} (comma-separated).",
    )
    require_https = Bool(
        True,
        config=True,
        help="Refuse http:// cluster and identity-provider URLs, except to loopback addresses. "
        f"Env: {ENV_REQUIRE_HTTPS}.",
    )
    allow_remember = Bool(
        True,
        config=True,
        help=f"Allow keeping credentials on this host ('Remember'). Env: {ENV_ALLOW_REMEMBER}.",
    )
    hub_login = Bool(
        True,
        config=True,
        help=f"Offer 'sign in with your hub login' (needs hub_service_url). Env: {ENV_HUB_LOGIN}.",
    )
    hub_login_urls = List(
        Unicode(),
        config=True,
        help="Patterns of the clusters the hub login may be used for (as allowed_urls); empty: "
        f"every allowed URL. Env: {ENV_HUB_LOGIN_URLS} (comma-separated).",
    )
    hub_service_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help="URL of the weaviate-auth hub service (weaviate_auth_widget.hub_service) handing "
        f"this server its user's access token. Env: {HUB_SERVICE_ENV}.",
    )
    ca_bundle = Unicode(
        None,
        allow_none=True,
        config=True,
        help=f"CA bundle (PEM) trusted for cluster and identity-provider TLS. Env: {ENV_CA_BUNDLE}.",
    )
    admin_profiles = List(
        Dict(),
        config=True,
        help="Profiles provided by the administrator: usable by users, never readable or "
        "changeable. Each is a profile (name, url, method, username, client_id, scopes, "
        "headers) plus 'secret_kind' and 'secret_env' (an environment variable, removed "
        "from the environment once read) or 'secret_file' (a path). "
        f"Env: {ENV_ADMIN_PROFILES} (a path to a JSON file holding the list).",
    )

    @default("default_cluster_url")
    def _default_cluster_url(self) -> str | None:
        return env(ENV_DEFAULT_URL)

    @default("allowed_urls")
    def _default_allowed_urls(self) -> list[str]:
        return env_list(ENV_ALLOWED_URLS)

    @default("allowed_issuers")
    def _default_allowed_issuers(self) -> list[str]:
        return env_list(ENV_ALLOWED_ISSUERS)

    @default("require_https")
    def _default_require_https(self) -> bool:
        return env_bool(ENV_REQUIRE_HTTPS, default=True, safe=True, log=self.log)

    @default("allow_remember")
    def _default_allow_remember(self) -> bool:
        return env_bool(ENV_ALLOW_REMEMBER, default=True, safe=False, log=self.log)

    @default("hub_login")
    def _default_hub_login(self) -> bool:
        return env_bool(ENV_HUB_LOGIN, default=True, safe=False, log=self.log)

    @default("hub_login_urls")
    def _default_hub_login_urls(self) -> list[str]:
        return env_list(ENV_HUB_LOGIN_URLS)

    @default("hub_service_url")
    def _default_hub_service_url(self) -> str | None:
        return env(HUB_SERVICE_ENV)

    @default("ca_bundle")
    def _default_ca_bundle(self) -> str | None:
        return env(ENV_CA_BUNDLE)

    @default("admin_profiles")
    def _default_admin_profiles(self) -> list[dict[str, Any]]:
        path = env(ENV_ADMIN_PROFILES)
        if not path:
            return []
        try:
            return load_admin_profiles_file(path)
        except AdminProfileError as exc:
            self.log.error("weaviate-auth: %s No administrator profiles loaded.", exc)
            return []

    def policy(self) -> Policy:
        """The policy these settings describe."""
        return Policy(
            default_url=self.default_cluster_url or None,
            allowed_urls=tuple(self.allowed_urls),
            allowed_issuers=tuple(self.allowed_issuers),
            require_https=self.require_https,
            allow_remember=self.allow_remember,
            ca_bundle=self.ca_bundle or None,
            hub_login=self.hub_login,
            hub_login_urls=tuple(self.hub_login_urls),
            hub_service_url=self.hub_service_url or None,
        )


__all__ = ["POLICY_TRAITS", "PolicySettings"]
