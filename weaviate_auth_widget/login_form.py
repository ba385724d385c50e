"""The login panel's secret fields: an anywidget whose inputs are plain DOM inputs.

Only non-secret facts are model state (which fields to show, their labels and hints, the
Connect button's label, where the broker is). What is typed stays in the browser: in
broker mode the view posts it to the broker itself; otherwise it arrives here once, in
one custom message on Connect (``on_connect``), and is never stored in a trait.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anywidget
import traitlets as t

from .broker.proof import broker_proof, new_nonce

STATIC = Path(__file__).with_name("static")

#: (event content) -> None; ``content`` is the view's message, secrets included
Handler = Callable[[dict[str, Any]], None]


class LoginForm(anywidget.AnyWidget):  # type: ignore[misc]
    """The secret inputs, the module keys and the Connect button of a ``LoginPanel``."""

    _esm = STATIC / "login_form.js"
    _css = STATIC / "login_form.css"

    #: [{"kind", "label", "placeholder"}]: the secret field(s) of the method chosen
    fields = t.List(t.Dict()).tag(sync=True)
    #: [{"kind": "header:X-...", "label"}]
    module_keys = t.List(t.Dict()).tag(sync=True)
    label = t.Unicode("Connect").tag(sync=True)
    disabled = t.Bool(False).tag(sync=True)
    #: {"api_path", "nonce", "proof"}: lets the view check that the page's server is the
    #: kernel's broker (the proof is an HMAC of a fresh nonce: it reveals no token)
    broker = t.Dict().tag(sync=True)
    #: {"label", "provider"} when the cluster offers a browser sign-in (broker mode), else {}
    sign_in = t.Dict().tag(sync=True)

    def __init__(self, on_message: Handler, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handler = on_message
        self.on_msg(self._on_msg)

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and isinstance(content.get("id"), str):
            self._handler(content)

    def reply(self, request: str, event: str, **content: Any) -> None:
        """Answer the view that sent ``request`` (other views ignore it)."""
        self.send({"event": event, "id": request, **content})


class SecretField:
    """A secret input's kernel side: ``value`` for scripts and the one fallback message,
    ``placeholder`` for the view. A plain attribute, never a trait: nothing syncs."""

    __slots__ = ("label", "placeholder", "value")

    def __init__(self, label: str, placeholder: str = "") -> None:
        self.label = label
        self.placeholder = placeholder
        self.value = ""

    def __repr__(self) -> str:
        return f"SecretField({self.label!r}, {'set' if self.value else 'empty'})"


class ConnectButton:
    """``panel.connect_button``: the Connect button drawn by the form's view (``panel.form``)."""

    def __init__(self, panel: Any) -> None:
        self._panel = panel
        self.icon = "plug"

    @property
    def disabled(self) -> bool:
        return bool(self._panel.form.disabled)

    @disabled.setter
    def disabled(self, value: bool) -> None:
        self._panel.form.disabled = bool(value)

    @property
    def description(self) -> str:
        return str(self._panel.form.label)

    @description.setter
    def description(self, value: str) -> None:
        self._panel.form.label = value

    def click(self) -> None:
        self._panel.connect()


def broker_check(backend: Any) -> dict[str, str]:
    """What the view needs to tell whether the page's server is ``backend``'s broker;
    empty for an in-process backend."""
    info = getattr(backend, "info", None)
    token = getattr(info, "token", None)
    url = getattr(info, "url", None)
    if not isinstance(token, str) or not isinstance(url, str):
        return {}
    nonce = new_nonce()
    return {"api_path": urlsplit(url).path, "nonce": nonce, "proof": broker_proof(token, nonce)}


__all__ = ["ConnectButton", "LoginForm", "SecretField", "broker_check"]
