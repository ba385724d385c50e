"""Browser sign-in in broker mode, through a real jupyter server: authorization code +
PKCE with the broker's callback route; httpx plays the browser on the provider's page.

The browser carries Jupyter's token only to the Jupyter server (as its login cookie
would be); the provider never sees it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.idp_browser import Browser
from tests.test_kernel_broker import JupyterServer, server_env
from weaviate_auth_widget import chain, kernel
from weaviate_auth_widget.kernel import BROKER_FILE_ENV

pytestmark = [pytest.mark.timeout(120)]

CALLBACK = "weaviate-auth/api/sign-in/callback"


class _JupyterOnly(httpx.Auth):
    """Jupyter's token on requests to the Jupyter server only."""

    def __init__(self, server: JupyterServer) -> None:
        self.server = server

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        if request.url.port == self.server.port:
            request.headers["Authorization"] = f"token {self.server.token}"
        yield request


@pytest.fixture
def server(sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JupyterServer]:
    env = server_env(tmp_path)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", env["JUPYTER_RUNTIME_DIR"])
    monkeypatch.delenv(BROKER_FILE_ENV, raising=False)
    monkeypatch.setattr(chain, "_service", None)
    kernel.reset_backend()
    running = JupyterServer(env, tmp_path / "root").start()
    running.save_profile("sso", {"url": sandbox.weaviate_url, "method": "browser"})
    yield running
    running.stop()
    kernel.reset_backend()


def browser_for(server: JupyterServer) -> Browser:
    return Browser(httpx.Client(timeout=15, auth=_JupyterOnly(server)), follow_app=True)


def start(server: JupyterServer) -> dict[str, Any]:
    started = server.api("POST", "weaviate-auth/api/profiles/sso/sign-in")
    assert started.status_code == 200, started.text
    return dict(started.json())


def status(server: JupyterServer, sign_in_id: str) -> dict[str, Any]:
    got = server.api("GET", f"weaviate-auth/api/sign-in/{sign_in_id}")
    assert got.status_code == 200, got.text
    return dict(got.json())


def kept(server: JupyterServer) -> list[str]:
    return list(server.api("GET", "weaviate-auth/api/profiles/sso").json()["kept_secrets"])


def test_sign_in_at_the_provider_then_the_kernel_queries_as_that_user(
    sandbox: Any, server: JupyterServer
) -> None:
    creds = sandbox.credentials
    assert (
        server.api("GET", "weaviate-auth/api/status").json()["sign_in_redirect_uri"] == server.url + CALLBACK
    )
    started = start(server)
    assert started["redirect_uri"] == server.url + CALLBACK
    assert started["authorize_url"].startswith(sandbox.idp_url + "/authorize?")
    assert "code_challenge_method=S256" in started["authorize_url"]
    assert status(server, started["id"])["status"] == "pending"
    browser = browser_for(server)
    page = browser.open(started["authorize_url"])
    done = browser.login(page, creds.username, creds.password)
    assert done.status_code == 200, done.text
    assert f"Signed in to {sandbox.weaviate_url.split('//')[1]} as {creds.username}" in done.text
    assert str(done.url).startswith(server.url + CALLBACK + "?")
    assert done.headers["Referrer-Policy"] == "no-referrer" and "<script" not in done.text
    outcome = status(server, started["id"])
    assert outcome["status"] == "done" and outcome["identity"]["username"] == creds.username
    assert kept(server) == ["refresh_token"]
    # the kernel's session works as that user; nothing but a short-lived token reaches it
    out = server.run_in_kernel(
        "from weaviate_auth_widget.kernel import get_backend\n"
        "s = get_backend().session('sso')\n"
        "print(s.whoami()['username'])\n"
    )
    assert out.strip() == creds.username
    # the callback works once: the same answer again belongs to no sign-in
    again = browser.client.get(str(done.url))
    assert again.status_code == 400 and "no sign-in in progress" in again.text
    # a fresh sign-in with the provider session goes straight through (no form)
    second = start(server)
    through = browser.open(second["authorize_url"])
    assert through.status_code == 200 and "Signed in" in through.text
    browser.close()


def test_cancelled_wrong_state_and_replayed_code_store_nothing(sandbox: Any, server: JupyterServer) -> None:
    browser = browser_for(server)
    started = start(server)
    cancelled = browser.submit(browser.open(started["authorize_url"]), "cancel")
    assert cancelled.status_code == 400 and "refused or cancelled" in cancelled.text
    assert "Nothing was stored" in cancelled.text
    failed = status(server, started["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "sign_in_failed"
    assert kept(server) == []
    # an answer with a state the broker never issued
    forged = browser.client.get(server.url + CALLBACK, params={"state": "made-up", "code": "x"})
    assert forged.status_code == 400 and "no sign-in in progress" in forged.text
    # a code used once, sent again with a new sign-in's state: the provider refuses it
    first = start(server)
    plain = Browser(follow_app=False)
    page = plain.open(first["authorize_url"])
    redirect = plain.login(page, sandbox.credentials.username, sandbox.credentials.password)
    code_url = redirect.headers["location"]
    assert browser.client.get(code_url).status_code == 200  # used here
    assert kept(server) == ["refresh_token"]
    server.api("POST", "weaviate-auth/api/profiles/sso/logout")
    assert kept(server) == []
    replay = start(server)
    code = parse_qs(urlsplit(code_url).query)["code"][0]
    state = parse_qs(urlsplit(replay["authorize_url"]).query)["state"][0]
    replayed = browser.client.get(server.url + CALLBACK, params={"state": state, "code": code})
    assert replayed.status_code == 400 and "refused the sign-in code" in replayed.text
    assert kept(server) == []
    plain.close()
    browser.close()


def test_callback_needs_jupyter_authentication(server: JupyterServer) -> None:
    started = start(server)
    state = parse_qs(urlsplit(started["authorize_url"]).query)["state"][0]
    anonymous = httpx.get(server.url + CALLBACK, params={"state": state, "code": "x"}, timeout=10)
    assert anonymous.status_code == 403
    assert status(server, started["id"])["status"] == "pending"  # the sign-in is untouched


def test_password_profile_cannot_start_a_browser_sign_in(sandbox: Any, server: JupyterServer) -> None:
    server.save_profile(
        "pw", {"url": sandbox.weaviate_url, "method": "password", "username": "x@example.com"}
    )
    refused = server.api("POST", "weaviate-auth/api/profiles/pw/sign-in")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "wrong_method"
    assert "does not sign in at the identity provider" in refused.json()["error"]["message"]
