"""``weaviate-auth keys ...``: database users (Weaviate 1.30+), one command per
:class:`~.backend.KeyOps` method. A key the cluster hands out goes into the store as a
profile and is never printed; ``keys copy`` writes a stored key to a pipe only."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .cli_output import PROG, print_json, print_table
from .errors import InvalidProfile, WeaviateAuthError

Command = Callable[[str, Any, str], argparse.ArgumentParser]


class Refused(WeaviateAuthError):
    code = "refused"


def add_keys_commands(command: Command) -> None:
    """Register ``keys`` and its subcommands (``command(name, run, help)`` makes one)."""
    keys = command("keys", None, "manage database users and their API keys (Weaviate 1.30+)")
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")

    def action(name: str, run: Any, help: str, *, user: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(run=run)
        p.add_argument("profile", metavar="PROFILE", help="a logged-in profile allowed to manage users")
        if user:
            p.add_argument("user", metavar="USER", help="the database user id")
        return p

    p = action("list", keys_list, "list the cluster's users (id, type, roles, active, last used)", user=False)
    p.add_argument("--json", action="store_true", help="print JSON")
    p = action("roles", keys_roles, "list the role names the profile can assign", user=False)
    p.add_argument("--json", action="store_true", help="print JSON")
    p = action("create", keys_create, "create a user; its key is kept as a new profile, never shown")
    p.add_argument(
        "--as", dest="new_profile", required=True, metavar="NEW_PROFILE", help="profile for the key"
    )
    p.add_argument("--role", action="append", default=[], help="a role to assign (repeatable)")
    p.add_argument("--json", action="store_true", help="print the new profile as JSON")
    p = action("rotate", keys_rotate, "give a user a new key (the old one stops working at once)")
    p.add_argument(
        "--as", dest="new_profile", metavar="NEW_PROFILE", help="when no saved profile holds the key"
    )
    _yes(p)
    p = action("deactivate", keys_deactivate, "deactivate a user (optionally revoking its key)")
    p.add_argument("--revoke-key", action="store_true", help="also revoke its key for good")
    _yes(p)
    action("activate", keys_activate, "activate a user again")
    p = action("delete", keys_delete, "delete a user and its key")
    _yes(p)
    for name, run in (("assign", keys_assign), ("revoke", keys_revoke)):
        p = action(name, run, f"{name} roles {'to' if name == 'assign' else 'of'} a user")
        p.add_argument("roles", metavar="ROLE", nargs="+")
        p.add_argument("--oidc", action="store_true", help="the user is an OIDC user, not a database user")
    action("copy", keys_copy, "write a profile's API key to a pipe (never to a terminal)", user=False)


def _yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def _confirm(args: argparse.Namespace, question: str) -> None:
    """Destructive actions ask on a terminal; elsewhere they need ``--yes``."""
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise InvalidProfile(f"{question} needs confirmation.", fix="Add --yes to confirm it.")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise Refused("Nothing was changed.")


def keys_list(backend: Any, args: argparse.Namespace) -> int:
    users = backend.keys.list_users(args.profile)
    if args.json:
        print_json([u.to_json() for u in users])
        return 0
    rows = [("USER", "TYPE", "ROLES", "ACTIVE", "CREATED", "LAST USED", "KEY")]
    for u in users:
        rows.append(
            (
                u.user_id,
                u.user_type,
                ",".join(u.roles) or "-",
                "yes" if u.active else "no",
                u.created_at or "-",
                u.last_used_at or "-",
                f"{u.key_prefix}…" if u.key_prefix else "-",
            )
        )
    print_table(rows)
    return 0


def keys_roles(backend: Any, args: argparse.Namespace) -> int:
    roles = backend.keys.list_roles(args.profile)
    if args.json:
        print_json(roles)
    else:
        print("\n".join(roles))
    return 0


def keys_create(backend: Any, args: argparse.Namespace) -> int:
    view = backend.keys.create_user(args.profile, args.user, new_profile=args.new_profile, roles=args.role)
    if args.json:
        print_json(view)
    else:
        print(f"Created user {args.user}; its key is kept as profile {args.new_profile} (never shown).")
    return 0


def keys_rotate(backend: Any, args: argparse.Namespace) -> int:
    _confirm(args, f"Rotate the key of {args.user}? Its old key stops working at once.")
    updated = backend.keys.rotate_key(args.profile, args.user, new_profile=args.new_profile)
    print(f"Rotated the key of {args.user}; the new key is kept in profile(s): {', '.join(updated)}.")
    return 0


def keys_deactivate(backend: Any, args: argparse.Namespace) -> int:
    revoke = " and revoke its key" if args.revoke_key else ""
    _confirm(args, f"Deactivate {args.user}{revoke}?")
    backend.keys.deactivate(args.profile, args.user, revoke_key=args.revoke_key)
    print(f"Deactivated {args.user}" + (" (key revoked)." if args.revoke_key else "."))
    return 0


def keys_activate(backend: Any, args: argparse.Namespace) -> int:
    backend.keys.activate(args.profile, args.user)
    print(f"Activated {args.user}.")
    return 0


def keys_delete(backend: Any, args: argparse.Namespace) -> int:
    _confirm(args, f"Delete user {args.user} and its key?")
    backend.keys.delete_user(args.profile, args.user)
    print(f"Deleted user {args.user}.")
    return 0


def keys_assign(backend: Any, args: argparse.Namespace) -> int:
    kind = "oidc" if args.oidc else "db"
    backend.keys.assign_roles(args.profile, args.user, args.roles, user_type=kind)
    print(f"Assigned {', '.join(args.roles)} to {args.user}.")
    return 0


def keys_revoke(backend: Any, args: argparse.Namespace) -> int:
    kind = "oidc" if args.oidc else "db"
    backend.keys.revoke_roles(args.profile, args.user, args.roles, user_type=kind)
    print(f"Revoked {', '.join(args.roles)} from {args.user}.")
    return 0


def keys_copy(backend: Any, args: argparse.Namespace) -> int:
    """The stored API key of ``PROFILE`` on stdout, which must not be a terminal."""
    if sys.stdout.isatty():
        raise Refused(
            "Not writing an API key to a terminal (it would stay on screen and in scrollback).",
            fix=f"Pipe it, e.g. `{PROG} keys copy {args.profile} | xclip -selection clipboard`",
        )
    sys.stdout.write(backend.api_key(args.profile))
    return 0


__all__ = ["add_keys_commands"]
