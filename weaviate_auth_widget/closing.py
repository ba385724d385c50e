"""Close async resources nobody closed, when their event loop shuts down.

An async session or async official client dropped without ``aclose()`` cannot be closed
from a finalizer (closing needs its loop). Instead each loop gets one async generator,
started on it and parked at its ``yield``: ``asyncio.run`` (``loop.shutdown_asyncgens()``)
closes it before the loop ends, and its ``finally`` awaits every closer still registered.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable

Closer = Callable[[], Awaitable[object]]

#: per loop: the pending closers, and the generator (and task) that runs them
_pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Closer]] = (
    weakref.WeakKeyDictionary()
)
_keep: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[object, ...]] = weakref.WeakKeyDictionary()


async def _at_shutdown(closers: dict[int, Closer]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        for close in list(closers.values()):
            with contextlib.suppress(Exception):  # best effort, the loop is ending
                await close()
        closers.clear()


def close_at_loop_end(close: Closer) -> Callable[[], None]:
    """Run ``close`` when the running loop shuts down, unless the returned function is
    called first (after an explicit close). Outside a running loop: nothing to do."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return lambda: None
    closers = _pending.get(loop)
    if closers is None:
        closers = _pending[loop] = {}
        gen = _at_shutdown(closers)
        task = loop.create_task(gen.__anext__())  # type: ignore[arg-type]
        _keep[loop] = (gen, task)
    key = id(close)
    closers[key] = close
    return lambda: closers.pop(key, None) and None
