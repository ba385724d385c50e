"""``WeaviateAuthApp``: the jupyter-server extension keeping secrets and brokering tokens.

Every setting is a trait, set in ``jupyter_server_config.py``
(``c.WeaviateAuthApp.allowed_urls = [...]``) or on the command line; when not set
there, from the environment (handy in containers and JupyterHub spawners):

=========================  ==================================  ==============================
trait                      environment variable                default
=========================  ==================================  ==============================
default_cluster_url        WEAVIATE_AUTH_DEFAULT_URL           none
allowed_urls               WEAVIATE_AUTH_ALLOWED_URLS (a,b,c)  any URL
allowed_issuers            WEAVIATE_AUTH_ALLOWED_ISSUERS (a,b)  any https issuer
require_https              WEAVIATE_AUTH_REQUIRE_HTTPS         true (loopback exempt)
allow_remember             WEAVIATE_AUTH_ALLOW_REMEMBER        true
store_backend              WEAVIATE_AUTH_STORE_BACKEND         auto
store_dir                  WEAVIATE_AUTH_DIR                   <jupyter data dir>/weaviate_auth
store_key_file             WEAVIATE_AUTH_STORE_KEY_FILE        none
(store key itself)         WEAVIATE_AUTH_STORE_KEY             none (removed from the env)
ca_bundle                  WEAVIATE_AUTH_CA_BUNDLE             system trust store
audit_log                  WEAVIATE_AUTH_AUDIT_LOG             off
admin_profiles             WEAVIATE_AUTH_ADMIN_PROFILES (file)  none
hub_login                  WEAVIATE_AUTH_HUB_LOGIN             true (offered when a service is set)
hub_login_urls             WEAVIATE_AUTH_HUB_LOGIN_URLS (a,b)  every allowed URL
hub_service_url            WEAVIATE_AUTH_HUB_SERVICE_URL       none (no hub login)
service_class              -                                   AuthService
save_guard                 -                                   true
worker_threads             -                                   16
=========================  ==================================  ==============================

Browser sign-in settings (``browser_client_id`` ...): see :mod:`.browser_settings`.
"""

from __future__ import annotations

import atexit
import os
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Bool, Dict, Int, List, Type, Unicode, default, observe, validate

from .. import __version__
from ..code_flow import CodeFlow
from ..errors import StoreUnavailable
from ..hub_login import HUB_SERVICE_ENV
from ..paths import store_dir as default_store_dir
from ..policy import Policy
from ..secrets import BACKENDS, KEY_ENV, KEY_FILE_ENV, SecretStore
from ..service import AuthService
from . import handlers, keys_handlers
from .admin import AdminProfileError, load_admin_profiles_file, resolve_admin_profiles
from .audit import AuditLog
from .auth import hub_owner, local_user, new_broker_token
from .browser_settings import BrowserSignInSettings
from .connection import ConnectionFile, connection_path, server_broker_url
from .save_guard import SaveGuard
from .shared import SETTINGS_KEY, Broker, KernelAuthorizer
from .sign_in import sign_in_handlers
from .upload_guard import guard_chunked_uploads

ENV_DEFAULT_URL = "WEAVIATE_AUTH_DEFAULT_URL"
ENV_ALLOWED_URLS = "WEAVIATE_AUTH_ALLOWED_URLS"
ENV_ALLOWED_ISSUERS = "WEAVIATE_AUTH_ALLOWED_ISSUERS"
ENV_REQUIRE_HTTPS = "WEAVIATE_AUTH_REQUIRE_HTTPS"
ENV_ALLOW_REMEMBER = "WEAVIATE_AUTH_ALLOW_REMEMBER"
ENV_STORE_BACKEND = "WEAVIATE_AUTH_STORE_BACKEND"
ENV_STORE_DIR = "WEAVIATE_AUTH_DIR"
ENV_CA_BUNDLE = "WEAVIATE_AUTH_CA_BUNDLE"
ENV_AUDIT_LOG = "WEAVIATE_AUTH_AUDIT_LOG"
ENV_ADMIN_PROFILES = "WEAVIATE_AUTH_ADMIN_PROFILES"
ENV_HUB_LOGIN = "WEAVIATE_AUTH_HUB_LOGIN"
ENV_HUB_LOGIN_URLS = "WEAVIATE_AUTH_HUB_LOGIN_URLS"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_MAX_KEY_FILE = 64 * 1024


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _env_list(name: str) -> list[str]:
    return [p.strip() for p in (_env(name) or "").split(",") if p.strip()]


class WeaviateAuthApp(BrowserSignInSettings, ExtensionApp):
    """Keeps Weaviate credentials in the Jupyter server; kernels get short-lived tokens."""

    name = "weaviate_auth"
    description = "Sign in to Weaviate without secrets in notebooks: the credential broker."
    version = __version__
    load_other_extensions = True

    # -- policy ----------------------------------------------------------------------
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

    # -- storage -----------------------------------------------------------------------
    store_backend = Unicode(
        "auto",
        config=True,
        help=f"Secret store: one of {', '.join(BACKENDS)}. Env: {ENV_STORE_BACKEND}.",
    )
    store_dir = Unicode(
        None,
        allow_none=True,
        config=True,
        help=f"Directory of profiles.json and file-backed secrets. Env: {ENV_STORE_DIR}; "
        "default <jupyter data dir>/weaviate_auth.",
    )
    store_key_file = Unicode(
        None,
        allow_none=True,
        config=True,
        help=f"File holding the key of the encrypted file store. Env: {KEY_FILE_ENV}. "
        f"The key itself may come from {KEY_ENV}, which is removed from the environment once read.",
    )
    audit_log = Unicode(
        None,
        allow_none=True,
        config=True,
        help=f"Path of the audit log (JSON lines, 0600); unset: no audit log. Env: {ENV_AUDIT_LOG}.",
    )

    # -- machinery -----------------------------------------------------------------------
    service_class = Type(
        default_value=AuthService,
        klass=AuthService,
        config=True,
        help="The AuthService class the broker uses.",
    )
    save_guard = Bool(
        True,
        config=True,
        help="Redact every known secret from notebooks and files saved through Jupyter.",
    )
    worker_threads = Int(
        16,
        config=True,
        help="Worker threads for store and network calls (logins, refreshes, saves).",
    )

    @default("default_cluster_url")
    def _default_cluster_url(self) -> str | None:
        return _env(ENV_DEFAULT_URL)

    @default("allowed_urls")
    def _default_allowed_urls(self) -> list[str]:
        return _env_list(ENV_ALLOWED_URLS)

    @default("allowed_issuers")
    def _default_allowed_issuers(self) -> list[str]:
        return _env_list(ENV_ALLOWED_ISSUERS)

    @default("require_https")
    def _default_require_https(self) -> bool:
        return self._env_bool(ENV_REQUIRE_HTTPS, default=True, safe=True)

    @default("allow_remember")
    def _default_allow_remember(self) -> bool:
        return self._env_bool(ENV_ALLOW_REMEMBER, default=True, safe=False)

    @default("hub_login")
    def _default_hub_login(self) -> bool:
        return self._env_bool(ENV_HUB_LOGIN, default=True, safe=False)

    @default("hub_login_urls")
    def _default_hub_login_urls(self) -> list[str]:
        return _env_list(ENV_HUB_LOGIN_URLS)

    @default("hub_service_url")
    def _default_hub_service_url(self) -> str | None:
        return _env(HUB_SERVICE_ENV)

    @default("ca_bundle")
    def _default_ca_bundle(self) -> str | None:
        return _env(ENV_CA_BUNDLE)

    @default("admin_profiles")
    def _default_admin_profiles(self) -> list[dict[str, Any]]:
        path = _env(ENV_ADMIN_PROFILES)
        if not path:
            return []
        try:
            return load_admin_profiles_file(path)
        except AdminProfileError as exc:
            self.log.error("weaviate-auth: %s No administrator profiles loaded.", exc)
            return []

    @default("store_backend")
    def _default_store_backend(self) -> str:
        return _env(ENV_STORE_BACKEND) or "auto"

    @validate("store_backend")
    def _check_store_backend(self, proposal: Any) -> str:
        value = str(proposal["value"]).strip().lower()
        if value not in BACKENDS:
            self.log.error(
                "weaviate-auth: unknown store backend %r; using 'auto' (choose one of %s).",
                value[:40],
                ", ".join(BACKENDS),
            )
            return "auto"
        return value

    @default("store_dir")
    def _default_store_dir(self) -> str | None:
        return _env(ENV_STORE_DIR)

    @default("store_key_file")
    def _default_store_key_file(self) -> str | None:
        return _env(KEY_FILE_ENV)

    @default("audit_log")
    def _default_audit_log(self) -> str | None:
        return _env(ENV_AUDIT_LOG)

    def _env_bool(self, name: str, *, default: bool, safe: bool) -> bool:
        raw = _env(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        self.log.error("weaviate-auth: %s=%r is not true or false; using %s.", name, raw[:20], safe)
        return safe

    # -- building the broker ----------------------------------------------------------------
    broker: Broker | None = None
    connection: ConnectionFile | None = None

    def policy(self) -> Policy:
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

    @observe(
        "default_cluster_url",
        "allowed_urls",
        "allowed_issuers",
        "require_https",
        "allow_remember",
        "hub_login",
        "hub_login_urls",
        "hub_service_url",
    )
    def _policy_changed(self, change: Any) -> None:
        """Reconfiguration takes effect at once: the next use of any credential (token,
        refresh, login, logout) is checked against the new policy."""
        if self.broker is not None:
            self.broker.service.policy = self.policy()
            self.log.info("weaviate-auth: policy changed (%s).", change["name"])

    def _store_key(self) -> str | bytes | None:
        """The encrypted store's key: from ``WEAVIATE_AUTH_STORE_KEY`` (then removed from the
        environment, so kernels never inherit it), else from ``store_key_file``."""
        key = os.environ.pop(KEY_ENV, None)
        if key:
            return key
        if not self.store_key_file:
            return None
        path = Path(self.store_key_file).expanduser()
        try:
            with open(path, "rb") as fh:
                data = fh.read(_MAX_KEY_FILE + 1).rstrip(b"\r\n")
        except OSError as exc:
            raise StoreUnavailable(
                f"Cannot read the secret store key file {path} ({exc.strerror}).",
                fix="Point WeaviateAuthApp.store_key_file at a readable file holding the key.",
            ) from None
        if not data or len(data) > _MAX_KEY_FILE:
            raise StoreUnavailable(f"The secret store key file {path} is empty or too large.")
        if os.name == "posix" and path.stat().st_mode & 0o077:
            self.log.warning(
                "weaviate-auth: the store key file %s is readable by other users; chmod 600 it.", path
            )
        return data

    def build_service(self) -> AuthService:
        """Policy, stores and administrator profiles -> the configured AuthService."""
        policy = self.policy()
        directory = Path(self.store_dir).expanduser() if self.store_dir else default_store_dir()
        secrets = SecretStore(self.store_backend, directory=directory, key=self._store_key())
        admin = resolve_admin_profiles(self.admin_profiles, policy)
        service: AuthService = self.service_class(
            policy=policy, secrets=secrets, admin_profiles=admin, directory=directory
        )
        service.mode = "broker"
        service.device_prompt = None  # no one to show a device code to: the panel's button signs in
        service.browser_client = self.browser_client()
        return service

    def _openapi(self) -> bytes:
        text = resources.files(__package__).joinpath("api.yaml").read_text(encoding="utf-8")
        assert self.serverapp is not None
        base = url_path_join(self.serverapp.base_url, "weaviate-auth/api")
        text = text.replace("\n  - url: /weaviate-auth/api\n", f"\n  - url: {base}\n", 1)
        return text.encode("utf-8")

    def initialize_settings(self) -> None:
        if self.broker is not None:  # already set up (initialize() called again)
            return
        serverapp = self.serverapp
        assert serverapp is not None
        service = self.build_service()
        token = new_broker_token()
        owner = hub_owner()
        guard = SaveGuard(service.secret_values, enabled=self.save_guard)
        executor = ThreadPoolExecutor(
            max_workers=max(1, self.worker_threads), thread_name_prefix="weaviate-auth"
        )
        self.broker = Broker(
            service=service,
            token=token,
            owner=owner,
            owner_name=owner or local_user() or "owner",
            executor=executor,
            openapi=self._openapi(),
            audit=AuditLog(self.audit_log) if self.audit_log else None,
            guard=guard,
            kernel_authorizer=KernelAuthorizer(
                parent=serverapp, identity_provider=serverapp.identity_provider
            ),
            sign_ins=CodeFlow(service, service.browser_client),
            sign_in_redirect_uri=self.browser_redirect_uri or None,
        )
        self.settings[SETTINGS_KEY] = self.broker
        if self.save_guard:
            serverapp.contents_manager.register_pre_save_hook(guard.pre_save_hook)  # type: ignore[no-untyped-call]
            guard_chunked_uploads(serverapp.contents_manager, guard)
            executor.submit(guard.warm)
        self.connection = ConnectionFile(
            connection_path(serverapp.runtime_dir), token=token, user=owner or local_user()
        )
        # the path goes into the environment now, before any kernel starts; the file is
        # written once the server listens (the port is final then: port 0, port retries)
        self.connection.export()
        atexit.register(self.connection.remove)
        self.log.info(
            "weaviate-auth broker: store %s, %d administrator profile(s), save guard %s%s.",
            service.secrets.backend_name,
            len(self.admin_profiles),
            "on" if self.save_guard else "off",
            f", audit log {self.audit_log}" if self.audit_log else "",
        )

    def _write_connection_file(self) -> None:
        if self.connection is None or self.serverapp is None:
            return
        try:
            self.connection.write(server_broker_url(self.serverapp))
        except (OSError, StoreUnavailable) as exc:  # the latter: a runtime dir not ours, or a link
            self.log.error(
                "weaviate-auth: cannot write the broker connection file %s (%s); kernels will use "
                "their in-process mode.",
                self.connection.path,
                exc.strerror if isinstance(exc, OSError) else exc,
            )

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers.default_handlers)
        self.handlers.extend(keys_handlers.keys_handlers)
        self.handlers.extend(sign_in_handlers)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """Called by the server once it listens."""
        self._write_connection_file()

    async def stop_extension(self) -> None:
        if self.connection is not None:
            self.connection.remove()
            atexit.unregister(self.connection.remove)
        broker, self.broker = self.broker, None
        if broker is None:
            return
        if broker.guard is not None:
            broker.guard.enabled = False
        broker.executor.shutdown(wait=False, cancel_futures=True)
        broker.service.close()


__all__ = ["WeaviateAuthApp"]
