"""What the command-line sandbox keeps between runs, so a newcomer's demo works tomorrow too.

``make run`` starts the sandbox on fixed ports with credentials derived from a per-user
random seed (0600, next to the user's profile store), so a remembered ``sandbox``
profile stays valid across runs; :func:`main` (``python -m
weaviate_auth_widget.sandbox.demo_setup``) then saves or refreshes that profile through
the public API. Tests keep using free ports and fresh credentials (``Sandbox.demo()``).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..paths import ensure_private_dir, store_dir
from ..profiles import Profile

if TYPE_CHECKING:
    from ..service import AuthService

#: The demo's addresses, stable across runs; flags and these variables change them.
DEFAULT_PORT = 18080
DEFAULT_IDP_PORT = 18081
PORT_ENV = "WEAVIATE_SANDBOX_PORT"
IDP_PORT_ENV = "WEAVIATE_SANDBOX_IDP_PORT"
#: Weaviate's own gRPC port, so the official client finds it with its defaults
DEFAULT_GRPC_PORT = 50051
GRPC_PORT_ENV = "WEAVIATE_SANDBOX_GRPC_PORT"
SEED_FILE = "sandbox-seed"
DEMO_PROFILE = "sandbox"
EXTRA_HINT = "pip install 'weaviate-auth-widget[sandbox]'"


def require_sandbox_extra() -> None:
    """Exit with status 2 and the pip command when the ``sandbox`` extra is missing."""
    try:
        import joserfc  # noqa: F401
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "joserfc":
            raise
        print(f"error: the sandbox needs the 'sandbox' extra: {EXTRA_HINT}", file=sys.stderr)
        raise SystemExit(2) from None


def env_port(name: str, default: int) -> int:
    """A port from the environment variable ``name`` (0: a free one), else ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > 65535:
        raise ValueError(f"{name}={raw[:20]!r} is not a port number (0-65535)")
    return int(raw)


def port_taken(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (port 0 is never taken)."""
    if port == 0:
        return False
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def taken_message(host: str, ports: Sequence[tuple[str, int, str, str]]) -> str | None:
    """``ports``: (what, port, flag, env var). Says which are taken and how to move them."""
    lines = [
        f"error: port {port} ({what}) is already in use on {host}; is a sandbox already running? "
        f"Pick another with {flag} N or {env}=N (0 picks a free port)."
        for what, port, flag, env in ports
        if port_taken(host, port)
    ]
    return "\n".join(lines) or None


def demo_seed(directory: Path | None = None) -> bytes:
    """The per-user random seed the demo credentials derive from, made once (0600)."""
    folder = ensure_private_dir(directory or store_dir())
    path = folder / SEED_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        seed = bytes.fromhex(path.read_text().strip())
        if len(seed) < 32:
            raise ValueError(f"{path} is damaged; delete it for new demo credentials") from None
        return seed
    seed = os.urandom(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(seed.hex())
    return seed


def save_demo_profile(
    info: Mapping[str, Any], *, name: str = DEMO_PROFILE, service: AuthService | None = None
) -> Profile:
    """Create or refresh the demo profile (API key, admin, remembered) in the user's store."""
    from ..service import AuthService

    svc = service or AuthService()
    try:
        return svc.save_profile(
            Profile(name=name, url=info["weaviate_url"], method="api_key", remember=True),
            {"api_key": info["credentials"]["admin_api_key"]},
            replace=True,  # the demo profile is this command's: it resets it, whatever it became
        )
    finally:
        if service is None:
            svc.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m weaviate_auth_widget.sandbox.demo_setup",
        description="Save the running sandbox's demo profile (what `make run` does).",
    )
    parser.add_argument("info", help="the sandbox's --json line, in a file ('-': standard input)")
    parser.add_argument("--name", default=DEMO_PROFILE, help=f"profile name (default {DEMO_PROFILE})")
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.info == "-" else Path(args.info).read_text()
    profile = save_demo_profile(json.loads(text), name=args.name)
    print(
        f"Saved the demo profile '{profile.name}' ({profile.url}, admin API key, remembered): "
        f"`%weaviate_auth {profile.name}` connects with it."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
