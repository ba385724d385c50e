"""kernel.py without a Jupyter server: finding connection files, checks, fallback, errors.

The broker client against the real Jupyter server is in test_kernel_broker.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import closed_port
from weaviate_auth_widget import chain, kernel
from weaviate_auth_widget.errors import BrokerUnavailable, InvalidProfile
from weaviate_auth_widget.kernel import (
    BROKER_FILE_ENV,
    BrokerClient,
    BrokerInfo,
    find_broker,
    read_broker_file,
)
from weaviate_auth_widget.service import AuthService
from weaviate_auth_widget.tokens import Token

TOKEN = "broker-token-0123456789abcdef"


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_file(
    path: Path,
    *,
    url: str = "http://127.0.0.1:8888/weaviate-auth/api/",
    token: str = TOKEN,
    pid: int | None = None,
    mode: int = 0o600,
    mtime: float | None = None,
    raw: str | None = None,
) -> Path:
    data = (
        raw
        if raw is not None
        else json.dumps({"url": url, "token": token, "pid": pid or os.getpid(), "user": "me"})
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(data)
    os.chmod(path, mode)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    rdir = tmp_path / "runtime"
    rdir.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(rdir))
    monkeypatch.setenv("WEAVIATE_AUTH_DIR", str(tmp_path / "store"))
    monkeypatch.delenv(BROKER_FILE_ENV, raising=False)
    monkeypatch.setattr(chain, "_service", None)  # a fresh process-wide service, restored after
    kernel.reset_backend()
    yield rdir
    kernel.reset_backend()


def test_named_file_wins_and_hides_its_token(runtime: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = write_file(
        runtime / "weaviate-auth-broker-1.json", url="http://127.0.0.1:1111/weaviate-auth/api/"
    )
    named = write_file(runtime / "elsewhere.json", url="http://127.0.0.1:2222/weaviate-auth/api", mtime=1)
    os.utime(other, None)
    monkeypatch.setenv(BROKER_FILE_ENV, str(named))
    info = find_broker()
    assert info is not None and info.path == named
    assert info.url == "http://127.0.0.1:2222/weaviate-auth/api/"  # trailing slash added
    assert info.server_url == "http://127.0.0.1:2222/"
    assert info.token == TOKEN and info.pid == os.getpid() and info.user == "me"
    assert TOKEN not in repr(info) and TOKEN not in str(info)
    with pytest.raises(TypeError):
        __import__("pickle").dumps(info)


def test_scan_takes_the_newest_live_private_file_of_ours(runtime: Path) -> None:
    now = time.time()
    write_file(
        runtime / "weaviate-auth-broker-10.json", url="http://127.0.0.1:1/weaviate-auth/api/", mtime=now - 30
    )
    write_file(
        runtime / "weaviate-auth-broker-11.json", url="http://127.0.0.1:2/weaviate-auth/api/", mtime=now - 20
    )
    # newer ones that must be skipped, for one reason each
    write_file(
        runtime / "weaviate-auth-broker-12.json", url="http://127.0.0.1:3/x/", pid=dead_pid(), mtime=now
    )
    write_file(runtime / "weaviate-auth-broker-13.json", url="http://127.0.0.1:4/x/", mode=0o644, mtime=now)
    write_file(runtime / "weaviate-auth-broker-14.json", url="http://127.0.0.1:5/x/", mode=0o660, mtime=now)
    write_file(runtime / "weaviate-auth-broker-15.json", raw="{not json", mtime=now)
    write_file(
        runtime / "weaviate-auth-broker-16.json", url="http://example.org:8888/x/", mtime=now
    )  # clear text
    write_file(runtime / "weaviate-auth-broker-17.json", url="file:///etc/passwd", mtime=now)
    write_file(runtime / "weaviate-auth-broker-18.json", token="", mtime=now)
    write_file(runtime / "weaviate-auth-broker-19.json", raw='["a list"]', mtime=now)
    target = write_file(runtime / "target.json", url="http://127.0.0.1:6/x/")
    (runtime / "weaviate-auth-broker-20.json").symlink_to(target)
    (runtime / "weaviate-auth-broker-21.json").mkdir()
    write_file(runtime / "other-file-99.json", url="http://127.0.0.1:7/x/", mtime=now + 5)  # wrong name
    info = find_broker()
    assert info is not None and info.url == "http://127.0.0.1:2/weaviate-auth/api/"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="needs root to make files of another uid")
def test_files_owned_by_someone_else_are_ignored(runtime: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    theirs = write_file(runtime / "weaviate-auth-broker-30.json", url="http://127.0.0.1:9/x/")
    os.chown(theirs, 65534, 65534)
    assert read_broker_file(theirs) is None
    assert find_broker() is None
    monkeypatch.setenv(BROKER_FILE_ENV, str(theirs))
    assert find_broker() is None


def test_https_brokers_are_acceptable(runtime: Path) -> None:
    path = write_file(
        runtime / "weaviate-auth-broker-1.json", url="https://hub.example.org/user/me/weaviate-auth/api/"
    )
    info = read_broker_file(path)
    assert info is not None and info.server_url == "https://hub.example.org/user/me/"


def test_stale_named_file_yields_to_a_live_one_and_is_the_last_resort(
    runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a crash the named file stays behind with a dead pid; a restarted server
    writes a new one. With nothing else, the stale file still names the URL to report."""
    stale = write_file(runtime / "weaviate-auth-broker-40.json", url="http://127.0.0.1:40/x/", pid=dead_pid())
    monkeypatch.setenv(BROKER_FILE_ENV, str(stale))
    info = find_broker()
    assert info is not None and info.path == stale
    write_file(runtime / "weaviate-auth-broker-41.json", url="http://127.0.0.1:41/x/", mtime=1)
    info = find_broker()
    assert info is not None and info.url == "http://127.0.0.1:41/x/"
    monkeypatch.setenv(BROKER_FILE_ENV, str(runtime / "missing.json"))
    info = find_broker()
    assert info is not None and info.url == "http://127.0.0.1:41/x/"


def test_nothing_found(runtime: Path, tmp_path: Path) -> None:
    assert find_broker() is None
    assert find_broker(runtime_dir=tmp_path / "does-not-exist") is None
    assert find_broker(environ={BROKER_FILE_ENV: str(tmp_path / "nope.json")}) is None


def test_no_broker_means_in_process_and_says_so(runtime: Path) -> None:
    backend = kernel.get_backend()
    assert isinstance(backend, AuthService) and backend.mode == "in-process"
    assert kernel.current_mode() == "in-process"
    text = kernel.describe_mode()
    assert text.startswith("in-process (no Jupyter server extension found;")
    assert "secrets stay in this kernel's memory" in text
    assert kernel.get_backend() is backend  # cached
    with pytest.raises(BrokerUnavailable, match="no usable connection file"):
        kernel.get_backend("broker")
    assert kernel.get_backend("in-process") is backend


def test_a_broker_that_does_not_answer_means_in_process(
    runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/weaviate-auth/api/"
    path = write_file(runtime / f"weaviate-auth-broker-{os.getpid()}.json", url=url)
    monkeypatch.setenv(BROKER_FILE_ENV, str(path))
    backend = kernel.get_backend()
    assert isinstance(backend, AuthService)
    assert (
        "did not answer" in kernel.describe_mode()
        and url.removesuffix("weaviate-auth/api/") in kernel.describe_mode()
    )
    with pytest.raises(BrokerUnavailable) as caught:
        kernel.get_backend("broker")
    assert url in str(caught.value) and TOKEN not in str(caught.value)


def test_client_errors_name_the_url_and_never_the_token(runtime: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/weaviate-auth/api/"
    client = BrokerClient(BrokerInfo(url, TOKEN, pid=os.getpid()), finder=lambda: None)
    assert TOKEN not in repr(client)
    for call in (
        client.status,
        client.profile_views,
        lambda: client.token("prof"),
        lambda: client.login("p"),
    ):
        with pytest.raises(BrokerUnavailable) as caught:
            call()
        message = str(caught.value)
        assert url in message and "restarting" in message and TOKEN not in message
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(InvalidProfile):
        client.describe("../status")  # names are checked before they become a path
    client.close()


def test_no_broker_file_no_client(runtime: Path) -> None:
    with pytest.raises(BrokerUnavailable, match="No weaviate-auth broker was found"):
        BrokerClient()


def test_rejected_tokens_travel_as_digests() -> None:
    token = Token("a-token-value")
    assert kernel._rejected_digest(token) == hashlib.sha256(b"a-token-value").hexdigest()


def test_kernel_id_outside_a_kernel_is_none() -> None:
    """In a real kernel it comes from ipykernel's connection file (see the audit-log check
    in test_kernel_broker.py); here no kernel app runs, even with ipykernel imported."""
    import ipykernel.connect  # noqa: F401

    assert kernel.kernel_id() is None


def test_error_bodies_become_typed_errors() -> None:
    import httpx

    from weaviate_auth_widget.errors import LoginExpired, WeaviateAuthError

    client = BrokerClient(BrokerInfo("http://127.0.0.1:1/x/", TOKEN), finder=lambda: None, kernel=None)
    info = client.info

    def response(status: int, body: Any) -> httpx.Response:
        return (
            httpx.Response(status, json=body)
            if not isinstance(body, bytes)
            else httpx.Response(status, content=body)
        )

    with pytest.raises(LoginExpired, match="expired"):
        client._decode(
            info, response(409, {"error": {"code": "login_expired", "message": "It expired."}}), "POST x"
        )
    with pytest.raises(WeaviateAuthError) as caught:
        client._decode(info, response(400, {"error": {"code": "bad_request", "message": "Bad."}}), "POST x")
    assert caught.value.code == "bad_request"
    with pytest.raises(BrokerUnavailable, match="refused this kernel's broker token"):
        client._decode(info, response(403, b"<html>Forbidden</html>"), "GET status")
    with pytest.raises(BrokerUnavailable, match="HTTP 404"):
        client._decode(info, response(404, b"not found"), "GET status")
    client.close()


def test_sessions_trust_the_administrators_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    client = BrokerClient(BrokerInfo("http://127.0.0.1:1/x/", TOKEN), finder=lambda: None, kernel=None)
    monkeypatch.delenv(kernel.CA_BUNDLE_ENV, raising=False)
    assert client.http_settings().ca_bundle is None
    monkeypatch.setenv(kernel.CA_BUNDLE_ENV, "/etc/ssl/private-ca.pem")
    assert client.http_settings().ca_bundle == "/etc/ssl/private-ca.pem"
    client._status = {"policy": {"ca_bundle": "/srv/ca.pem"}}  # a broker that reports it wins
    assert client.http_settings().ca_bundle == "/srv/ca.pem"
    client.close()
