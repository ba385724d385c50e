"""Browser sign-in outside the broker: the device authorization grant, in-process,
against the sandbox provider; a thread plays the user on the verification page."""

from __future__ import annotations

import dataclasses
import json
import queue
import re
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.idp_browser import Browser
from weaviate_auth_widget import device, oidc
from weaviate_auth_widget.device import DeviceCode
from weaviate_auth_widget.errors import LoginExpired, MethodChange, PolicyRefused, SignInFailed, WrongMethod
from weaviate_auth_widget.policy import Policy
from weaviate_auth_widget.profiles import METHOD_LABELS, Profile
from weaviate_auth_widget.sandbox import IdPClient, IdPConfig, Sandbox, WeaviateConfig
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService

QUERY = "{ Get { Article { title } } }"


@pytest.fixture(autouse=True)
def _fresh_discovery() -> None:
    oidc.discovery_cache.clear()


@pytest.fixture(scope="module")
def quick() -> Iterator[Sandbox]:
    """The demo sandbox with a one-second polling interval (5 s is the RFC's default)."""
    with Sandbox.demo() as running:
        running.idp.config.interactive.device_interval = 1
        yield running


def make_service(tmp_path: Path, **kwargs: Any) -> AuthService:
    return AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path), **kwargs)


class User:
    """Plays the person: gets the code from the prompt, signs in on the page in a thread."""

    def __init__(self, sb: Sandbox, *, action: str = "login", password: str | None = None) -> None:
        self.sb, self.action = sb, action
        self.password = password or sb.credentials.password
        self.codes: list[DeviceCode] = []
        self.pages: list[str] = []
        self.thread: threading.Thread | None = None

    def __call__(self, code: DeviceCode) -> None:
        self.codes.append(code)
        self.thread = threading.Thread(target=self._sign_in, args=(code,), daemon=True)
        self.thread.start()

    def _sign_in(self, code: DeviceCode) -> None:
        browser = Browser()
        entry = browser.open(code.verification_uri)  # types the code, as a person would
        page = browser.submit(entry, "", user_code=code.user_code)
        if self.action == "cancel":
            self.pages.append(browser.submit(page, "cancel").text)
        else:
            self.pages.append(browser.login(page, self.sb.credentials.username, self.password).text)
        browser.close()


def browser_profile(sb: Sandbox, **changes: Any) -> Profile:
    return Profile(name="sso", url=sb.weaviate_url, method="browser", **changes)


def test_device_sign_in_end_to_end_keeps_the_refresh_token(quick: Sandbox, tmp_path: Path) -> None:
    service = make_service(tmp_path)
    service.save_profile(browser_profile(quick))
    user = User(quick)
    identity = service.login("sso", device_prompt=user)
    assert user.thread is not None
    user.thread.join(5)
    assert "Device connected" in user.pages[0]
    code = user.codes[0]
    assert code.verification_uri == quick.idp_url + "/device" and code.device_code not in repr(code)
    assert identity.username == quick.credentials.username and identity.refreshes
    with service.session("sso") as session:
        assert session.graphql(QUERY)["data"]["Get"]["Article"]
    assert service.kept_secrets(service.get_profile("sso")) == ["refresh_token"]
    assert METHOD_LABELS["browser"] == "sign-in at the identity provider"
    # another process on the same store signs in silently with the kept refresh token
    later = make_service(tmp_path, device_prompt=None)
    assert later.login("sso").username == quick.credentials.username
    for stored in tmp_path.rglob("*"):  # no password was ever typed here: none kept
        assert not stored.is_file() or quick.credentials.password.encode() not in stored.read_bytes()
    service.close()
    later.close()


def test_not_remembered_sign_in_stays_in_memory(quick: Sandbox, tmp_path: Path) -> None:
    service = make_service(tmp_path)
    service.save_profile(browser_profile(quick, remember=False))
    service.login("sso", device_prompt=User(quick))
    assert service.token("sso").value
    other = make_service(tmp_path, device_prompt=None)
    assert other.kept_secrets(other.get_profile("sso")) == []
    with pytest.raises(LoginExpired, match="needs a sign-in at its identity provider"):
        other.login("sso")
    service.close()
    other.close()


def test_refused_on_the_page_keeps_nothing(quick: Sandbox, tmp_path: Path) -> None:
    service = make_service(tmp_path)
    service.save_profile(browser_profile(quick))
    with pytest.raises(SignInFailed, match="refused or cancelled") as err:
        service.login("sso", device_prompt=User(quick, action="cancel"))
    assert "127.0.0.1" in str(err.value)
    assert service.kept_secrets(service.get_profile("sso")) == []
    assert service.identity("sso") is None
    service.close()


def test_polling_slows_down_when_asked(quick: Sandbox, tmp_path: Path) -> None:
    """A client that polls faster than the provider wants gets slow_down and adds 5 s."""
    client = httpx.Client(timeout=5)
    prov = oidc.provider(client, quick.idp_url + "/.well-known/openid-configuration")
    form = {"client_id": "weaviate", "scope": "openid offline_access"}
    quick.idp.config.interactive.device_interval = 3  # the provider wants 3 s; we try 1 s
    try:
        code = device.start(client, prov, form, Policy())
        hasty = dataclasses.replace(code, interval=1.0)
        quick.reset_stats()
        done = threading.Event()
        answers: list[str] = []

        def user() -> None:
            # sign in once the client has been told to slow down (second poll)
            while quick.idp.token_calls.get(oidc.DEVICE_GRANT, 0) < 2 and not done.is_set():
                done.wait(0.1)
            browser = Browser()
            page = browser.open(code.link)
            browser.login(page, quick.credentials.username, quick.credentials.password)
            browser.close()

        thread = threading.Thread(target=user, daemon=True)
        thread.start()
        real_post = oidc.post_token

        def counting(*args: Any, **kwargs: Any) -> Any:
            response, sent_at = real_post(*args, **kwargs)
            answers.append((oidc.oauth_error(response) or ("tokens",))[0])
            return response, sent_at

        oidc.post_token = counting  # type: ignore[assignment]
        try:
            grant = device.poll(client, prov, hasty, form)
        finally:
            oidc.post_token = real_post  # type: ignore[assignment]
            done.set()
        assert grant.refresh_token
        # the second poll came 1 s after the first (< 3 s): slow_down; the client then
        # waits 1 + 5 s, so the provider has no reason to say it again
        assert answers == ["authorization_pending", "slow_down", "tokens"]
    finally:
        quick.idp.config.interactive.device_interval = 1
        client.close()


def test_code_expiry_and_missing_device_grant(sandbox_factory: Any, tmp_path: Path) -> None:
    sb = sandbox_factory(
        IdPConfig(clients={"c": IdPClient()}),
        WeaviateConfig(oidc_enabled=True, oidc_client_id="c"),
    )
    sb.idp.config.interactive.device_code_lifetime = 2
    sb.idp.config.interactive.device_interval = 1
    service = make_service(tmp_path)
    service.save_profile(browser_profile(sb))
    seen: list[DeviceCode] = []
    with pytest.raises(LoginExpired, match="expired before the sign-in finished"):
        service.login("sso", device_prompt=seen.append)
    assert len(seen) == 1
    sb.idp.config.advertise_browser_flows = False
    oidc.discovery_cache.clear()
    other = make_service(tmp_path / "b")
    other.save_profile(browser_profile(sb))
    with pytest.raises(WrongMethod, match="does not offer device sign-in"):
        other.login("sso", device_prompt=seen.append)
    assert len(seen) == 1
    service.close()
    other.close()


def test_policy_is_checked_before_the_user_is_sent_anywhere(quick: Sandbox, tmp_path: Path) -> None:
    service = make_service(tmp_path, policy=Policy(allowed_issuers=("https://login.example.com",)))
    service.save_profile(browser_profile(quick))
    seen: list[DeviceCode] = []
    with pytest.raises(PolicyRefused, match="does not allow logins through the identity provider"):
        service.login("sso", device_prompt=seen.append)
    assert seen == []
    service.close()


def test_default_prompt_prints_in_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    code = DeviceCode(
        "BCDF-GHJK",
        "https://idp.example/device",
        None,
        time.time() + 600,
        5,
        "idp.example",
        "secret-device-code",
    )
    device.show_device_code(code)
    err = capsys.readouterr().err
    assert "https://idp.example/device" in err and "BCDF-GHJK" in err
    assert "secret-device-code" not in err


def test_terminal_login_creates_a_browser_profile_and_signs_in(quick: Sandbox, tmp_path: Path) -> None:
    from weaviate_auth_widget.terminal_login import TerminalLogin

    user = User(quick)
    service = make_service(tmp_path, device_prompt=user)
    answers = iter([quick.weaviate_url, "term-sso", "4", "y"])
    asked: list[str] = []

    def ask(question: str) -> str:
        asked.append(question)
        return next(answers)

    def no_secret(question: str) -> str:
        raise AssertionError(f"a browser sign-in asked for a secret: {question}")

    identity, session = TerminalLogin(service, ask=ask, ask_secret=no_secret, say=lambda _: None).run()
    assert "4) sign-in at the identity provider" in asked[2]
    assert identity.username == quick.credentials.username and identity.method == "browser"
    assert session.meta()["version"]
    session.close()
    service.close()


class _Links(HTMLParser):
    """The ``href`` of every link in a piece of HTML (entities resolved, as a browser does)."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [v or "" for k, v in attrs if k == "href"]


def _hrefs(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.hrefs


def _run_cell(client: Any, code: str, on_display: Any = None, timeout: float = 90) -> list[dict[str, Any]]:
    """Execute ``code`` in the kernel; every iopub message of the cell, in order.
    ``on_display`` sees each display as it arrives (the cell may wait for the user)."""
    msg_id = client.execute(code)
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = client.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(message)
        if message["msg_type"] == "display_data" and on_display is not None:
            on_display(message["content"]["data"])
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            return messages
    raise AssertionError(f"the cell did not finish in {timeout} s: {[m['content'] for m in messages]}")


def _printed(messages: list[dict[str, Any]]) -> str:
    return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")


def test_in_a_notebook_the_magic_shows_a_link_and_the_session_binds(quick: Sandbox, tmp_path: Path) -> None:
    """A real kernel, in-process mode (no server extension): ``%weaviate_auth sso`` on a
    browser profile shows the link and code as a rich display, the person approves on the
    provider's page, the session is bound; no token or device code reaches the front end."""
    from jupyter_client.manager import start_new_kernel

    from tests.test_kernel_broker import server_env

    env = server_env(tmp_path)
    store = Path(env["WEAVIATE_AUTH_DIR"])
    manager, client = start_new_kernel(kernel_name="python3", env=env)
    signed_in: list[str] = []
    pages: list[str] = []
    iopub: list[dict[str, Any]] = []
    pending: dict[str, Any] = {}

    def approve(link: str) -> None:  # the person follows the link and signs in
        browser = Browser()
        page = browser.open(link)
        pages.append(browser.login(page, quick.credentials.username, quick.credentials.password).text)
        browser.close()

    def on_display(data: dict[str, str]) -> None:
        pending.update(quick.idp.interactions.devices)  # the grant the kernel is polling
        (link,) = _hrefs(data["text/html"])
        signed_in.append(link)
        threading.Thread(target=approve, args=(link,), daemon=True).start()

    try:
        iopub += _run_cell(
            client,
            "import weaviate_auth_widget as waw\n"
            f"waw.default_service().save_profile(waw.Profile(name='sso', url={quick.weaviate_url!r},"
            " method='browser'))\n",
        )
        devices_before = set(quick.idp.interactions.devices)
        signing = _run_cell(client, "%load_ext weaviate_auth_widget\n%weaviate_auth sso", on_display)
        iopub += signing
        shown = [m["content"]["data"] for m in signing if m["msg_type"] == "display_data"]
        assert len(shown) == 1, signing
        (device_code,) = set(pending) - devices_before
        user_code = pending[device_code].user_code
        html, text = shown[0]["text/html"], shown[0]["text/plain"]
        link = f"{quick.idp_url}/device?user_code={user_code}"
        assert _hrefs(html) == [link] and f"<code>{user_code}</code>" in html
        assert f"{quick.idp_url}/device" in text and user_code in text  # for text-only front ends
        assert signed_in == [link] and "Device connected" in pages[0]
        assert "Connected to" in _printed(signing) and "weaviate_session" in _printed(signing)

        used = _run_cell(client, "print('USER', weaviate_session.whoami()['username'])")
        iopub += used
        assert f"USER {quick.credentials.username}" in _printed(used), used
        refresh = SecretStore("file", directory=store).get("sso", "refresh_token")
        assert refresh  # kept (remember is on by default), so the scan below means something
        everything = json.dumps([m["content"] for m in iopub])
        for secret in (refresh, device_code, quick.credentials.password):
            assert secret not in everything
        assert not re.search(r"eyJ[\w-]+\.eyJ[\w-]+\.", everything)  # no access or ID token (a JWT)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_a_signed_in_browser_profile_is_not_silently_turned_into_another_login(
    quick: Sandbox, tmp_path: Path
) -> None:
    """The other way round from the panel's rule: a save that would drop the refresh
    token of a browser sign-in (here for an API-key login) is refused unless it says so."""
    service = make_service(tmp_path)
    service.save_profile(browser_profile(quick))
    service.login("sso", device_prompt=User(quick))
    as_key = Profile(name="sso", url=quick.weaviate_url)
    with pytest.raises(MethodChange, match="refresh_token") as err:
        service.save_profile(as_key, {"api_key": quick.credentials.admin_api_key})
    assert err.value.code == "method_change" and "replace=True" in str(err.value)
    assert service.kept_secrets(service.get_profile("sso")) == ["refresh_token"]
    assert service.login("sso").username == quick.credentials.username  # the sign-in still works
    service.save_profile(as_key, {"api_key": quick.credentials.admin_api_key}, replace=True)
    assert service.kept_secrets(service.get_profile("sso")) == ["api_key"]
    service.close()


def test_a_kernel_interrupt_cancels_the_magics_device_sign_in_and_keeps_nothing(
    quick: Sandbox, tmp_path: Path
) -> None:
    """A real kernel, in-process mode: ``%weaviate_auth sso`` shows the code and waits; the
    kernel's interrupt (the notebook's stop button) ends the wait at once with one line,
    no traceback, and nothing is kept (the profile stays, without a secret, for a retry)."""
    from jupyter_client.manager import start_new_kernel

    from tests.test_kernel_broker import server_env

    manager, client = start_new_kernel(kernel_name="python3", env=server_env(tmp_path))
    try:
        _run_cell(
            client,
            "import weaviate_auth_widget as waw\n"
            f"waw.default_service().save_profile(waw.Profile(name='sso', url={quick.weaviate_url!r},"
            " method='browser'))\n",
        )
        # the code is on screen, so it is polling now: the person presses stop instead
        signing = _run_cell(
            client,
            "%load_ext weaviate_auth_widget\n%weaviate_auth sso",
            lambda data: manager.interrupt_kernel(),
        )
        assert not [m for m in signing if m["msg_type"] == "error"], signing
        assert _printed(signing).strip() == "weaviate_auth: cancelled.", signing
        left = _run_cell(
            client,
            "svc = waw.default_service()\nprint(svc.kept_secrets(svc.get_profile('sso')), svc.identity('sso'))",
        )
        assert _printed(left).strip() == "[] None"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
