"""What the login panel shows: its style sheet and result cards (HTML built only from
non-secret facts: the identity the backend returns, error messages)."""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING, Any

from .errors import WeaviateAuthError
from .profiles import METHOD_LABELS

if TYPE_CHECKING:
    from .service import Identity

CSS = """
<style>
.waw-card { border: 1px solid var(--jp-border-color1, #cfd8dc); border-radius: 6px; padding: 10px 14px;
  margin-top: 6px; font-size: var(--jp-content-font-size1, 13px); line-height: 1.5;
  background: var(--jp-layout-color1, #fff); color: var(--jp-content-font-color1, #212121);
  border-left: 4px solid var(--jp-success-color1, #4caf50); }
.waw-card.waw-error { border-left-color: var(--jp-error-color1, #d32f2f); }
.waw-card table { border-collapse: collapse; }
.waw-card td { padding: 1px 12px 1px 0; vertical-align: top; color: inherit; }
.waw-card td:first-child { color: var(--jp-content-font-color2, #546e7a); white-space: nowrap; }
.waw-warn { color: inherit; font-weight: 600; }
.waw-mode { color: var(--jp-content-font-color1, #212121); font-size: 12px; display: inline-block;
  line-height: 1.4; }
.waw-panel .widget-toggle-buttons { display: flex; align-items: center; margin: var(--jp-widgets-margin, 2px); }
.waw-panel .widget-toggle-buttons > .widget-label { flex: 0 0 auto; text-align: right;
  margin-right: calc(var(--jp-widgets-inline-margin, 4px) * 2); }
</style>
"""


def card(rows: list[tuple[str, str]], *, title: str | None = None) -> str:
    """A card of label/value rows (values are HTML: escape them first)."""
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    head = f"<b>{html.escape(title)}</b>" if title else ""
    return f'<div class="waw-card">{head}<table>{body}</table></div>'


def identity_card(identity: Identity) -> str:
    """The "Connected" card: cluster, version, user, roles (admin warning), method, expiry."""
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
        expiry = "token valid " + _remaining(identity.expires_at - time.time())
        expiry += "; refreshes automatically" if identity.refreshes else ""
    rows = [
        ("Cluster", html.escape(identity.url)),
        ("Weaviate", html.escape(identity.server_version or "unknown version")),
        ("Signed in as", html.escape(identity.username or "unknown user")),
        ("Roles", roles),
        (
            "Method",
            "signed in with your hub login"
            if identity.method == "hub"
            else html.escape(METHOD_LABELS.get(identity.method, identity.method)),
        ),
        ("Expiry", html.escape(expiry)),
        ("Secret kept in", html.escape(identity.backend)),
    ]
    return card(rows, title="✔ Connected")


def _remaining(seconds: float) -> str:
    """A token's time left: minutes, or seconds under a minute (never "0 min", which
    reads as expired; the card is drawn right after a login, so the token is valid)."""
    if seconds >= 60:
        return f"{int(seconds // 60)} min"
    return f"{max(1, int(seconds))} s"


def error_card(exc: BaseException) -> str:
    """Our errors say cause and fix; anything else only its type (it may quote anything)."""
    message = str(exc) if isinstance(exc, WeaviateAuthError) else f"Unexpected error ({type(exc).__name__})."
    return f'<div class="waw-card waw-error"><b>Could not connect.</b><br>{html.escape(message)}</div>'


def panel_status(backend: Any) -> dict[str, Any]:
    """The backend's status (mode, store, policy), or ``{}``: the panel still opens when
    it fails, and errors show on Connect."""
    try:
        status = backend.status()
    except Exception:
        return {}
    return status if isinstance(status, dict) else {}


def mode_line(backend: Any, status: dict[str, Any]) -> str:
    """The panel's first line: where auth happens and where secrets are kept."""
    describe = getattr(backend, "describe_mode", None)
    if callable(describe):
        text = str(describe())
    else:
        store = status.get("store", "")
        text = f"Mode: {getattr(backend, 'mode', 'in-process')}" + (
            f" · secrets kept in: {store}" if store else ""
        )
    return f'<span class="waw-mode">{html.escape(text)}</span>'
