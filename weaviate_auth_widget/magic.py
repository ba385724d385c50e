"""``%weaviate_auth``: the login panel or a stored-secret login, without clicking.

The magic only parses its line and calls the backend; it refuses secrets typed on the
line (they would be saved in the notebook) and points to the panel instead. Where no
widget can render (a terminal IPython), it asks on the terminal instead
(:mod:`weaviate_auth_widget.terminal_login`).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .errors import LoginExpired, MissingSecret, ProfileNotFound, WeaviateAuthError
from .terminal_login import TerminalLogin, widgets_render

DEFAULT_VARIABLE = "weaviate_session"
_SECRET_OPTIONS = re.compile(
    r"(^|\s)(--?)(api[-_]?key|key|password|passwd|pw|secret|client[-_]?secret|token|bearer)\b|"
    r"\b(api[-_]?key|password|secret|token)\s*=",
    re.IGNORECASE,
)
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SecretOnLine(WeaviateAuthError):
    code = "secret_on_line"


def refuse_secrets(line: str) -> None:
    """Raise when the line carries something that looks like a credential."""
    if _SECRET_OPTIONS.search(line):
        raise SecretOnLine(
            "Secrets are not accepted on the %weaviate_auth line: the line is saved with the notebook.",
            fix="Run %weaviate_auth without arguments and type the secret into the panel's hidden field.",
        )
    for word in shlex.split(line, posix=True) if line.strip() else ():
        if word.startswith("-"):
            continue
        if not _NAME.fullmatch(word) or _looks_random(word):
            raise SecretOnLine(
                f"{'That' if len(word) > 12 else repr(word)} does not look like a profile name"
                " (it may be a secret, which must not go on the line).",
                fix="Use %weaviate_auth --list to see profile names, or open the panel with %weaviate_auth.",
            )


def _looks_random(word: str) -> bool:
    """Long tokens mixing cases and digits are keys, not names people give profiles."""
    if len(word) < 24:
        return False
    classes = sum(bool(re.search(p, word)) for p in ("[a-z]", "[A-Z]", "[0-9]"))
    return classes >= 3


@magics_class
class WeaviateAuthMagics(Magics):  # type: ignore[misc]
    @magic_arguments()
    @argument("profile", nargs="?", help="saved profile to connect with (no UI when its secret is stored)")
    @argument("--as", dest="variable", default=DEFAULT_VARIABLE, help="variable to bind the session to")
    @argument("--list", action="store_true", help="list saved profiles")
    @argument("--whoami", action="store_true", help="show who the bound session is signed in as")
    @argument("--logout", metavar="PROFILE", help="log a profile out (revokes its refresh token)")
    @argument("--forget", metavar="PROFILE", help="delete a profile and every secret kept for it")
    @argument("--keys", metavar="PROFILE", help="manage the cluster's database users (API keys) as PROFILE")
    @argument(
        "--terminal",
        action="store_true",
        help="ask on the terminal instead of showing the panel (automatic where widgets cannot show)",
    )
    @line_magic  # type: ignore[misc]
    def weaviate_auth(self, line: str) -> Any:
        """Sign in to Weaviate. With no profile, shows the login panel."""
        try:
            refuse_secrets(line)
            args = parse_argstring(self.weaviate_auth, line)
            return self._run(args)
        except WeaviateAuthError as exc:
            print(f"weaviate_auth: {exc}")
            return None
        except (KeyboardInterrupt, EOFError):  # a terminal question was cancelled
            print("\nweaviate_auth: cancelled.")
            return None

    @property
    def _namespace(self) -> dict[str, Any]:
        assert self.shell is not None
        return self.shell.user_ns  # type: ignore[no-any-return]

    def _run(self, args: Any) -> Any:
        from .kernel import get_backend

        if not _IDENTIFIER.fullmatch(args.variable):
            raise SecretOnLine(f"--as needs a Python variable name, not {args.variable[:40]!r}.")
        backend = get_backend()
        if args.list:
            return _profile_table(backend.profile_views())
        if args.whoami:
            session = self._namespace.get(args.variable)
            if session is None or not hasattr(session, "whoami"):
                print(f"No session bound to {args.variable}; connect first.")
                return None
            return session.whoami()
        if args.logout:
            backend.logout(args.logout)
            print(f"Logged out of {args.logout}.")
            return None
        if args.forget:
            if backend.forget(args.forget):
                print(f"Forgot {args.forget} and its stored secrets.")
            else:
                print(f"There is no saved profile named {args.forget!r}.")
            return None
        terminal = args.terminal or not widgets_render(self.shell)
        if args.keys:
            return self._keys(backend, args.keys, terminal)
        if args.profile:
            try:
                identity = backend.login(args.profile)
            except (MissingSecret, ProfileNotFound, LoginExpired):
                if terminal:
                    return self._terminal(backend, args.variable, args.profile)
                return self._panel(backend, args.variable, profile=args.profile)
            self._bind(args.variable, identity, backend.session(args.profile))
            return None
        if terminal:
            return self._terminal(backend, args.variable)
        return self._panel(backend, args.variable)

    def _bind(self, variable: str, identity: Any, session: Any) -> None:
        self._namespace[variable] = session
        print(
            f"Connected to {identity.url} as {identity.username or 'unknown user'}"
            f" (Weaviate {identity.server_version}); session in `{variable}`."
        )

    def _terminal(self, backend: Any, variable: str, profile: str | None = None) -> None:
        identity, session = TerminalLogin(backend).run(profile)
        self._bind(variable, identity, session)

    def _panel(self, backend: Any, variable: str, profile: str | None = None) -> Any:
        from .keys_panel import attach_keys
        from .widget import LoginPanel

        panel = LoginPanel(backend, profile=profile)
        panel.on_login(lambda session: self._namespace.__setitem__(variable, session))
        attach_keys(panel, backend)
        return panel

    def _keys(self, backend: Any, profile: str, terminal: bool) -> Any:
        from .keys_panel import KeysPanel, keys_text

        if terminal:
            print(keys_text(backend, profile))
            return None
        return KeysPanel(backend, profile)


def _profile_table(views: list[dict[str, Any]]) -> Any:
    import html

    from IPython.display import HTML

    if not views:
        return HTML("<i>No saved profiles. Run %weaviate_auth to create one.</i>")
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (
                view["name"],
                view["url"],
                view["method"],
                view.get("username") or "",
                "yes" if view.get("has_secret") else "no",
                "yes" if view.get("logged_in") else "no",
                "administrator" if view.get("read_only") else "you",
            )
        )
        + "</tr>"
        for view in views
    )
    head = "".join(
        f"<th>{h}</th>" for h in ("profile", "cluster", "method", "user", "secret kept", "logged in", "owner")
    )
    return HTML(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(WeaviateAuthMagics)
