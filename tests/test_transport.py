"""TLS trust (verified by default, CA bundle, SSL_CERT_FILE) and proxies from the environment."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers import recorder
from weaviate_auth_widget.errors import ClusterUnreachable
from weaviate_auth_widget.session import WeaviateSession
from weaviate_auth_widget.tokens import CachingTokenSource, Token
from weaviate_auth_widget.transport import HttpSettings, _ssl_context


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weaviate-test-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = _self_signed(tmp_path)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"version": "1.32.1"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()
    server.server_close()


def _session(url: str, http: HttpSettings | None = None) -> WeaviateSession:
    return WeaviateSession(url, CachingTokenSource(lambda rejected: Token("t")), http=http)


def test_untrusted_certificate_names_host_and_fix(tls_server: tuple[str, Path]) -> None:
    url, _ = tls_server
    with _session(url) as session, pytest.raises(ClusterUnreachable) as err:
        session.meta()
    assert "certificate" in str(err.value) and "127.0.0.1" in str(err.value)
    assert "SSL_CERT_FILE" in str(err.value)


def test_ca_bundle_and_ssl_cert_file_are_honoured(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = tls_server
    with _session(url, HttpSettings(ca_bundle=str(cert))) as session:
        assert session.meta()["version"] == "1.32.1"
    _ssl_context.cache_clear()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with _session(url) as session:
        assert session.meta()["version"] == "1.32.1"


def test_proxy_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    with recorder() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with _session("http://weaviate.internal.example:8080") as session:
            session.get("/v1/meta")
    assert proxy.seen and proxy.seen[0]["host"] == "weaviate.internal.example:8080"
    assert proxy.seen[0]["authorization"] == "Bearer t"
