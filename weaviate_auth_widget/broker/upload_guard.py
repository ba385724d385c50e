"""The save guard for chunked uploads: check the file once its last chunk is written.

The contents API saves large files in chunks (``"chunk": 1, 2, …, -1``); pre-save hooks
see only the first one, so a secret in a later chunk, or straddling two, would reach the
disk. :func:`guard_chunked_uploads` wraps the contents manager's ``save``: after the
last chunk (``-1``) it reads the assembled file, and if a known secret is in it (in any
form the guard knows; for a notebook, also split across the items of a multiline list)
rewrites it redacted, atomically. Until the last chunk arrives, the partial file on disk
is not checked.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import shutil
from collections.abc import Callable
from typing import Any

from tornado import web

from .redact import redact_bytes, redact_tree, unbroken
from .save_guard import SaveGuard, _Forms

log = logging.getLogger(__name__)

_BLOCK = 1 << 20
#: notebooks up to this size are parsed (a secret split across list items is found)
MAX_NOTEBOOK_BYTES = 256 * 1024 * 1024
_WRAPPED = "_weaviate_auth_upload_guard"


def _contains(path: str, forms: _Forms) -> bool:
    """Whether a form occurs in the file (also across line breaks and block edges),
    read in blocks: big clean uploads are never held in memory."""
    overlap = max(len(n) for n in forms.needle_bytes) - 1
    tail = b""
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            window = tail + unbroken(block)
            if forms.present_bytes(window):
                return True
            tail = window[len(window) - overlap :] if overlap else b""
    return False


def _redacted_notebook(data: bytes, forms: _Forms) -> tuple[bytes, int] | None:
    """The notebook with every form redacted (None when it is not a JSON notebook)."""
    try:
        notebook = json.loads(data)
    except ValueError:
        return None
    if not isinstance(notebook, dict):
        return None
    count = redact_tree(notebook, forms)
    text = json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    return text.encode("utf-8"), count


def check_file(guard: SaveGuard, os_path: str) -> int:
    """Redact the file at ``os_path`` in place; the number of values replaced."""
    forms = guard.forms() if guard.enabled else None
    if forms is None:
        return 0
    real = os.path.realpath(os_path)
    notebook = real.endswith(".ipynb") and os.path.getsize(real) <= MAX_NOTEBOOK_BYTES
    if not notebook and not _contains(real, forms):
        return 0
    with open(real, "rb") as fh:
        data = fh.read()
    result = _redacted_notebook(data, forms) if notebook else None
    new, count = result if result is not None else redact_bytes(data, forms)
    if count:
        tmp = f"{real}.weaviate-auth-{os.getpid()}.tmp"
        try:
            with open(tmp, "xb") as fh:
                fh.write(new)
            shutil.copymode(real, tmp)
            os.replace(tmp, real)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return count


def _after_last_chunk(guard: SaveGuard, contents_manager: Any, model: Any, path: str) -> None:
    if not isinstance(model, dict) or model.get("chunk") != -1:
        return
    os_path = contents_manager._get_os_path(path.strip("/"))
    logger = getattr(contents_manager, "log", log)
    try:
        count = check_file(guard, os_path)
    except Exception:
        logger.error("The weaviate-auth save guard could not check the uploaded file %s.", path)
        raise web.HTTPError(
            500, "The weaviate-auth secret guard could not check this uploaded file; check it yourself."
        ) from None
    if count:
        logger.warning("weaviate-auth: redacted %d secret value(s) from %s after its upload.", count, path)


def guard_chunked_uploads(contents_manager: Any, guard: SaveGuard) -> None:
    """Wrap ``contents_manager.save`` (sync or async) to check files after their last
    chunk. Contents managers without local files (no ``_get_os_path``) are left alone."""
    original: Callable[..., Any] = contents_manager.save
    if getattr(original, _WRAPPED, False) or not hasattr(contents_manager, "_get_os_path"):
        return
    if inspect.iscoroutinefunction(original):

        async def save(model: Any, path: str = "") -> Any:
            result = await original(model, path)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, _after_last_chunk, guard, contents_manager, model, path)
            return result

    else:

        def save(model: Any, path: str = "") -> Any:  # type: ignore[misc]
            result = original(model, path)
            _after_last_chunk(guard, contents_manager, model, path)
            return result

    setattr(save, _WRAPPED, True)
    contents_manager.save = save


__all__ = ["MAX_NOTEBOOK_BYTES", "check_file", "guard_chunked_uploads"]
