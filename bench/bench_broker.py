"""Broker benchmarks: real ``jupyter server`` subprocesses with the weaviate-auth extension,
on loopback, against the sandbox (in its own process). Prints `name: value` lines; every
ratio is against a baseline measured in the same run.

broker_token_vs_status_latency_ratio
                           median time of one kernel-side ``BrokerClient.token(name)`` call (an
                           HTTP round trip to the broker, not the kernel's cache) for a token
                           the broker has cached / median ``GET /api/status`` round trip on the
                           same server with the same httpx client; interleaved (target <= 1.5)
broker_vs_status_ratio     broker token requests/s at concurrency 16 / jupyter_server's own
                           ``GET /api/status`` requests/s on the same server, same client code,
                           interleaved rounds (target >= 0.7)
save_guard_overhead_ratio  median time to save a 5 MB notebook through the contents API with the
                           broker holding a few secrets / the same on a server with the save
                           guard disabled; every save has new outputs, so the guard scans all
                           of it; interleaved (target <= 1.2)

Also printed: both servers' requests/s and save times, the same save ratio for an unchanged
notebook (autosave: the guard skips strings it already found clean), and an A/A ratio of
two guard-less servers: the noise floor of the save comparison on this machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from weaviate_auth_widget.kernel import BROKER_HEADER, BrokerClient, read_broker_file
from weaviate_auth_widget.sandbox import sandbox_process

TOKEN_CALLS = 2000
CONCURRENCY = 16
ROUND_SECONDS = 1.5
ROUNDS = 6  # per kind, interleaved
SAVES = 16  # per server, interleaved
NOTEBOOK_BYTES = 5 * 1024 * 1024
#: how the broker side disables the save guard (trait of the extension app)
GUARD_OFF = ["--WeaviateAuthApp.save_guard=False"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A ``python -m jupyter_server`` subprocess whose user-level paths all live in ``base``."""

    def __init__(self, base: Path, extra: list[str] | None = None) -> None:
        self.base = base
        self.port = _free_port()
        self.token = secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WEAVIATE_", "JUPYTER_", "JPY_"))}
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        for key, sub in (
            ("HOME", "home"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
            ("WEAVIATE_AUTH_DIR", "store"),
            ("IPYTHONDIR", "ipython"),
            ("XDG_RUNTIME_DIR", "xdg-runtime"),
        ):
            (base / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
            env[key] = str(base / sub)
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        env["WEAVIATE_AUTH_STORE_BACKEND"] = "file"
        (base / "root").mkdir(exist_ok=True)
        self.runtime = base / "runtime"
        self.log = open(base / "server.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                "--ServerApp.ip=127.0.0.1",
                "--no-browser",
                *(["--allow-root"] if os.name == "posix" and os.geteuid() == 0 else []),
                f"--ServerApp.root_dir={base / 'root'}",
                "--ServerApp.log_level=WARN",
                *(extra or []),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"token {self.token}"}, timeout=60, trust_env=False
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if self.http.get("api/status").status_code == 200 and self.broker_file.exists():
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"jupyter server did not start:\n{(base / 'server.log').read_text()[-3000:]}")

    @property
    def broker_file(self) -> Path:
        return self.runtime / f"weaviate-auth-broker-{self.proc.pid}.json"

    def broker_token(self) -> str:
        info = read_broker_file(self.broker_file)
        assert info is not None
        return info.token

    def save_profile(self, name: str, body: dict[str, Any]) -> None:
        response = self.http.put(f"weaviate-auth/api/profiles/{name}", json=body)
        response.raise_for_status()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.http.close()
        self.log.close()


def _profiles(weaviate_url: str, creds: dict[str, str]) -> dict[str, dict[str, Any]]:
    """A few profiles holding secrets: API keys and module keys."""
    return {
        "bench": {"url": weaviate_url, "method": "api_key", "secrets": {"api_key": creds["admin_api_key"]}},
        "reader": {
            "url": weaviate_url,
            "method": "api_key",
            "headers": ["X-OpenAI-Api-Key", "X-Cohere-Api-Key"],
            "secrets": {
                "api_key": creds["readonly_api_key"],
                "header:X-OpenAI-Api-Key": "sk-bench-" + secrets.token_hex(20),
                "header:X-Cohere-Api-Key": "co-bench-" + secrets.token_hex(20),
            },
        },
        "pw": {
            "url": weaviate_url,
            "method": "password",
            "username": creds["username"],
            "secrets": {"password": creds["password"]},
        },
    }


def _setup(server: Server, profiles: dict[str, dict[str, Any]]) -> None:
    for name, body in profiles.items():
        server.save_profile(name, body)
    for name in profiles:  # log in: tokens (secrets too) now held by the broker
        server.http.post(f"weaviate-auth/api/profiles/{name}/login").raise_for_status()


# -- broker_token_vs_status_latency_ratio ---------------------------------------------------
def _median_seconds(call: Any, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def broker_token_vs_status_latency(server: Server) -> tuple[float, float, float]:
    """(ratio, token ms, status ms): the broker's token route against jupyter_server's
    cheapest authenticated route, over the very httpx client the kernel's BrokerClient uses."""
    info = read_broker_file(server.broker_file)
    assert info is not None
    status_headers = {"Authorization": f"token {server.token}"}
    with BrokerClient(info, kernel=None) as client:
        http = client._client(info)

        def status() -> None:
            http.get(server.url + "api/status", headers=status_headers).raise_for_status()

        def token() -> None:
            client.token("bench")

        for _ in range(200):  # warm: connections, broker cache
            token()
            status()
        ratios, token_times, status_times = [], [], []
        per_round = TOKEN_CALLS // ROUNDS
        for i in range(ROUNDS):  # interleaved, alternating order: drifts hit both
            if i % 2:
                s_t, t_t = _median_seconds(status, per_round), _median_seconds(token, per_round)
            else:
                t_t, s_t = _median_seconds(token, per_round), _median_seconds(status, per_round)
            ratios.append(t_t / s_t)
            token_times.append(t_t)
            status_times.append(s_t)
    return (
        statistics.median(ratios),
        statistics.median(token_times) * 1000,
        statistics.median(status_times) * 1000,
    )


# -- broker_vs_status_ratio ---------------------------------------------------------------
# The client is a minimal keep-alive HTTP/1.1 client on asyncio streams: httpx.AsyncClient
# tops out near 550 requests/s on this kind of machine, below what the server answers, so
# it would measure itself. This one does several thousand, so the server is what limits.
async def _response(reader: asyncio.StreamReader) -> int:
    """Read one response (Content-Length or chunked body); its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked = 0, False
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        key = key.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _rate(port: int, request: bytes, seconds: float) -> float:
    """Requests/s that CONCURRENCY keep-alive connections complete in ``seconds`` (all 200)."""
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CONCURRENCY)]
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            writer.write(request)
            status = await _response(reader)
            if status != 200:
                raise RuntimeError(f"{request.split(b' ', 2)[1].decode()}: HTTP {status}")
            done += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(r, w) for r, w in conns))
    finally:
        for _, writer in conns:
            writer.close()
    return done / (time.perf_counter() - started)


async def _throughput(server: Server) -> tuple[float, float, float]:
    host = f"Host: 127.0.0.1:{server.port}\r\n"
    token = (
        f"POST /weaviate-auth/api/profiles/bench/token HTTP/1.1\r\n{host}"
        f"{BROKER_HEADER}: {server.broker_token()}\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    status = f"GET /api/status HTTP/1.1\r\n{host}Authorization: token {server.token}\r\n\r\n".encode()
    await _rate(server.port, token, 0.5)  # warm both
    await _rate(server.port, status, 0.5)
    ratios, token_rates, status_rates = [], [], []
    for i in range(ROUNDS):  # interleaved, alternating order: drifts hit both
        if i % 2:
            s = await _rate(server.port, status, ROUND_SECONDS)
            t = await _rate(server.port, token, ROUND_SECONDS)
        else:
            t = await _rate(server.port, token, ROUND_SECONDS)
            s = await _rate(server.port, status, ROUND_SECONDS)
        token_rates.append(t)
        status_rates.append(s)
        ratios.append(t / s)
    return statistics.median(ratios), statistics.median(token_rates), statistics.median(status_rates)


# -- save_guard_overhead_ratio ------------------------------------------------------------
_SALT = "SALT0000"  # replaced in each fresh save by "%08d" of its number


def _notebook(size: int) -> dict[str, Any]:
    """A ~``size``-byte nbformat 4 notebook: code cells with text and image outputs."""
    import base64

    cells = []
    chunk = 24 * 1024
    i = 0
    total = 0
    while total < size:
        text = f"run {_SALT}\n" + "".join(
            f"row {i}-{j}: value={j * 3.14159:.5f}\n" for j in range(chunk // 32)
        )
        outputs: list[dict[str, Any]] = [{"output_type": "stream", "name": "stdout", "text": text}]
        if i % 5 == 0:
            png = base64.b64encode(os.urandom(chunk)).decode()
            outputs.append(
                {
                    "output_type": "display_data",
                    "data": {"image/png": png, "text/plain": "<Figure>"},
                    "metadata": {},
                }
            )
        cells.append(
            {
                "cell_type": "code",
                "execution_count": i + 1,
                "id": f"cell-{i}",
                "metadata": {},
                "source": f"for j in range({chunk // 32}):\n    print(f'row {i}-{{j}}: ...')",
                "outputs": outputs,
            }
        )
        total += len(text) + (len(outputs[-1]["data"]["image/png"]) if i % 5 == 0 else 0) + 200
        i += 1
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


_NOTEBOOK_BODY = json.dumps(
    {"type": "notebook", "format": "json", "content": _notebook(NOTEBOOK_BYTES)}
).encode()


def _save_seconds(server: Server, body: bytes) -> float:
    started = time.perf_counter()
    response = server.http.put(
        "api/contents/bench.ipynb", content=body, headers={"Content-Type": "application/json"}
    )
    elapsed = time.perf_counter() - started
    if response.status_code not in (200, 201):
        raise RuntimeError(f"save failed: HTTP {response.status_code} {response.text[:300]}")
    return elapsed


def _guard_works(server: Server, secret: str) -> bool:
    """Whether a save through ``server`` redacts ``secret`` (checks the two set-ups differ)."""
    model = {"type": "file", "format": "text", "content": f"key = {secret}\n"}
    server.http.put("api/contents/probe.txt", json=model).raise_for_status()
    saved = server.http.get("api/contents/probe.txt", params={"content": 1}).json()["content"]
    server.http.delete("api/contents/probe.txt")
    return secret not in saved


def save_times(servers: list[Server], *, fresh: bool) -> list[list[float]]:
    """Seconds per save, per server: SAVES saves of a ~5 MB notebook, each body saved once
    to every server, in rotating order. ``fresh``: every save carries new outputs (each text
    output changes), so the guard scans all of it; else the same body each time: the guard
    remembers big strings it found clean, and an autosave of unchanged outputs costs it a
    hash per string, not a scan."""

    def body(i: int) -> bytes:
        return _NOTEBOOK_BODY.replace(_SALT.encode(), f"{i:08d}".encode()) if fresh else _NOTEBOOK_BODY

    for server in servers:  # warm
        _save_seconds(server, body(10**7 - 1))
    times: list[list[float]] = [[] for _ in servers]
    for i in range(SAVES):
        data = body(i)
        shift = i % len(servers)
        for k in [*range(shift, len(servers)), *range(shift)]:
            times[k].append(_save_seconds(servers[k], data))
    return times


def _median_ms(*runs: list[float]) -> float:
    return statistics.median([t for run in runs for t in run]) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, sandbox_process() as info:
        base = Path(tmp)
        profiles = _profiles(info["weaviate_url"], info["credentials"])
        servers: list[Server] = []
        try:
            # four servers with the same history (start, profiles, logins): two with the save
            # guard, two without; server-to-server differences average out, and comparing
            # mixed pairs (one of each) gives the noise floor (A/A) of the same saves
            for i, (name, extra) in enumerate((("on", []), ("off", GUARD_OFF)) * 2):
                servers.append(Server(base / f"{name}-{i}", extra))
                _setup(servers[-1], profiles)
            on_1, off_1, on_2, off_2 = servers
            module_key = profiles["reader"]["secrets"]["header:X-OpenAI-Api-Key"]
            if not all(_guard_works(s, module_key) for s in (on_1, on_2)) or any(
                _guard_works(s, module_key) for s in (off_1, off_2)
            ):
                raise RuntimeError(f"the save guard is not on/off as configured ({GUARD_OFF})")
            # saves first: the throughput run below would leave one server's process in
            # another state (heap, caches) than the others'
            t_on_1, t_off_1, t_on_2, t_off_2 = save_times(servers, fresh=True)
            on_ms, off_ms = _median_ms(t_on_1, t_on_2), _median_ms(t_off_1, t_off_2)
            print(f"save_5mb_guarded_ms: {on_ms:.1f}")
            print(f"save_5mb_unguarded_ms: {off_ms:.1f}")
            print(f"save_guard_overhead_ratio: {on_ms / off_ms:.3f}")
            print(f"save_noise_aa_ratio: {_median_ms(t_on_1, t_off_1) / _median_ms(t_on_2, t_off_2):.3f}")
            u_on_1, u_off_1, u_on_2, u_off_2 = save_times(servers, fresh=False)
            ratio = _median_ms(u_on_1, u_on_2) / _median_ms(u_off_1, u_off_2)
            print(f"save_guard_overhead_ratio_unchanged: {ratio:.3f}")
            for server in (off_1, on_2, off_2):
                server.stop()
            guarded = on_1

            ratio, token_ms, status_ms = broker_token_vs_status_latency(guarded)
            print(f"broker_token_round_trip_ms: {token_ms:.3f}")
            print(f"jupyter_status_round_trip_ms: {status_ms:.3f}")
            print(f"broker_token_vs_status_latency_ratio: {ratio:.3f}")
            ratio, token_rps, status_rps = asyncio.run(_throughput(guarded))
            print(f"broker_token_rps_c16: {token_rps:.0f}")
            print(f"jupyter_status_rps_c16: {status_rps:.0f}")
            print(f"broker_vs_status_ratio: {ratio:.3f}")
        finally:
            for server in servers:
                server.stop()


if __name__ == "__main__":
    main()
