"""The provider's HTML: a login form, a consent page, the device code page.

Plain forms without script, so a test can play the browser with httpx and a real
browser (Playwright) sees what users see. Every value is HTML-escaped.
"""

from __future__ import annotations

from html import escape

_STYLE = (
    "body{font-family:sans-serif;max-width:26em;margin:3em auto}"
    "label{display:block;margin:.6em 0}input{width:100%}"
    ".error{color:#b00020}button{margin:.8em .4em 0 0}"
)


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _error(message: str | None) -> str:
    return f"<p class='error' role='alert'>{escape(message)}</p>" if message else ""


def login_page(rid: str, client_id: str, *, error: str | None = None, username: str = "") -> str:
    """Username and password; Cancel refuses the sign-in."""
    return _page(
        "Sign in to the sandbox provider",
        f"<p>Application <b>{escape(client_id)}</b> asks you to sign in.</p>"
        + _error(error)
        + "<form method='post' action='login'>"
        f"<input type='hidden' name='rid' value='{escape(rid)}'>"
        "<label>Username <input name='username' id='username' autocomplete='username' "
        f"value='{escape(username)}' autofocus></label>"
        "<label>Password <input name='password' id='password' type='password' "
        "autocomplete='current-password'></label>"
        "<button type='submit' name='action' value='login' id='kc-login'>Sign in</button>"
        "<button type='submit' name='action' value='cancel' id='cancel'>Cancel</button>"
        "</form>",
    )


def consent_page(rid: str, client_id: str, username: str, scopes: tuple[str, ...]) -> str:
    """Allow or deny, for ``prompt=consent`` and device sign-ins with a session."""
    items = "".join(f"<li>{escape(s)}</li>" for s in scopes)
    return _page(
        "Allow access?",
        f"<p>Signed in as <b>{escape(username)}</b>. Application <b>{escape(client_id)}</b> "
        f"asks for:</p><ul>{items}</ul>"
        "<form method='post' action='consent'>"
        f"<input type='hidden' name='rid' value='{escape(rid)}'>"
        "<button type='submit' name='action' value='allow' id='allow'>Allow</button>"
        "<button type='submit' name='action' value='deny' id='deny'>Deny</button>"
        "</form>",
    )


def device_page(*, error: str | None = None, user_code: str = "") -> str:
    """Where the user types the code the application shows."""
    return _page(
        "Connect a device",
        "<p>Enter the code shown by the application.</p>"
        + _error(error)
        + "<form method='get' action='device'>"
        "<label>Code <input name='user_code' id='user_code' autocomplete='off' "
        f"value='{escape(user_code)}' autofocus></label>"
        "<button type='submit' id='continue'>Continue</button></form>",
    )


def message_page(title: str, message: str, status_error: bool = False) -> str:
    body = _error(message) if status_error else f"<p>{escape(message)}</p>"
    return _page(title, body)
