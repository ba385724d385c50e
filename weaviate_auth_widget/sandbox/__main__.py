"""``python -m weaviate_auth_widget.sandbox``: the demo sandbox in the foreground.

Prints its URLs and its throwaway credentials (printing them is the point of a local
demo), or one JSON line with ``--json`` so a script can spawn and parse it. Binds
loopback only, and stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ._http import check_loopback
from .runner import SHAPES, Sandbox


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m weaviate_auth_widget.sandbox", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="Weaviate double port (default: a free one)")
    parser.add_argument("--idp-port", type=int, default=0, help="OpenID provider port (default: a free one)")
    parser.add_argument("--grpc-port", type=int, default=0, help="gRPC port (default: a free one)")
    parser.add_argument(
        "--shape", choices=sorted(SHAPES), default="cloud", help="auth schemes on (cloud: API keys + OIDC)"
    )
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--token-lifetime", type=int, default=300, help="access token lifetime in seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON line with URLs and credentials")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request (paths only)")
    return parser


def _banner(sandbox: Sandbox) -> str:
    creds = sandbox.credentials
    assert creds is not None
    return "\n".join(
        [
            "Weaviate sandbox (local demo; these credentials are throwaway and change at every start)",
            f"  Weaviate:       {sandbox.weaviate_url}   (version {sandbox.weaviate.config.version}, RBAC on)",
            f"  gRPC:           {sandbox.host}:{sandbox.weaviate.grpc_port}",
            f"  OpenID issuer:  {sandbox.idp_url}",
            "",
            f"  Admin API key:      {creds.admin_api_key}",
            f"  Read-only API key:  {creds.readonly_api_key}",
            f"  Username:           {creds.username}",
            f"  Password:           {creds.password}",
            f"  Client credentials: {creds.service_client_id} / {creds.service_client_secret}",
            "",
            "Ctrl-C stops it.",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        host = check_loopback(args.host)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sandbox = Sandbox.demo(
        host=host,
        port=args.port,
        idp_port=args.idp_port,
        grpc_port=args.grpc_port,
        shape=args.shape,
        delay=args.delay,
        token_lifetime=args.token_lifetime,
    )
    try:
        sandbox.start()
    except OSError as exc:
        print(f"error: could not start the sandbox: {exc}", file=sys.stderr)
        return 1
    try:
        print(json.dumps(sandbox.describe()) if args.json else _banner(sandbox), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
