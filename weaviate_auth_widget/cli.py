"""``weaviate-auth``: stored Weaviate logins from the terminal.

It talks to the broker when a Jupyter server with the extension runs for this user (a
Jupyter terminal names its connection file in ``WEAVIATE_AUTH_BROKER_FILE``; any other
shell finds the newest live one in the Jupyter runtime directory), else it runs the same
core in-process on the same stores. Secrets come from a hidden prompt or stdin, never
from argv; only ``token`` prints one, to its stdout.

Exit codes: 0 ok, 1 failure, 2 usage; ``curl`` exits with curl's code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from . import cli_curl
from .cli_input import SecretReader
from .cli_keys import add_keys_commands
from .cli_output import PROG, print_json, print_table
from .errors import InvalidProfile, LoginExpired, MissingSecret, ProfileNotFound, WeaviateAuthError
from .profiles import METHODS, Profile, kept_secret_covers, profile_from_view

Backend = Any  # AuthService | BrokerClient: the same surface


class UsageError(Exception):
    """Bad arguments found after parsing: exit 2, like argparse's own errors."""


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: parse, run one command, map errors to exit codes."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        backend = _backend(args.mode)
        return int(args.run(backend, args))
    except (UsageError, InvalidProfile) as exc:
        _fail(exc, 2)
    except (MissingSecret, LoginExpired) as exc:
        name = getattr(args, "profile", None)
        if name and args.command != "login":  # the fix a terminal user can follow
            exc.fix = f"Log in again: {PROG} login {name}"
        _fail(exc, 1)
    except WeaviateAuthError as exc:
        _fail(exc, 1)
    except KeyboardInterrupt:  # Ctrl-C, e.g. while a device sign-in waits: nothing is kept
        print(f"\n{PROG}: cancelled.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `weaviate-auth list | head`: the reader left, not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the exit flush does not fail again
        return 0


def _fail(exc: Exception, code: int) -> NoReturn:
    if isinstance(exc, WeaviateAuthError):
        text = exc.reason.rstrip(".") + (f" ({exc.fix.rstrip('.')})" if exc.fix else "")
    else:
        text = str(exc)
    print(f"{PROG}: error: {text}", file=sys.stderr)
    raise SystemExit(code)


def _backend(mode: str) -> Backend:
    from .kernel import get_backend

    return get_backend(mode)  # type: ignore[arg-type]  # argparse keeps it to the choices


# -- commands ----------------------------------------------------------------------------
def cmd_list(backend: Backend, args: argparse.Namespace) -> int:
    views = backend.profile_views()
    if args.json:
        print_json({"mode": backend.mode, "profiles": views})
        return 0
    if not views:
        print(f"No saved profiles ({backend.mode}). Create one: {PROG} login NAME --url URL", file=sys.stderr)
        return 0
    rows: list[tuple[str, ...]] = [("NAME", "URL", "METHOD", "USER", "SECRET", "STATE")]
    for v in views:
        state = "logged out" if v.get("logged_out") else "logged in" if v.get("logged_in") else "-"
        kept = "kept" if v.get("has_secret") else "-"
        user = v.get("username") or v.get("client_id") or "-"
        rows.append((str(v["name"]), str(v["url"]), str(v["method"]), str(user), kept, state))
    print_table(rows)
    return 0


def cmd_login(backend: Backend, args: argparse.Namespace) -> int:
    name = args.profile
    try:
        view: dict[str, Any] | None = backend.describe(name)
    except ProfileNotFound:
        view = None
    if args.device:
        args.method = "browser"
    profile = _wanted_profile(name, view, args)
    if profile.method == "browser" and backend.mode == "broker":
        raise UsageError(
            "A device sign-in runs in this process: use `--mode in-process` (or the Jupyter login "
            "panel's 'Sign in with ...' button, which signs in through the broker)."
        )
    secrets: dict[str, str] = {}
    if profile.method == "browser":  # signed in at the provider's page: no secret to read
        if args.module_key:
            secrets = SecretReader(from_stdin=args.stdin).read(
                [f"header:{h}" for h in args.module_key], flag="--stdin"
            )
    elif args.stdin or not kept_secret_covers(view, profile.method, profile.url):
        kinds = [profile.primary_secret, *(f"header:{h}" for h in args.module_key)]
        secrets = SecretReader(from_stdin=args.stdin).read(kinds, flag=_stdin_flag(profile.method))
    elif args.module_key:
        secrets = SecretReader(from_stdin=False).read(
            [f"header:{h}" for h in args.module_key], flag="--stdin"
        )
    if view is None or secrets or profile != profile_from_view(view):
        # an explicit --method (or --device) says the user means to replace the saved login
        backend.save_profile(profile, secrets, replace=args.method is not None)
    identity = backend.login(name)
    if args.json:
        print_json(identity.to_json())
    else:
        who = identity.username or "(anonymous)"
        roles = f", roles: {', '.join(identity.roles)}" if identity.roles else ""
        print(f"Logged in to {identity.url} as {who}{roles} (profile {name}, {backend.mode}).")
    return 0


def _wanted_profile(name: str, view: dict[str, Any] | None, args: argparse.Namespace) -> Profile:
    """The profile the options describe: a new one, or the saved one with changes."""
    given = {
        "url": args.url,
        "method": args.method,
        "username": args.username,
        "client_id": args.client_id,
        "scopes": tuple(args.scope) if args.scope else None,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    if view is None:
        if not args.url:
            raise UsageError(
                f"No profile {name!r} (see `{PROG} list`); to create it give its cluster URL "
                f"(`{PROG} login {name} --url https://... --method api_key`)."
            )
        return Profile(name=name, **changes, headers=tuple(args.module_key))
    current = profile_from_view(view)
    headers = tuple(dict.fromkeys([*current.headers, *args.module_key]))
    return current.with_changes(**changes, headers=headers)


def _stdin_flag(method: str) -> str:
    return {"api_key": "--api-key-stdin", "password": "--password-stdin"}.get(method, "--secret-stdin")


def cmd_whoami(backend: Backend, args: argparse.Namespace) -> int:
    name = args.profile or _default_profile(backend)
    view = backend.describe(name)
    if view.get("logged_out"):
        raise LoginExpired(f"You logged out of profile {name!r}.", fix=f"Log in again: {PROG} login {name}.")
    identity = backend.identity(name) or backend.login(name)
    if args.json:
        print_json(identity.to_json())
        return 0
    print(f"profile:  {name} ({identity.method}, {backend.mode})")
    print(f"cluster:  {identity.url} (Weaviate {identity.server_version or 'unknown version'})")
    print(f"user:     {identity.username or '(not known)'}")
    if identity.roles:
        print(f"roles:    {', '.join(identity.roles)}" + ("  [admin]" if identity.is_admin else ""))
    return 0


def _default_profile(backend: Backend) -> str:
    from .chain import PROFILE_ENV, _implicit_profile

    named = os.environ.get(PROFILE_ENV)
    if named:
        return named
    names = [p.name for p in backend.list_profiles()]
    found = _implicit_profile(backend, names)
    if found is None:
        raise UsageError(
            "No profile given and no default one"
            + (f" (saved: {', '.join(names)})" if names else " (none saved)")
            + f"; name one, or set {PROFILE_ENV}."
        )
    return str(found)


def cmd_token(backend: Backend, args: argparse.Namespace) -> int:
    method = backend.get_profile(args.profile).method
    token = backend.token(args.profile)
    if method == "api_key" and sys.stdout.isatty():
        print(
            f"{PROG}: warning: this is the long-lived API key of profile {args.profile!r} itself, "
            "not a short-lived token: whoever sees it can use it until the key is rotated. "
            "Pipe it into the tool that needs it instead of showing it.",
            file=sys.stderr,
        )
    if args.json:
        print_json({"token": token.value, "expires_at": token.expires_at})
    else:
        print(token.value)
    return 0


def cmd_curl(backend: Backend, args: argparse.Namespace) -> int:
    cli_curl.check_options(args.curl_options)
    profile = backend.get_profile(args.profile)
    url = cli_curl.cluster_url(profile.url, args.path)
    token = backend.token(args.profile)
    config = cli_curl.curl_config(url, token.value, backend.module_headers(args.profile))
    return cli_curl.run_curl(config, args.curl_options)


def cmd_logout(backend: Backend, args: argparse.Namespace) -> int:
    backend.logout(args.profile)
    print(f"Logged out of profile {args.profile}.", file=sys.stderr)
    return 0


def cmd_forget(backend: Backend, args: argparse.Namespace) -> int:
    if not backend.forget(args.profile):
        raise ProfileNotFound(f"No profile {args.profile!r}.", fix=f"See `{PROG} list`.")
    print(f"Forgot profile {args.profile} and every secret kept for it.", file=sys.stderr)
    return 0


# -- the parser ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Use stored Weaviate logins from the terminal: no secret in argv, history or ps.",
        epilog="Uses the Jupyter server's broker when one runs for you, else your stores in-process.",
    )
    parser.add_argument(
        "--mode",
        choices=("auto", "broker", "in-process"),
        default="auto",
        help="broker: only through a running Jupyter server; in-process: this process on your "
        "stores; auto (default): the broker when one runs for you",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Any, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        if run is not None:
            p.set_defaults(run=run)
        return p

    p = command("list", cmd_list, "list saved profiles (never their secrets)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("login", cmd_login, "log in with a profile, creating or changing it")
    p.add_argument("profile", metavar="PROFILE")
    p.add_argument("--url", help="the cluster URL (needed to create a profile)")
    p.add_argument("--method", choices=METHODS, help="login method (default api_key)")
    p.add_argument("--username", help="for --method password")
    p.add_argument("--client-id", help="for --method client_credentials")
    p.add_argument("--scope", action="append", default=[], help="an OAuth scope (repeatable)")
    p.add_argument(
        "--module-key",
        action="append",
        default=[],
        metavar="HEADER",
        help="a module-key header, e.g. X-OpenAI-Api-Key (its value is asked for; repeatable)",
    )
    for flag in ("--stdin", "--api-key-stdin", "--password-stdin", "--secret-stdin"):
        p.add_argument(
            flag,
            dest="stdin",
            action="store_true",
            help="read the secret from stdin (then one line per --module-key)"
            if flag == "--stdin"
            else argparse.SUPPRESS,
        )
    p.add_argument(
        "--device",
        action="store_true",
        help="sign in on the identity provider's page (device code: open the link shown, enter "
        "the code); same as --method browser",
    )
    p.add_argument("--json", action="store_true", help="print the identity as JSON")

    p = command("whoami", cmd_whoami, "who a profile is on its cluster (user, roles, version)")
    p.add_argument(
        "profile", metavar="PROFILE", nargs="?", help="default: $WEAVIATE_PROFILE, 'default', the only one"
    )
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("token", cmd_token, "print a current bearer token for other tools")
    p.add_argument("profile", metavar="PROFILE")
    p.add_argument("--json", action="store_true", help="print token and expiry as JSON")

    p = command("curl", cmd_curl, "run curl on the cluster with the profile's credentials")
    p.add_argument("profile", metavar="PROFILE")
    p.add_argument("path", metavar="PATH", help="path on the cluster, e.g. /v1/meta")
    p.add_argument("curl_options", nargs=argparse.REMAINDER, metavar="CURL_OPTION", help="passed to curl")

    p = command("logout", cmd_logout, "end a profile's login (the refresh token is revoked)")
    p.add_argument("profile", metavar="PROFILE")

    p = command("forget", cmd_forget, "delete a profile and every secret kept for it")
    p.add_argument("profile", metavar="PROFILE")
    add_keys_commands(command)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
