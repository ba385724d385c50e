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
token_recheck_seconds      -                                   30
=========================  ==================================  ==============================

The traits live by job in mixins: policy (:mod:`.policy_settings`), storage and audit log
(:mod:`.store_settings`), browser sign-in (``browser_client_id`` ...: :mod:`.browser_settings`);
the machinery traits are here.
"""

from __future__ import annotations

import atexit
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Bool, Float, Int, Type, observe

from .. import __version__
from ..code_flow import CodeFlow
from ..errors import StoreUnavailable
from ..service import AuthService
from . import TOKEN_RECHECK_SECONDS, handlers, keys_handlers
from .admin import resolve_admin_profiles
from .audit import AuditLog
from .auth import hub_owner, local_user, new_broker_token
from .browser_settings import BrowserSignInSettings
from .connection import ConnectionFile, connection_path, server_broker_url
from .policy_settings import POLICY_TRAITS, PolicySettings
from .save_guard import SaveGuard
from .shared import SETTINGS_KEY, Broker, KernelAuthorizer
from .sign_in import sign_in_handlers
from .store_settings import StoreSettings
from .upload_guard import guard_chunked_uploads


class WeaviateAuthApp(PolicySettings, StoreSettings, BrowserSignInSettings, ExtensionApp):
    """Keeps Weaviate credentials in the Jupyter server; kernels get short-lived tokens."""

    name = "weaviate_auth"
    description = "Sign in to Weaviate without secrets in notebooks: the credential broker."
    version = __version__
    load_other_extensions = True

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

    token_recheck_seconds = Float(
        TOKEN_RECHECK_SECONDS,
        min=0.0,
        max=3600.0,  # a bound, not "never": and JSON has no Infinity for the kernels
        config=True,
        help="Kernels use a token the broker handed them for at most this many seconds, "
        "then ask again: how soon a logout or a narrowed policy reaches every kernel "
        "(API keys never expire). Lower means more token requests to the broker.",
    )

    # -- building the broker ----------------------------------------------------------------
    broker: Broker | None = None
    connection: ConnectionFile | None = None

    @observe(*POLICY_TRAITS)
    def _policy_changed(self, change: Any) -> None:
        """Reconfiguration takes effect at once: the next use of any credential (token,
        refresh, login, logout) is checked against the new policy."""
        if self.broker is not None:
            self.broker.service.policy = self.policy()
            self.log.info("weaviate-auth: policy changed (%s).", change["name"])

    def build_service(self) -> AuthService:
        """Policy, stores and administrator profiles -> the configured AuthService."""
        policy = self.policy()
        directory = self.store_directory()
        secrets = self.secret_store(directory)
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
            token_recheck=self.token_recheck_seconds,
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
