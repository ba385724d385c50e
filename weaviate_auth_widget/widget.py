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

from .errors import ProfileNotFound, WeaviateAuthError, from_code
from .login_form import ConnectButton, LoginForm, SecretField, broker_check
from .policy import Policy
from .profiles import (
    METHOD_LABELS,
    PRIMARY_SECRET,
    Profile,
    default_name,
    free_name,
    kept_secret_covers,
    login_changes,
    profile_from_view,
)
from .urls import host_of
from .widget_cards import CSS, card, error_card, identity_card
from .widget_sign_in import BrowserSignIn

if TYPE_CHECKING:
    from .identity import Identity
    from .session import WeaviateSession

log = logging.getLogger(__name__)

NEW_PROFILE = "__new__"
MODULE_KEYS: tuple[tuple[str, str], ...] = (
    ("OpenAI", "X-OpenAI-Api-Key"),
    ("Cohere", "X-Cohere-Api-Key"),
    ("Hugging Face", "X-HuggingFace-Api-Key"),
    ("Voyage AI", "X-VoyageAI-Api-Key"),
    ("Jina AI", "X-JinaAI-Api-Key"),
    ("Mistral", "X-Mistral-Api-Key"),
    ("Google", "X-Goog-Api-Key"),
)


def _aligned() -> Any:
    """Rows without a label line up with the fields, past the 110px label column."""
    return w.Layout(margin="2px 0 2px 120px")


def _label(text: str) -> dict[str, Any]:
    # width auto, not 100%: the widget's own margin would push a 100% field past the panel's edge
    return {"description": text, "style": {"description_width": "110px"}, "layout": w.Layout(width="auto")}


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
        status = _safe_status(backend)
        policy = status.get("policy") or {}
        self._allow_remember = bool(policy.get("allow_remember", True))
        #: the administrator's URL rules, for the public discovery requests the panel makes
        self.policy = Policy(
            allowed_urls=tuple(policy.get("allowed_urls") or ()),
            allowed_issuers=tuple(policy.get("allowed_issuers") or ()),
            require_https=bool(policy.get("require_https", True)),
            ca_bundle=policy.get("ca_bundle"),
        )

        self.profiles = w.Dropdown(**_label("Profile"))
        self.name = w.Text(placeholder="e.g. prod", **_label("Profile name"))
        self.url = w.Text(
            value=url or policy.get("default_url") or "",
            placeholder="https://my-cluster.weaviate.cloud",
            **_label("Cluster URL"),
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
            value=False, description="Advanced: client credentials", indent=False, layout=_aligned()
        )
        self.api_key = SecretField("API key", "paste your API key")
        self.username = w.Text(placeholder="you@example.org", **_label("Username"))
        self.password = SecretField("Password")
        self.client_id = w.Text(**_label("Client id"))
        self.client_secret = SecretField("Client secret")
        self.module_keys = {header: SecretField(name) for name, header in MODULE_KEYS}
        self.form = LoginForm(self._on_form, broker=broker_check(backend))
        self.form.module_keys = [
            {"kind": f"header:{h}", "label": f.label} for h, f in self.module_keys.items()
        ]
        #: the browser request a pending confirmation / broker login answers
        self._request: str | None = None
        self.browser_sign_in = BrowserSignIn(self)
        self.remember = w.Checkbox(
            value=True, description="Remember on this host", indent=False, layout=_aligned()
        )
        self.connect_button = ConnectButton(self)
        self.logout_button = w.Button(description="Log out", icon="sign-out", layout=w.Layout(display="none"))
        self.forget_button = w.Button(
            description="Forget", icon="trash", button_style="danger", layout=w.Layout(display="none")
        )
        self.status = w.HTML()
        # asked before a saved profile's method or URL changes (that drops its secrets)
        self.confirm_text = w.HTML()
        self.replace_button = w.Button(description="Replace", button_style="warning", icon="check")
        self.save_new_button = w.Button(description="Save as new profile", icon="plus")
        self.cancel_button = w.Button(description="Cancel", icon="times")
        self.confirm_box = w.VBox(
            [self.confirm_text, w.HBox([self.replace_button, self.save_new_button, self.cancel_button])],
            layout=w.Layout(display="none", margin="2px 0 2px 120px"),
        )
        self._held: _Held | None = None
        self._pending_name: str | None = None
        self.mode = w.HTML(f'<span class="waw-mode">{html.escape(_describe_mode(backend, status))}</span>')

        self._fields = w.VBox()
        buttons = w.HBox([self.logout_button, self.forget_button], layout=_aligned())
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
        if not self._allow_remember:
            self.remember.value = False
            self.remember.layout.display = "none"

        self._views: dict[str, dict[str, Any]] = {}
        self.profiles.observe(self._on_profile, "value")
        self.method.observe(lambda _: self._show_fields(), "value")
        self.url.observe(lambda _: self._show_hints(), "value")
        self.url.observe(lambda change: self.browser_sign_in.url_changed(change["new"]), "value")
        self.advanced.observe(self._on_advanced, "value")
        self.logout_button.on_click(lambda _: self.logout())
        self.forget_button.on_click(lambda _: self.forget())
        self.replace_button.on_click(lambda _: self.confirm("replace"))
        self.save_new_button.on_click(lambda _: self.confirm("new"))
        self.cancel_button.on_click(lambda _: self.confirm(None))
        self._placeholders = {f: f.placeholder for f in (self.api_key, self.password, self.client_secret)}
        self.refresh_profiles(select=profile)
        self._show_fields()
        self.browser_sign_in.url_changed(self.url.value)
        if profile and profile not in self._views:
            self._offer_to_create(profile)
        watch = getattr(backend, "watch", None)
        if watch is not None:  # logouts from anywhere in this kernel update the panel
            watch.subscribe(self._on_logged_out)

    # -- public ------------------------------------------------------------------
    def on_login(self, callback: Callable[[WeaviateSession], Any]) -> None:
        """Call ``callback(session)`` after every successful login."""
        self._callbacks.append(callback)

    def refresh_profiles(self, select: str | None = None) -> None:
        try:
            views = self.backend.profile_views()
        except WeaviateAuthError as exc:
            views = []
            self._show_error(exc)
        options: list[tuple[str, str]] = [("New profile…", NEW_PROFILE)]
        self._views = {v["name"]: v for v in views}
        for view in views:
            suffix = " (administrator)" if view.get("read_only") else ""
            options.append((f"{view['name']} — {host_of(view['url'])}{suffix}", view["name"]))
        self.profiles.options = options
        self.profiles.value = select if select in self._views else NEW_PROFILE
        self._on_profile()

    def connect(self) -> WeaviateSession | None:
        """Submit the form. Secret fields are emptied first, whatever happens next.

        A saved profile whose method or URL the form changes is not rewritten silently:
        the panel asks (Replace / Save as new profile / Cancel) and holds the secrets
        typed meanwhile in memory only.
        """
        if self.connect_button.disabled:
            return None
        held, self._held = self._held, None
        secrets = {**(held.secrets if held else {}), **self._take_secrets()}
        if self._must_ask(secrets):
            return None
        return self._connect(secrets)

    def _must_ask(self, secrets: dict[str, str], request: str | None = None) -> bool:
        """Ask first (and hold ``secrets``, or the browser's ``request``) when the form
        changes a saved profile's method or URL."""
        view = self._views.get(self._selected() or "")
        changes = login_changes(view, self._method(), self.url.value) if view else []
        if view is None or not changes or view.get("read_only"):
            return False
        self._ask(str(view["name"]), view, changes, secrets, request)
        return True

    # -- the form's view -------------------------------------------------------------
    def _on_form(self, content: dict[str, Any]) -> None:
        """A message from the form's view: Connect (secrets only on the fallback route,
        once), or the outcome of the view's own post to the broker."""
        event, request = content.get("event"), str(content["id"])
        if event == "connect" and content.get("route") == "broker":
            self._connect_in_browser(request, content.get("typed"))
        elif event == "connect":
            self._fill_from(content.get("secrets"))
            self.connect()
        elif event == "posted" and request == self._request:
            self._request = None
            self._posted(content)
        elif event == "sign_in":
            self.browser_sign_in.start(request, content.get("origin"))
        elif event == "signed_in":
            self.browser_sign_in.ended(content.get("sign_in"))

    def _fill_from(self, secrets: Any) -> None:
        """The fallback route's one message: into the (never synced) fields, once."""
        if not isinstance(secrets, dict):
            return
        fields = self._secret_fields()
        for kind, value in secrets.items():
            field = fields.get(kind)
            if field is not None and isinstance(value, str):
                field.value = value

    def _connect_in_browser(self, request: str, typed: Any) -> None:
        """Broker route: settle name and profile here, let the view post the secrets."""
        if self.connect_button.disabled:
            return
        kinds = {k for k in typed if isinstance(k, str)} if isinstance(typed, list) else set()
        self._held = None
        if not self._must_ask({}, request):
            self._post(request, kinds)

    def _post(
        self, request: str, kinds: set[str], new_name: str | None = None, replace: bool = False
    ) -> None:
        view = self._views.get(self._selected() or "") if not new_name else None
        if view and view.get("read_only"):  # the administrator's profile: nothing to post
            self.form.reply(request, "clear")
            self._connect({})
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
        name = str(self._pending_name or "")
        try:
            if not content.get("ok"):
                raise from_code(str(content.get("code") or "error"), str(content.get("message") or ""))
            identity = self.backend.identity(name)
            if identity is None:
                identity = self.backend.login(name)
            self._finish(name, identity)
        except WeaviateAuthError as exc:
            self._show_error(exc)
            self.refresh_profiles(select=name)
        except Exception as exc:  # an unexpected bug must not leave the panel busy
            log.exception("login failed unexpectedly")
            self._show_error(exc)
        finally:
            self._busy(False)

    def confirm(self, choice: str | None) -> WeaviateSession | None:
        """Answer the confirmation: ``"replace"`` the saved profile, save under a
        ``"new"`` name, or cancel (``None``: the held secrets are dropped)."""
        held, self._held = self._held, None
        self.confirm_box.layout.display = "none"
        if held is None or choice is None:
            self.status.value = card([("Cancelled", "nothing was changed")]) if choice is None else ""
            if held is not None and held.request is not None:
                self.form.reply(held.request, "clear")
            return None
        new_name = None
        if choice == "new":
            new_name = free_name(f"{held.name}-{self._method().replace('_', '-')}", self._views)
        if held.request is not None:
            self._post(held.request, set(), new_name, replace=new_name is None)
            return None
        return self._connect(held.secrets, new_name=new_name, replace=new_name is None)

    def _connect(
        self, secrets: dict[str, str], new_name: str | None = None, replace: bool = False
    ) -> WeaviateSession | None:
        self._busy(True)
        name: str | None = None
        try:
            name, profile, unchanged = self._profile(set(secrets), new_name)
            if profile.read_only or (unchanged and not secrets):
                identity = self.backend.login(name)
            else:  # saved, and the secrets kept only if the login works
                identity = self.backend.connect(profile, secrets, replace=replace)
            return self._finish(name, identity)
        except WeaviateAuthError as exc:
            self._show_error(exc)
            if name is not None:
                self.refresh_profiles(select=name)  # a failed login may have saved the profile
            return None
        except Exception as exc:  # an unexpected bug must not leave the panel busy
            log.exception("login failed unexpectedly")
            self._show_error(exc)
            return None
        finally:
            self._busy(False)

    def _finish(self, name: str, identity: Identity) -> WeaviateSession:
        session: WeaviateSession = self.backend.session(name)
        self.identity, self.session = identity, session
        self.refresh_profiles(select=name)
        self._show_identity(identity)
        for callback in self._callbacks:
            callback(session)
        return session

    def logout(self) -> None:
        """Log the selected profile out; the backend tells every panel and session."""
        name = self._selected()
        if name is None:
            return
        try:
            self.backend.logout(name)
        except WeaviateAuthError as exc:
            self._show_error(exc)
            return
        if getattr(self.backend, "watch", None) is None:  # a backend that tells no one
            self._on_logged_out(name)

    def _on_logged_out(self, name: str) -> None:
        """A logout (here, in another panel, or by the magic) of a profile this panel shows."""
        mine = self.identity is not None and self.identity.profile == name
        if not mine and self._selected() != name:
            return
        self.session = self.identity = None
        self.status.value = card(
            [("Signed out", f"{html.escape(name)} — its sessions stop working; connect to log in again")]
        )
        self.refresh_profiles(select=self._selected())

    def forget(self) -> None:
        name = self._selected()
        if name is None:
            return
        try:
            self.backend.forget(name)
        except WeaviateAuthError as exc:
            self._show_error(exc)
            return
        self.session = self.identity = None
        self.status.value = card([("Forgotten", f"{html.escape(name)} and its stored secrets")])
        self.refresh_profiles()

    # -- form handling -------------------------------------------------------------
    def _selected(self) -> str | None:
        value = self.profiles.value
        return None if value in (None, NEW_PROFILE) else str(value)

    def _take_secrets(self) -> dict[str, str]:
        """Read every secret field and clear it at once (before any network call)."""
        wanted = PRIMARY_SECRET[self._method()]
        secrets: dict[str, str] = {}
        for kind, field in self._secret_fields().items():
            if field.value and (kind == wanted or kind.startswith("header:")):
                secrets[kind] = field.value
            field.value = ""
        return secrets

    def _secret_fields(self) -> dict[str, Any]:
        """Every secret field, by the kind of secret it holds (module keys: ``header:X``)."""
        fields: dict[str, Any] = {
            "api_key": self.api_key,
            "password": self.password,
            "client_secret": self.client_secret,
        }
        fields.update({f"header:{h}": f for h, f in self.module_keys.items()})
        return fields

    def _method(self) -> str:
        return "client_credentials" if self.advanced.value else str(self.method.value)

    def _profile(self, kinds: set[str], new_name: str | None = None) -> tuple[str, Profile, bool]:
        """The profile the form describes: its name, the profile, and whether it equals
        the saved one (then a login needs no save). ``kinds``: the secrets typed."""
        selected = None if new_name else self._selected()
        view = self._views.get(selected) if selected else None
        if view and view.get("read_only"):  # administrator's profile: use as is
            self._pending_name = str(view["name"])
            return str(view["name"]), profile_from_view(view), True
        method = self._method()
        headers = sorted(
            {k.split(":", 1)[1] for k in kinds if k.startswith("header:")}
            | set(view["headers"] if view else ())
        )
        name = new_name or selected or self.name.value.strip() or default_name(self.url.value)
        profile = Profile(
            name=name,
            url=self.url.value,
            method=method,  # type: ignore[arg-type]
            username=self.username.value.strip() or None if method == "password" else None,
            client_id=self.client_id.value.strip() or None if method == "client_credentials" else None,
            scopes=tuple(view["scopes"]) if view else (),
            headers=tuple(headers),
            remember=bool(self.remember.value),
        )
        unchanged = view is not None and all(
            view.get(k) == v for k, v in profile.to_json().items() if k not in ("scopes", "headers")
        )
        self._pending_name = name
        return name, profile, unchanged

    def _on_profile(self, *_: Any) -> None:
        self._held = None  # a pending confirmation was about the previous selection
        self.confirm_box.layout.display = "none"
        view = self._views.get(self._selected() or "")
        self.name.layout.display = "none" if view else None
        read_only = bool(view and view.get("read_only"))
        for widget in (self.url, self.method, self.advanced, self.username, self.client_id, self.remember):
            widget.disabled = read_only
        if view:
            self.url.value = view["url"]
            self.advanced.value = view["method"] == "client_credentials"
            if view["method"] in dict(self.method.options).values():
                self.method.value = view["method"]
            self.username.value = view.get("username") or ""
            self.client_id.value = view.get("client_id") or ""
            self.remember.value = bool(view.get("remember")) and self._allow_remember
        logged_in = bool(view and view.get("logged_in"))
        self.logout_button.layout.display = None if logged_in else "none"
        self.forget_button.layout.display = None if view and not read_only else "none"
        self._show_fields()

    def _show_hints(self) -> None:
        """Say "a secret is kept" in a field only when the core keeps one that this
        method can use at this URL (``describe()`` lists the kinds kept)."""
        view = self._views.get(self._selected() or "")
        for field, method in (
            (self.api_key, "api_key"),
            (self.password, "password"),
            (self.client_secret, "client_credentials"),
        ):
            covered = kept_secret_covers(view, method, self.url.value)
            field.placeholder = (
                "a secret is kept — leave the field empty to use it" if covered else self._placeholders[field]
            )
        self._sync_form()

    def _on_advanced(self, change: Any) -> None:
        self.method.disabled = bool(change["new"])
        self._show_fields()

    def _show_fields(self) -> None:
        method = self._method()
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
        secret = {
            "api_key": (self.api_key, "api_key"),
            "password": (self.password, "password"),
            "client_credentials": (self.client_secret, "client_secret"),
        }.get(self._method())  # a hub login has nothing to type
        if secret is None:
            self.form.fields = []
            return
        field, kind = secret
        self.form.fields = [{"kind": kind, "label": field.label, "placeholder": field.placeholder}]

    def _offer_to_create(self, name: str) -> None:
        """Asked for a profile that does not exist: say so, and pre-fill it as new."""
        try:
            self.backend.describe(name)
            return  # appeared meanwhile
        except ProfileNotFound as exc:
            reason = exc.reason
        except WeaviateAuthError as exc:
            self._show_error(exc)
            return
        self.name.value = name
        self.status.value = card(
            [
                ("Not found", html.escape(reason)),
                ("Create it", "enter its cluster URL and secret, then Connect"),
            ]
        )

    def _ask(
        self,
        name: str,
        view: dict[str, Any],
        changes: list[str],
        secrets: dict[str, str],
        request: str | None = None,
    ) -> None:
        """Hold the secrets (memory only; in broker mode they wait in the browser for
        ``request``'s answer) and ask before changing a saved profile's login."""
        self._held = _Held(name, secrets, request)
        old = f"{METHOD_LABELS.get(view['method'], view['method'])} at {host_of(view['url'])}"
        new_host = host_of(self.url.value) if "URL" in changes else host_of(view["url"])
        new = f"{METHOD_LABELS.get(self._method(), self._method())} at {new_host}"
        self.confirm_text.value = (
            f"Profile <b>{html.escape(name)}</b> signs in with {html.escape(old)}. Change its "
            f"{' and '.join(changes)} to {html.escape(new)}? Replacing it drops the secrets kept for it."
        )
        self.replace_button.description = f"Replace {name}"[:40]
        self.confirm_box.layout.display = None
        self.status.value = ""

    def _busy(self, busy: bool) -> None:
        self.connect_button.disabled = busy
        self.connect_button.description = "Connecting…" if busy else "Connect"
        if busy:
            self.status.value = card([("Connecting", html.escape(host_of(self.url.value or "?")))])

    # -- results -----------------------------------------------------------------
    def _show_identity(self, identity: Identity) -> None:
        self.status.value = identity_card(identity)

    def _show_error(self, exc: BaseException) -> None:
        self.status.value = error_card(exc)


class _Held:
    """Secrets typed before a confirmation, kept in memory (never in widget state)."""

    __slots__ = ("name", "request", "secrets")

    def __init__(self, name: str, secrets: dict[str, str], request: str | None = None) -> None:
        self.name = name
        self.secrets = secrets
        #: in broker mode: the browser request whose secrets wait in the view's fields
        self.request = request

    def __repr__(self) -> str:
        return f"_Held({self.name!r}, kinds={sorted(self.secrets)!r})"


def _safe_status(backend: Any) -> dict[str, Any]:
    try:
        status = backend.status()
    except Exception:  # the panel still opens; errors show on Connect
        return {}
    return status if isinstance(status, dict) else {}


def _describe_mode(backend: Any, status: dict[str, Any]) -> str:
    describe = getattr(backend, "describe_mode", None)
    if callable(describe):
        return str(describe())
    store = status.get("store", "")
    return f"Mode: {getattr(backend, 'mode', 'in-process')}" + (
        f" · secrets kept in: {store}" if store else ""
    )


def login_panel(**kwargs: Any) -> LoginPanel:
    """Create and return a ``LoginPanel`` (display it as a cell's last expression)."""
    return LoginPanel(**kwargs)
