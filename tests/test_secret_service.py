"""SecretStore against a REAL Secret Service: a private D-Bus session bus + gnome-keyring-daemon.

Each test gets its own bus and keyring daemon (HOME and XDG_* in a temporary directory, no
DISPLAY so no unlock dialog can appear), started in the foreground as children of the test
so teardown can end exactly them. What running it as root in a container needs:
``--foreground`` (a daemonized gnome-keyring is re-parented to PID 1 and never reaped),
an explicit ``--control-directory`` under a private ``XDG_RUNTIME_DIR``, the login password
on stdin with ``--unlock``, and a short socket path (unix sockets allow ~108 bytes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import keyring
import keyring.backend
import keyring.core
import pytest
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

from weaviate_auth_widget.errors import StoreUnavailable
from weaviate_auth_widget.secret_backends import os_keyring
from weaviate_auth_widget.secrets import SERVICE, SecretStore, reset_auto_choice

secretstorage = pytest.importorskip(
    "secretstorage", reason="SecretStorage is a test dependency (pip install -e '.[test]')"
)

pytestmark = pytest.mark.secret_service

SKIP_REASON = (
    "gnome-keyring-daemon and dbus-daemon are needed for the real Secret Service tests; "
    "install them with scripts/system-deps.sh (make test runs it)"
)
PASSWORD = "test-login-password"
T = TypeVar("T")

# The session bus config without <standard_session_servicedirs/>: nothing is D-Bus
# activated, so no second gnome-keyring (or an unlock prompter) can be started behind
# the fixture's back. With the stock config, the first call to org.freedesktop.secrets
# that races the fixture's daemon activates another, password-less one.
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def _forget_keyring_discovery() -> None:
    """keyring caches its backend list once per process; rediscover with the current env."""
    vars(keyring.backend.get_all_keyring).pop("saved_result", None)  # what its .reset() deletes


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    box: list[bytes] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return box[0].decode().strip() if box else ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a process group this module started (the daemon and anything D-Bus activated)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _bounded(fn: Callable[[], T], timeout: float) -> T:
    """Run a readiness check without risking a hang of the test itself."""
    box: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            box.append(fn())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    if errors:
        raise errors[0]
    if not box:
        raise TimeoutError(f"no answer within {timeout} s")
    return box[0]


def _secrets_name_owned() -> bool:
    """Ask the bus whether gnome-keyring owns its name (NameHasOwner never activates)."""
    with open_dbus_connection(bus="SESSION", auth_timeout=1) as conn:
        reply = conn.send_and_get_reply(message_bus.NameHasOwner("org.freedesktop.secrets"), timeout=1)
        return bool(reply.body[0])


def _default_collection_unlocked() -> bool:
    conn = secretstorage.dbus_init()
    try:
        return not secretstorage.get_default_collection(conn).is_locked()
    finally:
        conn.close()


def _wait_until_ready(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if _bounded(_secrets_name_owned, 2) and _bounded(_default_collection_unlocked, 2):
                return
        except Exception as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"gnome-keyring did not provide an unlocked default collection: {last!r}")


@pytest.fixture
def isolated_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let keyring rediscover its backend for this test and restore it afterwards."""
    for name in ("PYTHON_KEYRING_BACKEND", "WEAVIATE_AUTH_STORE_KEY", "WEAVIATE_AUTH_STORE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    _forget_keyring_discovery()
    reset_auto_choice()
    yield
    for thread in threading.enumerate():
        if thread.name == "weaviate-auth-keyring":
            thread.join(10)
    _forget_keyring_discovery()
    reset_auto_choice()


@pytest.fixture
def secret_service(monkeypatch: pytest.MonkeyPatch, isolated_keyring: None) -> Iterator[Path]:
    """A private session bus with an unlocked gnome-keyring on it; yields the scratch dir."""
    if not (shutil.which("dbus-daemon") and shutil.which("gnome-keyring-daemon")):
        pytest.skip(SKIP_REASON)
    root = Path(tempfile.mkdtemp(prefix="wgk-"))  # short: the bus socket path must fit
    dirs = {name: root / name for name in ("home", "run", "data", "config", "cache")}
    for path in dirs.values():
        path.mkdir(mode=0o700)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(dirs["home"]),
        "XDG_RUNTIME_DIR": str(dirs["run"]),
        "XDG_DATA_HOME": str(dirs["data"]),
        "XDG_CONFIG_HOME": str(dirs["config"]),
        "XDG_CACHE_HOME": str(dirs["cache"]),
        "LANG": "C.UTF-8",
    }
    config = root / "session.conf"
    config.write_text(BUS_CONFIG.format(socket=dirs["run"] / "bus"))
    started: list[subprocess.Popen[bytes]] = []
    try:
        bus = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile", "--print-address=1"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        started.append(bus)
        address = _read_line(bus, 10)
        if not address.startswith("unix:"):
            err = bus.stderr.read().decode(errors="replace") if bus.poll() is not None and bus.stderr else ""
            raise RuntimeError(f"dbus-daemon did not start: {address!r} {err}")
        env["DBUS_SESSION_BUS_ADDRESS"] = address
        daemon_log = (root / "gnome-keyring.log").open("wb")
        daemon = subprocess.Popen(
            [
                "gnome-keyring-daemon",
                "--foreground",
                "--unlock",
                "--components=secrets",
                f"--control-directory={dirs['run'] / 'keyring'}",
            ],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=daemon_log,
            start_new_session=True,
        )
        daemon_log.close()
        started.append(daemon)
        assert daemon.stdin is not None
        daemon.stdin.write(PASSWORD.encode())
        daemon.stdin.close()

        for name, value in env.items():
            if name != "PATH":
                monkeypatch.setenv(name, value)
        for name in ("DISPLAY", "WAYLAND_DISPLAY"):
            monkeypatch.delenv(name, raising=False)
        try:
            _wait_until_ready(10)
        except RuntimeError as exc:
            log = (root / "gnome-keyring.log").read_text(errors="replace")
            raise RuntimeError(f"{exc}\ngnome-keyring-daemon said:\n{log}") from None
        yield root
    finally:
        for proc in reversed(started):
            _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _stored_in_gnome_keyring(username: str) -> list[str]:
    conn = secretstorage.dbus_init()
    try:
        collection = secretstorage.get_default_collection(conn)
        return [
            item.get_secret().decode()
            for item in collection.search_items({"service": SERVICE, "username": username})
        ]
    finally:
        conn.close()


def _lock_default_collection() -> None:
    conn = secretstorage.dbus_init()
    try:
        collection = secretstorage.get_default_collection(conn)
        collection.lock()
        assert collection.is_locked()
    finally:
        conn.close()


def test_auto_uses_the_secret_service(secret_service: Path, tmp_path: Path) -> None:
    store = SecretStore("auto", directory=tmp_path, timeout=5)
    assert store.backend_name == "Secret Service"
    assert repr(store) == "SecretStore(backend_name='Secret Service')"

    store.set("prod", "api_key", "real-keyring-value")
    store.set("prod", "header:X-OpenAI-Api-Key", "sk-test")
    assert store.get("prod", "api_key") == "real-keyring-value"
    assert _stored_in_gnome_keyring("prod/api_key") == ["real-keyring-value"]
    assert _stored_in_gnome_keyring("prod/header:X-OpenAI-Api-Key") == ["sk-test"]
    store.set("prod", "api_key", "replaced")
    assert _stored_in_gnome_keyring("prod/api_key") == ["replaced"]  # replaced, not duplicated

    store.delete("prod", "api_key")
    store.delete("prod", "api_key")  # missing is fine
    assert store.get("prod", "api_key") is None
    assert _stored_in_gnome_keyring("prod/api_key") == []
    store.delete_profile("prod", ["header:X-OpenAI-Api-Key", "password"])
    assert _stored_in_gnome_keyring("prod/header:X-OpenAI-Api-Key") == []
    assert not (tmp_path / "secrets.json").exists()  # nothing went to the file store


def test_locked_collection_fails_fast_with_store_unavailable(secret_service: Path, tmp_path: Path) -> None:
    store = SecretStore("auto", directory=tmp_path, timeout=2)
    assert store.backend_name == "Secret Service"
    store.set("prod", "api_key", "value-before-lock")
    _lock_default_collection()

    for call in (
        lambda: store.get("prod", "api_key"),
        lambda: store.set("prod", "api_key", "value-after-lock"),
        lambda: store.delete_profile("prod", ["api_key", "password"]),
    ):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as err:
            call()
        assert time.monotonic() - started < 2 + 1.5
        message = str(err.value)
        assert "Secret Service" in message
        assert "Unlock your keyring" in message and "WEAVIATE_AUTH_STORE_KEY" in message
        assert "value-before-lock" not in message and "value-after-lock" not in message

    # the process keeps its choice; a fresh choice with the keyring locked is the file store
    assert SecretStore("auto", directory=tmp_path, timeout=2).backend_name == "Secret Service"
    reset_auto_choice()
    started = time.monotonic()
    assert SecretStore("auto", directory=tmp_path, timeout=2).backend_name == "file readable only by you"
    assert time.monotonic() - started < 2 + 1.5


def test_missing_dbus_means_the_file_store(
    monkeypatch: pytest.MonkeyPatch, isolated_keyring: None, tmp_path: Path
) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'no-such-bus'}")
    started = time.monotonic()
    store = SecretStore("auto", directory=tmp_path, timeout=2)
    assert store.backend_name == "file readable only by you"
    assert time.monotonic() - started < 2 + 1.5


def test_a_dbus_that_never_answers_never_hangs(
    monkeypatch: pytest.MonkeyPatch, isolated_keyring: None, tmp_path: Path
) -> None:
    """A bus socket that accepts connections and then says nothing, like a wedged daemon."""
    path = Path(tempfile.mkdtemp(prefix="wgk-")) / "bus"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={path}")
    try:
        started = time.monotonic()
        auto = SecretStore("auto", directory=tmp_path, timeout=1)  # keyring discovery hangs
        assert auto.backend_name == "file readable only by you"
        assert time.monotonic() - started < 1 + 1.5

        # The hung discovery worker ends once its connection closes, and keyring then sets
        # its global backend from that thread. Let it finish before choosing the backend
        # below, or it can overwrite that choice mid-test (seen in CI).
        # (os_keyring._stuck: the workers our timeout gave up on; no public handle exists)
        stuck = [worker for worker in os_keyring._stuck if worker.is_alive()]
        assert stuck, "keyring discovery should still be hanging on the silent bus"
        deadline = time.monotonic() + 10
        while any(worker.is_alive() for worker in stuck) and time.monotonic() < deadline:
            while held:  # keyring may try the bus again (another backend): close those too
                held.pop().close()
            time.sleep(0.05)
        assert not any(worker.is_alive() for worker in stuck), "the discovery worker did not end after EOF"

        from keyring.backends import SecretService

        monkeypatch.setattr(keyring.core, "_keyring_backend", SecretService.Keyring())
        explicit = SecretStore("keyring", timeout=1)
        assert explicit.backend_name == "Secret Service"
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="did not answer within 1 s"):
            explicit.get("prod", "api_key")
        assert time.monotonic() - started < 1 + 1.5
    finally:
        stop.set()
        acceptor.join(5)
        for conn in held:  # the stuck workers now see EOF and finish
            conn.close()
        server.close()
        shutil.rmtree(path.parent, ignore_errors=True)


def test_locked_collection_with_a_silent_prompter_times_out(secret_service: Path, tmp_path: Path) -> None:
    """An unlock prompt nobody answers (a desktop dialog on another screen) must not hang us."""
    prompter = open_dbus_connection(bus="SESSION")
    try:
        reply = prompter.send_and_get_reply(
            message_bus.RequestName("org.gnome.keyring.SystemPrompter"), timeout=2
        )
        assert reply.body[0] == 1  # primary owner; it will never answer a call
        store = SecretStore("auto", directory=tmp_path, timeout=2)
        assert store.backend_name == "Secret Service"
        _lock_default_collection()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="did not answer within 2 s") as err:
            store.get("prod", "api_key")
        elapsed = time.monotonic() - started
        assert 1.5 < elapsed < 2 + 1.5
        assert "Unlock your keyring" in str(err.value)
    finally:
        prompter.close()
