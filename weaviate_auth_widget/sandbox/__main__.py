"""``python -m weaviate_auth_widget.sandbox``: the demo sandbox in the foreground.

Prints its URLs and its demo credentials (printing them is the point of a local
demo), or one JSON line with ``--json`` so a script can spawn and parse it. Binds
loopback only, on fixed ports by default, and stops cleanly on SIGINT/SIGTERM. The
credentials derive from a per-user seed, so they stay the same across runs.
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

from . import demo_setup as demo
from ._http import check_loopback

demo.require_sandbox_extra()  # before anything imports joserfc
from .runner import SHAPES, DemoCredentials, Sandbox  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m weaviate_auth_widget.sandbox", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    port, idp_port = (
        demo.env_port(demo.PORT_ENV, demo.DEFAULT_PORT),
        demo.env_port(demo.IDP_PORT_ENV, demo.DEFAULT_IDP_PORT),
    )
    parser.add_argument(
        "--port",
        type=int,
        default=port,
        help=f"Weaviate double port (default {port}, ${demo.PORT_ENV}; 0: a free one)",
    )
    parser.add_argument(
        "--idp-port",
        type=int,
        default=idp_port,
        help=f"OpenID provider port (default {idp_port}, ${demo.IDP_PORT_ENV}; 0: a free one)",
    )
    parser.add_argument(
        "--fresh-credentials", action="store_true", help="new random credentials, not the ones kept for you"
    )
    grpc_port = demo.env_port(demo.GRPC_PORT_ENV, demo.DEFAULT_GRPC_PORT)
    parser.add_argument(
        "--grpc-port",
        type=int,
        default=grpc_port,
        help=f"gRPC port (default {grpc_port}, Weaviate's own, ${demo.GRPC_PORT_ENV}; 0: a free one)",
    )
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
            "Weaviate sandbox (local demo; the same credentials at every start, --fresh-credentials for new ones)",
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
    try:
        args = _parser().parse_args(argv)
        host = check_loopback(args.host)
        creds = (
            DemoCredentials.generate() if args.fresh_credentials else DemoCredentials.derive(demo.demo_seed())
        )
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
        credentials=creds,
    )
    try:
        sandbox.start()
    except OSError as exc:
        ports = [
            ("the Weaviate double", args.port, "--port", demo.PORT_ENV),
            ("the OpenID provider", args.idp_port, "--idp-port", demo.IDP_PORT_ENV),
            ("the gRPC API", args.grpc_port, "--grpc-port", demo.GRPC_PORT_ENV),
        ]
        print(
            demo.taken_message(host, ports) or f"error: could not start the sandbox: {exc}", file=sys.stderr
        )
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
