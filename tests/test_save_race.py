"""Concurrent saves of one profile never leave a secret bound to a URL it was not saved for.

Two writers race: one saves the profile with URL A and an API key, the other with URL B
and no secret. Whatever the order, afterwards the key is usable only if the profile
says URL A, and a login never sends it to B (checked at B, a second Weaviate double).
Threads in one process, and two real processes on the same store.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from weaviate_auth_widget.errors import MissingSecret
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService

ROUNDS = 40
pytestmark = [pytest.mark.timeout(180)]


def make_service(directory: Path) -> AuthService:
    return AuthService(directory=directory, secrets=SecretStore("file", directory=directory))


def save(service: AuthService, url: str, key: str | None) -> None:
    service.save_profile(Profile(name="p", url=url), {"api_key": key} if key else {})


def check_store(directory: Path, url_a: str, key: str, other: Any) -> None:
    """The invariant, read by a fresh service: the key goes with URL A only, and a login
    with what is stored never sends a credential to B (the double at B says so)."""
    fresh = make_service(directory)
    try:
        profile = fresh.get_profile("p")
        kept = fresh.credentials.get(profile, "api_key")
        if profile.url == Profile(name="p", url=url_a).url:
            assert kept == key
        else:
            assert not fresh.has_secret(profile)
            with pytest.raises(MissingSecret):
                fresh.login("p")
            assert kept is None, f"the key is kept for {profile.url}"
    finally:
        fresh.close()
    assert not any(r.authorization for r in other.requests), "a credential was sent to URL B"


def _writer(directory: str, url: str, key: str | None, barrier: Any, rounds: int) -> None:
    service = make_service(Path(directory))
    try:
        for _ in range(rounds):
            barrier.wait(30)
            save(service, url, key)
            barrier.wait(30)  # the checker looks at the store now
            barrier.wait(30)
    finally:
        service.close()


def test_threads_saving_one_profile(tmp_path: Path, sandbox: Any, weaviate_factory: Any) -> None:
    other = weaviate_factory()
    url_a, url_b, key = sandbox.weaviate_url, other.url, sandbox.credentials.admin_api_key
    # one service shared by the threads (the broker's case) and one of its own per thread
    shared = make_service(tmp_path)
    services = [shared, shared, make_service(tmp_path), make_service(tmp_path)]
    plans = [(url_a, key), (url_b, None), (url_a, key), (url_b, None)]
    for _ in range(ROUNDS):
        barrier = threading.Barrier(len(plans))
        errors: list[BaseException] = []

        def run(
            svc: AuthService,
            url: str,
            secret: str | None,
            barrier: threading.Barrier = barrier,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                barrier.wait(30)
                save(svc, url, secret)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=run, args=(s, *plan)) for s, plan in zip(services, plans, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        check_store(tmp_path, url_a, key, other)
        for svc in services:  # what each service answers from its own state
            profile = svc.get_profile("p")
            assert svc.has_secret(profile) == (profile.url == Profile(name="p", url=url_a).url)
    for svc in services:
        svc.close()


def test_processes_saving_one_profile(tmp_path: Path, sandbox: Any, weaviate_factory: Any) -> None:
    other = weaviate_factory()
    url_a, url_b, key = sandbox.weaviate_url, other.url, sandbox.credentials.admin_api_key
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    procs = [
        ctx.Process(target=_writer, args=(str(tmp_path), url_a, key, barrier, ROUNDS)),
        ctx.Process(target=_writer, args=(str(tmp_path), url_b, None, barrier, ROUNDS)),
    ]
    for proc in procs:
        proc.start()
    try:
        for _ in range(ROUNDS):
            barrier.wait(60)  # go
            barrier.wait(60)  # both saved
            check_store(tmp_path, url_a, key, other)
            barrier.wait(60)
        for proc in procs:
            proc.join(60)
            assert proc.exitcode == 0
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()


def test_a_login_finishing_after_a_url_change_keeps_no_secret(tmp_path: Path, sandbox_factory: Any) -> None:
    """A password login is waiting for the provider when the profile is saved with another
    URL: the refresh token it then receives is not kept for the profile (it would go to
    the new URL's provider next time)."""
    from weaviate_auth_widget.sandbox import Sandbox

    demo = Sandbox.demo(token_delay=1.5)
    slow = sandbox_factory(demo.idp.config, demo._first_config, credentials=demo.credentials)
    creds = slow.credentials
    service = make_service(tmp_path)
    service.save_profile(
        Profile(name="pw", url=slow.weaviate_url, method="password", username=creds.username),
        {"password": creds.password},
    )
    outcome: list[object] = []
    login = threading.Thread(target=lambda: outcome.append(_attempt(service.login, "pw")))
    login.start()
    deadline = time.monotonic() + 10
    while slow.idp_stats()["token_total"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)  # the password grant is on its way to the (slow) provider
    moved = Profile(name="pw", url="https://elsewhere.example", method="password", username=creds.username)
    service.save_profile(moved)
    login.join(30)
    assert outcome, "the login did not finish"

    fresh = make_service(tmp_path)
    profile = fresh.get_profile("pw")
    assert profile.url == moved.url and not fresh.has_secret(profile)
    assert fresh.secrets.get("pw", "refresh_token") is None and fresh.secrets.get("pw", "password") is None
    fresh.close()
    service.close()


def _attempt(fn: Any, *args: Any) -> object:
    try:
        return fn(*args)
    except Exception as exc:  # the outcome of the login does not matter here
        return exc
