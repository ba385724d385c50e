"""Where the package keeps its files on the host, and how they are created safely.

Credentials and the profiles that say where they may go live in a directory that must
be this user's own: a directory another user created beforehand (they could rewrite
``profiles.json``), or one reached through a symbolic link, is refused with an error
saying what to fix — never silently used. Files in it are opened without following
symbolic links and must belong to this user too.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from .errors import StoreUnavailable

log = logging.getLogger(__name__)

APP_DIR_NAME = "weaviate_auth"
#: Overrides the store directory (tests, containers). A path, never a secret.
DIR_ENV = "WEAVIATE_AUTH_DIR"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def store_dir() -> Path:
    """``<jupyter data dir>/weaviate_auth`` unless ``WEAVIATE_AUTH_DIR`` names another."""
    override = os.environ.get(DIR_ENV)
    if override:
        return Path(override).expanduser()
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / APP_DIR_NAME


def _owner(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


_STORE_FIX = f"or set {DIR_ENV} to a directory of your own"


def check_owned(path: Path, st: os.stat_result, what: str, *, elsewhere: str = _STORE_FIX) -> None:
    """Refuse ``path`` (already ``lstat``-ed or ``fstat``-ed as ``st``) unless this user
    owns it. ``elsewhere`` ends the fix: how to use another path instead."""
    if os.name != "posix" or st.st_uid == os.geteuid():
        return
    raise StoreUnavailable(
        f"The {what} {path} belongs to {_owner(st.st_uid)}, not to you (uid {os.geteuid()}): "
        "whoever owns it could change what is kept there, so it is not used.",
        fix=f"Move {path} aside (someone may have planted it) and try again, {elsewhere}.",
    )


def symlink_refused(path: Path, what: str, *, elsewhere: str = _STORE_FIX) -> StoreUnavailable:
    """The error for a symbolic link where a file or directory of ours belongs."""
    return StoreUnavailable(
        f"The {what} {path} is a symbolic link; it is not followed (a link planted there could "
        "redirect or overwrite another file).",
        fix=f"Remove the link and try again, {elsewhere}.",
    )


def check_private_dir(path: Path) -> None:
    """``path`` must be a real directory (not a symbolic link) of this user; a mode wider
    than 0700 is tightened. A missing directory is fine (it is created when needed)."""
    try:
        fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        if os.path.islink(path):
            raise symlink_refused(path, "store directory") from None
        raise StoreUnavailable(
            f"Cannot open the store directory {path} ({exc.strerror}).",
            fix=f"Check that it is a directory of yours, or set {DIR_ENV} to one.",
        ) from None
    try:
        st = os.fstat(fd)
        check_owned(path, st, "store directory")
        if os.name == "posix" and st.st_mode & 0o077:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` as 0700, or check the one there (see :func:`check_private_dir`)."""
    if not os.path.lexists(path):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_private_dir(path)
    return path


def read_private_file(path: Path, what: str = "file") -> tuple[bytes, os.stat_result] | None:
    """The bytes of ``path`` and its stat, or None when it does not exist. A symbolic
    link, something other than a regular file, or a file of another user is refused;
    a mode wider than 0600 is tightened (and said so)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if os.path.islink(path):
            raise symlink_refused(path, what) from None
        raise StoreUnavailable(
            f"Cannot read the {what} {path} ({exc.strerror}).",
            fix="Check that it belongs to you and is readable (mode 0600).",
        ) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StoreUnavailable(
                f"The {what} {path} is not a regular file.", fix="Move it aside and try again."
            )
        check_owned(path, st, what)
        if os.name == "posix" and st.st_mode & 0o077:
            os.fchmod(fd, 0o600)
            log.warning("%s was readable by other users; its mode is now 0600.", path)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(), st
    except OSError as exc:
        raise StoreUnavailable(f"Cannot read the {what} {path} ({exc.strerror}).") from None
    finally:
        os.close(fd)


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, mode 0600, never readable by others.

    The temporary file is created 0600 from the start (no chmod window) in the same
    directory (checked to be this user's own), fsynced, then renamed over the target
    (a symbolic link there is replaced, never followed).
    """
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
