"""LoginPanel: the login form. It collects fields and shows results; the backend (the
broker, or the in-process AuthService) does every bit of auth work.

The non-secret fields are ipywidgets; the secret ones are plain DOM inputs of a
:class:`~.login_form.LoginForm` (anywidget), never widget state. In broker mode the
browser posts the secrets to the broker itself and this kernel hears only the profile
name and the outcome; otherwise they arrive once, in one message on Connect. Scripts may
still set ``panel.api_key.value`` & co.: those are plain Python attributes, never synced.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .errors import WeaviateAuthError, from_code
from .login_form import ConnectButton, LoginForm, broker_check
from .policy import Policy
from .urls import host_of
from .widget_cards import CSS, card, error_card, identity_card, mode_line, panel_status
from .widget_confirm import ChangeConfirmation
from .widget_layout import aligned, label
from .widget_picker import NEW_PROFILE, ProfilePicker
from .widget_secret_fields import MODULE_KEYS, SecretFields
from .widget_sign_in import BrowserSignIn

if TYPE_CHECKING:
    from .identity import Identity
    from .profiles import Profile
    from .session import WeaviateSession

log = logging.getLogger(__name__)


class LoginPanel(w.VBox):  # type: ignore[misc]
    """Pick a saved profile or enter a cluster URL, choose a method, connect.

    ``panel.session`` is the ``WeaviateSession`` after a login; ``panel.on_login(cb)``
    calls ``cb(session)`` after each one.
    """

    def __init__(
        self,
        backend: Any = None,
        *,
        profile: str | None = None,
        url: str | None = None,
    ) -> None:
        if backend is None:
            from .kernel import get_backend

            backend = get_backend()
        self.backend = backend
        self.session: WeaviateSession | None = None
        self.identity: Identity | None = None
        self._callbacks: list[Callable[[WeaviateSession], Any]] = []
        status = panel_status(backend)
        policy = status.get("policy") or {}
        self.allow_remember = bool(policy.get("allow_remember", True))
        #: the administrator's URL rules, for the public discovery requests the panel makes
        self.policy = Policy(
            allowed_urls=tuple(policy.get("allowed_urls") or ()),
            allowed_issuers=tuple(policy.get("allowed_issuers") or ()),
            require_https=bool(policy.get("require_https", True)),
            ca_bundle=policy.get("ca_bundle"),
        )

        self.picker = ProfilePicker(self)
        self.profiles = self.picker.dropdown
        self.name = w.Text(placeholder="e.g. prod", **label("Profile name"))
        self.url = w.Text(
            value=url or policy.get("default_url") or "",
            placeholder="https://my-cluster.weaviate.cloud",
            **label("Cluster URL"),
        )
        # "sign in with your hub login" (hub_login.py) comes first, pre-selected, where offered
        hub = [("Hub login", "hub")] if policy.get("hub_login") else []
        self.method = w.ToggleButtons(
            options=[*hub, ("API key", "api_key"), ("Username & password", "password")],
            value="hub" if hub else "api_key",
            description="Sign in with",
            style={"description_width": "110px", "button_width": "170px"},
        )
        self.advanced = w.Checkbox(
            value=False, description="Advanced: client credentials", indent=False, layout=aligned()
        )
        self.username = w.Text(placeholder="you@example.org", **label("Username"))
        self.client_id = w.Text(**label("Client id"))
        # scripts may set panel.api_key.value & co.: plain attributes, never synced
        self.secret_fields = SecretFields()
        self.api_key = self.secret_fields.api_key
        self.password = self.secret_fields.password
        self.client_secret = self.secret_fields.client_secret
        self.module_keys = self.secret_fields.module_keys
        self.form = LoginForm(self._on_form, broker=broker_check(backend))
        self.form.module_keys = self.secret_fields.module_key_specs()
        #: the browser request a pending confirmation / broker login answers
        self._request: str | None = None
        self.browser_sign_in = BrowserSignIn(self)
        self.remember = w.Checkbox(
            value=True, description="Remember on this host", indent=False, layout=aligned()
        )
        self.connect_button = ConnectButton(self)
        self.logout_button = w.Button(description="Log out", icon="sign-out", layout=w.Layout(display="none"))
        self.forget_button = w.Button(
            description="Forget", icon="trash", button_style="danger", layout=w.Layout(display="none")
        )
        self.status = w.HTML()
        # asked before a saved profile's method or URL changes (that drops its secrets)
        self.confirmation = ChangeConfirmation(self)
        self.confirm_box = self.confirmation.box
        self.confirm_text = self.confirmation.text
        self.replace_button = self.confirmation.replace_button
        self.save_new_button = self.confirmation.save_new_button
        self.cancel_button = self.confirmation.cancel_button
        self.pending_name: str | None = None
        self.mode = w.HTML(mode_line(backend, status))

        self._fields = w.VBox()
        buttons = w.HBox([self.logout_button, self.forget_button], layout=aligned())
        super().__init__(
            [
                w.HTML(CSS + "<b>Sign in to Weaviate</b>"),
                self.mode,
                self.profiles,
                self.name,
                self.url,
                self.method,
                self.advanced,
                self.remember,
                self._fields,
                self.form,
                buttons,
                self.confirm_box,
                self.status,
            ],
            layout=w.Layout(max_width="600px"),
        )
        self.add_class("waw-panel")
        if not self.allow_remember:
            self.remember.value = False
            self.remember.layout.display = "none"

        self.profiles.observe(self._on_profile, "value")
        self.method.observe(lambda _: self._show_fields(), "value")
        self.url.observe(lambda _: self._show_hints(), "value")
        self.url.observe(lambda change: self.browser_sign_in.url_changed(change["new"]), "value")
        self.advanced.observe(self._on_advanced, "value")
        self.logout_button.on_click(lambda _: self.logout())
        self.forget_button.on_click(lambda _: self.forget())
        self.refresh_profiles(select=profile)
        self._show_fields()
        self.browser_sign_in.url_changed(self.url.value)
        if profile and profile not in self.picker.views:
            self.picker.offer_to_create(profile)
        watch = getattr(backend, "watch", None)
        if watch is not None:  # logouts from anywhere in this kernel update the panel
            watch.subscribe(self._on_logged_out)

    # -- public ------------------------------------------------------------------
    def on_login(self, callback: Callable[[WeaviateSession], Any]) -> None:
        """Call ``callback(session)`` after every successful login."""
        self._callbacks.append(callback)

    def refresh_profiles(self, select: str | None = None) -> None:
        """List the saved profiles again and select ``select`` (else a new profile)."""
        self.picker.refresh(select)
        self._on_profile()

    def connect(self) -> WeaviateSession | None:
        """Submit the form. Secret fields are emptied first, whatever happens next.

        A saved profile whose method or URL the form changes is not rewritten silently:
        the panel asks (Replace / Save as new profile / Cancel) and holds the secrets
        typed meanwhile in memory only.
        """
        if self.connect_button.disabled:
            return None
        held = self.confirmation.take()
        secrets = {**(held.secrets if held else {}), **self.secret_fields.take(self.chosen_method())}
        if self.confirmation.must_ask(secrets):
            return None
        return self.connect_with(secrets)

    def confirm(self, choice: str | None) -> WeaviateSession | None:
        """Answer the confirmation: ``"replace"`` the saved profile, save under a
        ``"new"`` name, or cancel (``None``: the held secrets are dropped)."""
        return self.confirmation.answer(choice)

    # -- the form's view -------------------------------------------------------------
    def _on_form(self, content: dict[str, Any]) -> None:
        """A message from the form's view: Connect (secrets only on the fallback route,
        once), or the outcome of the view's own post to the broker."""
        event, request = content.get("event"), str(content["id"])
        if event == "connect" and content.get("route") == "broker":
            self._connect_in_browser(request, content.get("typed"))
        elif event == "connect":
            self.secret_fields.fill(content.get("secrets"))
            self.connect()
        elif event == "posted" and request == self._request:
            self._request = None
            self._posted(content)
        elif event == "sign_in":
            self.browser_sign_in.start(request, content.get("origin"))
        elif event == "signed_in":
            self.browser_sign_in.ended(content.get("sign_in"))

    def _connect_in_browser(self, request: str, typed: Any) -> None:
        """Broker route: settle name and profile here, let the view post the secrets."""
        if self.connect_button.disabled:
            return
        kinds = {k for k in typed if isinstance(k, str)} if isinstance(typed, list) else set()
        self.confirmation.held = None
        if not self.confirmation.must_ask({}, request):
            self.post_connect(request, kinds)

    def post_connect(
        self, request: str, kinds: set[str], new_name: str | None = None, replace: bool = False
    ) -> None:
        """Tell the view to post the typed secrets (``kinds``) to the broker's connect
        route for the profile the form describes; they never pass through this kernel."""
        view = self.picker.view() if not new_name else None
        if view and view.get("read_only"):  # the administrator's profile: nothing to post
            self.form.reply(request, "clear")
            self.connect_with({})
            return
        name, profile, unchanged = self._profile(kinds, new_name)
        body = profile.to_json()
        body.pop("name", None)
        if replace:  # the user chose Replace: the core may drop the old method's secrets
            body["replace"] = True
        self._request = request
        self._busy(True)
        self.form.reply(request, "post", name=name, body=body, unchanged=unchanged)

    def _posted(self, content: dict[str, Any]) -> None:
        """The view's post to the broker ended: bind the session through the broker token."""
        name = str(self.pending_name or "")
        try:
            if not content.get("ok"):
                raise from_code(str(content.get("code") or "error"), str(content.get("message") or ""))
            identity = self.backend.identity(name)
            if identity is None:
                identity = self.backend.login(name)
            self.finish_login(name, identity)
        except WeaviateAuthError as exc:
            self.show_error(exc)
            self.refresh_profiles(select=name)
        except Exception as exc:  # an unexpected bug must not leave the panel busy
            log.exception("login failed unexpectedly")
            self.show_error(exc)
        finally:
            self._busy(False)

    def connect_with(
        self, secrets: dict[str, str], new_name: str | None = None, replace: bool = False
    ) -> WeaviateSession | None:
        """Save the form's profile and log in with ``secrets`` in this process (no broker
        behind the page, or a script); a secret is kept only when the login worked."""
        self._busy(True)
        name: str | None = None
        try:
            name, profile, unchanged = self._profile(set(secrets), new_name)
            if profile.read_only or (unchanged and not secrets):
                identity = self.backend.login(name)
            else:  # saved, and the secrets kept only if the login works
                identity = self.backend.connect(profile, secrets, replace=replace)
            return self.finish_login(name, identity)
        except WeaviateAuthError as exc:
            self.show_error(exc)
            if name is not None:
                self.refresh_profiles(select=name)  # a failed login may have saved the profile
            return None
        except Exception as exc:  # an unexpected bug must not leave the panel busy
            log.exception("login failed unexpectedly")
            self.show_error(exc)
            return None
        finally:
            self._busy(False)

    def finish_login(self, name: str, identity: Identity) -> WeaviateSession:
        """A login of ``name`` worked: bind its session, show the card, tell listeners."""
        session: WeaviateSession = self.backend.session(name)
        self.identity, self.session = identity, session
        self.refresh_profiles(select=name)
        self._show_identity(identity)
        for callback in self._callbacks:
            callback(session)
        return session

    def logout(self) -> None:
        """Log the selected profile out; the backend tells every panel and session."""
        name = self.picker.selected()
        if name is None:
            return
        try:
            self.backend.logout(name)
        except WeaviateAuthError as exc:
            self.show_error(exc)
            return
        if getattr(self.backend, "watch", None) is None:  # a backend that tells no one
            self._on_logged_out(name)

    def _on_logged_out(self, name: str) -> None:
        """A logout (here, in another panel, or by the magic) of a profile this panel shows."""
        mine = self.identity is not None and self.identity.profile == name
        if not mine and self.picker.selected() != name:
            return
        self.session = self.identity = None
        self.status.value = card(
            [("Signed out", f"{html.escape(name)} — its sessions stop working; connect to log in again")]
        )
        self.refresh_profiles(select=self.picker.selected())

    def forget(self) -> None:
        name = self.picker.selected()
        if name is None:
            return
        try:
            self.backend.forget(name)
        except WeaviateAuthError as exc:
            self.show_error(exc)
            return
        self.session = self.identity = None
        self.status.value = card([("Forgotten", f"{html.escape(name)} and its stored secrets")])
        self.refresh_profiles()

    # -- form handling -------------------------------------------------------------
    def chosen_method(self) -> str:
        """The login method the form shows (the advanced toggle means client credentials)."""
        return "client_credentials" if self.advanced.value else str(self.method.value)

    def _profile(self, kinds: set[str], new_name: str | None = None) -> tuple[str, Profile, bool]:
        """The profile the form describes (see :meth:`.ProfilePicker.profile`); a login's
        outcome is then shown for its name."""
        name, profile, unchanged = self.picker.profile(self.chosen_method(), kinds, new_name)
        self.pending_name = name
        return name, profile, unchanged

    def _on_profile(self, *_: Any) -> None:
        self.confirmation.dismiss()  # a pending confirmation was about the previous selection
        self.picker.show()
        self._show_fields()

    def _show_hints(self) -> None:
        self.secret_fields.show_hints(self.picker.view(), self.url.value)
        self._sync_form()

    def _on_advanced(self, change: Any) -> None:
        self.method.disabled = bool(change["new"])
        self._show_fields()

    def _show_fields(self) -> None:
        method = self.chosen_method()
        children = {
            "api_key": [],
            "password": [self.username],
            "client_credentials": [self.client_id],
            "hub": [],
        }[method]
        self._fields.children = children
        self._show_hints()

    def _sync_form(self) -> None:
        """Tell the view which secret field(s) to show, with their hints (no values)."""
        self.form.fields = self.secret_fields.form_fields(self.chosen_method())

    def _busy(self, busy: bool) -> None:
        self.connect_button.disabled = busy
        self.connect_button.description = "Connecting…" if busy else "Connect"
        if busy:
            self.status.value = card([("Connecting", html.escape(host_of(self.url.value or "?")))])

    # -- results -----------------------------------------------------------------
    def _show_identity(self, identity: Identity) -> None:
        self.status.value = identity_card(identity)

    def show_error(self, exc: BaseException) -> None:
        """Show ``exc`` as the panel's error card (cause, host, fix)."""
        self.status.value = error_card(exc)


def login_panel(**kwargs: Any) -> LoginPanel:
    """Create and return a ``LoginPanel`` (display it as a cell's last expression)."""
    return LoginPanel(**kwargs)


__all__ = ["MODULE_KEYS", "NEW_PROFILE", "LoginPanel", "login_panel"]
