"""The panel's question before a saved profile's login changes: Replace / Save as new
profile / Cancel.

Changing a saved profile's method or URL drops the secrets kept for it, so the panel
never does it silently. While it asks, the secrets typed meanwhile are held in memory
only (in broker mode they wait in the browser's fields instead, for the request's answer).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .profiles import METHOD_LABELS, free_name, login_changes
from .urls import host_of
from .widget_cards import card
from .widget_layout import ALIGNED_MARGIN

if TYPE_CHECKING:
    from .session import WeaviateSession
    from .widget import LoginPanel


class Held:
    """Secrets typed before a confirmation, kept in memory (never in widget state)."""

    __slots__ = ("name", "request", "secrets")

    def __init__(self, name: str, secrets: dict[str, str], request: str | None = None) -> None:
        self.name = name
        self.secrets = secrets
        #: in broker mode: the browser request whose secrets wait in the view's fields
        self.request = request

    def __repr__(self) -> str:
        return f"Held({self.name!r}, kinds={sorted(self.secrets)!r})"


class ChangeConfirmation:
    """One panel's confirmation box and what it holds while it asks."""

    def __init__(self, panel: LoginPanel) -> None:
        self.panel = panel
        self.text = w.HTML()
        self.replace_button = w.Button(description="Replace", button_style="warning", icon="check")
        self.save_new_button = w.Button(description="Save as new profile", icon="plus")
        self.cancel_button = w.Button(description="Cancel", icon="times")
        self.box = w.VBox(
            [self.text, w.HBox([self.replace_button, self.save_new_button, self.cancel_button])],
            layout=w.Layout(display="none", margin=ALIGNED_MARGIN),
        )
        self.held: Held | None = None
        self.replace_button.on_click(lambda _: panel.confirm("replace"))
        self.save_new_button.on_click(lambda _: panel.confirm("new"))
        self.cancel_button.on_click(lambda _: panel.confirm(None))

    def take(self) -> Held | None:
        """What was held (if anything), no longer held."""
        held, self.held = self.held, None
        return held

    def dismiss(self) -> None:
        """Drop the question and what it held (the selection changed)."""
        self.held = None
        self.box.layout.display = "none"

    def must_ask(self, secrets: dict[str, str], request: str | None = None) -> bool:
        """Ask first (and hold ``secrets``, or the browser's ``request``) when the form
        changes a saved profile's method or URL."""
        panel = self.panel
        view = panel.picker.view()
        changes = login_changes(view, panel.chosen_method(), panel.url.value) if view else []
        if view is None or not changes or view.get("read_only"):
            return False
        self._ask(str(view["name"]), view, changes, secrets, request)
        return True

    def _ask(
        self,
        name: str,
        view: dict[str, Any],
        changes: list[str],
        secrets: dict[str, str],
        request: str | None,
    ) -> None:
        """Hold the secrets (memory only; in broker mode they wait in the browser for
        ``request``'s answer) and ask before changing a saved profile's login."""
        panel = self.panel
        self.held = Held(name, secrets, request)
        method = panel.chosen_method()
        old = f"{METHOD_LABELS.get(view['method'], view['method'])} at {host_of(view['url'])}"
        new_host = host_of(panel.url.value) if "URL" in changes else host_of(view["url"])
        new = f"{METHOD_LABELS.get(method, method)} at {new_host}"
        self.text.value = (
            f"Profile <b>{html.escape(name)}</b> signs in with {html.escape(old)}. Change its "
            f"{' and '.join(changes)} to {html.escape(new)}? Replacing it drops the secrets kept for it."
        )
        self.replace_button.description = f"Replace {name}"[:40]
        self.box.layout.display = None
        panel.status.value = ""

    def answer(self, choice: str | None) -> WeaviateSession | None:
        """``"replace"`` the saved profile, save under a ``"new"`` name, or cancel
        (``None``: the held secrets are dropped)."""
        panel = self.panel
        held = self.take()
        self.box.layout.display = "none"
        if held is None or choice is None:
            panel.status.value = card([("Cancelled", "nothing was changed")]) if choice is None else ""
            if held is not None and held.request is not None:
                panel.form.reply(held.request, "clear")
            if held is not None:
                panel.picker.show()  # the form shows the saved profile again, as it still is
            return None
        new_name = None
        if choice == "new":
            new_name = free_name(f"{held.name}-{panel.chosen_method().replace('_', '-')}", panel.picker.views)
        if held.request is not None:
            panel.post_connect(held.request, set(), new_name, replace=new_name is None)
            return None
        return panel.connect_with(held.secrets, new_name=new_name, replace=new_name is None)


__all__ = ["ChangeConfirmation", "Held"]
