"""Kernels and the broker, for real: a ``jupyter server`` subprocess with the weaviate-auth
extension, kernels it starts (driven over its websocket API), the sandbox Weaviate and
OpenID provider, and restarts of the server on new ports with new tokens.

Nothing here touches the real user's files: HOME, the Jupyter dirs and the store are
all under the test's tmp directory.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import QuietHandler, password_profile, serving
from weaviate_auth_widget import broker_transport, chain, kernel
from weaviate_auth_widget.kernel import BROKER_FILE_ENV, BROKER_HEADER, BrokerClient, find_broker
from weaviate_auth_widget.tokens import CachingTokenSource

pytestmark = [pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parent.parent
SERVER_START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(base: Path) -> dict[str, str]:
    """An environment whose every user-level path is under ``base``."""
    dirs = {
        "HOME": base / "home",
        "JUPYTER_RUNTIME_DIR": base / "runtime",
        "JUPYTER_CONFIG_DIR": base / "config",
        "JUPYTER_DATA_DIR": base / "data",
        "IPYTHONDIR": base / "ipython",
        "WEAVIATE_AUTH_DIR": base / "store",
        "XDG_CONFIG_HOME": base / "xdg-config",
        "XDG_DATA_HOME": base / "xdg-data",
        "XDG_RUNTIME_DIR": base / "xdg-runtime",
    }
    for path in dirs.values():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEAVIATE_", "JUPYTER_", "JPY_"))}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)  # no OS keyring: the file store in WEAVIATE_AUTH_DIR
    env.update({k: str(v) for k, v in dirs.items()})
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PYTHONPATH"] = str(REPO)
    env["WEAVIATE_AUTH_STORE_BACKEND"] = "file"
    env["WEAVIATE_AUTH_AUDIT_LOG"] = str(base / "audit.jsonl")
    return env


class PortTaken(RuntimeError):
    """Another process bound the free port we picked before the server did."""


class JupyterServer:
    """One ``python -m jupyter_server`` subprocess on loopback, with a random token."""

    def __init__(
        self, env: dict[str, str], root: Path, *, port: int | None = None, extra: list[str] | None = None
    ):
        self.env = env
        self.root = root
        self.port = port or free_port()
        #: a port we picked may be taken by another process before the server binds it
        self._own_port = port is None
        self.token = secrets.token_hex(24)
        self.extra = extra or []
        self.runtime = Path(env["JUPYTER_RUNTIME_DIR"])
        self.proc: subprocess.Popen[bytes] | None = None
        self.kernel_ids: list[str] = []
        self.log = root.parent / f"server-{self.port}-{self.token[:6]}.log"
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"token {self.token}"}, timeout=30, trust_env=False
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def broker_file(self) -> Path:
        assert self.proc is not None
        return self.runtime / f"weaviate-auth-broker-{self.proc.pid}.json"

    def start(self, *, attempts: int = 3) -> JupyterServer:
        try:
            return self._start()
        except PortTaken:
            if not self._own_port or attempts <= 1:
                raise
        self.port = free_port()
        self.http.close()
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"token {self.token}"}, timeout=30, trust_env=False
        )
        return self.start(attempts=attempts - 1)

    def _start(self) -> JupyterServer:
        self.root.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "jupyter_server",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.ip=127.0.0.1",
            "--no-browser",
            *(["--allow-root"] if os.name == "posix" and os.geteuid() == 0 else []),
            f"--ServerApp.root_dir={self.root}",
            *self.extra,
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text()[-3000:]
                if f"port {self.port} is not available" in tail:
                    raise PortTaken(tail)
                raise RuntimeError(f"jupyter server exited ({self.proc.returncode}):\n{tail}")
            try:
                if self.http.get("api/status").status_code == 200 and self.broker_file.exists():
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"jupyter server did not come up:\n{self.log.read_text()[-3000:]}")

    def stop(self, *, crash: bool = False) -> None:
        """Clean shutdown (SIGTERM) or a crash (SIGKILL: the connection file stays behind)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if crash:
            for kernel_model in self.http.get("api/kernels").json():
                self.http.delete(f"api/kernels/{kernel_model['id']}")
        self.proc.send_signal(signal.SIGKILL if crash else signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.http.close()

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def save_profile(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.api("PUT", f"weaviate-auth/api/profiles/{name}", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def run_in_kernel(self, code: str, timeout: float = 60.0) -> str:
        """Start a kernel through the REST API, run ``code`` over its websocket, return
        its stdout; raise if the code raised. The kernel is shut down afterwards."""
        created = self.api("POST", "api/kernels", json={"name": "python3"})
        assert created.status_code == 201, created.text
        kernel_id = created.json()["id"]
        self.kernel_ids.append(kernel_id)
        try:
            return _execute(self, kernel_id, code, timeout)
        finally:
            self.api("DELETE", f"api/kernels/{kernel_id}")


def _execute(server: JupyterServer, kernel_id: str, code: str, timeout: float) -> str:
    import websocket  # websocket-client, a jupyter_server dependency

    ws = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels",
        header=[f"Authorization: token {server.token}"],
        timeout=timeout,
    )
    session = uuid.uuid4().hex

    def send(msg_type: str, content: dict[str, Any]) -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "username": "test",
            "session": session,
            "date": datetime.now(timezone.utc).isoformat(),
            "version": "5.3",
        }
        message = {
            "header": header,
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": "shell",
        }
        ws.send(json.dumps(message))
        return msg_id

    def replies(parent: str) -> Iterator[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(ws.recv())
            if message.get("parent_header", {}).get("msg_id") == parent:
                yield message
        raise TimeoutError(f"kernel did not answer within {timeout}s")

    try:
        info = send("kernel_info_request", {})
        for message in replies(info):
            if message["msg_type"] == "kernel_info_reply":
                break
        run = send(
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
            },
        )
        out: list[str] = []
        error: dict[str, Any] | None = None
        idle = replied = False
        for message in replies(run):
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                error = content
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "execute_reply":
                replied = True
            if idle and replied:
                break
        if error is not None:
            raise AssertionError(f"kernel raised {error['ename']}: {error['evalue']}\n" + "".join(out))
        return "".join(out)
    finally:
        ws.close()


def lines(output: str) -> dict[str, str]:
    found = {}
    for line in output.splitlines():
        key, _, value = line.partition(" ")
        found[key] = value
    return found


KERNEL_CODE = """
import json, os
from weaviate_auth_widget.kernel import get_backend, describe_mode
b = get_backend()
print("MODE", b.mode)
s = b.session("prof")
print("VERSION", s.meta()["version"])
p = b.session("pw")
print("WHOAMI", p.whoami().get("username"))
print("REPR", repr(s), repr(p), repr(b))
print("DESCRIBE", describe_mode())
print("ENVFILE", os.environ.get("WEAVIATE_AUTH_BROKER_FILE"))
print("ENV", json.dumps(dict(os.environ)))
"""


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    env = server_env(tmp_path)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", env["JUPYTER_RUNTIME_DIR"])
    monkeypatch.setenv("WEAVIATE_AUTH_DIR", str(tmp_path / "kernel-side-store"))
    monkeypatch.delenv(BROKER_FILE_ENV, raising=False)
    monkeypatch.setattr(chain, "_service", None)  # a fresh process-wide service, restored after
    kernel.reset_backend()
    yield env
    kernel.reset_backend()


def test_kernels_use_the_broker_and_sessions_survive_server_restarts(
    sandbox: Any, isolated: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = sandbox.credentials
    servers: list[JupyterServer] = []

    def start(port: int | None = None) -> JupyterServer:
        server = JupyterServer(isolated, tmp_path / "root", port=port).start()
        servers.append(server)
        return server

    try:
        first = start()
        assert first.broker_file.stat().st_mode & 0o777 == 0o600
        save_demo_profiles(first, sandbox)

        # -- a real kernel started by the server uses the broker
        out = lines(first.run_in_kernel(KERNEL_CODE))
        assert out["MODE"] == "broker"
        assert out["VERSION"] == sandbox.weaviate_config.version
        assert out["WHOAMI"] == creds.username
        assert out["DESCRIBE"].startswith(
            f"broker at {first.url} (secrets stay in the Jupyter server; store: "
        )
        assert out["ENVFILE"] == str(first.broker_file)
        kernel_env = json.loads(out["ENV"])
        assert kernel_env[BROKER_FILE_ENV] == str(first.broker_file)
        blob = json.dumps(kernel_env) + out["REPR"] + out["DESCRIBE"]
        for secret in (creds.admin_api_key, creds.password, first.token, broker_token(first)):
            assert secret not in blob
        # the broker knew which kernel asked (kernel id from ipykernel's connection file)
        audit = [
            json.loads(line) for line in Path(isolated["WEAVIATE_AUTH_AUDIT_LOG"]).read_text().splitlines()
        ]
        from_kernel = [e for e in audit if e.get("via") == "kernel"]
        assert {e["action"] for e in from_kernel} >= {"status", "get", "token"}
        assert {e.get("kernel") for e in from_kernel} == {first.kernel_ids[-1]}

        # -- a long-lived client and sessions in this process, made against server #1
        monkeypatch.setenv(BROKER_FILE_ENV, str(first.broker_file))
        backend = kernel.get_backend()
        assert isinstance(backend, BrokerClient) and backend.url.startswith(first.url)
        session = backend.session("prof")
        pw_session = backend.session("pw")
        assert session.meta()["version"] == sandbox.weaviate_config.version
        assert pw_session.whoami()["username"] == creds.username

        # -- server #1 crashes; #2 comes up on a new port with a new token and a new file
        first.stop(crash=True)
        assert first.broker_file.exists()  # the stale file stays behind
        second = start()
        assert second.port != first.port and second.token != first.token
        assert broker_token(second) != broker_token(first)
        assert session.meta()["version"]  # cached token: no broker involved
        sandbox.reset_stats()
        forget_cached_token(session)
        forget_cached_token(pw_session)
        assert session.meta()["version"] == sandbox.weaviate_config.version  # asks broker #2
        assert pw_session.whoami()["username"] == creds.username
        assert backend.url.startswith(second.url)
        assert kernel.get_backend() is backend  # the process's choice followed the move
        assert kernel.describe_mode().startswith(f"broker at {second.url}")
        out = lines(second.run_in_kernel(KERNEL_CODE))
        assert out["MODE"] == "broker" and out["VERSION"] == sandbox.weaviate_config.version
        assert out["ENVFILE"] == str(second.broker_file)

        # -- server #2 stops cleanly; #3 takes over the SAME port with a new token:
        #    the old token gets 401/403, the client re-reads the file and retries
        port, old_token, old_file = second.port, broker_token(second), second.broker_file
        second.stop()
        assert not old_file.exists()  # a clean shutdown removes its connection file
        third = start(port)
        assert third.port == port and broker_token(third) != old_token
        stale = httpx.get(f"{third.url}weaviate-auth/api/status", headers={BROKER_HEADER: old_token})
        assert stale.status_code == 403  # what the long-lived client meets first
        forget_cached_token(session)
        assert session.meta()["version"] == sandbox.weaviate_config.version
        assert backend.info.same_as(find_broker())
        assert backend.status()["mode"] == "broker"

        # -- the server goes away for good: get_backend() notices (no file) and falls back;
        #    a broker asked for explicitly later is the same client, moved to the new server
        third.stop()
        fallback = kernel.get_backend()
        assert not isinstance(fallback, BrokerClient) and fallback.mode == "in-process"
        # $WEAVIATE_AUTH_BROKER_FILE still names #1's stale file: the last resort, reported
        assert kernel.describe_mode().startswith(
            f"in-process (the weaviate-auth broker at {first.url} did not answer;"
        )
        fourth = start()
        assert kernel.get_backend() is fallback  # an in-process choice stays...
        assert kernel.get_backend("broker") is backend  # ...unless the broker is asked for
        assert backend.url.startswith(fourth.url) and kernel.get_backend() is backend
        forget_cached_token(session)
        assert session.meta()["version"] == sandbox.weaviate_config.version
    finally:
        for server in servers:
            server.stop()


def save_demo_profiles(server: JupyterServer, sandbox: Any) -> None:
    """``prof`` (the admin API key) and ``pw`` (the demo user's password)."""
    secret = {"api_key": sandbox.credentials.admin_api_key}
    server.save_profile("prof", {"url": sandbox.weaviate_url, "method": "api_key", "secrets": secret})
    server.save_profile("pw", password_profile(sandbox))


def forget_cached_token(session: Any) -> None:
    """Drop the session's cached token: its next request asks the broker."""
    source = session.token_source
    assert isinstance(source, CachingTokenSource)
    source.invalidate()


def broker_token(server: JupyterServer) -> str:
    return str(json.loads(server.broker_file.read_text())["token"])


def test_a_kernel_without_a_server_runs_in_process(isolated: dict[str, str], tmp_path: Path) -> None:
    """VS Code / plain ipykernel: no broker file anywhere, so the in-process service."""
    from jupyter_client.manager import start_new_kernel

    env = dict(isolated)
    manager, client = start_new_kernel(kernel_name="python3", env=env)
    try:
        outputs: list[str] = []

        def collect(message: dict[str, Any]) -> None:
            if message["msg_type"] == "stream":
                outputs.append(message["content"]["text"])
            elif message["msg_type"] == "error":
                outputs.append("ERROR " + message["content"]["evalue"] + "\n")

        code = (
            "from weaviate_auth_widget.kernel import get_backend, describe_mode\n"
            "print('MODE', get_backend().mode)\n"
            "print('DESCRIBE', describe_mode())\n"
        )
        client.execute_interactive(code, output_hook=collect, timeout=60)
        out = lines("".join(outputs))
        assert out["MODE"] == "in-process", outputs
        assert out["DESCRIBE"].startswith("in-process (no Jupyter server extension found;")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_the_client_offers_the_service_surface_over_the_real_broker(
    sandbox: Any, isolated: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything the panel and the magic call, through the broker token, with typed errors."""
    import asyncio

    from weaviate_auth_widget.errors import InsecureURL, InvalidCredentials, ProfileNotFound
    from weaviate_auth_widget.profiles import Profile

    creds = sandbox.credentials
    server = JupyterServer(isolated, tmp_path / "root").start()
    try:
        monkeypatch.setenv(BROKER_FILE_ENV, str(server.broker_file))
        client = BrokerClient()
        status = client.status()
        assert status["mode"] == "broker" and status["store"]
        assert client.describe_mode() == (
            f"broker at {server.url} (secrets stay in the Jupyter server; store: {status['store']})"
        )
        module_key = "sk-test-" + secrets.token_hex(16)
        profile = Profile(name="reader", url=sandbox.weaviate_url, headers=("X-OpenAI-Api-Key",))
        saved = client.save_profile(
            profile, {"api_key": creds.readonly_api_key, "header:X-OpenAI-Api-Key": module_key}
        )
        assert saved == profile and client.get_profile("reader") == profile
        assert client.list_profiles() == [profile]
        view = client.describe("reader")
        assert view["has_secret"] and not view["logged_in"] and not view["read_only"]
        assert [v["name"] for v in client.profile_views()] == ["reader"]
        assert client.identity("reader") is None and client.identity("nobody") is None

        identity = client.login("reader")
        assert identity.username == creds.readonly_user and not identity.is_admin
        assert identity.server_version == sandbox.weaviate_config.version
        assert client.identity("reader") == identity
        assert client.module_headers("reader") == {"X-OpenAI-Api-Key": module_key}
        token = client.token("reader")
        assert token.value == creds.readonly_api_key and token.expires_at is None
        assert client.token("reader", rejected=token) == token  # an API key renews to itself

        sandbox.weaviate.reset()
        session = client.session("reader")
        assert session.meta()["version"] == sandbox.weaviate_config.version
        assert "x-openai-api-key" in sandbox.weaviate.requests[-1].headers

        async def async_meta() -> dict[str, Any]:
            async with client.async_session("reader") as asession:
                return await asession.meta()

        assert asyncio.run(async_meta())["version"] == sandbox.weaviate_config.version
        shown = repr(client) + repr(session) + repr(client.info) + repr(client.token_source("reader"))
        for secret in (creds.readonly_api_key, module_key, client.info.token, server.token):
            assert secret not in shown

        # typed errors rebuilt from the broker's {"error": {"code", "message"}}
        with pytest.raises(ProfileNotFound):
            client.login("nobody")
        with pytest.raises(InsecureURL, match="clear text"):  # a 403 that is not about the broker token
            client.save_profile(Profile(name="far", url="http://example.org:8080"), {"api_key": "k-123456"})
        client.save_profile(Profile(name="wrong", url=sandbox.weaviate_url), {"api_key": "not-the-key"})
        with pytest.raises(InvalidCredentials) as caught:
            client.login("wrong")
        assert "not-the-key" not in str(caught.value)

        client.logout("reader")
        assert client.identity("reader") is None
        assert client.forget("reader") is True and client.forget("reader") is False
        assert [p.name for p in client.list_profiles()] == ["wrong"]
        client.close()
    finally:
        server.stop()


def test_a_server_on_a_unix_socket(isolated: dict[str, str], tmp_path: Path) -> None:
    """``jupyter server --sock``: the connection file names an ``http+unix://`` URL."""
    sock = tmp_path / "s.sock"
    cmd = [sys.executable, "-m", "jupyter_server", f"--ServerApp.sock={sock}", "--no-browser"]
    cmd += [f"--IdentityProvider.token={secrets.token_hex(16)}", f"--ServerApp.root_dir={tmp_path}"]
    cmd += ["--allow-root"] if os.name == "posix" and os.geteuid() == 0 else []
    with open(tmp_path / "sock-server.log", "wb") as log:
        proc = subprocess.Popen(cmd, env=isolated, stdout=log, stderr=subprocess.STDOUT)
    try:
        path = Path(isolated["JUPYTER_RUNTIME_DIR"]) / f"weaviate-auth-broker-{proc.pid}.json"
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not (path.exists() and sock.exists()) and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "sock-server.log").read_text()[-3000:]
            time.sleep(0.1)
        info = find_broker()
        assert info is not None and info.url.startswith("http+unix://") and info.socket == str(sock)
        with BrokerClient(info) as client:
            assert client.status()["mode"] == "broker"
            assert client.describe_mode().startswith(f"broker on {sock} (secrets stay in the Jupyter server")
    finally:
        proc.terminate()
        proc.wait(15)


LOGOUT_CODE = """
from weaviate_auth_widget.errors import LoginExpired
from weaviate_auth_widget.kernel import get_backend
from weaviate_auth_widget.widget import LoginPanel
b = get_backend()
s = b.session("prof")
pw = b.session("pw")
panel = LoginPanel(b, profile="prof")
watching = LoginPanel(b, profile="prof")
assert panel.connect() is not None
print("BEFORE", s.meta()["version"], "Connected" in panel.status.value)
ip = get_ipython()
ip.run_line_magic("load_ext", "weaviate_auth_widget")
ip.run_line_magic("weaviate_auth", "--logout prof")
try:
    s.meta()
except LoginExpired as exc:
    print("EXPIRED", exc)
try:
    b.token("prof")
except LoginExpired as exc:
    print("TOKEN", exc.code)
print("REPR", repr(s))
print("PANELS", all("Signed out" in p.status.value and p.session is None for p in (panel, watching)))
print("PW", pw.whoami()["username"])
print("VIEW", b.describe("prof")["logged_out"])
b.login("prof")
print("AGAIN", s.meta()["version"], repr(s))
"""


def test_logout_through_the_broker_ends_the_kernels_sessions(
    sandbox: Any, isolated: dict[str, str], tmp_path: Path
) -> None:
    creds = sandbox.credentials
    server = JupyterServer(isolated, tmp_path / "root").start()
    try:
        save_demo_profiles(server, sandbox)
        out = lines(server.run_in_kernel(LOGOUT_CODE))
        version = sandbox.weaviate_config.version
        assert out["BEFORE"] == f"{version} True"
        assert (
            out["EXPIRED"].startswith("You logged out of profile 'prof'") and "log in again" in out["EXPIRED"]
        )
        assert out["TOKEN"] == "login_expired"
        assert "logged out" in out["REPR"] and "refreshes" not in out["REPR"]
        assert out["PANELS"] == "True" and out["VIEW"] == "True"
        assert out["PW"] == creds.username  # other profiles are untouched
        assert out["AGAIN"].startswith(version) and "logged out" not in out["AGAIN"]

        # the broker itself: after a logout, the token route answers login_expired (409)
        # instead of logging in again with the kept secret; an explicit login ends it
        api = "weaviate-auth/api/profiles/pw"
        assert server.api("POST", f"{api}/token").status_code == 200
        assert server.api("POST", f"{api}/logout").status_code == 204
        refused = server.api("POST", f"{api}/token")
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "login_expired"
        assert creds.password not in refused.text
        assert server.api("POST", f"{api}/login").status_code == 409  # the refresh token was revoked
        server.save_profile("pw", password_profile(sandbox))
        assert server.api("POST", f"{api}/token").status_code == 409  # saving is not logging in
        assert server.api("POST", f"{api}/login").status_code == 200
        assert server.api("POST", f"{api}/token").status_code == 200
    finally:
        server.stop()


class Impostor:
    """Whatever took a dead server's port: answers like a broker (``status``, ``proof``,
    200 to everything else) and keeps every request it gets. ``relay_to`` forwards the
    ``proof`` challenge to a real broker (which holds another token) and returns its answer."""

    def __init__(self, relay_to: str | None = None) -> None:
        self.relay_to = relay_to
        self.seen: list[str] = []
        self.url = ""


@contextmanager
def impostor_server(relay_to: str | None = None, port: int = 0) -> Iterator[Impostor]:
    imp = Impostor(relay_to)

    class Handler(QuietHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            imp.seen.append(f"{self.command} {self.path}\n{self.headers}\n{body.decode('utf-8', 'replace')}")
            if "/proof" in self.path and imp.relay_to:
                query = self.path.partition("?")[2]
                data = httpx.get(f"{imp.relay_to}weaviate-auth/api/proof?{query}", trust_env=False).content
            elif "/proof" in self.path:
                data = json.dumps({"proof": secrets.token_hex(32)}).encode()
            elif self.path.endswith("/status"):
                data = json.dumps({"mode": "broker", "store": "impostor"}).encode()
            else:
                data = b"{}"
            self.send_json(data)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

    with serving(Handler, port) as url:
        imp.url = url
        yield imp


def test_a_stale_connection_file_whose_pid_and_port_were_taken_is_not_trusted(
    isolated: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server died; its pid now belongs to an unrelated live process and another
    program listens on its port. The kernel sends neither the broker token nor a secret
    there, falls back to in-process, and says why. Relaying the challenge to a real
    broker (another server, another token) does not help the impostor."""
    from weaviate_auth_widget.errors import BrokerUnavailable
    from weaviate_auth_widget.kernel import NotTheBroker
    from weaviate_auth_widget.profiles import Profile

    runtime = Path(isolated["JUPYTER_RUNTIME_DIR"])
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    real = JupyterServer(isolated, tmp_path / "root").start()
    typed_secret = "sk-typed-" + secrets.token_hex(16)
    try:
        for relay in (None, real.url):
            kernel.reset_backend()
            with impostor_server(relay) as imp:
                stale_token = secrets.token_urlsafe(32)
                stale = runtime / f"weaviate-auth-broker-{unrelated.pid}.json"
                content = {"url": imp.url + "weaviate-auth/api/", "token": stale_token, "pid": unrelated.pid}
                stale.write_text(json.dumps(content))
                stale.chmod(0o600)
                os.utime(stale)  # the newest file in the runtime dir, too
                monkeypatch.setenv(BROKER_FILE_ENV, str(stale))
                found = find_broker()
                assert found is not None and found.url == content["url"] and kernel.pid_alive(found.pid)

                backend = kernel.get_backend()
                assert not isinstance(backend, BrokerClient) and backend.mode == "in-process"
                assert "could not prove it is the weaviate-auth broker" in kernel.describe_mode()
                with pytest.raises(BrokerUnavailable):
                    kernel.get_backend("broker")
                client = BrokerClient(found)
                with pytest.raises(NotTheBroker, match="could not prove") as caught:
                    client.save_profile(Profile(name="p", url="https://x.example"), {"api_key": typed_secret})
                assert str(stale) in str(caught.value)
                with pytest.raises(NotTheBroker):
                    client.token("p")
                client.close()

                assert imp.seen, "the impostor was never even asked"
                for request in imp.seen:
                    assert "/proof?" in request.splitlines()[0], request.splitlines()[0]
                    for value in (stale_token, typed_secret, broker_token(real), real.token):
                        assert value not in request
                    assert BROKER_HEADER.lower() not in request.lower()
    finally:
        real.stop()
        unrelated.kill()
        unrelated.wait(5)


def test_a_client_in_use_checks_the_broker_again_before_trusting_a_new_listener(
    isolated: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server a long-lived client talks to crashes and another program takes its port:
    once the trust period is over (0 s here), the client asks for a proof again and sends
    nothing to the newcomer."""
    from weaviate_auth_widget.kernel import NotTheBroker

    server = JupyterServer(isolated, tmp_path / "root").start()
    try:
        monkeypatch.setenv(BROKER_FILE_ENV, str(server.broker_file))
        client = BrokerClient()
        assert client.status()["mode"] == "broker"
        token = broker_token(server)
        monkeypatch.setattr(broker_transport, "TRUST_SECONDS", 0.0)  # where the client reads it
        assert client.status()["mode"] == "broker"  # the real broker proves itself each time
        server.stop(crash=True)
        assert server.broker_file.exists()
        with impostor_server(port=server.port) as imp:
            with pytest.raises(NotTheBroker):
                client.status()
            assert imp.seen and all("/proof?" in r.splitlines()[0] for r in imp.seen)
            assert not any(token in r for r in imp.seen)
        client.close()
    finally:
        server.stop()


OFFICIAL_CLIENT_CODE = """
import json
from weaviate_auth_widget.kernel import get_backend
from tests import mixed_load
backend = get_backend()
print("MODE", backend.mode)
session = backend.session("pw")
with session.weaviate_client(grpc_port=GRPC_PORT) as client:
    print("OBJECTS", len(client.collections.get("Article").query.fetch_objects().objects))
    print("HELD", json.dumps(repr(vars(client._connection)) + repr(client._connection._headers)))
print("LOAD", json.dumps(mixed_load.run(session, GRPC_PORT, 15)))
"""


@pytest.mark.timeout(180)
def test_official_clients_in_a_kernel_take_tokens_from_the_broker(
    isolated: dict[str, str], tmp_path: Path
) -> None:
    """Default connect path in a real kernel, sync and async clients, 3-second tokens for
    15 s: the broker logs in once and refreshes, the kernel never sees the password."""
    from weaviate_auth_widget.sandbox import Sandbox

    pytest.importorskip("weaviate", reason="the official client is the 'client' extra")
    with Sandbox.demo(token_lifetime=3) as running:
        creds = running.credentials
        assert creds is not None
        server = JupyterServer(isolated, tmp_path / "root").start()
        try:
            server.save_profile(
                "pw",
                {
                    "url": running.weaviate_url,
                    "method": "password",
                    "username": creds.username,
                    "secrets": {"password": creds.password},
                },
            )
            code = OFFICIAL_CLIENT_CODE.replace("GRPC_PORT", str(running.weaviate.grpc_port))
            out = lines(server.run_in_kernel(code, timeout=120))
        finally:
            server.stop()
        assert out["MODE"] == "broker"
        assert out["OBJECTS"] == "2"
        assert creds.password not in out["HELD"]
        load = json.loads(out["LOAD"])
        assert load["errors"] == [] and load["calls"] > 100
        grants = running.idp_stats()["token"]
        assert grants["password"] == 1
        # one refresh per expiry (about every 2.4 s; the kernel's start-up adds a few)
        assert 5 <= grants["refresh_token"] <= 12
        assert {c.code for c in running.weaviate.grpc_calls} == {"OK"}


EVERY_METHOD_CODE = """
import json
from weaviate_auth_widget.kernel import get_backend
backend = get_backend()
print("MODE", backend.mode)
for name in NAMES:
    with backend.session(name) as session, session.weaviate_client(grpc_port=GRPC_PORT) as client:
        objects = client.collections.get("Article").query.fetch_objects().objects  # gRPC
        held = repr(vars(client._connection)) + repr(client._connection._headers)
        print("RESULT", json.dumps([name, len(objects), client.get_meta()["version"], held]))
"""


@pytest.mark.timeout(240)
def test_every_login_method_reaches_the_official_client_through_the_broker(
    isolated: dict[str, str], tmp_path: Path
) -> None:
    """API key, password, client credentials and a given bearer token, each saved in the
    broker, each handed to the official client in a real kernel on its default connect
    path (Weaviate Cloud shape: API keys and OIDC both on); the kernel holds no secret."""
    from tests.test_sandbox import user_token
    from weaviate_auth_widget.sandbox import Sandbox

    pytest.importorskip("weaviate", reason="the official client is the 'client' extra")
    with Sandbox.demo(shape="cloud") as running:
        creds = running.credentials
        assert creds is not None
        url = running.weaviate_url
        bodies = {
            "k": {"url": url, "secrets": {"api_key": creds.admin_api_key}},
            "pw": {
                "url": url,
                "method": "password",
                "username": creds.username,
                "secrets": {"password": creds.password},
            },
            "cc": {
                "url": url,
                "method": "client_credentials",
                "client_id": creds.service_client_id,
                "secrets": {"client_secret": creds.service_client_secret},
            },
            "bt": {"url": url, "method": "bearer", "secrets": {"bearer": user_token(running)}},
        }
        server = JupyterServer(isolated, tmp_path / "root").start()
        try:
            for name, body in bodies.items():
                server.save_profile(name, body)
            code = EVERY_METHOD_CODE.replace("NAMES", repr(list(bodies))).replace(
                "GRPC_PORT", str(running.weaviate.grpc_port)
            )
            out = server.run_in_kernel(code, timeout=180)
        finally:
            server.stop()
    assert lines(out)["MODE"] == "broker"
    results = [json.loads(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("RESULT ")]
    assert [r[0] for r in results] == list(bodies)
    for name, count, version, held in results:
        assert (count, version) == (2, running.weaviate_config.version), name
        assert creds.password not in held and creds.service_client_secret not in held
    assert {c.code for c in running.weaviate.grpc_calls if c.method == "Search"} == {"OK"}


OTHER_KERNEL_SETUP = """
import threading, time
from weaviate_auth_widget.errors import LoginExpired
from weaviate_auth_widget.kernel import get_backend
b = get_backend()
s = b.session("prof")
print("META", s.meta()["version"])

def together(n=20):  # n concurrent requests once the bound has passed: their outcomes
    time.sleep(RECHECK + 0.5)
    outcomes = []
    def call():
        try:
            outcomes.append(s.meta()["version"])
        except LoginExpired as exc:
            outcomes.append(str(exc))
    threads = [threading.Thread(target=call) for _ in range(n)]
    for t in threads: t.start()
    for t in threads: t.join()
    return outcomes

print("TOGETHER", set(together()))
s.meta()  # within the bound again: the cached key, no broker call
"""

#: the official client made from the session (the 'client' extra; make test installs it)
OFFICIAL_SETUP = """
client = s.weaviate_client(grpc_port=GRPC_PORT)
print("GRPC", len(client.collections.get("Article").query.fetch_objects().objects))
"""

OFFICIAL_AFTER = """
for what, call in (
    ("GRPC_AFTER", lambda: client.collections.get("Article").query.fetch_objects()),
    ("REST_AFTER", client.get_meta),
):
    try:
        call()
        print(what, "ok")
    except Exception as exc:
        print(what, type(exc).__name__, str(exc).splitlines()[0])
"""

OTHER_KERNEL_AFTER = """
outcomes = together()
print("OUTCOMES", len(outcomes), len(set(outcomes)))
print("ERROR", outcomes[0])
try:
    s.meta()
except LoginExpired as exc:
    print("AGAIN", exc.code)
print("REPR", repr(s))
"""


@pytest.mark.timeout(120)
def test_a_logout_in_one_kernel_stops_the_profile_in_every_kernel(
    sandbox: Any, isolated: dict[str, str], tmp_path: Path
) -> None:
    """Kernels A and B both hold a session for an API-key profile (a key never expires).
    A logs out; within the broker's bound (``token_recheck_seconds``, 1 s here) B's next
    requests raise the same login-expired error a fresh call would, and no request with
    the key reaches the cluster after the logout, nor from the official client made from
    B's session. Before it, B used its cached key
    without asking the broker, and 20 concurrent requests past the bound asked it once."""
    from weaviate_auth_widget.sandbox.weaviate import fingerprint

    recheck = 1.0
    server = JupyterServer(
        isolated, tmp_path / "root", extra=[f"--WeaviateAuthApp.token_recheck_seconds={recheck}"]
    ).start()
    audit = Path(isolated["WEAVIATE_AUTH_AUDIT_LOG"])
    key = fingerprint(sandbox.credentials.admin_api_key)
    version = sandbox.weaviate_config.version

    def grants_of_b() -> list[str]:  # the audit log is written with one write() per line
        entries = [json.loads(line) for line in audit.read_text().splitlines()]
        return [e["outcome"] for e in entries if e.get("kernel") == b and e.get("action") == "token"]

    try:
        save_demo_profiles(server, sandbox)
        a, b = (server.api("POST", "api/kernels", json={"name": "python3"}).json()["id"] for _ in "ab")
        setup = OTHER_KERNEL_SETUP.replace("RECHECK", repr(recheck))
        for kernel_id in (a, b):
            out = lines(_execute(server, kernel_id, setup, 60))
            assert (out["META"], out["TOGETHER"]) == (version, repr({version}))
        # the session's grant, then one for 20 concurrent requests past the bound
        assert grants_of_b() == ["ok", "ok"]
        official_setup = OFFICIAL_SETUP.replace("GRPC_PORT", str(sandbox.weaviate.grpc_port))
        assert lines(_execute(server, b, official_setup, 60))["GRPC"] == "2"
        assert any(r.token == key for r in sandbox.weaviate.requests)  # the fingerprint is the key's

        _execute(server, a, "b.logout('prof')", 30)
        logged_out, grpc_before = time.monotonic(), len(sandbox.weaviate.grpc_calls)
        # the official client's first requests may ask again (its set-up can outlast the bound)
        before = grants_of_b()
        assert set(before) == {"ok"}, before
        out = lines(_execute(server, b, OTHER_KERNEL_AFTER + OFFICIAL_AFTER, 60))
    finally:
        server.stop()
    # the official client made from B's session stops too
    for what in ("GRPC_AFTER", "REST_AFTER"):
        assert out[what].startswith("LoginExpired You logged out of profile 'prof'"), out[what]
    assert not [c for c in sandbox.weaviate.grpc_calls[grpc_before:] if c.token == key]
    assert out["OUTCOMES"] == "20 1"  # every request refused, all with the same message
    assert out["ERROR"].startswith("You logged out of profile 'prof'") and "log in again" in out["ERROR"]
    assert out["AGAIN"] == "login_expired"
    assert "logged out" in out["REPR"]
    assert not [r for r in sandbox.weaviate.requests if r.token == key and r.started > logged_out]
    after = grants_of_b()[len(before) :]
    assert after and set(after) == {"login_expired"}, after  # after the logout: refusals only
