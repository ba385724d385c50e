"""``%weaviate_auth`` in a terminal IPython (no widget front end): it asks on the
terminal, reads the secret with getpass, and binds the session. Driven for real: an
``ipython`` process under a pseudo-terminal, against the sandbox."""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

pytestmark = [pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parent.parent


def ipython(tmp_path: Path) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEAVIATE_", "JUPYTER_", "JPY_"))}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)  # no OS keyring: the file store
    env.update(
        HOME=str(tmp_path / "home"),
        IPYTHONDIR=str(tmp_path / "ipython"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),  # no broker: the in-process core
        WEAVIATE_AUTH_DIR=str(tmp_path / "store"),
        WEAVIATE_AUTH_STORE_BACKEND="file",
        PYTHONPATH=str(REPO),
        TERM="xterm",
        PROMPT_TOOLKIT_NO_CPR="1",  # no cursor-position queries to answer
    )
    child = pexpect.spawn(
        sys.executable,
        ["-m", "IPython", "--no-banner", "--colors=NoColor"],
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 200),
    )
    child.expect(r"In \[1\]")
    child.prompt_number = 1  # type: ignore[attr-defined]
    return child


def next_prompt(child: pexpect.spawn) -> str:
    """Wait for the next ``In [n+1]`` prompt (``In [n]`` is redrawn while typing);
    return what was shown before it."""
    child.prompt_number += 1  # type: ignore[attr-defined]
    child.expect(rf"In \[{child.prompt_number}\]")  # type: ignore[attr-defined]
    return strip(child.before or "")


def run(child: pexpect.spawn, line: str) -> str:
    """Type a line at the ``In [n]`` prompt; return what was shown up to the next prompt."""
    child.sendline(line)
    return next_prompt(child)


def strip(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r", "", text)


def test_the_magic_asks_in_a_terminal_and_the_secret_stays_out_of_sight(sandbox: Any, tmp_path: Path) -> None:
    creds = sandbox.credentials
    child = ipython(tmp_path)
    shown: list[str] = []
    try:
        run(child, "%load_ext weaviate_auth_widget")
        child.sendline("%weaviate_auth")
        for question, answer in (
            ("Profile or cluster URL: ", sandbox.weaviate_url),
            (r"Profile name \[127.0.0.1\]: ", "sbx"),
            (
                r"Sign in with: 1\) API key  2\) username & password  3\) client credentials  "
                r"4\) sign-in at the identity provider \[1\]: ",
                "1",
            ),
            (r"Remember on this host\? \[Y/n\]: ", ""),
            (r"API key \(hidden\): ", creds.admin_api_key),
        ):
            child.expect(question)
            shown.append(strip(child.before or "") + strip(child.after or ""))
            child.sendline(answer)
        shown.append(out := next_prompt(child))
        assert "LoginPanel(" not in out
        assert "session in `weaviate_session`" in out and "as admin" in out
        out = run(child, "weaviate_session.meta()['version']")
        shown.append(out)
        assert sandbox.weaviate_config.version in out

        # an unknown name is said, then created with that name
        child.sendline("%weaviate_auth sandbox --as ws")
        child.expect(r"No profile 'sandbox'; saved: sbx\. Creating it\.")
        for question, answer in (
            ("Cluster URL: ", sandbox.weaviate_url),
            (r"Sign in with: .*\[1\]: ", "2"),
            ("Username: ", creds.username),
            (r"Remember on this host\? \[Y/n\]: ", "n"),
            (r"Password \(hidden\): ", creds.password),
        ):
            child.expect(question)
            shown.append(strip(child.before or ""))
            child.sendline(answer)
        shown.append(out := next_prompt(child))
        assert f"as {creds.username}" in out and "session in `ws`" in out
        shown.append(out := run(child, "ws.whoami()['username']"))
        assert creds.username in out

        # logged out: the bound session stops, with a short message (cause, fix, %tb)
        shown.append(run(child, "%weaviate_auth --logout sbx"))
        shown.append(out := run(child, "weaviate_session.meta()"))
        assert "LoginExpired: You logged out of profile 'sbx'" in out and "%tb" in out
        assert "Traceback" not in out and len(out.strip().splitlines()) <= 4
        # a kept API key: connecting again by name asks nothing
        shown.append(out := run(child, "%weaviate_auth sbx"))
        assert "Connected to" in out
        shown.append(out := run(child, "weaviate_session.meta()['version']"))
        assert sandbox.weaviate_config.version in out
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)

    pty_output = "".join(shown)
    history = tmp_path / "ipython" / "profile_default" / "history.sqlite"
    with sqlite3.connect(history) as db:
        rows = [
            str(row)
            for table in ("history", "output_history")
            for row in db.execute(f"SELECT * FROM {table}")
        ]
    assert any("%weaviate_auth" in row for row in rows)  # the history was written
    for secret in (creds.admin_api_key, creds.password):
        assert secret not in pty_output  # never echoed
        assert all(secret not in row for row in rows)


def test_a_saved_profile_without_a_kept_secret_asks_only_for_its_secret(sandbox: Any, tmp_path: Path) -> None:
    from weaviate_auth_widget.profiles import Profile
    from weaviate_auth_widget.secrets import SecretStore
    from weaviate_auth_widget.service import AuthService
    from weaviate_auth_widget.terminal_login import TerminalLogin

    key = sandbox.credentials.admin_api_key
    service = AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path))
    service.save_profile(Profile(name="nokey", url=sandbox.weaviate_url, remember=False))
    asked: list[str] = []
    said: list[str] = []

    def secret(question: str) -> str:
        asked.append(question)
        return key

    login = TerminalLogin(
        service, ask=lambda q: pytest.fail(f"asked {q!r}"), ask_secret=secret, say=said.append
    )
    identity, session = login.run("nokey")
    assert asked == ["API key (hidden): "] and said == ["No api key is kept for profile 'nokey'."]
    assert identity.username == "admin" and session.meta()["version"] == sandbox.weaviate_config.version
    assert key not in repr(session) + repr(login) + "".join(said)
    session.close()
    service.close()
