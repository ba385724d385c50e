"""The broker's core route table (``api.yaml``), under ``{base_url}weaviate-auth/api/``.

The handlers live by resource: :mod:`.server_handlers` (status, proof, OpenAPI),
:mod:`.profile_handlers`, :mod:`.login_handlers`, :mod:`.token_handler`; key management
in :mod:`.keys_handlers` and the browser sign-in in :mod:`.sign_in` add their own
tables. Their shared base is :mod:`.base_handler`, the shared state :mod:`.shared`;
both are re-exported here, where other modules have always imported them from.
"""

from __future__ import annotations

from .base_handler import BrokerHandler
from .login_handlers import ConnectHandler, LoginHandler, LogoutHandler
from .profile_handlers import ProfileHandler, ProfilesHandler, forget_or_404, save_and_describe
from .server_handlers import OpenAPIHandler, ProofHandler, StatusHandler
from .shared import AUTH_RESOURCE, SETTINGS_KEY, Broker
from .token_handler import TokenHandler, grant

_API = r"/weaviate-auth/api"
_NAME = r"([^/]+)"

default_handlers: list[tuple[str, type[BrokerHandler]]] = [
    (rf"{_API}/status", StatusHandler),
    (rf"{_API}/proof", ProofHandler),
    (rf"{_API}/openapi\.yaml", OpenAPIHandler),
    (rf"{_API}/profiles", ProfilesHandler),
    (rf"{_API}/profiles/{_NAME}", ProfileHandler),
    (rf"{_API}/profiles/{_NAME}/login", LoginHandler),
    (rf"{_API}/profiles/{_NAME}/connect", ConnectHandler),
    (rf"{_API}/profiles/{_NAME}/token", TokenHandler),
    (rf"{_API}/profiles/{_NAME}/logout", LogoutHandler),
]

__all__ = [
    "AUTH_RESOURCE",
    "SETTINGS_KEY",
    "Broker",
    "BrokerHandler",
    "default_handlers",
    "forget_or_404",
    "grant",
    "save_and_describe",
]
