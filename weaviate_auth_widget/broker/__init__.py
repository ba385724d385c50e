"""The jupyter-server extension: keeps the secrets, brokers short-lived tokens to kernels.

Importing this package is cheap (no tornado, no jupyter_server): kernel-side code may
use the constants below. The extension app itself lives in :mod:`.app`.

Enable it with ``jupyter server extension enable weaviate_auth_widget.broker`` (``pip
install`` already does, through ``etc/jupyter/jupyter_server_config.d``).
"""

from __future__ import annotations

from typing import Any

from .. import __version__ as __version__

#: The REST API lives under ``{base_url}`` + this.
API_PATH = "weaviate-auth/api/"
#: Request header carrying the per-server broker token (kernels the server started).
BROKER_HEADER = "X-Weaviate-Auth-Broker"
#: Request header carrying the calling kernel's id (recorded in the audit log).
KERNEL_HEADER = "X-Weaviate-Auth-Kernel"
#: Environment variable naming the connection file: a path, never the token.
BROKER_FILE_ENV = "WEAVIATE_AUTH_BROKER_FILE"
#: ``<jupyter runtime dir>/weaviate-auth-broker-<pid>.json``
CONNECTION_FILE_PREFIX = "weaviate-auth-broker-"
#: Largest request body the broker reads.
MAX_BODY_BYTES = 64 * 1024
#: A kernel trusts a token the broker handed it for at most this many seconds, expired
#: or not, then asks again: a logout or a narrowed policy (which the broker enforces at
#: once) reaches every kernel within this bound, including API keys, which never expire.
#: The broker says its bound in each grant (``recheck_in``, the trait
#: ``c.WeaviateAuthApp.token_recheck_seconds``); kernels use this when a broker does not.
TOKEN_RECHECK_SECONDS = 30.0


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Where jupyter_server finds the extension app (imported only when it asks)."""
    from .app import WeaviateAuthApp

    return [{"module": "weaviate_auth_widget.broker.app", "app": WeaviateAuthApp}]


__all__ = [
    "API_PATH",
    "BROKER_FILE_ENV",
    "BROKER_HEADER",
    "CONNECTION_FILE_PREFIX",
    "KERNEL_HEADER",
    "MAX_BODY_BYTES",
    "TOKEN_RECHECK_SECONDS",
]
