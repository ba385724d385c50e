"""The login panel's "Keys" section: database users of the cluster, for profiles whose
roles can read users. A table of users with actions (destructive ones ask first), a
form to create a user whose key becomes a new profile, and a *Copy key* button.

No logic of its own: every action is ``backend.keys`` (:mod:`.keys`). No key is ever in
a trait: the copy button's browser code fetches the key from the broker on click and
writes it to the clipboard (:file:`static/copy_key.js`). ``attach_keys`` hooks the
section into a ``LoginPanel`` through its ``on_login`` callbacks only.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as w
import traitlets as t

from .errors import WeaviateAuthError

STATIC = Path(__file__).with_name("static")
COLUMNS = ("user", "type", "roles", "active", "created", "last used", "key starts")


class CopyKeyButton(anywidget.AnyWidget):  # type: ignore[misc]
    """Copies a profile's API key to the clipboard from the browser (broker mode only).

    State: the profile's *name*, whether a broker serves the page, and counters the view
    bumps — never the key."""

    _esm = STATIC / "copy_key.js"
    profile = t.Unicode("", allow_none=True).tag(sync=True)
    available = t.Bool(False).tag(sync=True)
    copied = t.Int(0).tag(sync=True)
    failures = t.Int(0).tag(sync=True)


class KeysPanel(w.VBox):  # type: ignore[misc]
    """Users of the cluster ``profile`` is logged in to, with what that profile may do."""

    def __init__(self, backend: Any, profile: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backend, self.profile = backend, profile
        self.title = w.HTML(f"<b>Keys</b> — database users, as profile <code>{html.escape(profile)}</code>")
        self.table = w.VBox()
        self.message = w.HTML()
        self.confirm_box = w.HBox(layout=w.Layout(display="none"))
        self.new_user = w.Text(placeholder="user name", description="User")
        self.new_profile = w.Text(placeholder="profile for its key", description="Profile")
        self.new_roles = w.Text(placeholder="viewer, ...", description="Roles")
        self.create_button = w.Button(description="Create user", button_style="primary")
        self.create_button.on_click(lambda _: self.create())
        self.copy_profile = w.Dropdown(description="Copy key of")
        self.copy_button = CopyKeyButton(available=getattr(backend, "mode", "") == "broker")
        w.link((self.copy_profile, "value"), (self.copy_button, "profile"))
        self.role_user = w.Dropdown(description="Roles of")
        self.role_names = w.Text(placeholder="roles to assign or revoke", description="Roles")
        self.assign_button = w.Button(description="Assign")
        self.assign_button.on_click(lambda _: self.change_roles("assign"))
        self.revoke_roles_button = w.Button(description="Revoke")
        self.revoke_roles_button.on_click(lambda _: self.change_roles("revoke"))
        self.revoke_key = w.Checkbox(description="Deactivating also revokes the key (until rotated)")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        copy_hint = (
            ""
            if self.copy_button.available
            else "<i>Copying a key needs the Jupyter server extension (the broker).</i>"
        )
        self.children = [
            self.title,
            self.table,
            self.confirm_box,
            w.HBox([self.new_user, self.new_profile, self.new_roles, self.create_button]),
            w.HBox([self.role_user, self.role_names, self.assign_button, self.revoke_roles_button]),
            self.revoke_key,
            w.HBox([self.copy_profile, self.copy_button, w.HTML(copy_hint)]),
            w.HBox([self.refresh_button]),
            self.message,
        ]
        self.refresh()

    # -- actions (each a call to backend.keys) -------------------------------------------
    def refresh(self) -> None:
        try:
            users = self.backend.keys.list_users(self.profile)
            profiles = [p.name for p in self.backend.list_profiles() if p.method == "api_key"]
        except WeaviateAuthError as exc:
            self._say(str(exc), error=True)
            return
        self.copy_profile.options = profiles
        self.role_user.options = [u.user_id for u in users]
        header = w.HBox([_cell(f"<b>{c}</b>") for c in COLUMNS])
        self.table.children = [header, *[self._row(u) for u in users]]

    def create(self) -> None:
        roles = [r.strip() for r in self.new_roles.value.split(",") if r.strip()]
        user, name = (
            self.new_user.value.strip(),
            self.new_profile.value.strip() or self.new_user.value.strip(),
        )
        if self._run(
            lambda: self.backend.keys.create_user(self.profile, user, new_profile=name, roles=roles)
        ):
            self.new_user.value = self.new_profile.value = self.new_roles.value = ""
            self._say(f"Created user {user}; its key is kept as profile {name} (it is not shown).")
            self.refresh()
            self.copy_profile.value = name

    def change_roles(self, action: str) -> None:
        user, keys = self.role_user.value, self.backend.keys
        roles = [r.strip() for r in self.role_names.value.split(",") if r.strip()]
        change = keys.assign_roles if action == "assign" else keys.revoke_roles
        self._act(
            lambda: change(self.profile, user, roles),
            f"{action.title()}ed {roles} for {user}.",
        )

    def rotate(self, user: str) -> None:
        updated: list[str] = []

        def run() -> None:
            # the Profile field names where the key goes when no saved profile holds it
            target = self.new_profile.value.strip() or None
            updated.extend(self.backend.keys.rotate_key(self.profile, user, new_profile=target))

        if self._run(run):
            self._say(
                f"Rotated the key of {user}; the old key no longer works. Updated: {', '.join(updated)}."
            )
            self.refresh()

    def ask(self, question: str, action: Callable[[], None]) -> None:
        """Destructive actions run only after *Confirm*."""
        yes = w.Button(description="Confirm", button_style="danger")
        no = w.Button(description="Cancel")

        def done(confirmed: bool) -> None:
            self.confirm_box.layout.display = "none"
            self.confirm_box.children = []
            if confirmed:
                action()

        yes.on_click(lambda _: done(True))
        no.on_click(lambda _: done(False))
        self.confirm_box.children = [w.HTML(html.escape(question)), yes, no]
        self.confirm_box.layout.display = "flex"

    def _row(self, user: Any) -> w.HBox:
        cells: list[w.Widget] = [_cell(html.escape(v)) for v in row_values(user, "—")]
        if not user.static:
            cells += self._actions(user)
        return w.HBox(cells)

    def _actions(self, user: Any) -> list[w.Button]:
        uid, keys = user.user_id, self.backend.keys
        rotate = w.Button(description="Rotate key", tooltip=f"rotate {uid}")
        rotate.on_click(
            lambda _: self.ask(
                f"Rotate the key of {uid}? The old key stops working at once.", lambda: self.rotate(uid)
            )
        )
        delete = w.Button(description="Delete", button_style="danger", tooltip=f"delete {uid}")
        delete.on_click(
            lambda _: self.ask(
                f"Delete user {uid}? Its key stops working.",
                lambda: self._act(lambda: keys.delete_user(self.profile, uid), f"Deleted {uid}."),
            )
        )
        if user.active:
            toggle = w.Button(description="Deactivate", tooltip=f"deactivate {uid}")
            toggle.on_click(
                lambda _: self.ask(
                    f"Deactivate {uid}? Its key stops working until activated.",
                    lambda: self._act(
                        lambda: keys.deactivate(self.profile, uid, revoke_key=self.revoke_key.value),
                        f"Deactivated {uid}.",
                    ),
                )
            )
        else:
            toggle = w.Button(description="Activate", tooltip=f"activate {uid}")
            toggle.on_click(
                lambda _: self._act(lambda: keys.activate(self.profile, uid), f"Activated {uid}.")
            )
        return [rotate, toggle, delete]

    def _act(self, action: Callable[[], Any], done: str) -> None:
        if self._run(action):
            self._say(done)
            self.refresh()

    def _run(self, action: Callable[[], Any]) -> bool:
        try:
            action()
        except WeaviateAuthError as exc:
            self._say(str(exc), error=True)
            return False
        return True

    def _say(self, text: str, *, error: bool = False) -> None:
        color = "var(--jp-error-color1, #c00)" if error else "inherit"
        self.message.value = f'<span style="color:{color}">{html.escape(text)}</span>'


def row_values(user: Any, blank: str) -> tuple[str, ...]:
    """One user as the table's cells (:data:`COLUMNS`); ``blank`` for what is unknown."""
    return (
        user.user_id,
        "static" if user.static else "database",
        ", ".join(user.roles) or blank,
        "yes" if user.active else "no",
        (user.created_at or blank)[:19],
        (user.last_used_at or "never")[:19],
        user.key_prefix or blank,
    )


def _cell(content: str) -> w.HTML:
    return w.HTML(content, layout=w.Layout(width="9em"))


def attach_keys(panel: Any, backend: Any) -> w.Box:
    """Give ``panel`` a Keys section shown after a login whose roles can read users;
    the panel itself only calls back (its ``on_login``)."""
    slot = w.Box(layout=w.Layout(display="none"))

    def on_login(session: Any) -> None:
        identity = getattr(session, "identity", None)
        name = getattr(identity, "profile", None)
        shown = False
        if name:
            try:
                shown = backend.keys.can_manage(name)
            except WeaviateAuthError:
                shown = False
        slot.children = [KeysPanel(backend, name)] if shown and name else []
        slot.layout.display = "flex" if shown else "none"

    panel.on_login(on_login)
    panel.children = (*panel.children, slot)
    return slot


def keys_text(backend: Any, profile: str) -> str:
    """The users as a text table (a terminal IPython): what ``%weaviate_auth --keys`` prints."""
    users = backend.keys.list_users(profile)
    rows = [COLUMNS, *(row_values(u, "-") for u in users)]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(str(v).ljust(widths[i]) for i, v in enumerate(r)).rstrip() for r in rows)


__all__ = ["CopyKeyButton", "KeysPanel", "attach_keys", "keys_text"]
