"""LoginPanel: the ipywidgets login form. It collects fields and shows results; the
backend (the broker, or the in-process AuthService) does every bit of auth work.

Secret fields are cleared the moment Connect is pressed, before any network call, so
no secret stays in widget state — nor in a notebook saved with widget state.
"""

from __future__ import annotations

import html
import logging
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .errors import WeaviateAuthError
from .profiles import METHOD_LABELS, Profile
from .urls import host_of, normalize_url

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
_CSS = """
<style>
.waw-card { border: 1px solid #cfd8dc; border-radius: 6px; padding: 10px 14px; margin-top: 6px;
  font-size: 13px; line-height: 1.5; background: #f7fbf8; }
.waw-card.waw-error { background: #fff5f5; border-color: #f1b0b7; color: #7a1c25; }
.waw-card table { border-collapse: collapse; }
.waw-card td { padding: 1px 12px 1px 0; vertical-align: top; }
.waw-card td:first-child { color: #546e7a; white-space: nowrap; }
.waw-warn { color: #8a5300; font-weight: 600; }
.waw-mode { color: #607d8b; font-size: 12px; display: inline-block; line-height: 1.4; }
.waw-panel .widget-toggle-buttons { display: flex; align-items: center; margin: var(--jp-widgets-margin, 2px); }
.waw-panel .widget-toggle-buttons > .widget-label { flex: 0 0 auto; text-align: right;
  margin-right: calc(var(--jp-widgets-inline-margin, 4px) * 2); }
</style>
"""


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

        self.profiles = w.Dropdown(**_label("Profile"))
        self.name = w.Text(placeholder="e.g. prod", **_label("Profile name"))
        self.url = w.Text(
            value=url or policy.get("default_url") or "",
            placeholder="https://my-cluster.weaviate.cloud",
            **_label("Cluster URL"),
        )
        self.method = w.ToggleButtons(
            options=[("API key", "api_key"), ("Username & password", "password")],
            value="api_key",
            description="Sign in with",
            style={"description_width": "110px", "button_width": "170px"},
        )
        self.advanced = w.Checkbox(
            value=False, description="Advanced: client credentials", indent=False, layout=_aligned()
        )
        self.api_key = w.Password(placeholder="paste your API key", **_label("API key"))
        self.username = w.Text(placeholder="you@example.org", **_label("Username"))
        self.password = w.Password(**_label("Password"))
        self.client_id = w.Text(**_label("Client id"))
        self.client_secret = w.Password(**_label("Client secret"))
        self.module_keys = {header: w.Password(**_label(name)) for name, header in MODULE_KEYS}
        self.remember = w.Checkbox(
            value=True, description="Remember on this host", indent=False, layout=_aligned()
        )
        self.connect_button = w.Button(description="Connect", button_style="primary", icon="plug")
        self.logout_button = w.Button(description="Log out", icon="sign-out", layout=w.Layout(display="none"))
        self.forget_button = w.Button(
            description="Forget", icon="trash", button_style="danger", layout=w.Layout(display="none")
        )
        self.status = w.HTML()
        self.mode = w.HTML(f'<span class="waw-mode">{html.escape(_describe_mode(backend, status))}</span>')

        self._fields = w.VBox()
        modules = w.Accordion(
            children=[w.VBox(list(self.module_keys.values()))], selected_index=None, layout=_aligned()
        )
        modules.set_title(0, "Module keys (optional)")
        self._modules = modules
        buttons = w.HBox([self.connect_button, self.logout_button, self.forget_button], layout=_aligned())
        super().__init__(
            [
                w.HTML(_CSS + "<b>Sign in to Weaviate</b>"),
                self.mode,
                self.profiles,
                self.name,
                self.url,
                self.method,
                self._fields,
                self.advanced,
                modules,
                self.remember,
                buttons,
                self.status,
            ],
            layout=w.Layout(max_width="600px"),
        )
        self.add_class("waw-panel")
        if not self._allow_remember:
            self.remember.value = False
            self.remember.layout.display = "none"

        self.profiles.observe(self._on_profile, "value")
        self.method.observe(lambda _: self._show_fields(), "value")
        self.advanced.observe(self._on_advanced, "value")
        self.connect_button.on_click(lambda _: self.connect())
        self.logout_button.on_click(lambda _: self.logout())
        self.forget_button.on_click(lambda _: self.forget())
        with warnings.catch_warnings():  # Enter in a secret field submits
            warnings.simplefilter("ignore", DeprecationWarning)
            for field in (self.api_key, self.password, self.client_secret):
                field.on_submit(lambda _: self.connect())
        self._placeholders = {f: f.placeholder for f in (self.api_key, self.password, self.client_secret)}
        self.refresh_profiles(select=profile)
        self._show_fields()

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
        """Submit the form. Secret fields are emptied first, whatever happens next."""
        if self.connect_button.disabled:
            return None
        secrets = self._take_secrets()
        self._busy(True)
        try:
            name = self._save(secrets)
            self.identity = self.backend.login(name)
            session: WeaviateSession = self.backend.session(name)
        except WeaviateAuthError as exc:
            self._show_error(exc)
            return None
        except Exception as exc:  # an unexpected bug must not leave the panel busy
            log.exception("login failed unexpectedly")
            self._show_error(exc)
            return None
        finally:
            self._busy(False)
        self.session = session
        self._show_identity(self.identity)
        self.refresh_profiles(select=name)
        for callback in self._callbacks:
            callback(session)
        return session

    def logout(self) -> None:
        name = self._selected()
        if name is None:
            return
        try:
            self.backend.logout(name)
        except WeaviateAuthError as exc:
            self._show_error(exc)
            return
        if self.session is not None:
            self.session.close()
        self.session = self.identity = None
        self.status.value = _card([("Signed out", html.escape(name))])
        self.refresh_profiles(select=name)

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
        self.status.value = _card([("Forgotten", f"{html.escape(name)} and its stored secrets")])
        self.refresh_profiles()

    # -- form handling -------------------------------------------------------------
    def _selected(self) -> str | None:
        value = self.profiles.value
        return None if value in (None, NEW_PROFILE) else str(value)

    def _take_secrets(self) -> dict[str, str]:
        """Read every secret field and clear it at once (before any network call)."""
        method = self._method()
        fields = {"api_key": self.api_key, "password": self.password, "client_secret": self.client_secret}
        secrets: dict[str, str] = {}
        for kind, field in fields.items():
            if field.value and kind == _PRIMARY[method]:
                secrets[kind] = field.value
            field.value = ""
        for header, field in self.module_keys.items():
            if field.value:
                secrets[f"header:{header}"] = field.value
            field.value = ""
        return secrets

    def _method(self) -> str:
        return "client_credentials" if self.advanced.value else str(self.method.value)

    def _save(self, secrets: dict[str, str]) -> str:
        selected = self._selected()
        view = self._views.get(selected) if selected else None
        if view and view.get("read_only"):
            return str(view["name"])  # administrator's profile: use as is
        method = self._method()
        headers = sorted(
            {k.split(":", 1)[1] for k in secrets if k.startswith("header:")}
            | set(view["headers"] if view else ())
        )
        name = selected or self.name.value.strip() or _default_name(self.url.value)
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
        if secrets or not unchanged:
            self.backend.save_profile(profile, secrets)
        return name

    def _on_profile(self, *_: Any) -> None:
        view = self._views.get(self._selected() or "")
        self.name.layout.display = "none" if view else None
        read_only = bool(view and view.get("read_only"))
        for widget in (self.url, self.method, self.advanced, self.username, self.client_id, self.remember):
            widget.disabled = read_only
        if view:
            self.url.value = view["url"]
            self.advanced.value = view["method"] == "client_credentials"
            if view["method"] in ("api_key", "password"):
                self.method.value = view["method"]
            self.username.value = view.get("username") or ""
            self.client_id.value = view.get("client_id") or ""
            self.remember.value = bool(view.get("remember")) and self._allow_remember
        logged_in = bool(view and view.get("logged_in"))
        self.logout_button.layout.display = None if logged_in else "none"
        self.forget_button.layout.display = None if view and not read_only else "none"
        hint = "a secret is kept — leave the field empty to use it" if view and view.get("has_secret") else ""
        for field in (self.api_key, self.password, self.client_secret):
            field.placeholder = hint or self._placeholders[field]
        self._show_fields()

    def _on_advanced(self, change: Any) -> None:
        self.method.disabled = bool(change["new"])
        self._show_fields()

    def _show_fields(self) -> None:
        method = self._method()
        children = {
            "api_key": [self.api_key],
            "password": [self.username, self.password],
            "client_credentials": [self.client_id, self.client_secret],
        }[method]
        self._fields.children = children

    def _busy(self, busy: bool) -> None:
        self.connect_button.disabled = busy
        self.connect_button.description = "Connecting…" if busy else "Connect"
        self.connect_button.icon = "spinner" if busy else "plug"
        if busy:
            self.status.value = _card([("Connecting", html.escape(host_of(self.url.value or "?")))])

    # -- results -----------------------------------------------------------------
    def _show_identity(self, identity: Identity) -> None:
        roles = (
            ", ".join(identity.roles)
            if identity.roles
            else ("unknown" if not identity.identity_known else "none")
        )
        if identity.is_admin:
            what = "key" if identity.method == "api_key" else "login"
            roles += f' <span class="waw-warn">⚠ this {what} can write and delete</span>'
        if identity.expires_at is None:
            expiry = "does not expire"
        else:
            minutes = max(0, int((identity.expires_at - time.time()) // 60))
            expiry = f"token valid {minutes} min" + (
                "; refreshes automatically" if identity.refreshes else ""
            )
        rows = [
            ("Cluster", html.escape(identity.url)),
            ("Weaviate", html.escape(identity.server_version or "unknown version")),
            ("Signed in as", html.escape(identity.username or "unknown user")),
            ("Roles", roles),
            ("Method", html.escape(METHOD_LABELS.get(identity.method, identity.method))),
            ("Expiry", html.escape(expiry)),
            ("Secret kept in", html.escape(identity.backend)),
        ]
        self.status.value = _card(rows, title="✔ Connected")

    def _show_error(self, exc: BaseException) -> None:
        message = (
            str(exc) if isinstance(exc, WeaviateAuthError) else f"Unexpected error ({type(exc).__name__})."
        )
        self.status.value = (
            f'<div class="waw-card waw-error"><b>Could not connect.</b><br>{html.escape(message)}</div>'
        )


_PRIMARY = {"api_key": "api_key", "password": "password", "client_credentials": "client_secret"}


def _card(rows: list[tuple[str, str]], *, title: str | None = None) -> str:
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    head = f"<b>{html.escape(title)}</b>" if title else ""
    return f'<div class="waw-card">{head}<table>{body}</table></div>'


def _default_name(url: str) -> str:
    try:
        host = host_of(normalize_url(url)).split(":")[0]
    except WeaviateAuthError:
        return "default"
    label = host.split(".")[0] if not host.replace(".", "").isdigit() else host
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)[:64]
    return cleaned or "default"


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
