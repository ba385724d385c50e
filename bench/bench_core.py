"""Core benchmarks against the local sandbox. Prints `name: value` lines.

auth_overhead_ratio      median per-request time of WeaviateSession.get("/v1/meta") with a
                         cached token / a raw httpx.Client with a static header (target <= 1.05)
stampede_provider_calls  token-endpoint calls when 200 threads ask for a token that has
                         just expired (target 1)
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
from paired import paired_ratio

from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import Sandbox, sandbox_process
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService

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
        service.close()
        print(f"stampede_provider_calls: {stampede_provider_calls(Path(tmp))}")


if __name__ == "__main__":
    main()
