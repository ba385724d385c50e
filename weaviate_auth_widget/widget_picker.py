"""The login panel's Profile dropdown: the saved profiles' views, showing the chosen
one in the form, and the profile the form describes.

Views come from the backend's ``profile_views()`` (no secrets, only which kinds are
kept); an administrator's profile is shown read-only and used as it is.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .errors import ProfileNotFound, WeaviateAuthError
from .profiles import Profile, default_name, profile_from_view
from .urls import host_of
from .widget_cards import card
from .widget_layout import label

if TYPE_CHECKING:
    from .widget import LoginPanel

#: the dropdown's "New profile…" entry
NEW_PROFILE = "__new__"


class ProfilePicker:
    """One panel's Profile dropdown and the views behind its entries."""

    def __init__(self, panel: LoginPanel) -> None:
        self.panel = panel
        self.dropdown = w.Dropdown(**label("Profile"))
        #: profile name -> its view, as the backend last listed them
        self.views: dict[str, dict[str, Any]] = {}

    def refresh(self, select: str | None = None) -> None:
        """List the saved profiles again and select ``select`` (else "New profile…")."""
        try:
            views = self.panel.backend.profile_views()
        except WeaviateAuthError as exc:
            views = []
            self.panel.show_error(exc)
        options: list[tuple[str, str]] = [("New profile…", NEW_PROFILE)]
        self.views = {v["name"]: v for v in views}
        for view in views:
            suffix = " (administrator)" if view.get("read_only") else ""
            options.append((f"{view['name']} — {host_of(view['url'])}{suffix}", view["name"]))
        self.dropdown.options = options
        self.dropdown.value = select if select in self.views else NEW_PROFILE

    def selected(self) -> str | None:
        """The selected saved profile's name (None: a new one)."""
        value = self.dropdown.value
        return None if value in (None, NEW_PROFILE) else str(value)

    def view(self) -> dict[str, Any] | None:
        """The selected saved profile's view."""
        return self.views.get(self.selected() or "")

    def show(self) -> None:
        """Put the selected profile into the form (an administrator's: read-only)."""
        panel = self.panel
        view = self.view()
        panel.name.layout.display = "none" if view else None
        read_only = bool(view and view.get("read_only"))
        for widget in (
            panel.url,
            panel.method,
            panel.advanced,
            panel.username,
            panel.client_id,
            panel.remember,
        ):
            widget.disabled = read_only
        if view:
            panel.url.value = view["url"]
            panel.advanced.value = view["method"] == "client_credentials"
            if view["method"] in dict(panel.method.options).values():
                panel.method.value = view["method"]
            panel.username.value = view.get("username") or ""
            panel.client_id.value = view.get("client_id") or ""
            panel.remember.value = bool(view.get("remember")) and panel.allow_remember
        logged_in = bool(view and view.get("logged_in"))
        panel.logout_button.layout.display = None if logged_in else "none"
        panel.forget_button.layout.display = None if view and not read_only else "none"

    def profile(self, method: str, kinds: set[str], new_name: str | None = None) -> tuple[str, Profile, bool]:
        """The profile the form describes for ``method``: its name, the profile, and
        whether it equals the saved one (then a login needs no save). ``kinds``: the
        secrets typed; ``new_name``: save as a new profile of that name."""
        panel = self.panel
        selected = None if new_name else self.selected()
        view = self.views.get(selected) if selected else None
        if view and view.get("read_only"):  # administrator's profile: use as is
            return str(view["name"]), profile_from_view(view), True
        headers = sorted(
            {k.split(":", 1)[1] for k in kinds if k.startswith("header:")}
            | set(view["headers"] if view else ())
        )
        name = new_name or selected or panel.name.value.strip() or default_name(panel.url.value)
        profile = Profile(
            name=name,
            url=panel.url.value,
            method=method,  # type: ignore[arg-type]
            username=panel.username.value.strip() or None if method == "password" else None,
            client_id=panel.client_id.value.strip() or None if method == "client_credentials" else None,
            scopes=tuple(view["scopes"]) if view else (),
            headers=tuple(headers),
            remember=bool(panel.remember.value),
        )
        unchanged = view is not None and all(
            view.get(k) == v for k, v in profile.to_json().items() if k not in ("scopes", "headers")
        )
        return name, profile, unchanged

    def offer_to_create(self, name: str) -> None:
        """Asked for a profile that does not exist: say so, and pre-fill it as new."""
        panel = self.panel
        try:
            panel.backend.describe(name)
            return  # appeared meanwhile
        except ProfileNotFound as exc:
            reason = exc.reason
        except WeaviateAuthError as exc:
            panel.show_error(exc)
            return
        panel.name.value = name
        panel.status.value = card(
            [
                ("Not found", html.escape(reason)),
                ("Create it", "enter its cluster URL and secret, then Connect"),
            ]
        )


__all__ = ["NEW_PROFILE", "ProfilePicker"]
