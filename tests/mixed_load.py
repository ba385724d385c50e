"""Mixed load on one login: a sync and an async official client (gRPC queries, REST calls)
and the session itself, side by side for a while. Importable in a kernel too (the
kernel tests put the repository on its path)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any


def run(session: Any, grpc_port: int, seconds: float) -> dict[str, Any]:
    """Returns ``{"calls": n, "errors": [repr, ...]}``; every call must succeed."""
    errors: list[str] = []
    calls = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def note(error: BaseException | None) -> None:
        with lock:
            calls[0] += 1
            if error is not None:
                errors.append(repr(error))

    def sync_worker(client: Any, rest: bool) -> None:
        articles = client.collections.get("Article")
        while time.monotonic() < deadline:
            try:
                if rest:
                    assert "Article" in client.collections.list_all(simple=True)
                    assert session.meta()["version"]
                else:
                    assert len(articles.query.fetch_objects().objects) >= 2
                note(None)
            except Exception as exc:
                note(exc)
            time.sleep(0.05)

    async def async_worker() -> None:
        client = await session.weaviate_async_client(grpc_port=grpc_port)
        try:
            articles = client.collections.get("Article")
            while time.monotonic() < deadline:
                try:
                    reply = await articles.query.bm25("tokens")
                    assert len(reply.objects) == 1
                    assert (await client.get_meta())["version"]
                    note(None)
                except Exception as exc:
                    note(exc)
                await asyncio.sleep(0.05)
        finally:
            await client.close()

    with session.weaviate_client(grpc_port=grpc_port) as client:
        threads = [threading.Thread(target=sync_worker, args=(client, rest)) for rest in (False, True, False)]
        threads.append(threading.Thread(target=asyncio.run, args=(async_worker(),)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 30)
    return {"calls": calls[0], "errors": errors}
