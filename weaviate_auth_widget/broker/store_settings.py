"""Where the broker keeps secrets and what it logs: a mixin of
:class:`~weaviate_auth_widget.broker.app.WeaviateAuthApp`'s storage traits
(``c.WeaviateAuthApp.store_backend`` ...; environment defaults in the table of :mod:`.app`).

:meth:`StoreSettings.secret_store` makes the store choice: backend, directory, and the
encrypted store's key, which never stays in the environment kernels inherit.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traitlets import HasTraits, Unicode, default, validate

from ..errors import StoreUnavailable
from ..paths import store_dir as default_store_dir
from ..secrets import BACKENDS, KEY_ENV, KEY_FILE_ENV, SecretStore
from .settings_env import env

ENV_STORE_BACKEND = "WEAVIATE_AUTH_STORE_BACKEND"
ENV_STORE_DIR = "WEAVIATE_AUTH_DIR"
ENV_AUDIT_LOG = "WEAVIATE_AUTH_AUDIT_LOG"

_MAX_KEY_FILE = 64 * 1024


class StoreSettings(HasTraits):
    if TYPE_CHECKING:
        log: logging.Logger  # the application's

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

    @default("store_backend")
    def _default_store_backend(self) -> str:
        return env(ENV_STORE_BACKEND) or "auto"

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
        return env(ENV_STORE_DIR)

    @default("store_key_file")
    def _default_store_key_file(self) -> str | None:
        return env(KEY_FILE_ENV)

    @default("audit_log")
    def _default_audit_log(self) -> str | None:
        return env(ENV_AUDIT_LOG)

    def store_directory(self) -> Path:
        """Where profiles.json and file-backed secrets live."""
        return Path(self.store_dir).expanduser() if self.store_dir else default_store_dir()

    def secret_store(self, directory: Path) -> SecretStore:
        """The configured secret store, keeping its files in ``directory``."""
        return SecretStore(self.store_backend, directory=directory, key=self._store_key())

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


__all__ = ["StoreSettings"]
