"""This package's errors in IPython: short (cause + fix), the full traceback one ``%tb``
away, ``%xmode Verbose`` shows it all; in a real kernel, against the sandbox."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from tests.test_kernel_broker import server_env
from weaviate_auth_widget.errors import LoginExpired
from weaviate_auth_widget.ipython_errors import register, unregister

pytestmark = [pytest.mark.timeout(180)]

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def shell() -> Iterator[Any]:
    ip = InteractiveShell.instance()
    register(ip)
    yield ip
    unregister(ip)


def test_in_a_shell_our_errors_are_short_and_others_unchanged(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.user_ns["LoginExpired"] = LoginExpired
    shell.run_cell("raise LoginExpired('The login of prod expired.', host='h', fix='Log in again.')")
    out = ANSI.sub("", capsys.readouterr().out)
    assert out.splitlines() == [
        "LoginExpired: The login of prod expired.",
        "Fix: Log in again.",
        "(short form: %tb shows the full traceback; %xmode Verbose always shows it)",
    ]
    shell.run_line_magic("tb", "")
    full = ANSI.sub("", capsys.readouterr().out)
    assert "Traceback" in full and "LoginExpired" in full and "Cell In[" in full
    result = shell.run_cell("1/0")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert "ZeroDivisionError" in capsys.readouterr().out
    register(shell)  # idempotent
    unregister(shell)
    assert shell.custom_exceptions == ()


def test_a_handler_registered_before_keeps_its_types(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    unregister(shell)
    seen: list[str] = []
    shell.set_custom_exc((KeyError,), lambda sh, et, ev, tb, tb_offset=None: seen.append(et.__name__))
    register(shell)
    shell.run_cell("{}['x']")
    assert seen == ["KeyError"]
    unregister(shell)
    assert shell.custom_exceptions == (KeyError,)
    shell.set_custom_exc((), None)


def _run(client: Any, code: str) -> tuple[str, list[dict[str, Any]]]:
    """Execute ``code``; return its stdout and the error messages it produced."""
    out: list[str] = []
    errors: list[dict[str, Any]] = []

    def collect(message: dict[str, Any]) -> None:
        if message["msg_type"] == "stream":
            out.append(message["content"]["text"])
        elif message["msg_type"] == "error":
            errors.append(message["content"])

    client.execute_interactive(code, output_hook=collect, timeout=90)
    return "".join(out), errors


def _shown(error: dict[str, Any]) -> str:
    return ANSI.sub("", "\n".join(error["traceback"]))


def test_in_a_real_kernel_errors_are_short_with_cause_and_fix_and_no_secret(
    sandbox: Any, tmp_path: Path
) -> None:
    from jupyter_client.manager import start_new_kernel

    creds = sandbox.credentials
    env = server_env(tmp_path)
    env["SANDBOX_URL"] = sandbox.weaviate_url
    env["SANDBOX_KEY"] = creds.admin_api_key  # not in any cell's source
    manager, client = start_new_kernel(kernel_name="python3", env=env)
    try:
        out, errors = _run(
            client,
            "import os\n"
            "import weaviate_auth_widget as waw\n"  # importing registers the handler
            "service = waw.default_service()\n"
            "service.save_profile(waw.Profile(name='prod', url=os.environ['SANDBOX_URL']),"
            " {'api_key': os.environ.pop('SANDBOX_KEY')})\n"
            "session = service.session('prod')\n"
            "print('VERSION', session.meta()['version'])\n"
            "service.logout('prod')\n",
        )
        assert not errors and "VERSION" in out, (out, errors)

        _, errors = _run(client, "session.meta()")
        assert len(errors) == 1 and errors[0]["ename"] == "LoginExpired"
        shown = _shown(errors[0])
        assert shown.splitlines()[0].startswith("LoginExpired: You logged out of profile 'prod'")
        assert "log in again" in shown and "Fix: Run %weaviate_auth prod" in shown and "%tb" in shown
        assert len(shown.splitlines()) <= 4 and "httpx" not in shown
        assert creds.admin_api_key not in shown

        _, errors = _run(client, "%tb")
        full = _shown(errors[0])
        assert len(full.splitlines()) > 10 and "session.py" in full

        _, errors = _run(client, "%xmode Verbose\nsession.meta()")
        assert len(_shown(errors[-1]).splitlines()) > 10
        _, errors = _run(client, "%xmode Context")

        # the official client's own 401, raised straight to the shell, is short too
        _, errors = _run(
            client,
            "import weaviate\n"
            "from urllib.parse import urlsplit\n"
            "u = urlsplit(os.environ['SANDBOX_URL'])\n"
            "weaviate.connect_to_local(host=u.hostname, port=u.port,"
            " auth_credentials=weaviate.classes.init.Auth.api_key('not-the-key-0123'))\n",
        )
        assert len(errors) == 1 and errors[0]["ename"] == "UnexpectedStatusCodeError", errors
        shown = _shown(errors[0])
        assert "The cluster refused the login (HTTP 401)" in shown and "Fix: Log in again" in shown
        assert len(shown.splitlines()) <= 4 and "not-the-key-0123" not in shown
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
