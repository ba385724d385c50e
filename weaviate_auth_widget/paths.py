"""Where the package keeps its files on the host, and how they are created safely."""

from __future__ import annotations

import os
from pathlib import Path

APP_DIR_NAME = "weaviate_auth"
#: Overrides the store directory (tests, containers). A path, never a secret.
DIR_ENV = "WEAVIATE_AUTH_DIR"


def store_dir() -> Path:
    """``<jupyter data dir>/weaviate_auth`` unless ``WEAVIATE_AUTH_DIR`` names another."""
    override = os.environ.get(DIR_ENV)
    if override:
        return Path(override).expanduser()
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / APP_DIR_NAME


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` as 0700 (and tighten it if it already exists but is wider)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name == "posix" and (path.stat().st_mode & 0o077):
        path.chmod(0o700)
    return path


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, mode 0600, never readable by others.

    The temporary file is created 0600 from the start (no chmod window) in the same
    directory, fsynced, then renamed over the target.
    """
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
