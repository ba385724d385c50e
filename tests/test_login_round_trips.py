"""How many sequential round trips a login costs, counted at the sandbox (not timed).

With a delay on every request, two requests overlap in time exactly when they were in
flight together; the longest chain of requests each of which started after the
previous one ended is the number of round trips a user waits for.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from weaviate_auth_widget import oidc
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import Sandbox
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService

DELAY = 0.05


def _spans(running: Sandbox) -> list[tuple[float, float]]:
    rest = [(r.started, r.ended) for r in running.weaviate.requests]
    return sorted(rest + [(start, end) for _, start, end in running.idp.spans])


def sequential_round_trips(spans: list[tuple[float, float]]) -> int:
    depth: list[int] = []
    for i, (start, _) in enumerate(spans):
        before = [depth[j] for j in range(i) if spans[j][1] <= start]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


def test_the_chain_counter_counts_overlap_as_one() -> None:
    assert sequential_round_trips([(0, 1), (1, 2), (1.1, 1.9), (2, 3)]) == 3
    assert sequential_round_trips([(0, 1), (0.5, 1.5)]) == 1


@pytest.fixture
def slow() -> Iterator[Sandbox]:
    with Sandbox.demo(delay=DELAY) as running:
        yield running


def _login(tmp_path: Path, running: Sandbox, method: str) -> int:
    creds = running.credentials
    assert creds is not None
    service = AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path))
    if method == "password":
        profile = Profile(name="p", url=running.weaviate_url, method="password", username=creds.username)
        service.save_profile(profile, {"password": creds.password})
    else:
        service.save_profile(Profile(name="p", url=running.weaviate_url), {"api_key": creds.admin_api_key})
    running.reset_stats()
    try:
        identity = service.login("p")
    finally:
        service.close()
    assert identity.roles == ("admin",)  # own-info was read
    return sequential_round_trips(_spans(running))


def test_password_login_cold_four_round_trips_warm_two(tmp_path: Path, slow: Sandbox) -> None:
    _login(tmp_path / "warm-up", slow, "password")  # the double's token verifier fetches its keys
    oidc.discovery_cache.clear()
    assert _login(tmp_path / "cold", slow, "password") == 4  # 2 discoveries, token, meta + own-info
    assert _login(tmp_path / "warm", slow, "password") == 2  # token, meta + own-info


def test_api_key_login_is_one_round_trip(tmp_path: Path, slow: Sandbox) -> None:
    assert _login(tmp_path, slow, "api_key") == 1
