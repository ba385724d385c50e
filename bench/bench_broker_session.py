"""A kernel's broker-backed session on its cached path, now that a kernel re-asks the
broker after ``token_recheck_seconds`` (so a logout elsewhere reaches it). One real
``jupyter server`` with the extension, the sandbox in its own process. Prints
`name: value` lines; every ratio is against a baseline measured in the same run.

broker_session_request_ratio   median per-request time of ``BrokerClient.session(name).get
                               ("/v1/meta")`` within the bound (cached key) / the same with
                               a plain ``CachingTokenSource`` holding the same key (what a
                               broker session was before the bound); paired (target <= 1.02)
broker_cached_token_ratio      median ``token()`` time on a cached token, the broker source /
                               a plain ``CachingTokenSource`` (informational: nanoseconds, both
                               printed as ``*_cached_token_ns``)
broker_recheck_stampede_grants token-route calls the broker answered when 200 threads use one
                               session just after the bound passed (target 1)
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench_broker import Server, _median_seconds, _profiles, _setup
from bench_core import PER_ROUND, ROUNDS, _median_request_time
from paired import paired_ratio

from weaviate_auth_widget.kernel import BrokerClient, read_broker_file
from weaviate_auth_widget.session import WeaviateSession
from weaviate_auth_widget.tokens import CachingTokenSource

#: the cached-path figures run well within this bound (no broker call while measuring)
RECHECK = 600.0
#: the stampede's server: a short bound, so it passes after a short wait
STAMPEDE_RECHECK = 1.0
THREADS = 200


def _grants(audit: Path) -> int:
    return sum(json.loads(line).get("action") == "token" for line in audit.read_text().splitlines())


def cached_path_ratios(client: BrokerClient) -> tuple[float, float, float, float]:
    """(request ratio, token() ratio, broker token() ns, plain token() ns): broker session /
    plain cached session, same key."""
    broker = client.session("bench")
    key = client.token("bench")
    plain = WeaviateSession(broker.url, CachingTokenSource(lambda rejected: key), http=client.http_settings())
    for session in (broker, plain):  # warm connections and caches
        _median_request_time(session)
    request = paired_ratio(lambda: _median_request_time(broker), lambda: _median_request_time(plain), ROUNDS)
    times: dict[int, list[float]] = {0: [], 1: []}

    def token_time(i: int) -> float:
        times[i].append(_median_seconds((broker, plain)[i].token_source.token, PER_ROUND * 20))
        return times[i][-1]

    token = paired_ratio(lambda: token_time(0), lambda: token_time(1), ROUNDS)
    broker.close()
    plain.close()
    return request, token, statistics.median(times[0]) * 1e9, statistics.median(times[1]) * 1e9


def stampede_grants(client: BrokerClient, audit: Path) -> int:
    session = client.session("bench")
    time.sleep(STAMPEDE_RECHECK + 0.2)
    before = _grants(audit)
    barrier = threading.Barrier(THREADS)

    def caller() -> None:
        barrier.wait()
        session.get("/v1/meta").raise_for_status()

    threads = [threading.Thread(target=caller) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    session.close()
    return _grants(audit) - before


def main() -> None:
    from weaviate_auth_widget.sandbox import sandbox_process

    with tempfile.TemporaryDirectory() as tmp, sandbox_process() as info:
        base = Path(tmp)
        profiles = _profiles(info["weaviate_url"], info["credentials"])
        for recheck in (RECHECK, STAMPEDE_RECHECK):
            audit = base / f"audit-{recheck}.jsonl"
            extra = [
                f"--WeaviateAuthApp.token_recheck_seconds={recheck}",
                f"--WeaviateAuthApp.audit_log={audit}",
            ]
            server = Server(base / f"server-{recheck}", extra)
            try:
                _setup(server, profiles)
                broker = read_broker_file(server.broker_file)
                assert broker is not None
                with BrokerClient(broker, kernel=None) as client:
                    if recheck == RECHECK:
                        request, token, broker_ns, plain_ns = cached_path_ratios(client)
                        print(f"broker_session_request_ratio: {request:.3f}")
                        print(f"broker_cached_token_ns: {broker_ns:.0f}")
                        print(f"plain_cached_token_ns: {plain_ns:.0f}")
                        print(f"broker_cached_token_ratio: {token:.3f}")
                    else:
                        print(f"broker_recheck_stampede_grants: {stampede_grants(client, audit)}")
            finally:
                server.stop()


if __name__ == "__main__":
    main()
