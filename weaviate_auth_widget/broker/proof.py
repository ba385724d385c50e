"""Proof of holding the broker token, so a kernel can check a broker before trusting it.

A connection file may outlive its server; its PID and port may then belong to any
process. Before sending the broker token (or any secret) to the address in the file, a
kernel sends a fresh random nonce to ``GET proof?nonce=`` and checks the answer against
``HMAC-SHA256(token, nonce)``, computed with the token from the file. Only a process
holding that token — the server that wrote the file — can answer; relaying the nonce
to another broker does not help (another server has another token), and the token
cannot be recovered from answers to chosen nonces.

Cheap to import (no tornado, no jupyter_server): the kernel side uses it too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

#: ``GET {api}/proof?nonce=<nonce>`` -> ``{"proof": "<hex>"}``
PROOF_PATH = "proof"
#: what the nonce must look like: 32 to 128 lower-case hex digits
NONCE_RE = re.compile(r"[0-9a-f]{32,128}")
_DOMAIN = b"weaviate-auth-broker-proof\0"


def new_nonce() -> str:
    """A fresh challenge: 256 random bits, hex."""
    return secrets.token_hex(32)


def valid_nonce(nonce: str) -> bool:
    return isinstance(nonce, str) and NONCE_RE.fullmatch(nonce) is not None


def broker_proof(token: str, nonce: str) -> str:
    """``HMAC-SHA256(token, domain || nonce)`` in hex (the domain keeps these MACs apart
    from any other use of the token)."""
    return hmac.new(token.encode("utf-8"), _DOMAIN + nonce.encode("ascii"), hashlib.sha256).hexdigest()


def proof_matches(token: str, nonce: str, presented: object) -> bool:
    """Constant-time check of an answer to ``nonce``."""
    if not isinstance(presented, str) or len(presented) != 64:
        return False
    try:
        answer = presented.encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(answer, broker_proof(token, nonce).encode("ascii"))


__all__ = ["NONCE_RE", "PROOF_PATH", "broker_proof", "new_nonce", "proof_matches", "valid_nonce"]
