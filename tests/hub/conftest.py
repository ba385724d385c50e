"""A real JupyterHub for the hub tests: real Unix users, LocalProcessSpawner, the proxy.

What the fixtures set up (all on 127.0.0.1, all removed afterwards):

- ``hub_users`` (session): two Unix users ``wawtest-a-<suffix>`` / ``wawtest-b-<suffix>``
  (``useradd -m``, normal home directories) and a group holding both, which the
  administrator's read-only key file belongs to; ``userdel -r`` at the end.
- ``hub_venv`` (session): a venv the users can execute, outside /root and outside the
  checkout (``/opt/waw-hub-venv-<hash>``, else ``$TMPDIR``; ``WAW_HUB_VENV_ROOT``
  overrides), built from a Python every user can run, with the package installed
  NON-editable (a wheel built from this checkout), the same ``jupyterhub`` as the
  hub's (for ``jupyterhub-singleuser``), ``ipykernel`` and JupyterLab. It is reused while the hash
  of ``pyproject.toml``, the package's files, the Python and the hub version matches.
- ``hub`` (module): ``jupyterhub`` from the dev venv, run as root, with
  ``configurable-http-proxy``, the shared-password authenticator, LocalProcessSpawner
  (each server runs as its Unix user), the administrator's policy in
  ``c.Spawner.environment`` (per-user store keys derived from a master key the hub
  keeps), an administrator-provided read-only profile, JupyterHub 5 sharing enabled
  for users, a driver service whose token creates user tokens and starts servers.
  Both users' servers are started and ready when tests run.

Prerequisites: root, ``useradd``, ``configurable-http-proxy`` and ``jupyterhub``
(``scripts/hub-deps.sh`` installs the last two). Missing ones skip the suite, or fail
it when ``CI`` is set. On failure, each report carries the hub's log (hub, proxy and
single-user servers, whose output goes there) since the test started, and the whole
log is copied to ``artefacts/hub.log``.

Tests record what they measure in ``hub_matrix`` (actor x action x route -> status),
printed at the end of the run and written to ``artefacts/hub-isolation-matrix.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
ARTEFACTS = REPO / "artefacts"
HERE = Path(__file__).resolve().parent

USER_PREFIX = "wawtest-"
VENV_PREFIX = "waw-hub-venv-"
VENV_MARKER = ".waw-hub-venv-complete"
ADMIN_PROFILE = "team-readonly"
#: A host pattern the policy allows, over http: logins there must fail as insecure.
ALLOWED_PATTERN = "*://*.corp.example"
LOG_SECTION_LINES = 400

#: installed into the users' venv besides the package and jupyterhub: a kernel, and
#: JupyterLab for the login panel in a browser (tests/hub/test_hub_panel.py)
USER_PACKAGES = ("ipykernel>=6.29", "jupyterlab>=4.2,<5")

HUB_TIMEOUT = 60.0
SPAWN_TIMEOUT = 90.0
KERNEL_TIMEOUT = 60.0


# -- prerequisites ---------------------------------------------------------------------
def _missing(reason: str) -> None:
    """Skip the hub suite, except under CI, where a missing prerequisite is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"hub tests cannot run: {reason}", pytrace=False)
    pytest.skip(f"hub tests need {reason}")


def _jupyterhub_version() -> str | None:
    try:
        import jupyterhub
    except ImportError:
        return None
    return str(jupyterhub.__version__)


@pytest.fixture(scope="session")
def hub_prerequisites() -> dict[str, str]:
    if sys.platform != "linux":
        _missing("Linux")
    if os.geteuid() != 0:
        _missing("root (they create Unix users and run JupyterHub with LocalProcessSpawner)")
    tools = {}
    for tool in ("useradd", "userdel", "groupadd", "groupdel", "runuser", "configurable-http-proxy"):
        path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
        if path is None:
            _missing(f"{tool} (run scripts/hub-deps.sh)")
        tools[tool] = str(path)
    version = _jupyterhub_version()
    if version is None:
        _missing("jupyterhub in this venv (run scripts/hub-deps.sh)")
    tools["jupyterhub"] = str(version)
    return tools


# -- processes -----------------------------------------------------------------------
def run(
    cmd: list[str], *, check: bool = True, timeout: float = 600, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def as_user(user: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``runuser -u user -- cmd...`` (no login shell; the user's own uid and groups)."""
    return run(["runuser", "-u", user, "--", *cmd], check=False, timeout=timeout, cwd="/")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pids_of(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _stop_pids(pids: list[int], grace: float = 5.0) -> None:
    """SIGTERM the given processes (ours: the test users'), SIGKILL what is left."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# -- Unix users ----------------------------------------------------------------------------
@dataclass(frozen=True)
class HubUsers:
    a: str
    b: str
    admin: str  # a hub-only administrator (no Unix account: it never spawns)
    group: str

    def uid(self, name: str) -> int:
        return pwd.getpwnam(name).pw_uid

    def home(self, name: str) -> Path:
        return Path(pwd.getpwnam(name).pw_dir)


def _remove_user(name: str) -> None:
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    _stop_pids(_pids_of(uid))
    run(["userdel", "-r", name], check=False)  # "mail spool not found" is fine
    if _user_exists(name):
        run(["userdel", "-f", "-r", name], check=False)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _remove_stale_users(min_age: float = 3600) -> None:
    """Users left by an earlier run that was killed: older than ``min_age`` seconds (a run
    going on in another checkout keeps its own), no process of theirs still running."""
    for entry in pwd.getpwall():
        if not entry.pw_name.startswith(USER_PREFIX):
            continue
        try:
            age = time.time() - Path(entry.pw_dir).stat().st_mtime
        except OSError:
            age = min_age
        if age >= min_age and not _pids_of(entry.pw_uid):
            run(["userdel", "-r", entry.pw_name], check=False)
    with open("/etc/group", encoding="utf-8") as fh:
        for line in fh:
            fields = line.rstrip("\n").split(":")
            if fields[0].startswith(USER_PREFIX + "g-") and len(fields) > 3 and not fields[3]:
                run(["groupdel", fields[0]], check=False)  # no members left


@pytest.fixture(scope="session")
def hub_users(hub_prerequisites: dict[str, str]) -> Iterator[HubUsers]:
    _remove_stale_users()
    suffix = secrets.token_hex(3)
    users = HubUsers(
        a=f"{USER_PREFIX}a-{suffix}",
        b=f"{USER_PREFIX}b-{suffix}",
        admin=f"{USER_PREFIX}adm-{suffix}",
        group=f"{USER_PREFIX}g-{suffix}",
    )
    try:
        run(["groupadd", users.group])
        for name in (users.a, users.b):
            run(["useradd", "--create-home", "--shell", "/bin/bash", "--groups", users.group, name])
        yield users
    finally:
        for name in (users.a, users.b):
            _remove_user(name)
        run(["groupdel", users.group], check=False)


# -- the users' venv ---------------------------------------------------------------------------
def _python_for(user: str) -> str:
    """A Python >= 3.10 with venv that ``user`` can execute (the dev venv's may live under /root)."""
    candidates = [
        getattr(sys, "_base_executable", None),
        str(Path(sys.base_prefix) / "bin" / "python3"),
        "/usr/bin/python3",
        "/usr/local/bin/python3",
        shutil.which("python3"),
    ]
    probe = "import sys, venv; assert sys.version_info >= (3, 10)"
    tried = []
    for candidate in dict.fromkeys(c for c in candidates if c):
        real = os.path.realpath(candidate)
        if not os.path.exists(real):
            continue
        tried.append(real)
        if as_user(user, real, "-c", probe).returncode == 0:
            return real
    _missing(
        f"a Python >= 3.10 with venv that other users can execute (tried {', '.join(tried)}; apt install python3-venv)"
    )
    raise AssertionError("unreachable")


def _package_hash(python: str, hub_version: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"{python}\0{hub_version}\0{USER_PACKAGES}\0".encode())
    digest.update(run([python, "-c", "import sys; print(sys.version)"]).stdout.encode())
    files = [REPO / "pyproject.toml", REPO / "README.md"]
    for root in ("weaviate_auth_widget", "jupyter-config"):
        files += sorted(
            p
            for p in (REPO / root).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        )
    for path in files:
        if path.exists():
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _venv_root() -> Path:
    override = os.environ.get("WAW_HUB_VENV_ROOT")
    if override:
        return Path(override)
    opt = Path("/opt")
    if opt.is_dir() and os.access(opt, os.W_OK) and opt.stat().st_mode & 0o001:
        return opt
    return Path(tempfile.gettempdir())


def _prune_old_venvs(root: Path, keep: Path, spare: int = 2) -> None:
    """Keep ours and the ``spare`` most recent other builds (other checkouts may use them)."""
    others = sorted(
        (p for p in root.glob(VENV_PREFIX + "*") if p.is_dir() and p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in others[spare:]:
        shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class HubVenv:
    path: Path
    built: bool
    seconds: float

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    @property
    def singleuser(self) -> str:
        return str(self.path / "bin" / "jupyterhub-singleuser")


@pytest.fixture(scope="session")
def hub_venv(hub_prerequisites: dict[str, str], hub_users: HubUsers) -> HubVenv:
    import filelock

    started = time.monotonic()
    hub_version = hub_prerequisites["jupyterhub"]
    python = _python_for(hub_users.a)
    root = _venv_root()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"{VENV_PREFIX}{_package_hash(python, hub_version)}"
    built = False
    with filelock.FileLock(str(root / f".{VENV_PREFIX}lock"), timeout=900):
        if not (venv / VENV_MARKER).exists():
            shutil.rmtree(venv, ignore_errors=True)
            old_umask = os.umask(0o022)
            try:
                run([python, "-m", "venv", "--without-pip", str(venv)])
                # the dev venv's pip installs into it (--python): no ensurepip needed there
                run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "--python",
                        str(venv / "bin" / "python"),
                        "install",
                        "--quiet",
                        "--no-warn-script-location",
                        str(REPO),
                        f"jupyterhub=={hub_version}",
                        *USER_PACKAGES,
                    ],
                    timeout=900,
                )
            finally:
                os.umask(old_umask)
            run(["chmod", "-R", "a+rX", str(venv)])
            (venv / VENV_MARKER).write_text(f"built {time.ctime()} from {REPO}\n", encoding="utf-8")
            built = True
            _prune_old_venvs(root, venv)
        else:
            os.utime(venv)
    check = as_user(
        hub_users.a,
        str(venv / "bin" / "python"),
        "-c",
        "import weaviate_auth_widget.broker.app, jupyterhub.singleuser, ipykernel, sys; print(sys.prefix)",
    )
    assert check.returncode == 0, f"the users cannot use {venv}:\n{check.stderr}"
    site = as_user(
        hub_users.a, str(venv / "bin" / "python"), "-c", "import weaviate_auth_widget as w; print(w.__file__)"
    )
    assert str(venv) in site.stdout and str(REPO) not in site.stdout, (
        f"not a non-editable install: {site.stdout}"
    )
    return HubVenv(venv, built, time.monotonic() - started)


# -- the isolation matrix ----------------------------------------------------------------------
@dataclass
class Row:
    actor: str
    action: str
    route: str
    status: str
    expected: str
    ok: bool
    test: str
    note: str = ""


@dataclass
class Matrix:
    rows: list[Row] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def table(self) -> str:
        lines = [
            "| actor | action | route | status (measured) | expected | |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in self.rows:
            verdict = "ok" if r.ok else "differs"
            if r.note:
                verdict += f" ({r.note})"
            cells = (r.actor, r.action, r.route, r.status, r.expected.replace("|", " or "), verdict)
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines)

    def document(self) -> str:
        timing = ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items())
        return (
            "# Hub isolation matrix (as measured by tests/hub)\n\n"
            "A and B are two Unix users with their own single-user servers (LocalProcessSpawner); "
            "`proxy` routes go through configurable-http-proxy (`/user/A/...`), `direct` routes to "
            "A's server port found in the hub's proxy table; `kernel` is code running in a kernel. "
            "Statuses are HTTP statuses with the broker's error code, or the outcome of a file access.\n\n"
            f"{self.table()}\n\n"
            f"Timings: {timing}\n"
        )


class Checks:
    """Record measurements into the matrix; ``done()`` fails with every mismatch at once."""

    def __init__(self, matrix: Matrix, test: str) -> None:
        self.matrix = matrix
        self.test = test
        self.failures: list[str] = []

    def __call__(
        self,
        actor: str,
        action: str,
        route: str,
        measured: Any,
        expected: str,
        *,
        note: str = "",
        required: bool = True,
    ) -> str:
        """Record one measurement; a mismatch fails the test at ``done()`` unless not ``required``
        (then it only shows in the matrix)."""
        status = describe(measured)
        ok = _matches(status, expected)
        self.matrix.rows.append(Row(actor, action, route, status, expected, ok, self.test, note))
        if not ok and required:
            detail = ""
            if isinstance(measured, httpx.Response):
                detail = f" body={measured.text[:300]!r}"
            self.failures.append(f"{actor} / {action} / {route}: got {status}, expected {expected}{detail}")
        return status

    def done(self) -> None:
        assert not self.failures, "isolation mismatches:\n" + "\n".join(self.failures)


def describe(measured: Any) -> str:
    """``403 not_owner``, ``200``, ``denied (EACCES)``... for the matrix."""
    if isinstance(measured, httpx.Response):
        code = None
        with contextlib.suppress(ValueError, KeyError, TypeError):
            data = measured.json()
            if isinstance(data, dict) and isinstance(data.get("error"), dict):
                code = data["error"].get("code")
        return f"{measured.status_code} {code}" if code else str(measured.status_code)
    return str(measured)


def _matches(status: str, expected: str) -> bool:
    """``expected`` is ``403``, ``403 not_owner``, ``2xx``, ``denied*``; ``a|b`` means either."""
    for option in expected.split("|"):
        option = option.strip()
        if option.endswith("*") and status.startswith(option[:-1]):
            return True
        if re.fullmatch(option.replace("x", r"\d"), status.split(" ")[0]) and " " not in option:
            return True
        if status == option:
            return True
    return False


_MATRIX = Matrix()


@pytest.fixture(scope="session")
def hub_matrix() -> Matrix:
    return _MATRIX


@pytest.fixture
def check(hub_matrix: Matrix, request: pytest.FixtureRequest) -> Iterator[Checks]:
    checks = Checks(hub_matrix, request.node.name)
    yield checks


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _MATRIX.rows:
        return
    ARTEFACTS.mkdir(exist_ok=True)
    out = ARTEFACTS / "hub-isolation-matrix.md"
    out.write_text(_MATRIX.document(), encoding="utf-8")
    terminalreporter.section("JupyterHub isolation matrix (as measured)")
    terminalreporter.write_line(_MATRIX.table())
    terminalreporter.write_line(f"timings: {', '.join(f'{k} {v:.1f}s' for k, v in _MATRIX.timings.items())}")
    terminalreporter.write_line(f"written to {out}")


# -- the hub ----------------------------------------------------------------------------------
_RUNNING: list[Hub] = []


@dataclass
class Kernel:
    """A kernel on a single-user server, driven over the real websocket channels."""

    hub: Hub
    owner: str  # whose server
    token: str  # who asks (a hub token)
    id: str

    def run(self, code: str, timeout: float = KERNEL_TIMEOUT) -> Any:
        """Run ``code`` (which sets ``result``); return ``result`` through JSON.
        Raises AssertionError with the traceback when the code fails."""
        wrapped = code + "\nimport json as _j\nprint('@@RESULT@@' + _j.dumps(result, default=str))\n"
        stdout, error = asyncio.run(self._execute(wrapped, timeout))
        if error:
            raise AssertionError(
                f"kernel code failed on {self.owner}'s server:\n{error}\n--- stdout\n{stdout}"
            )
        for line in stdout.splitlines():
            if line.startswith("@@RESULT@@"):
                return json.loads(line[len("@@RESULT@@") :])
        raise AssertionError(f"no result from the kernel; stdout:\n{stdout}")

    async def _execute(self, code: str, timeout: float) -> tuple[str, str]:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        url = (
            self.hub.proxy_url.replace("http://", "ws://", 1)
            + f"user/{self.owner}/api/kernels/{self.id}/channels"
        )
        request = HTTPRequest(url, headers={"Authorization": f"token {self.token}"}, request_timeout=timeout)
        conn = await websocket_connect(request)
        msg_id = uuid.uuid4().hex
        conn.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": "hub-test",
                        "session": uuid.uuid4().hex,
                        "msg_type": "execute_request",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "buffers": [],
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )
        out: list[str] = []
        errors: list[str] = []
        deadline = time.monotonic() + timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"kernel did not finish in {timeout}s; stdout so far:\n{''.join(out)}"
                    )
                raw = await asyncio.wait_for(conn.read_message(), remaining)
                if raw is None:
                    raise AssertionError("the kernel websocket closed")
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream" and content["name"] == "stdout":
                    out.append(content["text"])
                elif kind == "error":
                    errors.append(
                        "\n".join(content.get("traceback", [])) or f"{content['ename']}: {content['evalue']}"
                    )
                elif kind == "status" and content["execution_state"] == "idle":
                    break
        finally:
            conn.close()
        return "".join(out), re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(errors))


@dataclass
class Hub:
    users: HubUsers
    venv: HubVenv
    workdir: Path
    sandbox: Any
    proxy_port: int = 0
    hub_port: int = 0
    driver_token: str = ""
    #: the token of the hub service named like user A
    namesake_token: str = ""
    user_password: str = ""
    admin_password: str = ""
    store_master_key: bytes = b""
    admin_profiles_file: Path = Path()
    readonly_key_file: Path = Path()
    process: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    log_path: Path = Path()
    timings: dict[str, float] = field(default_factory=dict)
    kernels: list[Kernel] = field(default_factory=list)
    #: appended to the generated jupyterhub_config.py (a test module's own hub set-up)
    extra_config: str = ""
    #: added to the hub's environment (e.g. JUPYTERHUB_CRYPT_KEY)
    extra_env: dict[str, str] = field(default_factory=dict, repr=False)
    #: start A's and B's servers with the hub (else the test calls ``spawn_servers``: with
    #: an OpenID login, oauthenticator refreshes auth before a spawn, so users log in first)
    spawn_at_start: bool = True

    # -- addresses ---------------------------------------------------------------------------
    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}/"

    @property
    def api_url(self) -> str:
        return self.proxy_url + "hub/api/"

    def server_url(self, owner: str, *, direct: bool = False) -> str:
        """``http://127.0.0.1:<proxy>/user/<owner>/``, or the server's own port when ``direct``."""
        if not direct:
            return f"{self.proxy_url}user/{owner}/"
        routes = self.hub_api("GET", "proxy").json()
        target = routes[f"/user/{owner}/"]["target"].rstrip("/")
        return f"{target}/user/{owner}/"

    def broker_url(self, owner: str, *, direct: bool = False) -> str:
        return self.server_url(owner, direct=direct) + "weaviate-auth/api/"

    # -- logs ----------------------------------------------------------------------------------
    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int, lines: int = LOG_SECTION_LINES) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                text = fh.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"(no hub log: {exc})"
        kept = text.splitlines()
        head = f"... {len(kept) - lines} earlier lines in {self.log_path} ...\n" if len(kept) > lines else ""
        return head + "\n".join(kept[-lines:])

    # -- the hub's REST API --------------------------------------------------------------------
    def hub_api(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"token {token or self.driver_token}"}
        with httpx.Client(timeout=30) as client:
            return client.request(method, self.api_url + path, headers=headers, **kwargs)

    def new_token(self, user: str, note: str) -> str:
        reply = self.hub_api("POST", f"users/{user}/tokens", json={"note": note, "expires_in": 3600})
        assert reply.status_code in (200, 201), f"token for {user}: {reply.status_code} {reply.text}"
        return str(reply.json()["token"])

    def user_model(self, user: str) -> dict[str, Any]:
        reply = self.hub_api("GET", f"users/{user}")
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def server_pid(self, user: str) -> int:
        return int(self.user_model(user)["servers"][""]["state"]["pid"])

    # -- lifecycle --------------------------------------------------------------------------------
    def write_config(self) -> Path:
        users = self.users
        hub_dir = self.workdir / "hub"
        hub_dir.mkdir(mode=0o700)
        master_key_file = hub_dir / "store-master.key"
        master_key_file.write_bytes(self.store_master_key)
        master_key_file.chmod(0o600)
        policy_allowed = f"{self.sandbox.weaviate_url},{ALLOWED_PATTERN}"
        config = f"""\
            # JupyterHub configuration written by tests/hub/conftest.py
            import hashlib
            import hmac

            c = get_config()  # noqa
            c.JupyterHub.ip = "127.0.0.1"
            c.JupyterHub.port = {self.proxy_port}
            c.JupyterHub.hub_ip = "127.0.0.1"
            c.JupyterHub.hub_port = {self.hub_port}
            c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
            c.ConfigurableHTTPProxy.command = [{shutil.which("configurable-http-proxy")!r}]
            c.ConfigurableHTTPProxy.pid_file = {str(hub_dir / "proxy.pid")!r}
            c.JupyterHub.db_url = {"sqlite:///" + str(hub_dir / "jupyterhub.sqlite")!r}
            c.JupyterHub.cookie_secret_file = {str(hub_dir / "jupyterhub_cookie_secret")!r}
            c.JupyterHub.cleanup_servers = True

            c.JupyterHub.authenticator_class = "shared-password"
            c.SharedPasswordAuthenticator.user_password = {self.user_password!r}
            c.SharedPasswordAuthenticator.admin_password = {self.admin_password!r}
            c.Authenticator.allowed_users = {{{users.a!r}, {users.b!r}}}
            c.Authenticator.admin_users = {{{users.admin!r}}}

            # each user's server runs as that Unix user, from the venv they can execute
            c.JupyterHub.spawner_class = "localprocess"
            c.Spawner.cmd = [{self.venv.singleuser!r}]
            # the browser test (test_hub_panel.py) asks Lab whether the kernel is ready
            c.Spawner.args = ["--LabApp.expose_app_in_browser=True"]
            c.Spawner.ip = "127.0.0.1"
            c.Spawner.start_timeout = {int(SPAWN_TIMEOUT)}
            c.Spawner.http_timeout = {int(SPAWN_TIMEOUT)}

            # --- the administrator's weaviate-auth policy (what docs/jupyterhub.md describes) ---
            with open({str(master_key_file)!r}, "rb") as fh:
                _MASTER = fh.read().strip()

            def weaviate_store_key(spawner):
                # one key per user, derived from a master key only the hub can read
                return hmac.new(_MASTER, spawner.user.name.encode(), hashlib.sha256).hexdigest()

            def weaviate_allow_remember(spawner):
                # per-user policy: {users.b} may not keep credentials on the host
                return "false" if spawner.user.name == {users.b!r} else "true"

            c.Spawner.environment = {{
                "WEAVIATE_AUTH_DEFAULT_URL": {self.sandbox.weaviate_url!r},
                "WEAVIATE_AUTH_ALLOWED_URLS": {policy_allowed!r},
                "WEAVIATE_AUTH_REQUIRE_HTTPS": "true",
                "WEAVIATE_AUTH_ALLOW_REMEMBER": weaviate_allow_remember,
                "WEAVIATE_AUTH_STORE_KEY": weaviate_store_key,
                "WEAVIATE_AUTH_ADMIN_PROFILES": {str(self.admin_profiles_file)!r},
            }}

            # --- the test driver: creates tokens, starts servers, reads the proxy table ---
            c.JupyterHub.services = [
                {{"name": "waw-test-driver", "api_token": {self.driver_token!r}}},
                # a service that happens to share A's name, with access to A's server: not A
                {{"name": {users.a!r}, "api_token": {self.namesake_token!r}}},
            ]
            c.JupyterHub.load_roles = [
                {{
                    "name": "waw-test-driver",
                    "scopes": ["admin:users", "admin:servers", "tokens", "proxy", "shares", "list:users"],
                    "services": ["waw-test-driver"],
                }},
                {{"name": "waw-namesake", "scopes": ["access:servers!user={users.a}"], "services": [{users.a!r}]}},
                # JupyterHub 5 sharing: users may share their servers (and look up names to do so)
                {{"name": "user", "scopes": ["self", "shares!user", "read:users:name"]}},
            ]
        """
        path = hub_dir / "jupyterhub_config.py"
        path.write_text(textwrap.dedent(config) + textwrap.dedent(self.extra_config), encoding="utf-8")
        return path

    def write_admin_profiles(self) -> None:
        """The read-only profile every user gets: the sandbox's read-only API key, in a file
        readable by root and the users' group (their servers read it), listed in a JSON file."""
        admin_dir = self.workdir / "admin"
        admin_dir.mkdir(mode=0o750)
        shutil.chown(admin_dir, "root", self.users.group)
        self.readonly_key_file = admin_dir / "readonly.key"
        self.readonly_key_file.write_text(self.sandbox.credentials.readonly_api_key + "\n", encoding="utf-8")
        self.readonly_key_file.chmod(0o640)
        shutil.chown(self.readonly_key_file, "root", self.users.group)
        self.admin_profiles_file = admin_dir / "profiles.json"
        self.admin_profiles_file.write_text(
            json.dumps(
                [
                    {
                        "name": ADMIN_PROFILE,
                        "url": self.sandbox.weaviate_url,
                        "method": "api_key",
                        "secret_file": str(self.readonly_key_file),
                    }
                ],
                indent=1,
            ),
            encoding="utf-8",
        )
        self.admin_profiles_file.chmod(0o644)

    def start(self) -> None:
        t0 = time.monotonic()
        # preset ports are kept (a provider's registered redirect URI names the proxy's)
        self.proxy_port, self.hub_port = self.proxy_port or free_port(), self.hub_port or free_port()
        self.driver_token = secrets.token_hex(32)
        self.namesake_token = secrets.token_hex(32)
        self.user_password = secrets.token_urlsafe(18)
        self.admin_password = secrets.token_urlsafe(36)
        # one master key for the whole session, as an administrator keeps theirs: the users
        # (session-wide) keep their stores from one module's hub to the next
        self.store_master_key = _STORE_MASTER_KEY
        self.write_admin_profiles()
        config = self.write_config()
        self.log_path = self.workdir / "hub" / "hub.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("WEAVIATE_", "JUPYTERHUB_", "JUPYTER_", "JPY_"))
        }
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "/usr/bin:/bin")])
        env.update(self.extra_env)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config), "--log-level=INFO"],
                cwd=self.workdir / "hub",
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        self._wait("the hub", lambda: httpx.get(self.api_url, timeout=2).status_code == 200, HUB_TIMEOUT)
        self.timings["hub start"] = time.monotonic() - t0
        for name in (self.users.a, self.users.b, self.users.admin):
            self.tokens[name] = self.new_token(name, "hub tests")
        if self.spawn_at_start:
            self.spawn_servers()

    def spawn_servers(self) -> None:
        """Start A's and B's servers and wait until both are ready."""
        t1 = time.monotonic()
        for name in (self.users.a, self.users.b):
            reply = self.hub_api("POST", f"users/{name}/server")
            assert reply.status_code in (201, 202), f"spawn {name}: {reply.status_code} {reply.text}"
        for name in (self.users.a, self.users.b):
            self._wait(f"{name}'s server", lambda n=name: self._ready(n), SPAWN_TIMEOUT)
        # the broker writes its connection file once the server listens
        self.timings["servers ready"] = time.monotonic() - t1

    def _ready(self, name: str) -> bool:
        server = self.user_model(name)["servers"].get("")
        return bool(server and server.get("ready"))

    def _wait(self, what: str, probe: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"JupyterHub exited ({self.process.returncode}) waiting for {what}")
            with contextlib.suppress(httpx.HTTPError, AssertionError, KeyError):
                if probe():
                    return
            time.sleep(0.25)
        raise RuntimeError(f"{what} was not ready within {timeout:.0f}s")

    def start_kernel(self, owner: str, token: str) -> Kernel:
        reply = httpx.post(
            self.server_url(owner) + "api/kernels",
            headers={"Authorization": f"token {token}"},
            json={"name": "python3"},
            timeout=60,
        )
        assert reply.status_code == 201, f"kernel on {owner}'s server: {reply.status_code} {reply.text}"
        kernel = Kernel(self, owner, token, reply.json()["id"])
        self.kernels.append(kernel)
        kernel.run("result = 1")  # waits until it answers
        return kernel

    def stop(self) -> None:
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # stops the users' servers (cleanup_servers) and the proxy
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        pid_file = self.workdir / "hub" / "proxy.pid"
        with contextlib.suppress(OSError, ValueError):
            _stop_pids([int(pid_file.read_text().strip())], grace=2)
        self.process = None


@contextlib.contextmanager
def running_hub(prepared: Hub, matrix: Matrix, log_name: str = "hub.log") -> Iterator[Hub]:
    """Start ``prepared`` (its servers ready), yield it, stop it; its log is copied to
    ``artefacts/<log_name>`` and its work directory removed."""
    _RUNNING.append(prepared)
    matrix.timings["venv " + ("build" if prepared.venv.built else "reuse")] = prepared.venv.seconds
    try:
        try:
            prepared.start()
        except Exception as exc:
            raise RuntimeError(f"{exc}\n--- hub log ---\n{prepared.log_since(0)}") from exc
        matrix.timings.update(prepared.timings)
        yield prepared
    finally:
        prepared.stop()
        _RUNNING.remove(prepared)
        if prepared.log_path.exists():
            ARTEFACTS.mkdir(exist_ok=True)
            shutil.copyfile(prepared.log_path, ARTEFACTS / log_name)
        shutil.rmtree(prepared.workdir, ignore_errors=True)


_STORE_MASTER_KEY = secrets.token_hex(32).encode()


def hub_workdir() -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="waw-hub-"))
    workdir.chmod(0o711)  # users traverse to the admin files; the hub's own dir is 0700
    return workdir


@pytest.fixture(scope="module")
def hub(hub_users: HubUsers, hub_venv: HubVenv, sandbox_session: Any, hub_matrix: Matrix) -> Iterator[Hub]:
    prepared = Hub(users=hub_users, venv=hub_venv, workdir=hub_workdir(), sandbox=sandbox_session)
    with running_hub(prepared, hub_matrix) as running:
        yield running


_LOG_OFFSETS = pytest.StashKey[dict[int, int]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    item.stash[_LOG_OFFSETS] = {id(h): h.log_size() for h in _RUNNING}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed or not Path(str(item.fspath)).is_relative_to(HERE):
        return
    offsets = item.stash.get(_LOG_OFFSETS, {})
    for running in _RUNNING:
        since = offsets.get(id(running), 0) if report.when != "setup" else 0
        report.sections.append(
            (
                f"JupyterHub log: hub, proxy, single-user servers ({running.log_path}; "
                "the whole log is copied to artefacts/hub.log)",
                running.log_since(since),
            )
        )


# -- clients -----------------------------------------------------------------------------------
def token_client(token: str | None) -> httpx.Client:
    headers = {"Authorization": f"token {token}"} if token else {}
    return httpx.Client(headers=headers, timeout=60, follow_redirects=False)


class Browser:
    """A browser's cookie session through the proxy, logged in at ``/hub/login``.

    API calls send what a browser's ``fetch`` sends (``Sec-Fetch-Mode: cors``, the
    page's ``Origin``), and the ``_xsrf`` cookie's value as ``X-XSRFToken`` when asked."""

    def __init__(self, hub: Hub, user: str, password: str) -> None:
        self.hub = hub
        self.user = user
        self.client = httpx.Client(base_url=hub.proxy_url, timeout=60, follow_redirects=True)
        page = self.client.get("hub/login", headers={"Sec-Fetch-Mode": "navigate"})
        match = re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text)
        form = {"username": user, "password": password}
        if match:
            form["_xsrf"] = match.group(1)
        reply = self.client.post(
            "hub/login?next=%2Fhub%2Fhome", data=form, headers={"Sec-Fetch-Mode": "navigate"}
        )
        assert reply.status_code == 200 and "jupyterhub-session-id" in self.client.cookies, (
            f"login of {user} failed: {reply.status_code} {reply.url}"
        )

    def open_server(self, owner: str) -> httpx.Response:
        """Navigate to ``/user/<owner>/`` (the OAuth round trip that sets the server's cookies);
        the last response of the redirect chain."""
        reply = self.client.get(f"user/{owner}/files/", headers={"Sec-Fetch-Mode": "navigate"})
        if reply.status_code == 200 and reply.url.path.endswith("/hub/api/oauth2/authorize"):
            # a server not one's own: JupyterHub asks to authorize access (the consent form)
            form = {
                "_xsrf": re.findall(r'name="_xsrf" value="([^"]+)"', reply.text),
                "scopes": re.findall(r'name="scopes" value="([^"]+)"', reply.text),
            }
            reply = self.client.post(reply.url, data=form, headers={"Sec-Fetch-Mode": "navigate"})
        return reply

    def xsrf(self, owner: str) -> str | None:
        for cookie in self.client.cookies.jar:
            if cookie.name == "_xsrf" and cookie.path.rstrip("/") == f"/user/{owner}":
                return cookie.value
        return None

    def api(self, method: str, owner: str, path: str, *, xsrf: bool = True, **kwargs: Any) -> httpx.Response:
        headers = {
            "Sec-Fetch-Mode": "cors",
            "Sec-Fetch-Site": "same-origin",
            "Origin": self.hub.proxy_url.rstrip("/"),
        }
        token = self.xsrf(owner)
        if xsrf and token:
            headers["X-XSRFToken"] = token
        return self.client.request(
            method,
            f"user/{owner}/weaviate-auth/api/{path}",
            headers=headers,
            follow_redirects=False,
            **kwargs,
        )

    def close(self) -> None:
        self.client.close()


def private_mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


def derived_store_key(hub: Hub, user: str) -> str:
    """The key the hub config derives for ``user`` (tests check the store uses one)."""
    return hmac.new(hub.store_master_key, user.encode(), hashlib.sha256).hexdigest()
