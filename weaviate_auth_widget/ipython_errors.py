"""Errors of this package in IPython: a short message (cause and fix), not a traceback.

A login that expired mid-analysis used to print a 100-line traceback through httpx
internals; the message the user needs is one line of it. With this handler registered
(``%load_ext weaviate_auth_widget``, or ``import weaviate_auth_widget`` inside IPython),
a ``WeaviateAuthError`` — and the official client's authentication errors
(``AuthenticationFailedError``, ``UnexpectedStatusCodeError`` 401/403) — show as::

    LoginExpired: You logged out of profile 'prod' (host); log in again.
    Fix: Run %weaviate_auth prod, connect in the login panel, or call login('prod').
    (short form: %tb shows the full traceback; %xmode Verbose always shows it)

``%tb`` and ``%debug`` work as usual (the exception is the "last" one). Under
``%xmode Verbose``, or with ``%pdb`` on, the full traceback shows instead. Every other
exception goes exactly the way IPython shows it without this handler (IPython has one
custom-exception slot: a handler registered before ours keeps its types).
"""

from __future__ import annotations

import sys
from typing import Any

from .errors import WeaviateAuthError

_MARK = "_weaviate_auth_errors"
_MAX_CAUSE = 400
_RED, _RESET = "\x1b[0;31m", "\x1b[0m"
_CLIENT_FIX = (
    "Log in again (%weaviate_auth <profile> or the login panel), then make the client again with "
    "session.weaviate_client()."
)


def short_form(exc: BaseException) -> tuple[str, str, str | None] | None:
    """``(name, cause, fix)`` for errors shown short, None for every other error."""
    if isinstance(exc, WeaviateAuthError):
        return type(exc).__name__, exc.reason, exc.fix
    official = sys.modules.get("weaviate.exceptions")  # only once the client was imported
    if official is None:
        return None
    name = type(exc).__name__
    text = " ".join(str(exc).split())[:_MAX_CAUSE]
    failed = getattr(official, "AuthenticationFailedError", None)
    if failed is not None and isinstance(exc, failed):
        return name, f"The official Weaviate client could not authenticate: {text}", _CLIENT_FIX
    status_error = getattr(official, "UnexpectedStatusCodeError", None)
    if status_error is not None and isinstance(exc, status_error):
        status = getattr(exc, "status_code", None)
        if status == 401:
            return name, f"The cluster refused the login (HTTP 401): {text}", _CLIENT_FIX
        if status == 403:
            return (
                name,
                f"The login has no permission for this (HTTP 403): {text}",
                "Ask the cluster's administrator for a role that allows it, or use another profile.",
            )
    return None


def short_lines(exc: BaseException, *, color: bool = True) -> list[str] | None:
    """The short form as IPython's structured-traceback lines, or None."""
    found = short_form(exc)
    if found is None:
        return None
    name, cause, fix = found
    head = f"{_RED}{name}{_RESET}" if color else name
    lines = [f"{head}: {cause}"]
    if fix:
        lines.append(f"Fix: {fix}")
    lines.append("(short form: %tb shows the full traceback; %xmode Verbose always shows it)")
    return lines


def _handler(
    shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: Any = None
) -> None:
    previous = getattr(shell, _MARK, None)
    lines = short_lines(value, color=getattr(shell, "colors", "NoColor").lower() != "nocolor")
    if lines is None and previous is not None and previous[0] and isinstance(value, previous[0]):
        previous[1](etype, value, tb, tb_offset)  # the handler registered before ours
        return None
    if lines is None or shell.InteractiveTB.mode == "Verbose" or shell.call_pdb:
        # as IPython shows any exception (the same call its run_code makes)
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return None
    shell._get_exc_info((etype, value, tb))  # sys.last_*: what %tb and %debug show
    shell._showtraceback(etype, value, lines)
    return None


def register(shell: Any) -> None:
    """Show this package's errors short in ``shell``; idempotent."""
    if shell is None or getattr(shell, _MARK, None) is not None:
        return
    previous_types = tuple(getattr(shell, "custom_exceptions", ()) or ())
    setattr(shell, _MARK, (previous_types, shell.CustomTB if previous_types else None))
    # Exception, not our types only: the official client's errors are matched when they
    # happen (importing weaviate here would cost most of a second); the rest is shown as usual.
    shell.set_custom_exc((Exception,), _handler)


def unregister(shell: Any) -> None:
    """Give the custom-exception slot back to whatever held it before ``register``."""
    previous = getattr(shell, _MARK, None)
    if previous is None:
        return
    delattr(shell, _MARK)
    types, handler = previous
    shell.set_custom_exc((), None)
    if types and handler is not None:
        shell.CustomTB, shell.custom_exceptions = handler, types


def register_in_running_ipython() -> None:
    """On import: register when this process is an IPython shell (a kernel, a terminal)."""
    if "IPython" not in sys.modules:
        return
    try:
        from IPython import get_ipython

        register(get_ipython())
    except Exception:  # never let the package import fail over a display nicety
        return


__all__ = ["register", "register_in_running_ipython", "short_form", "short_lines", "unregister"]
