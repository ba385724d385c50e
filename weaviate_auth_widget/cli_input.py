"""How ``weaviate-auth login`` reads secrets: ``getpass`` on a terminal, or stdin when
told (``--api-key-stdin`` ...), like ``docker login --password-stdin``. Never from argv."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Sequence
from typing import TextIO

from .errors import MissingSecret

#: the secret each method asks for, as the prompt names it
LABELS = {
    "api_key": "API key",
    "password": "Password",
    "client_secret": "Client secret",
    "bearer": "Bearer token",
}
MAX_LINE = 16 * 1024


class SecretReader:
    """Reads the secrets one login needs, in order: from stdin (one per line) or a prompt."""

    def __init__(self, *, from_stdin: bool, stdin: TextIO | None = None) -> None:
        self.from_stdin = from_stdin
        self.stdin = stdin or sys.stdin

    def read(self, kinds: Sequence[str], *, flag: str) -> dict[str, str]:
        """``kind -> value`` for every kind (``api_key``, ``header:X-OpenAI-Api-Key`` ...)."""
        if not self.from_stdin and not self.stdin.isatty():
            raise MissingSecret(
                "No terminal to ask for the secret on (stdin is not a terminal).",
                fix=f"Pipe it in with {flag}, e.g. `printenv KEY | weaviate-auth login NAME {flag}`.",
            )
        return {kind: self._one(kind) for kind in kinds}

    def _one(self, kind: str) -> str:
        label = LABELS.get(kind) or (kind.split(":", 1)[1] + " (module key)")
        if self.from_stdin:
            value = self.stdin.readline(MAX_LINE + 1).rstrip("\r\n")
        else:
            value = getpass.getpass(f"{label}: ")
        if not value or len(value) > MAX_LINE:
            raise MissingSecret(
                f"No {label} was given" + (" on stdin." if self.from_stdin else "."),
                fix="Give one line per secret: the login secret first, then each module key.",
            )
        return value


__all__ = ["LABELS", "SecretReader"]
