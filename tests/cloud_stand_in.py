"""Weaviate Cloud, as far as a client can tell: a TLS-inspecting HTTPS proxy (the shape of
a corporate one) that answers ``CONNECT <host>:443`` for the cloud host names it is given,
terminates TLS with a certificate for them (signed by its own CA) and passes the plain
bytes on to the sandbox's REST or gRPC port. No DNS and no port 443 needed: a client
configured for the proxy (``HTTPS_PROXY``, ``SSL_CERT_FILE``, gRPC's roots file) reaches
"the cloud" only if it asks for the right host and port and speaks TLS to it.

It records what went over the wire: the ``CONNECT`` targets, the TLS server name (SNI)
and negotiated protocol (ALPN) of each tunnel, and the first decrypted bytes.
"""

from __future__ import annotations

import datetime
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TIMEOUT = 30.0


@dataclass
class Tunnel:
    """One ``CONNECT`` the proxy accepted, and what the client sent through it."""

    target: str  # host:port as the client asked
    sni: str | None = None
    alpn: str | None = None
    first_bytes: bytes = b""


@dataclass
class CloudStandIn:
    url: str  # the proxy, for HTTPS_PROXY / grpc_proxy
    ca_file: Path  # trust this to trust "the cloud"
    tunnels: list[Tunnel] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # CONNECT targets not in the routes


def _pem(obj: x509.Certificate) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def _certificates(tmp: Path, hosts: list[str]) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for ``hosts`` it signed: (ca, cert, key) files."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloud-stand-in-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp / "cloud-ca.pem", tmp / "cloud-cert.pem", tmp / "cloud-key.pem"
    paths[0].write_bytes(_pem(ca))
    paths[1].write_bytes(_pem(leaf))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def _read_head(conn: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


def _pump(tls: ssl.SSLSocket, upstream: socket.socket, tunnel: Tunnel) -> None:
    """Copy bytes both ways until either side closes (one thread: an SSL socket is not
    safe to read and write from two)."""
    while True:
        readable = [tls] if tls.pending() else select.select([tls, upstream], [], [], TIMEOUT)[0]
        if not readable:
            return
        for source in readable:
            data = source.recv(65536)
            if not data:
                return
            if source is tls:
                if len(tunnel.first_bytes) < 4096:
                    tunnel.first_bytes += data[:4096]
                upstream.sendall(data)
            else:
                tls.sendall(data)


@contextmanager
def cloud_stand_in(tmp: Path, routes: dict[str, int]) -> Iterator[CloudStandIn]:
    """Serve ``routes`` (cloud host name -> local port it stands for) behind a proxy."""
    ca, cert, key = _certificates(tmp, list(routes))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2", "http/1.1"])
    handshake = threading.local()  # the server name the client asked for, per tunnel thread

    def sni(_sock: object, name: str | None, _context: object) -> None:
        handshake.name = name

    context.sni_callback = sni
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stand_in = CloudStandIn(f"http://127.0.0.1:{listener.getsockname()[1]}", ca)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn, suppress(OSError):
            conn.settimeout(TIMEOUT)
            request = _read_head(conn).split(b"\r\n", 1)[0].decode("latin-1").split()
            target = request[1] if len(request) == 3 and request[0] == "CONNECT" else ""
            host, _, port = target.rpartition(":")
            if host not in routes or port != "443":
                stand_in.refused.append(target)
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            tunnel = Tunnel(target)
            stand_in.tunnels.append(tunnel)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            with context.wrap_socket(conn, server_side=True) as tls:
                tunnel.sni, tunnel.alpn = getattr(handshake, "name", None), tls.selected_alpn_protocol()
                with socket.create_connection(("127.0.0.1", routes[host]), timeout=TIMEOUT) as upstream:
                    _pump(tls, upstream, tunnel)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
