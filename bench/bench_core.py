"""Core benchmarks against the local sandbox. Prints `name: value` lines.

auth_overhead_ratio      median per-request time of WeaviateSession.get("/v1/meta") with a
                         cached token / a raw httpx.Client with a static header (target <= 1.05)
stampede_provider_calls  token-endpoint calls when 200 threads ask for a token that has
                         just expired (target 1)
policy_check_token_ratio median time of AuthService.token() on a cached token (what the
                         broker's token route runs) with the per-use policy check / with a
                         policy whose check does nothing (informational: nanoseconds)
policy_check_request_ratio  median per-request time of a session whose token source checks
                         the policy on every request / one that does not (target <= 1.02)
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from paired import paired_ratio

from weaviate_auth_widget.policy import Policy
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import Sandbox, sandbox_process
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService
from weaviate_auth_widget.session import WeaviateSession
from weaviate_auth_widget.tokens import CachingTokenSource

ROUNDS = 40
PER_ROUND = 100


def _median_request_time(client: httpx.Client) -> float:
    times = []
    for _ in range(PER_ROUND):
        started = time.perf_counter()
        response = client.get("/v1/meta")
        times.append(time.perf_counter() - started)
        assert response.status_code == 200
    return statistics.median(times)


def auth_overhead_ratio(url: str, key: str, service: AuthService) -> float:
    service.save_profile(Profile(name="bench", url=url), {"api_key": key})
    session = service.session("bench")
    raw = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"})
    for client in (session, raw):  # warm connections and caches
        _median_request_time(client)
    ratio = paired_ratio(lambda: _median_request_time(session), lambda: _median_request_time(raw), ROUNDS)
    session.close()
    raw.close()
    return ratio


class _NoCheckPolicy(Policy):
    """The baseline: a policy that admits every URL without looking."""

    def check_url(self, url: str) -> str:
        return url


def _median_call_time(fn: Callable[[], object], calls: int = 2000) -> float:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def policy_check_ratios(service: AuthService) -> tuple[float, float]:
    """(token fast path, session request): with the per-use check / without; paired rounds.
    Uses the "bench" profile saved by :func:`auth_overhead_ratio`."""
    checked, unchecked = service.policy, _NoCheckPolicy()
    service.login("bench")
    token_ratios = []
    for _ in range(ROUNDS):
        service.policy = checked
        with_check = _median_call_time(lambda: service.token("bench"))
        service.policy = unchecked
        without = _median_call_time(lambda: service.token("bench"))
        token_ratios.append(with_check / without)
    service.policy = checked
    identity = service.identity("bench")
    assert identity is not None
    sessions = [
        WeaviateSession(
            url=identity.url,
            token_source=CachingTokenSource(lambda r: service.token("bench", rejected=r), check=check),
        )
        for check in (lambda: service.policy.check_url(identity.url), None)
    ]
    for session in sessions:
        _median_request_time(session)
    request_ratios = []
    for i in range(ROUNDS):
        order = sessions if i % 2 else sessions[::-1]
        times = {id(s): _median_request_time(s) for s in order}
        request_ratios.append(times[id(sessions[0])] / times[id(sessions[1])])
    for session in sessions:
        session.close()
    return statistics.median(token_ratios), statistics.median(request_ratios)


def stampede_provider_calls(tmp: Path) -> int:
    with Sandbox.demo(token_lifetime=2, token_delay=0.2) as sandbox:
        creds = sandbox.credentials
        service = AuthService(
            directory=tmp / "stampede", secrets=SecretStore("file", directory=tmp / "stampede")
        )
        profile = Profile(name="pw", url=sandbox.weaviate_url, method="password", username=creds.username)
        service.save_profile(profile, {"password": creds.password})
        service.login("pw")
        time.sleep(2.1)
        sandbox.reset_stats()
        barrier = threading.Barrier(200)

        def caller() -> None:
            barrier.wait()
            service.token("pw")

        threads = [threading.Thread(target=caller) for _ in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        service.close()
        return int(sandbox.idp_stats()["token_total"])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, sandbox_process() as info:
        service = AuthService(directory=Path(tmp), secrets=SecretStore("file", directory=Path(tmp)))
        ratio = auth_overhead_ratio(info["weaviate_url"], info["credentials"]["admin_api_key"], service)
        print(f"auth_overhead_ratio: {ratio:.3f}")
        token_ratio, request_ratio = policy_check_ratios(service)
        print(f"policy_check_token_ratio: {token_ratio:.3f}")
        print(f"policy_check_request_ratio: {request_ratio:.3f}")
        service.close()
        print(f"stampede_provider_calls: {stampede_provider_calls(Path(tmp))}")


if __name__ == "__main__":
    main()
