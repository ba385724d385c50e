"""Official-client benchmarks against the sandbox (in its own process). Prints `name: value`
lines; every ratio is against a baseline measured in the same run.

official_client_grpc_overhead_ratio  median time of a gRPC ``fetch_objects`` through the
                                     hand-off client (``session.weaviate_client()``) / the same
                                     through a client built with a static ``Auth.api_key``;
                                     paired, interleaved rounds (target <= 1.05)
login_vs_official_connect_ratio      a cold username/password ``service.login`` / the official
                                     client doing the same login itself
                                     (``weaviate.connect_to_custom(..., auth_credentials=
                                     Auth.client_password(...), skip_init_checks=True)``: OIDC
                                     discovery, provider discovery, token, /v1/meta), both
                                     against the sandbox with 5 ms added to every request, each
                                     round in a fresh process (median of per-round times;
                                     target <= 1.0)

Also printed: both login times, and the official client's full default ``connect()``
(adds its gRPC health check and a best-effort package-index lookup) for reference.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import weaviate
from paired import paired_ratio
from weaviate.classes.init import Auth

from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import sandbox_process
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService

ROUNDS = 30
PER_ROUND = 50
LOGIN_ROUNDS = 12
DELAY = "0.005"


def _median_fetch(client: Any) -> float:
    articles = client.collections.get("Article")
    times = []
    for _ in range(PER_ROUND):
        started = time.perf_counter()
        result = articles.query.fetch_objects(limit=2)
        times.append(time.perf_counter() - started)
        assert len(result.objects) == 2
    return statistics.median(times)


def _static_client(info: dict[str, Any], key: str, **kwargs: Any) -> Any:
    parts = urlsplit(info["weaviate_url"])
    return weaviate.connect_to_custom(
        http_host=parts.hostname,
        http_port=parts.port,
        http_secure=False,
        grpc_host=parts.hostname,
        grpc_port=info["grpc_port"],
        grpc_secure=False,
        auth_credentials=Auth.api_key(key) if key else None,
        **kwargs,
    )


def grpc_overhead_ratio(info: dict[str, Any], tmp: Path) -> float:
    key = info["credentials"]["admin_api_key"]
    service = AuthService(directory=tmp, secrets=SecretStore("file", directory=tmp))
    service.save_profile(Profile(name="bench", url=info["weaviate_url"]), {"api_key": key})
    with (
        service.session("bench") as session,
        session.weaviate_client(grpc_port=info["grpc_port"]) as ours,
        _static_client(info, key) as theirs,
    ):
        for client in (ours, theirs):  # warm channels and caches
            _median_fetch(client)
        ratio = paired_ratio(lambda: _median_fetch(ours), lambda: _median_fetch(theirs), ROUNDS)
    service.close()
    return ratio


# Each login runs in a fresh interpreter (no discovery cache, no pooled connection, no
# warmed-up library state); imports happen before the clock starts.
OURS = """
import sys, tempfile, time
from pathlib import Path
from weaviate_auth_widget import AuthService, Profile
from weaviate_auth_widget.secrets import SecretStore
url, user, password = sys.argv[1:4]
tmp = Path(tempfile.mkdtemp())
service = AuthService(directory=tmp, secrets=SecretStore("file", directory=tmp))
service.save_profile(Profile(name="pw", url=url, method="password", username=user), {"password": password})
started = time.perf_counter()
identity = service.login("pw")
elapsed = time.perf_counter() - started
assert identity.username == user
service.close()
print(elapsed)
"""

THEIRS = """
import sys, time
from urllib.parse import urlsplit
import weaviate
from weaviate.classes.init import Auth
url, user, password, grpc_port, skip = sys.argv[1:6]
parts = urlsplit(url)
started = time.perf_counter()
client = weaviate.connect_to_custom(
    http_host=parts.hostname, http_port=parts.port, http_secure=False,
    grpc_host=parts.hostname, grpc_port=int(grpc_port), grpc_secure=False,
    auth_credentials=Auth.client_password(user, password), skip_init_checks=skip == "1",
)
elapsed = time.perf_counter() - started
assert client.get_meta()["version"]
client.close()
print(elapsed)
"""


def _timed(code: str, *args: str) -> float:
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def login_times(info: dict[str, Any]) -> tuple[float, float, float]:
    creds = info["credentials"]
    base = (info["weaviate_url"], creds["username"], creds["password"])
    ours, theirs, full = [], [], []
    for i in range(LOGIN_ROUNDS):  # interleaved, alternating order
        runs = [
            lambda: ours.append(_timed(OURS, *base)),
            lambda: theirs.append(_timed(THEIRS, *base, str(info["grpc_port"]), "1")),
        ]
        for run in runs if i % 2 else reversed(runs):
            run()
        full.append(_timed(THEIRS, *base, str(info["grpc_port"]), "0"))
    return statistics.median(ours), statistics.median(theirs), statistics.median(full)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, sandbox_process() as info:
        print(f"official_client_grpc_overhead_ratio: {grpc_overhead_ratio(info, Path(tmp)):.3f}")
    with sandbox_process("--delay", DELAY) as info:
        ours, theirs, full = login_times(info)
        print(f"password_login_cold_ms: {ours * 1000:.1f}")
        print(f"official_client_password_login_cold_ms: {theirs * 1000:.1f}")
        print(f"official_client_default_connect_cold_ms: {full * 1000:.1f}")
        print(f"login_vs_official_connect_ratio: {ours / theirs:.3f}")


if __name__ == "__main__":
    main()
