"""The file secret backend: ``<directory>/secrets.json``, used when no OS keyring works.

The file is 0600 in a 0700 directory and is replaced atomically under a cross-process
lock (``.secrets.json.lock`` next to it); every change is a read-modify-write inside the
lock, so concurrent writers never lose each other's entries.

Plain mode keeps the values as JSON, protected by file permissions only ("file readable
only by you"). Encrypted mode (a store key is configured) keeps them AES-256-GCM
encrypted with a key derived by scrypt from the store key and a random salt kept in the
file; every write uses a fresh nonce, and the file's format, version and KDF parameters
are bound into the authenticated data.

Safety rules, because the file may hold the only copy of a user's credentials:

* a wrong key, a missing key for an encrypted file, a corrupt file or a file from a newer
  version raise :class:`~weaviate_auth_widget.errors.StoreUnavailable` and the file is
  never rewritten;
* a *plain* file opened with a key stays readable and is migrated to the encrypted form
  by the next write that changes it (a set, or a delete that removes something);
* no message or log line carries a stored value or the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import filelock
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordDeleteError

from ..errors import StoreUnavailable
from ..paths import check_private_dir, ensure_private_dir, read_private_file, write_private_file

log = logging.getLogger(__name__)

FILE_NAME = "secrets.json"
LOCK_NAME = ".secrets.json.lock"
FORMAT = "weaviate-auth-widget/secrets"
VERSION = 1
CIPHER = "AES-256-GCM"

PLAIN_NAME = "file readable only by you"
ENCRYPTED_NAME = "encrypted file"

KEY_ENV = "WEAVIATE_AUTH_STORE_KEY"
KEY_FILE_ENV = "WEAVIATE_AUTH_STORE_KEY_FILE"

# scrypt cost for new files: ~0.1 s and 32 MiB once per process (the result is cached).
_SCRYPT_N = 2**15
_SCRYPT_R = 8
_SCRYPT_P = 1
# Refuse parameters from a file that would make reading it a denial of service.
_MAX_SCRYPT_N = 2**18
_MAX_SCRYPT_R = 32
_MAX_SCRYPT_P = 16
_SALT_BYTES = 16
_NONCE_BYTES = 12

_KEY_FIX = (
    f"Set {KEY_ENV} or {KEY_FILE_ENV} to the key it was written with. The file was left unchanged; "
    "to start an empty store instead, move it aside (the secrets in it will have to be entered again)."
)
_CORRUPT_FIX = (
    "It was left unchanged; restore it from a backup, or move it aside to start an empty store "
    "(the secrets in it will have to be entered again)."
)

Entries = dict[str, dict[str, str]]


class StoreKey:
    """The configured store key (a passphrase), masked everywhere it could be shown.

    Wrapping the bytes keeps them out of ``repr``/``vars`` dumps of the objects holding
    them, and refusing to pickle keeps them from being shipped to another process by accident.
    """

    __slots__ = ("_material",)

    def __init__(self, material: bytes) -> None:
        if not material:
            raise StoreUnavailable("The secret store key is empty.", fix=f"Set {KEY_ENV} to a non-empty key.")
        self._material = bytes(material)

    def reveal(self) -> bytes:
        """The raw passphrase bytes; only for key derivation."""
        return self._material

    def __repr__(self) -> str:
        return "StoreKey(<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("the secret store key cannot be pickled")

    def __copy__(self) -> StoreKey:
        return self  # immutable: copies may share it

    def __deepcopy__(self, memo: dict[int, object]) -> StoreKey:
        return self


@dataclass(frozen=True)
class _Kdf:
    """scrypt parameters and salt, as kept in (and authenticated with) the file."""

    salt: bytes
    n: int = _SCRYPT_N
    r: int = _SCRYPT_R
    p: int = _SCRYPT_P

    def to_json(self) -> dict[str, Any]:
        return {"name": "scrypt", "salt": _b64(self.salt), "n": self.n, "r": self.r, "p": self.p}

    def aad(self) -> bytes:
        """Authenticated data: tampering with version or KDF parameters fails decryption."""
        return (
            f"{FORMAT};version={VERSION};cipher={CIPHER};kdf=scrypt;"
            f"n={self.n};r={self.r};p={self.p};salt={_b64(self.salt)}"
        ).encode("ascii")


# Derived keys, so that repeated SecretStore calls do not pay for scrypt again.
# Keyed by a digest of the passphrase (never the passphrase itself) plus salt and cost.
_DERIVED: dict[tuple[bytes, bytes, int, int, int], bytes] = {}
_DERIVED_LOCK = threading.Lock()
_DERIVED_MAX = 32


def _derive(key: StoreKey, kdf: _Kdf) -> bytes:
    cache_key = (hashlib.sha256(key.reveal()).digest(), kdf.salt, kdf.n, kdf.r, kdf.p)
    with _DERIVED_LOCK:
        cached = _DERIVED.get(cache_key)
    if cached is not None:
        return cached
    derived = Scrypt(salt=kdf.salt, length=32, n=kdf.n, r=kdf.r, p=kdf.p).derive(key.reveal())
    with _DERIVED_LOCK:
        if len(_DERIVED) >= _DERIVED_MAX:
            _DERIVED.clear()
        _DERIVED[cache_key] = derived
    return derived


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes | None:
    """Decoded bytes, or None when ``text`` is not strict base64."""
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None


def _json_or_none(raw: bytes) -> Any:
    """Parsed JSON, or None; parse errors are dropped because their text quotes the input."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass
class _Snapshot:
    """What one read of the file found: its entries and how it was stored."""

    entries: Entries
    kdf: _Kdf | None  # None for a plain or missing file
    exists: bool


class FileKeyring(KeyringBackend):
    """keyring backend over ``secrets.json``, so SecretStore talks to every store alike.

    Never chosen by keyring's own discovery (its priority raises); SecretStore creates it
    explicitly when no OS keyring works or when the file store is configured.
    """

    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("used only through weaviate_auth_widget.secrets.SecretStore")

    def __init__(self, directory: Path, *, key: StoreKey | None = None, timeout: float = 5.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.directory = Path(directory)
        self.path = self.directory / FILE_NAME
        self._key = key
        self._timeout = timeout
        self._lock = filelock.FileLock(str(self.directory / LOCK_NAME), timeout=timeout, mode=0o600)

    @property
    def encrypted(self) -> bool:
        """True when a key is configured: reads decrypt, and every write encrypts."""
        return self._key is not None

    @property
    def display_name(self) -> str:
        return ENCRYPTED_NAME if self.encrypted else PLAIN_NAME

    def __repr__(self) -> str:
        return f"FileKeyring({str(self.path)!r}, encrypted={self.encrypted})"

    __str__ = __repr__

    # -- keyring API ------------------------------------------------------------
    def get_password(self, service: str, username: str) -> str | None:
        """Read without the lock: writes replace the file atomically, so a read sees
        either the old or the new complete file."""
        return self._read().entries.get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._locked():
            snap = self._read()
            snap.entries.setdefault(service, {})[username] = password
            self._write(snap)

    def delete_password(self, service: str, username: str) -> None:
        if not self.delete_many(service, [username]):
            raise PasswordDeleteError("no such entry")

    def delete_many(self, service: str, usernames: Iterable[str]) -> int:
        """Delete several entries in one locked read-modify-write; returns how many existed."""
        wanted = list(usernames)
        with self._locked():
            snap = self._read()
            bucket = snap.entries.get(service, {})
            removed = 0
            for username in wanted:
                if bucket.pop(username, None) is not None:
                    removed += 1
            if removed:
                if not bucket:
                    snap.entries.pop(service, None)
                self._write(snap)
            return removed

    # -- file I/O -----------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            ensure_private_dir(self.directory)
        except OSError as exc:  # StoreUnavailable (not ours, a link) passes through
            raise StoreUnavailable(
                f"Cannot create the secret store directory {self.directory} ({exc.strerror}).",
                fix="Check the permissions of its parent directory or set WEAVIATE_AUTH_DIR.",
            ) from None
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise StoreUnavailable(
                f"{self.path} is locked by another process (waited {self._timeout:g} s).",
                fix=f"Try again. If it persists and no Jupyter process is running, delete {self.directory / LOCK_NAME}.",
            ) from None
        except OSError as exc:
            raise StoreUnavailable(f"Cannot lock {self.path} ({exc.strerror}).") from None
        try:
            yield
        finally:
            self._lock.release()

    def _read(self) -> _Snapshot:
        """Only from a directory and a file of this user's own, never through a symbolic
        link; a widened mode is put back to 0600 (see :mod:`..paths`)."""
        check_private_dir(self.directory)
        found = read_private_file(self.path, "secret store file")
        if found is None:
            return _Snapshot(entries={}, kdf=None, exists=False)
        raw = found[0]
        doc = _json_or_none(raw)
        if doc is None:
            self._corrupt("it is not JSON")
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            self._corrupt("it is not a weaviate-auth-widget secret store")
        version = doc.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            self._corrupt("it has no version")
        if version > VERSION:
            raise StoreUnavailable(
                f"{self.path} was written by a newer version of weaviate-auth-widget (format {version}).",
                fix="Upgrade weaviate-auth-widget; the file was left unchanged.",
            )
        cipher = doc.get("cipher")
        if cipher is None:
            return _Snapshot(entries=self._entries(doc.get("entries")), kdf=None, exists=True)
        if cipher != CIPHER:
            self._corrupt("its cipher is unknown")
        return self._decrypt(doc)

    def _decrypt(self, doc: dict[str, Any]) -> _Snapshot:
        kdf = self._kdf(doc.get("kdf"))
        nonce = _unb64(doc.get("nonce"))
        ciphertext = _unb64(doc.get("ciphertext"))
        if nonce is None or ciphertext is None:
            self._corrupt("its nonce or ciphertext is not base64")
        if len(nonce) != _NONCE_BYTES:
            self._corrupt("its nonce has the wrong length")
        if self._key is None:
            raise StoreUnavailable(
                f"{self.path} is encrypted and no store key is configured.",
                fix=_KEY_FIX,
            )
        try:
            plaintext = AESGCM(_derive(self._key, kdf)).decrypt(nonce, ciphertext, kdf.aad())
        except InvalidTag:
            plaintext = None
        if plaintext is None:
            raise StoreUnavailable(
                f"The store key does not match the one {self.path} was written with "
                "(or the file was altered).",
                fix=_KEY_FIX,
            )
        inner = _json_or_none(plaintext)
        if not isinstance(inner, dict):
            self._corrupt("its decrypted content is not an object")
        return _Snapshot(entries=self._entries(inner.get("entries")), kdf=kdf, exists=True)

    def _kdf(self, data: object) -> _Kdf:
        if not isinstance(data, dict) or data.get("name") != "scrypt":
            self._corrupt("its key derivation is unknown")
        n, r, p = data.get("n"), data.get("r"), data.get("p")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (n, r, p)):
            self._corrupt("its key derivation parameters are not integers")
        assert isinstance(n, int) and isinstance(r, int) and isinstance(p, int)
        if not (
            2 <= n <= _MAX_SCRYPT_N
            and n & (n - 1) == 0
            and 1 <= r <= _MAX_SCRYPT_R
            and 1 <= p <= _MAX_SCRYPT_P
        ):
            self._corrupt("its key derivation parameters are out of range")
        salt = _unb64(data.get("salt"))
        if salt is None:
            self._corrupt("its salt is not base64")
        if len(salt) < _SALT_BYTES:
            self._corrupt("its salt is too short")
        return _Kdf(salt=salt, n=n, r=r, p=p)

    def _entries(self, data: object) -> Entries:
        if not isinstance(data, dict):
            self._corrupt("it has no entries")
        entries: Entries = {}
        for service, bucket in data.items():
            if not isinstance(bucket, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in bucket.items()
            ):
                self._corrupt("an entry is not text")
            entries[str(service)] = dict(bucket)
        return entries

    def _write(self, snap: _Snapshot) -> None:
        doc: dict[str, Any] = {"format": FORMAT, "version": VERSION}
        if self._key is None:
            doc["cipher"] = None
            doc["entries"] = snap.entries
        else:
            if snap.kdf is None:
                if snap.exists:
                    log.info("Encrypting %s now that a store key is configured.", self.path)
                kdf = _Kdf(salt=os.urandom(_SALT_BYTES))
            else:
                kdf = snap.kdf
            nonce = os.urandom(_NONCE_BYTES)
            plaintext = json.dumps({"entries": snap.entries}, sort_keys=True).encode("utf-8")
            ciphertext = AESGCM(_derive(self._key, kdf)).encrypt(nonce, plaintext, kdf.aad())
            doc.update(cipher=CIPHER, kdf=kdf.to_json(), nonce=_b64(nonce), ciphertext=_b64(ciphertext))
        data = json.dumps(doc, indent=1, sort_keys=True).encode("utf-8") + b"\n"
        try:
            write_private_file(self.path, data)
        except OSError as exc:
            raise StoreUnavailable(
                f"Cannot write {self.path} ({exc.strerror}).",
                fix="Check free disk space and the permissions of its directory; the previous file is unchanged.",
            ) from None

    def _corrupt(self, reason: str) -> NoReturn:
        raise StoreUnavailable(f"{self.path} is not a valid secret store file: {reason}.", fix=_CORRUPT_FIX)
