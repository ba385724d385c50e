"""SecretStore: the file backend (plain and encrypted), auto selection, bounded keyring calls, leaks.

The real Secret Service is exercised in test_secret_service.py; the keyring classes here
are small in-memory stand-ins for behaviours a real daemon cannot be made to show on
demand (hanging forever, failing with odd errors).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import pickle
import stat
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import filelock
import keyring
import keyring.core
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null
from keyring.compat import properties
from keyring.errors import PasswordDeleteError

from weaviate_auth_widget import secrets as secrets_mod
from weaviate_auth_widget.errors import InvalidProfile, StoreUnavailable
from weaviate_auth_widget.secret_backends import os_keyring
from weaviate_auth_widget.secrets import SERVICE, SecretStore, reset_auto_choice

REPO = Path(__file__).resolve().parents[1]
PLAIN = "file readable only by you"
ENCRYPTED = "encrypted file"


# -- stand-in keyrings (never viable for keyring's own discovery) -----------------------
class _NeverDiscovered(KeyringBackend):
    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("test backend")

    def get_password(self, service: str, username: str) -> str | None:
        raise NotImplementedError

    def set_password(self, service: str, username: str, password: str) -> None:
        raise NotImplementedError


class MemoryKeyring(_NeverDiscovered):
    """A working "OS keyring" held in memory; counts the calls it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}
        self.calls = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.calls += 1
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.calls += 1
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.calls += 1
        if self.items.pop((service, username), None) is None:
            raise PasswordDeleteError("missing")


class HangingKeyring(MemoryKeyring):
    """Blocks every call until released, like a keyring waiting on an unseen unlock prompt."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait(30)
        return super().get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self.release.wait(30)
        super().set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        self.release.wait(30)
        super().delete_password(service, username)


class LeakyErrorKeyring(MemoryKeyring):
    """Fails with an error whose text quotes the password, as a careless backend might."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError(f"could not store {password!r} for {username}")


class PlaintextKeyring(MemoryKeyring):
    """Looks like keyrings.alt's plaintext file keyring."""


PlaintextKeyring.__module__ = "keyrings.alt.file"


class EmptyChainer(chainer.ChainerBackend):
    backends: list[KeyringBackend] = []
    viable = False  # ChainerBackend claims viability outright; keep keyring's discovery off it

    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("test backend")


# -- fixtures ---------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No store key or keyring choice leaks in from the environment or between tests."""
    for name in ("WEAVIATE_AUTH_STORE_KEY", "WEAVIATE_AUTH_STORE_KEY_FILE", "PYTHON_KEYRING_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WEAVIATE_AUTH_DIR", str(tmp_path / "default-store"))
    monkeypatch.setattr(keyring.core, "_keyring_backend", fail.Keyring())
    reset_auto_choice()
    yield
    reset_auto_choice()
    for thread in threading.enumerate():  # released stand-ins finish; nothing carries over
        if thread.name == "weaviate-auth-keyring":
            thread.join(5)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


def use_keyring(monkeypatch: pytest.MonkeyPatch, backend: KeyringBackend) -> None:
    monkeypatch.setattr(keyring.core, "_keyring_backend", backend)
    reset_auto_choice()


def file_bytes(directory: Path) -> bytes:
    return (directory / "secrets.json").read_bytes()


# -- plain file backend -----------------------------------------------------------------
def test_plain_round_trip_delete_and_modes(store_dir: Path) -> None:
    store = SecretStore("file", directory=store_dir)
    assert store.backend_name == PLAIN
    assert store.get("prod", "api_key") is None

    store.set("prod", "api_key", "key-1")
    store.set("prod", "header:X-OpenAI-Api-Key", "sk-openai")
    store.set("dev.team_1", "password", "pw")
    assert store.get("prod", "api_key") == "key-1"
    assert store.get("prod", "header:X-OpenAI-Api-Key") == "sk-openai"
    store.set("prod", "api_key", "key-2")
    assert store.get("prod", "api_key") == "key-2"

    assert stat.S_IMODE(os.stat(store_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store_dir / "secrets.json").st_mode) == 0o600
    doc = json.loads(file_bytes(store_dir))
    assert doc["entries"][SERVICE]["prod/api_key"] == "key-2"

    store.delete("prod", "api_key")
    store.delete("prod", "api_key")  # missing is fine
    store.delete("never-saved", "bearer")
    assert store.get("prod", "api_key") is None
    store.delete_profile("prod", ["api_key", "header:X-OpenAI-Api-Key", "refresh_token"])
    assert store.get("prod", "header:X-OpenAI-Api-Key") is None
    assert store.get("dev.team_1", "password") == "pw"


def test_default_directory_is_the_package_store_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WEAVIATE_AUTH_DIR", str(tmp_path / "elsewhere"))
    SecretStore("file").set("p", "api_key", "v")
    assert (tmp_path / "elsewhere" / "secrets.json").exists()


def test_a_widened_file_mode_is_tightened(store_dir: Path) -> None:
    store = SecretStore("file", directory=store_dir)
    store.set("p", "api_key", "v")
    os.chmod(store_dir / "secrets.json", 0o644)
    assert store.get("p", "api_key") == "v"
    assert stat.S_IMODE(os.stat(store_dir / "secrets.json").st_mode) == 0o600


def test_names_are_validated(store_dir: Path) -> None:
    store = SecretStore("file", directory=store_dir)
    for profile in ("", "a/b", "a b", "x" * 65, "..", "é"):
        with pytest.raises(InvalidProfile):
            store.set(profile, "api_key", "v")
    for kind in ("", "with space", "tab\t", "x" * 129):
        with pytest.raises(InvalidProfile):
            store.get("p", kind)
    with pytest.raises(TypeError):
        store.set("p", "api_key", b"bytes")  # type: ignore[arg-type]
    assert not (store_dir / "secrets.json").exists()


def test_unknown_backend_and_bad_timeout() -> None:
    with pytest.raises(StoreUnavailable, match="auto, keyring, file, encrypted-file"):
        SecretStore("vault")
    with pytest.raises(ValueError):
        SecretStore("file", timeout=0)


# -- encrypted file backend -------------------------------------------------------------
def test_encrypted_round_trip_hides_the_plaintext(store_dir: Path) -> None:
    value = "s3cr3t-api-key-value-0123456789"
    store = SecretStore("encrypted-file", directory=store_dir, key="correct horse battery staple")
    assert store.backend_name == ENCRYPTED
    store.set("prod", "api_key", value)
    store.set("prod", "refresh_token", "rt-" + value)
    assert store.get("prod", "api_key") == value
    assert stat.S_IMODE(os.stat(store_dir / "secrets.json").st_mode) == 0o600

    raw = file_bytes(store_dir)
    assert value.encode() not in raw
    for shift in range(3):  # base64 of the value at every alignment inside a larger blob
        chunk = base64.b64encode(b"x" * shift + value.encode())[4:-4]
        assert chunk not in raw
        assert base64.urlsafe_b64encode(b"x" * shift + value.encode())[4:-4] not in raw
    assert b"prod/api_key" not in raw  # entry names are encrypted too

    # "file" with a key is the encrypted store as well, and reads the same data
    again = SecretStore("file", directory=store_dir, key="correct horse battery staple")
    assert again.backend_name == ENCRYPTED
    assert again.get("prod", "refresh_token") == "rt-" + value
    again.delete("prod", "api_key")
    assert store.get("prod", "api_key") is None


def test_every_write_uses_a_fresh_nonce(store_dir: Path) -> None:
    store = SecretStore("encrypted-file", directory=store_dir, key=b"\x00binary key\xff")
    store.set("p", "api_key", "same")
    first = json.loads(file_bytes(store_dir))
    store.set("p", "api_key", "same")
    second = json.loads(file_bytes(store_dir))
    assert first["nonce"] != second["nonce"]
    assert first["ciphertext"] != second["ciphertext"]
    assert first["kdf"] == second["kdf"]


def test_key_from_env_and_from_key_file(
    monkeypatch: pytest.MonkeyPatch, store_dir: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("WEAVIATE_AUTH_STORE_KEY", "env-key")
    store = SecretStore("auto", directory=store_dir)
    assert store.backend_name == ENCRYPTED
    store.set("p", "api_key", "v")
    monkeypatch.delenv("WEAVIATE_AUTH_STORE_KEY")

    key_file = tmp_path / "store.key"
    key_file.write_text("env-key\n")  # a trailing newline is not part of the key
    key_file.chmod(0o600)
    monkeypatch.setenv("WEAVIATE_AUTH_STORE_KEY_FILE", str(key_file))
    assert SecretStore("file", directory=store_dir).get("p", "api_key") == "v"

    monkeypatch.setenv("WEAVIATE_AUTH_STORE_KEY_FILE", str(tmp_path / "missing.key"))
    with pytest.raises(StoreUnavailable, match="key file"):
        SecretStore("file", directory=store_dir)
    key_file.write_text("")
    monkeypatch.setenv("WEAVIATE_AUTH_STORE_KEY_FILE", str(key_file))
    with pytest.raises(StoreUnavailable, match="empty"):
        SecretStore("file", directory=store_dir)


def test_encrypted_file_backend_requires_a_key(store_dir: Path) -> None:
    with pytest.raises(StoreUnavailable, match="WEAVIATE_AUTH_STORE_KEY"):
        SecretStore("encrypted-file", directory=store_dir)


def test_wrong_key_is_an_error_and_never_overwrites(store_dir: Path) -> None:
    SecretStore("encrypted-file", directory=store_dir, key="RIGHT-KEY-1").set("p", "api_key", "keep-me")
    before = file_bytes(store_dir)
    wrong = SecretStore("encrypted-file", directory=store_dir, key="WRONG-KEY-2")
    for call in (
        lambda: wrong.get("p", "api_key"),
        lambda: wrong.set("p", "api_key", "clobber"),
        lambda: wrong.set("other", "password", "new"),
        lambda: wrong.delete("p", "api_key"),
        lambda: wrong.delete_profile("p", ["api_key", "password"]),
    ):
        with pytest.raises(StoreUnavailable) as err:
            call()
        assert "does not match" in str(err.value)
        assert "WEAVIATE_AUTH_STORE_KEY" in str(err.value)
        assert "RIGHT-KEY-1" not in str(err.value) and "WRONG-KEY-2" not in str(err.value)
        assert file_bytes(store_dir) == before
    assert SecretStore("file", directory=store_dir, key="RIGHT-KEY-1").get("p", "api_key") == "keep-me"


def test_encrypted_file_without_a_key_is_an_error_not_an_overwrite(store_dir: Path) -> None:
    SecretStore("encrypted-file", directory=store_dir, key="k").set("p", "api_key", "keep-me")
    before = file_bytes(store_dir)
    for backend in ("file", "auto"):
        store = SecretStore(backend, directory=store_dir)
        assert store.backend_name == PLAIN
        with pytest.raises(StoreUnavailable, match="encrypted and no store key"):
            store.get("p", "api_key")
        with pytest.raises(StoreUnavailable, match="encrypted and no store key"):
            store.set("p", "api_key", "plain")
        with pytest.raises(StoreUnavailable, match="encrypted and no store key"):
            store.delete("p", "api_key")
        assert file_bytes(store_dir) == before


def test_plain_file_is_migrated_to_encrypted_on_next_write(store_dir: Path) -> None:
    SecretStore("file", directory=store_dir).set("old", "api_key", "plain-value-1")
    keyed = SecretStore("file", directory=store_dir, key="k")
    assert keyed.get("old", "api_key") == "plain-value-1"  # readable before migrating
    assert b"plain-value-1" in file_bytes(store_dir)
    keyed.set("new", "password", "pw")
    raw = file_bytes(store_dir)
    assert b"plain-value-1" not in raw
    assert json.loads(raw)["cipher"] == "AES-256-GCM"
    assert keyed.get("old", "api_key") == "plain-value-1"
    assert keyed.get("new", "password") == "pw"


def _tamper_kdf(doc: dict) -> dict:  # type: ignore[type-arg]
    doc["kdf"]["n"] = 2**14
    return doc


def _tamper_ciphertext(doc: dict) -> dict:  # type: ignore[type-arg]
    data = bytearray(base64.b64decode(doc["ciphertext"]))
    data[0] ^= 1
    doc["ciphertext"] = base64.b64encode(bytes(data)).decode()
    return doc


def _future_version(doc: dict) -> dict:  # type: ignore[type-arg]
    doc["version"] = 99
    return doc


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_tamper_kdf, "does not match"),  # the KDF parameters are authenticated
        (_tamper_ciphertext, "does not match"),
        (_future_version, "newer version"),
    ],
)
def test_tampered_encrypted_file_is_refused(store_dir: Path, tamper: object, message: str) -> None:
    SecretStore("encrypted-file", directory=store_dir, key="k").set("p", "api_key", "v")
    doc = json.loads(file_bytes(store_dir))
    (store_dir / "secrets.json").write_text(json.dumps(tamper(doc)))  # type: ignore[operator]
    before = file_bytes(store_dir)
    store = SecretStore("encrypted-file", directory=store_dir, key="k")
    with pytest.raises(StoreUnavailable, match=message):
        store.get("p", "api_key")
    with pytest.raises(StoreUnavailable, match=message):
        store.set("p", "api_key", "w")
    assert file_bytes(store_dir) == before


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xffnot json at all",
        b"",
        b"[1, 2, 3]",
        b'{"format": "something-else", "version": 1, "cipher": null, "entries": {}}',
        b'{"format": "weaviate-auth-widget/secrets", "version": 1, "cipher": null, "entries": {"s": {"u": 5}}}',
        b'{"format": "weaviate-auth-widget/secrets", "version": 1, "cipher": "ROT13"}',
        b'{"format": "weaviate-auth-widget/secrets", "version": 1, "cipher": "AES-256-GCM", '
        b'"kdf": {"name": "scrypt", "n": 1073741824, "r": 8, "p": 1, "salt": "AAAAAAAAAAAAAAAAAAAAAA=="}, '
        b'"nonce": "AAAAAAAAAAAAAAAA", "ciphertext": "AAAA"}',
        b'{"format": "weaviate-auth-widget/secrets", "version": 1, "cipher": "AES-256-GCM", '
        b'"kdf": {"name": "scrypt", "n": 16384, "r": 8, "p": 1, "salt": "AAAAAAAAAAAAAAAAAAAAAA=="}, '
        b'"nonce": "!!", "ciphertext": "AAAA"}',
    ],
)
@pytest.mark.parametrize("key", [None, "k"])
def test_corrupt_file_is_an_error_and_left_in_place(store_dir: Path, content: bytes, key: str | None) -> None:
    store_dir.mkdir(mode=0o700)
    (store_dir / "secrets.json").write_bytes(content)
    store = SecretStore("file", directory=store_dir, key=key)
    for call in (
        lambda: store.get("p", "api_key"),
        lambda: store.set("p", "api_key", "v"),
        lambda: store.delete_profile("p", ["api_key"]),
    ):
        with pytest.raises(StoreUnavailable, match=r"not a valid secret store file|newer version"):
            call()
        assert file_bytes(store_dir) == content


def test_a_held_lock_times_out_with_store_unavailable(store_dir: Path) -> None:
    store = SecretStore("file", directory=store_dir, timeout=0.3)
    store.set("p", "api_key", "v")
    with filelock.FileLock(str(store_dir / ".secrets.json.lock")):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="locked by another process"):
            store.set("p", "api_key", "w")
        assert time.monotonic() - started < 2
        assert store.get("p", "api_key") == "v"  # reads need no lock


_WRITER = """
import sys, time
from pathlib import Path
from weaviate_auth_widget.secrets import SecretStore

directory, tag, key, go = Path(sys.argv[1]), sys.argv[2], sys.argv[3] or None, Path(sys.argv[4])
store = SecretStore("file", directory=directory, key=key, timeout=30)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
for i in range(100):
    store.set(f"{tag}-{i}", "api_key", f"value-{tag}-{i}")
"""


@pytest.mark.parametrize("key", ["", "shared-key"], ids=["plain", "encrypted"])
def test_two_processes_writing_at_once_lose_nothing(store_dir: Path, tmp_path: Path, key: str) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(store_dir), tag, key, str(go)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        go.touch()
        for proc in procs:
            assert proc.wait(timeout=60) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    store = SecretStore("file", directory=store_dir, key=key or None)
    for tag in ("a", "b"):
        for i in range(100):
            assert store.get(f"{tag}-{i}", "api_key") == f"value-{tag}-{i}"


# -- auto selection -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "backend",
    [fail.Keyring(), null.Keyring(), EmptyChainer(), PlaintextKeyring()],
    ids=["fail", "null", "empty-chainer", "keyrings.alt-plaintext"],
)
def test_no_real_keyring_means_the_file_store(
    monkeypatch: pytest.MonkeyPatch, store_dir: Path, backend: KeyringBackend
) -> None:
    use_keyring(monkeypatch, backend)
    store = SecretStore("auto", directory=store_dir)
    assert store.backend_name == PLAIN
    store.set("p", "api_key", "v")
    assert store.get("p", "api_key") == "v"
    assert (store_dir / "secrets.json").exists()
    assert SecretStore("auto", directory=store_dir, key="k").backend_name == ENCRYPTED
    with pytest.raises(StoreUnavailable, match="No OS keyring"):
        SecretStore("keyring")


def test_a_working_keyring_is_used_and_the_choice_is_cached(
    monkeypatch: pytest.MonkeyPatch, store_dir: Path
) -> None:
    ring = MemoryKeyring()
    use_keyring(monkeypatch, ring)
    store = SecretStore("auto", directory=store_dir)
    assert store.backend_name == ring.name
    probe_calls = ring.calls
    assert probe_calls == 3  # set, get, delete of a throwaway entry
    assert ring.items == {}
    store.set("prod", "header:X-Cohere-Api-Key", "v")
    assert ring.items == {(SERVICE, "prod/header:X-Cohere-Api-Key"): "v"}
    assert store.get("prod", "header:X-Cohere-Api-Key") == "v"
    store.delete_profile("prod", ["header:X-Cohere-Api-Key", "api_key"])
    assert ring.items == {}
    assert not (store_dir / "secrets.json").exists()

    calls = ring.calls
    assert SecretStore("auto", directory=store_dir).backend_name == ring.name
    assert ring.calls == calls  # no second probe in this process
    # a key in the environment means the encrypted file, whatever keyring exists
    assert SecretStore("auto", directory=store_dir, key="k").backend_name == ENCRYPTED
    assert SecretStore("keyring", key="ignored").backend_name == ring.name


def test_chainer_is_unwrapped_to_its_real_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    ring = MemoryKeyring()

    class Chain(EmptyChainer):
        backends: list[KeyringBackend] = [PlaintextKeyring(), ring]

    use_keyring(monkeypatch, Chain())
    store = SecretStore("auto")
    store.set("p", "api_key", "v")
    assert ring.items == {(SERVICE, "p/api_key"): "v"}


def test_backend_display_names() -> None:
    class Fake(MemoryKeyring):
        pass

    for module, cls, expected in [
        ("keyring.backends.SecretService", "Keyring", "Secret Service"),
        ("keyring.backends.libsecret", "Keyring", "Secret Service"),
        ("keyring.backends.macOS", "Keyring", "macOS Keychain"),
        ("keyring.backends.Windows", "WinVaultKeyring", "Windows Credential Locker"),
        ("keyring.backends.kwallet", "DBusKeyring", "KWallet"),
        ("keyrings.cryptfile.cryptfile", "CryptFileKeyring", "cryptfile CryptFileKeyring"),
    ]:
        Fake.__module__, Fake.__name__ = module, cls
        assert os_keyring.display_name(Fake()) == expected


def test_a_hanging_keyring_never_hangs_a_call(monkeypatch: pytest.MonkeyPatch, store_dir: Path) -> None:
    ring = HangingKeyring()
    use_keyring(monkeypatch, ring)
    try:
        started = time.monotonic()
        auto = SecretStore("auto", directory=store_dir, timeout=0.5)  # the probe hangs
        assert auto.backend_name == PLAIN
        assert time.monotonic() - started < 2

        explicit = SecretStore("keyring", timeout=0.5)
        assert explicit.backend_name == ring.name
        for call in (
            lambda: explicit.get("p", "api_key"),
            lambda: explicit.set("p", "api_key", "v"),
            lambda: explicit.delete("p", "api_key"),
        ):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as err:
                call()
            assert time.monotonic() - started < 2
            assert "did not answer within 0.5 s" in str(err.value) or "earlier calls" in str(err.value)
            assert "Unlock your keyring" in str(err.value)
    finally:
        ring.release.set()


def test_stuck_workers_make_calls_fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    ring = HangingKeyring()
    use_keyring(monkeypatch, ring)
    store = SecretStore("keyring", timeout=0.2)
    try:
        for _ in range(os_keyring.MAX_STUCK_WORKERS):
            with pytest.raises(StoreUnavailable, match="did not answer"):
                store.get("p", "api_key")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="earlier calls"):
            store.get("p", "api_key")
        assert time.monotonic() - started < 0.1
    finally:
        ring.release.set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # once the keyring answers again, calls go through
        try:
            assert store.get("p", "api_key") is None
            break
        except StoreUnavailable:
            time.sleep(0.05)
    else:
        pytest.fail("calls kept failing after the keyring recovered")


# -- no secret leaks ----------------------------------------------------------------------
def test_secrets_never_reach_logs_reprs_or_errors(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, store_dir: Path, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    values = [f"TOPSECRET-{i}-{os.urandom(6).hex()}" for i in range(4)]
    store_key = "STOREKEY-" + os.urandom(6).hex()
    shown: list[str] = []

    def record_error(call: object) -> None:
        with pytest.raises(StoreUnavailable) as err:
            call()  # type: ignore[operator]
        exc = err.value
        shown.extend([str(exc), repr(exc), json.dumps(exc.to_dict()), *traceback.format_exception(exc)])

    plain = SecretStore("file", directory=store_dir / "plain")
    encrypted = SecretStore("encrypted-file", directory=store_dir / "enc", key=store_key)
    for store in (plain, encrypted):
        store.set("p", "api_key", values[0])
        store.set("p", "header:X-Api", values[1])
        assert store.get("p", "api_key") == values[0]
        store.delete("p", "api_key")
        store.delete_profile("p", ["header:X-Api"])
        store.set("q", "password", values[2])
        shown.extend([repr(store), str(store), repr(vars(store)), repr(store._keyring.__dict__)])
    with pytest.raises(TypeError):
        pickle.dumps(encrypted)

    # error paths: wrong key, missing key, corrupt file, a keyring quoting the value, a hung keyring
    record_error(lambda: SecretStore("file", directory=store_dir / "enc", key=values[3]).get("q", "password"))
    record_error(lambda: SecretStore("file", directory=store_dir / "enc").set("q", "password", values[3]))
    (store_dir / "plain" / "secrets.json").write_text('{"entries": "' + values[2] + '"')
    record_error(lambda: plain.get("q", "password"))
    record_error(lambda: plain.set("q", "password", values[3]))

    use_keyring(monkeypatch, LeakyErrorKeyring())
    leaky = SecretStore("keyring")
    record_error(lambda: leaky.set("p", "api_key", values[3]))
    hanging = HangingKeyring()
    use_keyring(monkeypatch, hanging)
    try:
        slow = SecretStore("keyring", timeout=0.2)
        record_error(lambda: slow.set("p", "api_key", values[3]))
        shown.extend([repr(slow), repr(vars(slow))])
    finally:
        hanging.release.set()

    key_file = tmp_path / "k"
    key_file.write_text(store_key)
    key_file.chmod(0o644)
    monkeypatch.setenv("WEAVIATE_AUTH_STORE_KEY_FILE", str(key_file))
    shown.append(repr(SecretStore("file", directory=store_dir / "enc")))

    haystack = "\n".join([caplog.text, *shown, *(str(r.args) for r in caplog.records)])
    for secret in [*values, store_key]:
        assert secret not in haystack
    assert "***" in haystack  # the leaky backend's message was redacted, not dropped
    assert "DEBUG" in {r.levelname for r in caplog.records}


def test_reset_auto_choice_is_exported() -> None:
    assert secrets_mod.reset_auto_choice is os_keyring.reset_auto_choice


def test_a_value_bound_to_a_scope_is_read_back_only_under_it(store_dir: Path) -> None:
    """What AuthService binds secrets with (a profile's URL + method): a value kept for one
    scope is absent under another; one kept by an earlier version (no scope) is read as is."""
    store = SecretStore("file", directory=store_dir)
    store.set("p", "api_key", "k-bound-0123", scope="a" * 32)
    assert store.get("p", "api_key", scope="a" * 32) == "k-bound-0123"
    assert store.get("p", "api_key", scope="b" * 32) is None
    assert store.get("p", "api_key") == "k-bound-0123"
    store.set("p", "password", "pw-unbound-0123")
    assert store.get("p", "password", scope="b" * 32) == "pw-unbound-0123"
    with pytest.raises(InvalidProfile):
        store.set("p", "api_key", "v", scope="a:b")
