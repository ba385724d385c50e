"""``weaviate-auth``, the console script, for real: subprocesses against the sandbox,
in-process on an isolated store and through a real Jupyter server's broker; a
pseudo-terminal for the hidden prompt and the API-key warning; the argv of the running
curl read from /proc.

Secrets are scanned for by value in every output; only ``token`` prints one (to stdout).
"""

from __future__ import annotations

import importlib
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.test_kernel_broker import JupyterServer, server_env
from weaviate_auth_widget import cli
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService

pytestmark = [pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "weaviate_auth_widget.cli"]


class Terminal:
    """Runs the CLI as a user's shell would, with every user-level path under ``base``."""

    def __init__(self, base: Path, secrets: list[str]) -> None:
        self.env = server_env(base)
        self.secrets = secrets
        self.runs: list[subprocess.CompletedProcess[str]] = []

    def run(
        self, *args: str, input: str | None = None, scan: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*CLI, *args], env=self.env, input=input, capture_output=True, text=True, timeout=60
        )
        if scan:
            self.assert_clean(done.stdout + done.stderr)
        self.runs.append(done)
        return done

    def assert_clean(self, text: str) -> None:
        for secret in self.secrets:
            assert secret not in text


def test_the_entry_point_is_declared_and_resolves_to_main() -> None:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["weaviate-auth"].partition(":")
    assert getattr(importlib.import_module(module), attr) is cli.main


def test_help_lists_the_commands(tmp_path: Path) -> None:
    done = Terminal(tmp_path, []).run("--help")
    assert done.returncode == 0
    for command in ("list", "login", "whoami", "token", "curl", "logout", "forget"):
        assert f"    {command} " in done.stdout


def test_every_command_in_process(sandbox: Any, tmp_path: Path) -> None:
    creds = sandbox.credentials
    term = Terminal(tmp_path, [creds.admin_api_key, creds.password])
    url = sandbox.weaviate_url

    done = term.run("login", "prod", "--url", url, "--api-key-stdin", input=creds.admin_api_key + "\n")
    assert done.returncode == 0, done.stderr
    assert "as admin" in done.stdout and "in-process" in done.stdout

    done = term.run(
        "login", "lab", "--url", url, "--method", "password", "--username", creds.username,
        "--password-stdin", input=creds.password + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    listed = json.loads(term.run("list", "--json").stdout)
    assert listed["mode"] == "in-process"
    assert {p["name"]: p["method"] for p in listed["profiles"]} == {"lab": "password", "prod": "api_key"}
    assert "prod" in term.run("list").stdout

    who = json.loads(term.run("whoami", "prod", "--json").stdout)
    assert (who["username"], who["roles"]) == ("admin", ["admin"])
    assert creds.username in term.run("whoami", "lab").stdout
    # no profile named: $WEAVIATE_PROFILE picks one
    term.env["WEAVIATE_PROFILE"] = "lab"
    assert creds.username in term.run("whoami").stdout
    del term.env["WEAVIATE_PROFILE"]
    assert term.run("whoami").returncode == 2  # two profiles, none chosen

    # token: the API key itself for an API-key profile, a JWT for the password login
    token = term.run("token", "prod", scan=False)
    assert (token.returncode, token.stdout) == (0, creds.admin_api_key + "\n")
    assert token.stderr == ""  # stdout is a pipe: no warning
    jwt = term.run("token", "lab", "--json", scan=False)
    assert json.loads(jwt.stdout)["token"].count(".") == 2 and json.loads(jwt.stdout)["expires_at"]

    # curl authenticates: the sandbox sees the user
    sandbox.reset_stats()
    done = term.run("curl", "lab", "/v1/users/own-info", "-s")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["username"] == creds.username
    assert [r.username for r in sandbox.weaviate.requests if "own-info" in r.path] == [creds.username]

    # logout ends the password login for good (its refresh token is gone); forget deletes
    assert term.run("logout", "lab").returncode == 0
    done = term.run("token", "lab")
    assert done.returncode == 1 and "weaviate-auth login lab" in done.stderr
    assert term.run("forget", "lab").returncode == 0
    done = term.run("forget", "lab")
    assert done.returncode == 1 and done.stderr.startswith("weaviate-auth: error: No profile 'lab'")
    assert [p["name"] for p in json.loads(term.run("list", "--json").stdout)["profiles"]] == ["prod"]


def test_usage_errors_and_failures_exit_2_and_1(sandbox: Any, tmp_path: Path) -> None:
    creds = sandbox.credentials
    term = Terminal(tmp_path, [creds.admin_api_key])
    assert term.run().returncode == 2  # no command
    assert term.run("token").returncode == 2  # no profile
    done = term.run("login", "new")  # no such profile and no --url to create it
    assert done.returncode == 2 and "--url" in done.stderr
    done = term.run("login", "new", "--url", sandbox.weaviate_url)  # a pipe, no --api-key-stdin
    assert done.returncode == 1 and "--api-key-stdin" in done.stderr
    assert term.run("list", "--json").stdout.count('"name"') == 0  # nothing saved by a failed login
    done = term.run("login", "bad", "--url", sandbox.weaviate_url, "--api-key-stdin", input="wrong-key\n")
    assert done.returncode == 1 and done.stderr.startswith("weaviate-auth: error: ")
    assert "wrong-key" not in done.stderr
    term.run("login", "prod", "--url", sandbox.weaviate_url, "--stdin", input=creds.admin_api_key + "\n")
    done = term.run("curl", "prod", "v1/meta")  # not a path: the URL comes from the profile
    assert done.returncode == 2 and "starting with '/'" in done.stderr
    assert term.run("curl", "prod", "//evil.example/v1/meta", "-s", "-o", "/dev/null").returncode != 2
    # nothing that would send the headers elsewhere reaches curl: other URLs, --next, redirects
    for options in (
        ["https://elsewhere.example/"],
        ["--url", "https://elsewhere.example/"],
        ["--next", "-s"],
        ["-sL"],
        ["--location-trusted"],
        ["-K", "/dev/null"],
    ):
        done = term.run("curl", "prod", "/v1/meta", *options)
        assert done.returncode == 2 and "another URL" in done.stderr, (options, done.stderr)
    # a proxy or referer URL is a value, not a request target
    done = term.run("curl", "prod", "/v1/meta", "-s", "-e", "https://referer.example/", "-o", "/dev/null")
    assert done.returncode == 0, done.stderr
    # curl's own exit code: -f makes a 404 exit 22
    assert term.run("curl", "prod", "/v1/no-such-route", "-s", "-f").returncode == 22


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_curl_keeps_every_secret_out_of_argv_and_environment(
    sandbox: Any, weaviate_factory: Any, tmp_path: Path
) -> None:
    creds = sandbox.credentials
    slow = weaviate_factory(sandbox.weaviate_config, delay=3.0)  # curl stays up long enough to look at
    module_key = "sk-module-" + os.urandom(8).hex()
    term = Terminal(tmp_path, [creds.admin_api_key, module_key])
    done = term.run(
        "login", "slow", "--url", slow.url, "--api-key-stdin", "--module-key", "X-OpenAI-Api-Key",
        input=f"{creds.admin_api_key}\n{module_key}\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    slow.reset()
    proc = subprocess.Popen(
        [*CLI, "curl", "slow", "/v1/meta", "-s"], env=term.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    seen: dict[int, bytes] = {}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(b"curl" in c.split(b"\0")[0] for c in seen.values()):
        for pid in [proc.pid, *_children(proc.pid)]:
            try:
                seen[pid] = Path(f"/proc/{pid}/cmdline").read_bytes()
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            for secret in (creds.admin_api_key, module_key):
                assert secret.encode() not in seen[pid] and secret.encode() not in environ
        time.sleep(0.05)
    out, err = proc.communicate(timeout=30)
    curl_argv = [c.split(b"\0") for c in seen.values() if b"curl" in c.split(b"\0")[0]]
    assert curl_argv, "curl was not seen running"
    assert curl_argv[0][1] == b"--config" and curl_argv[0][2].startswith(b"/dev/fd/")
    for secret in (creds.admin_api_key, module_key):
        assert secret.encode() not in out + err
    assert proc.returncode == 0 and json.loads(out)["version"] == slow.config.version
    (request,) = slow.requests
    assert (request.username, request.authorization) == ("admin", True)
    assert "x-openai-api-key" in {h.lower() for h in request.headers}


def test_curl_leaves_stdin_to_the_request_body(sandbox: Any, tmp_path: Path) -> None:
    creds = sandbox.credentials
    term = Terminal(tmp_path, [creds.admin_api_key])
    term.run("login", "prod", "--url", sandbox.weaviate_url, "--stdin", input=creds.admin_api_key + "\n")
    done = term.run(
        "curl", "prod", "/v1/graphql", "-s", "-H", "Content-Type: application/json", "-d", "@-",
        input=json.dumps({"query": "{ Get { Article { title } } }"}),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["data"]["Get"]["Article"]


def test_session_curl_is_a_pasteable_line_without_secret(sandbox: Any, tmp_path: Path) -> None:
    creds = sandbox.credentials
    term = Terminal(tmp_path, [creds.admin_api_key])
    term.run("login", "prod", "--url", sandbox.weaviate_url, "--stdin", input=creds.admin_api_key + "\n")
    store = Path(term.env["WEAVIATE_AUTH_DIR"])
    service = AuthService(directory=store, secrets=SecretStore("file", directory=store))
    try:
        with service.session("prod") as session:
            line = session.curl("/v1/schema", "-s")
    finally:
        service.close()
    assert line == "weaviate-auth curl prod /v1/schema -s"
    argv = shlex.split(line)
    assert argv[0] == "weaviate-auth"
    done = term.run(*argv[1:])
    assert done.returncode == 0 and "classes" in json.loads(done.stdout)


def _spawn(term: Terminal, *args: str) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable, ["-m", "weaviate_auth_widget.cli", *args], env=term.env, encoding="utf-8", timeout=30
    )


def test_a_terminal_gets_a_hidden_prompt_and_the_api_key_warning(sandbox: Any, tmp_path: Path) -> None:
    creds = sandbox.credentials
    term = Terminal(tmp_path, [creds.admin_api_key])
    child = _spawn(term, "login", "prod", "--url", sandbox.weaviate_url)
    child.expect("API key: ")
    child.sendline(creds.admin_api_key)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and "Logged in" in (child.before or "")
    assert creds.admin_api_key not in (child.before or "")  # not echoed

    child = _spawn(term, "token", "prod")
    child.expect(pexpect.EOF)
    child.close()
    shown = child.before or ""
    assert child.exitstatus == 0
    assert "warning: this is the long-lived API key" in shown and creds.admin_api_key in shown


def test_through_the_broker_of_a_real_jupyter_server(sandbox: Any, tmp_path: Path) -> None:
    creds = sandbox.credentials
    term = Terminal(tmp_path, [creds.admin_api_key, creds.password])
    server = JupyterServer(term.env, tmp_path / "root").start()
    try:
        # as in a Jupyter terminal: the server's environment names the connection file
        term.env["WEAVIATE_AUTH_BROKER_FILE"] = str(server.broker_file)
        done = term.run(
            "login", "lab", "--url", sandbox.weaviate_url, "--method", "password",
            "--username", creds.username, "--password-stdin", input=creds.password + "\n",
        )  # fmt: skip
        assert done.returncode == 0 and "broker" in done.stdout, done.stderr
        # the broker holds the login: its own API describes it as logged in
        assert server.api("GET", "weaviate-auth/api/profiles/lab").json()["logged_in"] is True
        listed = json.loads(term.run("list", "--json").stdout)
        assert listed["mode"] == "broker" and listed["profiles"][0]["logged_in"] is True
        sandbox.reset_stats()
        done = term.run("curl", "lab", "/v1/users/own-info", "-s")
        assert json.loads(done.stdout)["username"] == creds.username
        assert [r.username for r in sandbox.weaviate.requests if "own-info" in r.path] == [creds.username]
        # any shell of this user (no variable) finds the server's connection file too
        del term.env["WEAVIATE_AUTH_BROKER_FILE"]
        assert json.loads(term.run("whoami", "lab", "--json").stdout)["username"] == creds.username
        assert term.run("logout", "lab").returncode == 0
        assert server.api("GET", "weaviate-auth/api/profiles/lab").json()["logged_out"] is True
        done = term.run("whoami", "lab")
        assert done.returncode == 1 and "weaviate-auth login lab" in done.stderr
        audit = (tmp_path / "audit.jsonl").read_text()
        term.assert_clean(audit)
        assert '"logout"' in audit or "logout" in audit
    finally:
        server.stop()
    # no server: --mode broker fails with a fix, auto falls back to the same store in-process
    done = term.run("--mode", "broker", "list")
    assert done.returncode == 1 and "broker" in done.stderr
    listed = json.loads(term.run("list", "--json").stdout)
    assert listed["mode"] == "in-process" and [p["name"] for p in listed["profiles"]] == ["lab"]


def _key_works(sandbox: Any, key: str) -> int:
    import httpx

    response = httpx.get(
        sandbox.weaviate_url + "/v1/users/own-info", headers={"Authorization": f"Bearer {key}"}
    )
    return response.status_code


def _keys_round_trip(term: Terminal, sandbox: Any) -> list[str]:
    """Every ``keys`` action on user ``alice``; returns the keys she had (to scan for)."""
    creds = sandbox.credentials
    for name, key in (("admin", creds.admin_api_key), ("viewer", creds.readonly_api_key)):
        done = term.run("login", name, "--url", sandbox.weaviate_url, "--stdin", input=key + "\n")
        assert done.returncode == 0, done.stderr
    roles = term.run("keys", "roles", "admin", "--json")
    assert "viewer" in json.loads(roles.stdout), roles.stderr

    done = term.run("keys", "create", "admin", "alice", "--as", "alice", "--role", "viewer")
    assert done.returncode == 0, done.stderr
    copied = term.run("keys", "copy", "alice", scan=False)  # stdout is a pipe here
    assert copied.returncode == 0 and copied.stderr == ""
    first = copied.stdout
    term.secrets.append(first)
    assert _key_works(sandbox, first) == 200
    assert json.loads(term.run("whoami", "alice", "--json").stdout)["username"] == "alice"
    users = {u["user_id"]: u for u in json.loads(term.run("keys", "list", "admin", "--json").stdout)}
    assert users["alice"]["roles"] == ["viewer"] and users["alice"]["active"] is True
    assert "alice" in term.run("keys", "list", "admin").stdout

    done = term.run("keys", "rotate", "admin", "alice")  # stdin is no terminal: needs --yes
    assert done.returncode == 2 and "--yes" in done.stderr
    done = term.run("keys", "rotate", "admin", "alice", "--yes")
    assert done.returncode == 0 and "alice" in done.stdout, done.stderr
    second = term.run("keys", "copy", "alice", scan=False).stdout
    term.secrets.append(second)
    assert second != first and _key_works(sandbox, first) == 401 and _key_works(sandbox, second) == 200

    assert term.run("keys", "deactivate", "admin", "alice", "--yes").returncode == 0
    assert _key_works(sandbox, second) == 401
    assert term.run("keys", "activate", "admin", "alice").returncode == 0
    assert _key_works(sandbox, second) == 200
    assert term.run("keys", "assign", "admin", "alice", "admin").returncode == 0
    assert term.run("keys", "revoke", "admin", "alice", "viewer").returncode == 0
    users = {u["user_id"]: u for u in json.loads(term.run("keys", "list", "admin", "--json").stdout)}
    assert users["alice"]["roles"] == ["admin"]

    done = term.run("keys", "create", "viewer", "bob", "--as", "bob")  # a viewer may not
    assert done.returncode == 1 and done.stderr.startswith("weaviate-auth: error: "), done.stderr
    assert "bob" not in term.run("list").stdout
    done = term.run("keys", "copy", "viewer-missing")
    assert done.returncode == 1
    assert term.run("keys", "delete", "admin", "alice", "--yes").returncode == 0
    assert "alice" not in json.dumps(json.loads(term.run("keys", "list", "admin", "--json").stdout))
    return [first, second]


def test_keys_in_process(sandbox: Any, tmp_path: Path) -> None:
    term = Terminal(tmp_path, [sandbox.credentials.admin_api_key, sandbox.credentials.readonly_api_key])
    _keys_round_trip(term, sandbox)
    # `keys copy` refuses a terminal
    child = _spawn(term, "keys", "copy", "admin")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1 and "Not writing an API key to a terminal" in (child.before or "")
    term.assert_clean(child.before or "")


def test_keys_through_the_broker(sandbox: Any, tmp_path: Path) -> None:
    term = Terminal(tmp_path, [sandbox.credentials.admin_api_key, sandbox.credentials.readonly_api_key])
    server = JupyterServer(term.env, tmp_path / "root").start()
    try:
        term.env["WEAVIATE_AUTH_BROKER_FILE"] = str(server.broker_file)
        keys = _keys_round_trip(term, sandbox)
        assert json.loads(term.run("list", "--json").stdout)["mode"] == "broker"
        audit = (tmp_path / "audit.jsonl").read_text()
        assert "alice" in audit
        for key in keys:
            assert key not in audit
    finally:
        server.stop()


def _in_jupyter_terminal(server: JupyterServer, command: str, timeout: float = 60) -> str:
    """Run ``command`` in a real Jupyter terminal (REST + websocket, as JupyterLab does);
    return what the terminal showed up to the end marker."""
    import websocket  # websocket-client, a jupyter_server dependency

    created = server.api("POST", "api/terminals")
    assert created.status_code == 200, created.text
    name = created.json()["name"]
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/terminals/websocket/{name}",
        header=[f"Authorization: token {server.token}"],
        timeout=timeout,
    )
    shown = ""
    try:
        ws.send(json.dumps(["stdin", f"{command}; echo END-OF-$((6*7))\r"]))
        deadline = time.monotonic() + timeout
        while "END-OF-42" not in shown and time.monotonic() < deadline:
            kind, *data = json.loads(ws.recv())
            if kind == "stdout":
                shown += data[0]
    finally:
        ws.close()
        server.api("DELETE", f"api/terminals/{name}")
    assert "END-OF-42" in shown, shown
    return shown


def test_a_jupyter_terminal_finds_the_broker(sandbox: Any, tmp_path: Path) -> None:
    creds = sandbox.credentials
    term = Terminal(tmp_path, [creds.admin_api_key])
    server = JupyterServer(term.env, tmp_path / "root").start()
    try:
        server.save_profile(
            "prod", {"url": sandbox.weaviate_url, "secrets": {"api_key": creds.admin_api_key}}
        )
        cli_line = shlex.join([*CLI, "whoami", "prod"])
        shown = _in_jupyter_terminal(server, f'echo "FILE=$WEAVIATE_AUTH_BROKER_FILE"; {cli_line}')
        assert f"FILE={server.broker_file}" in shown  # terminals inherit it from the server
        assert "user:     admin" in shown and "(api_key, broker)" in shown
        term.assert_clean(shown)
        # the login happened in the broker: the server's API shows it
        assert server.api("GET", "weaviate-auth/api/profiles/prod").json()["logged_in"] is True
    finally:
        server.stop()


def test_login_with_a_device_code(sandbox: Any, tmp_path: Path) -> None:
    """`weaviate-auth login PROFILE --device`: the link and code on stderr; a person
    (played with httpx) signs in on the provider's page; the CLI keeps the refresh token."""
    import re

    from tests.idp_browser import Browser

    creds = sandbox.credentials
    term = Terminal(tmp_path, [creds.password])
    url = sandbox.weaviate_url
    proc = subprocess.Popen(
        [*CLI, "login", "sso", "--url", url, "--device"],
        env=term.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    found = re.search(r"open (\S+) and enter the code (\S+)", line)
    assert found, line
    browser = Browser()
    page = browser.submit(browser.open(found.group(1)), "", user_code=found.group(2))
    assert "Device connected" in browser.login(page, creds.username, creds.password).text
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"as {creds.username}" in out and "profile sso" in out
    term.assert_clean(out + err)
    listed = json.loads(term.run("list", "--json").stdout)
    assert [(p["name"], p["method"], p["kept_secrets"]) for p in listed["profiles"]] == [
        ("sso", "browser", ["refresh_token"])
    ]
    again = term.run("whoami", "sso")  # a new process: the kept refresh token, no sign-in
    assert again.returncode == 0 and creds.username in again.stdout, again.stderr


def test_keys_copy_is_the_cores_rule_through_both_backends(sandbox: Any, tmp_path: Path) -> None:
    """`keys copy`: only an API-key profile gives its key up, in-process and through the
    broker alike; through a broker whose policy refuses the cluster, no key comes out."""
    creds = sandbox.credentials
    term = Terminal(tmp_path, [creds.admin_api_key, creds.password])
    url = sandbox.weaviate_url
    login = ("--mode", "in-process", "login")
    assert (
        term.run(*login, "admin", "--url", url, "--api-key-stdin", input=creds.admin_api_key).returncode == 0
    )
    done = term.run(
        *login,
        "pw",
        "--url",
        url,
        "--method",
        "password",
        "--username",
        creds.username,
        "--password-stdin",
        input=creds.password,
    )
    assert done.returncode == 0, done.stderr

    def refused_as_password(done: subprocess.CompletedProcess[str]) -> None:
        assert done.returncode == 1 and done.stdout == "", done.stderr
        assert done.stderr.startswith("weaviate-auth: error: Profile 'pw'"), done.stderr
        assert "no API key to copy" in done.stderr and "API-key profile" in done.stderr

    refused_as_password(term.run("--mode", "in-process", "keys", "copy", "pw"))
    assert term.run("--mode", "in-process", "keys", "copy", "admin", scan=False).stdout == creds.admin_api_key

    env = {**term.env, "WEAVIATE_AUTH_ALLOWED_URLS": "https://only.example"}
    server = JupyterServer(env, tmp_path / "root").start()
    try:
        term.env["WEAVIATE_AUTH_BROKER_FILE"] = str(server.broker_file)
        assert json.loads(term.run("list", "--json").stdout)["mode"] == "broker"
        done = term.run("keys", "copy", "admin")
        assert done.returncode == 1 and done.stdout == "", done.stderr
        assert "does not allow logins to" in done.stderr, done.stderr
        refused_as_password(term.run("keys", "copy", "pw"))
    finally:
        server.stop()


def test_ctrl_c_during_a_device_sign_in_cancels_it_and_keeps_nothing(sandbox: Any, tmp_path: Path) -> None:
    """SIGINT while `login --device` waits for the user: it stops at once with one line
    saying so (no traceback), exit 130, and no secret or token is kept."""
    import signal

    term = Terminal(tmp_path, [])
    proc = subprocess.Popen(
        [*CLI, "login", "sso", "--url", sandbox.weaviate_url, "--device"],
        env=term.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    assert "enter the code" in proc.stderr.readline()  # polling now (every 5 s)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)  # not polling on until the code expires (10 min)
    assert proc.returncode == 130 and out == ""
    assert err.strip() == "weaviate-auth: cancelled.", err
    listed = json.loads(term.run("list", "--json").stdout)["profiles"]
    assert [(p["name"], p["kept_secrets"], p["logged_in"]) for p in listed] == [("sso", [], False)]
