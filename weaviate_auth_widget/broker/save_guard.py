"""Save-time guard: no secret the broker knows reaches a file saved through Jupyter.

A ContentsManager pre-save hook. Every value from ``service.secret_values()`` — and
every value it returned earlier in this server's life, since a forgotten API key may
still work — is looked for in the model being saved, in these forms:

- raw, JSON-escaped and HTML-escaped;
- URL-encoded (``quote``, ``quote_plus``; hex digits in either case);
- base64, standard and URL-safe alphabets, with and without padding, and (for values
  of 12 bytes or more) embedded at any offset inside a longer base64 blob.

Each occurrence — in cell sources, outputs, metadata, widget state, dict keys, text
files and binary files — becomes ``[REDACTED]``, also when it is broken across lines
(base64 wrapped at 76 columns, as in PNG outputs; a value split by a line break) or
split across the items of an nbformat multiline list (``source: ["sk-ab", "cd..."]``,
which nbformat joins into one string). A warning names the file and the count, never
the value. The rewriting itself is :mod:`.redact`; chunked uploads (contents API
``chunk``) are checked once assembled (see :mod:`.upload_guard`).

Speed: the forms are derived once per distinct secret set. A save first gathers every
string of the model (line breaks removed) into one buffer and looks for each form with ``str.__contains__``
(C speed, no regex); only when one is present does a regex of the forms found rewrite
the strings holding them. With no secrets known the hook returns at once.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from tornado import web

from .redact import REDACTED, redact_model, redact_tree

#: Values this long (UTF-8 bytes) are also looked for inside longer base64 blobs.
MIN_EMBEDDED_BYTES = 12
#: How many distinct values the guard remembers over the server's life.
MAX_REMEMBERED = 4096

log = logging.getLogger(__name__)

_PERCENT_RE = re.compile(r"%([0-9A-F]{2})")


def _url_regex(encoded: str) -> str:
    """Regex for a percent-encoded string whose hex digits may be in either case."""
    out: list[str] = []
    last = 0
    for match in _PERCENT_RE.finditer(encoded):
        out.append(re.escape(encoded[last : match.start()]))
        out.append("%" + "".join(f"[{c}{c.lower()}]" if c.isalpha() else c for c in match.group(1)))
        last = match.end()
    out.append(re.escape(encoded[last:]))
    return "".join(out)


def _embedded_base64(data: bytes) -> set[str]:
    """The base64 characters fixed by ``data`` alone, for each of the 3 byte alignments
    it can have inside a longer blob (both alphabets)."""
    found: set[str] = set()
    n = len(data)
    for shift in (0, 1, 2):
        start = -(-8 * shift // 6)  # first char whose 6 bits all come from ``data``
        end = (8 * shift + 8 * n) // 6  # one past the last such char
        padded = b"\0" * shift + data
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            core = encode(padded).decode("ascii")[start:end]
            if core:
                found.add(core)
    return found


def secret_forms(value: str) -> tuple[set[str], set[str]]:
    """``(literals, regexes)``: every form of ``value`` the guard looks for. The regexes
    (percent-encodings with case-insensitive hex) each come with a literal in ``literals``
    (their upper-case form) for the fast first pass."""
    literals = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        html.escape(value),
    }
    regexes: set[str] = set()
    for encoded in {quote(value, safe=""), quote(value), quote_plus(value, safe="")}:
        if encoded != value:
            literals.add(encoded)
            if "%" in encoded:
                regexes.add(_url_regex(encoded))
                literals.add(_PERCENT_RE.sub(lambda m: "%" + m.group(1).lower(), encoded))
    data = value.encode("utf-8", "surrogatepass")
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(data).decode("ascii")
        literals.update((encoded, encoded.rstrip("=")))
    if len(data) >= MIN_EMBEDDED_BYTES:
        literals |= _embedded_base64(data)
    literals.discard("")
    return literals, regexes


def _minimal(forms: Iterable[str]) -> list[str]:
    """The forms containing no other form: finding none of these means finding none."""
    kept: list[str] = []
    for form in sorted(set(forms), key=lambda f: (len(f), f)):
        if not any(shorter in form for shorter in kept):
            kept.append(form)
    return kept


class _Forms:
    """The compiled forms of one set of secrets.

    ``needles`` (the minimal forms) drive the fast first pass; a hit brings in every
    form containing the needle found. Large strings found clean are remembered by
    (length, hash) — autosave writes the same big outputs again and again — until the
    set of secrets changes (a new ``_Forms``).
    """

    #: strings at least this long are remembered once found clean
    CLEAN_MIN = 2048
    CLEAN_MAX_ENTRIES = 8192

    def __init__(self, values: Iterable[str]) -> None:
        literals: set[str] = set()
        regexes: set[str] = set()
        for value in values:
            lits, rxs = secret_forms(value)
            literals |= lits
            regexes |= rxs
        #: longest first, so a whole form wins over a form it contains
        self.literals = sorted(literals, key=lambda f: (-len(f), f))
        self.needles = _minimal(literals)
        self.needle_bytes = [f.encode("utf-8", "surrogatepass") for f in self.needles]
        self._containing = {n: tuple(f for f in self.literals if n in f) for n in self.needles}
        compiled = [(r, re.compile(r)) for r in sorted(regexes, key=lambda r: (-len(r), r))]
        self._regex_of = {f: r for f in self.literals if "%" in f for r, c in compiled if c.fullmatch(f)}
        self.clean: set[tuple[int, int]] = set()
        self._text_cache: dict[tuple[str, ...], re.Pattern[str]] = {}
        self._bytes_cache: dict[tuple[bytes, ...], re.Pattern[bytes]] = {}
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return len(self.literals)

    def present(self, text: str) -> tuple[str, ...]:
        """The needles present in ``text`` (C-speed substring search, one per needle)."""
        return tuple(n for n in self.needles if n in text)

    def present_bytes(self, data: bytes) -> tuple[bytes, ...]:
        return tuple(n for n in self.needle_bytes if n in data)

    def _alternatives(self, found: tuple[str, ...]) -> list[str]:
        forms = sorted({f for n in found for f in self._containing[n]}, key=lambda f: (-len(f), f))
        # a percent-encoded form brings its regex (hex digits in either case)
        return [self._regex_of.get(f) or re.escape(f) for f in forms]

    def text_pattern(self, found: tuple[str, ...]) -> re.Pattern[str]:
        with self._lock:
            pattern = self._text_cache.get(found)
            if pattern is None:
                pattern = re.compile("|".join(dict.fromkeys(self._alternatives(found))))
                if len(self._text_cache) < 256:
                    self._text_cache[found] = pattern
            return pattern

    def bytes_pattern(self, found: tuple[bytes, ...]) -> re.Pattern[bytes]:
        with self._lock:
            pattern = self._bytes_cache.get(found)
            if pattern is None:
                texts = tuple(n.decode("utf-8", "surrogatepass") for n in found)
                alternatives = [a.encode("utf-8", "surrogatepass") for a in self._alternatives(texts)]
                pattern = re.compile(b"|".join(dict.fromkeys(alternatives)))
                if len(self._bytes_cache) < 256:
                    self._bytes_cache[found] = pattern
            return pattern

    def remember_clean(self, keys: list[tuple[int, int]]) -> None:
        if len(self.clean) + len(keys) > self.CLEAN_MAX_ENTRIES:
            self.clean.clear()
        self.clean.update(keys)


class SaveGuard:
    """The pre-save hook. ``values`` returns the secrets to redact (a frozenset that the
    service keeps identical until its secrets change); ``enabled`` may be flipped off."""

    def __init__(self, values: Callable[[], frozenset[str]], *, enabled: bool = True) -> None:
        self._values = values
        self.enabled = enabled
        self._lock = threading.Lock()
        self._last: frozenset[str] | None = None
        self._remembered: set[str] = set()
        self._forms: _Forms | None = None

    def __repr__(self) -> str:
        return f"SaveGuard(enabled={self.enabled}, values={len(self._remembered)})"

    # -- the secret set ------------------------------------------------------------
    def forms(self) -> _Forms | None:
        """The compiled forms of every value known (None when there are none)."""
        try:
            values = self._values()
        except Exception as exc:  # a locked keyring must not break saving: use what we knew
            log.warning(
                "The weaviate-auth save guard could not list secrets (%s); using the ones it already knew.",
                type(exc).__name__,
            )
            return self._forms
        if values is self._last:
            return self._forms
        with self._lock:
            if values is not self._last:
                new = values - self._remembered
                if new:
                    if len(self._remembered) + len(new) > MAX_REMEMBERED:
                        self._remembered = set(values)  # forget the oldest generation
                    else:
                        self._remembered |= new
                    self._forms = _Forms(self._remembered) if self._remembered else None
                self._last = values
            return self._forms

    def warm(self) -> None:
        """Derive the forms now (off the event loop), not during the next save."""
        self.forms()

    # -- the hook ------------------------------------------------------------------
    def pre_save_hook(
        self, *, model: dict[str, Any], path: str, contents_manager: Any = None, **_: Any
    ) -> None:
        """``ContentsManager.register_pre_save_hook(guard.pre_save_hook)``."""
        if not self.enabled or not isinstance(model, dict):
            return
        forms = self.forms()
        if forms is None:
            return
        try:
            count = redact_model(model, forms)
        except Exception:
            logger = getattr(contents_manager, "log", log)
            logger.error("The weaviate-auth save guard failed on %s; the file was not saved.", path)
            raise web.HTTPError(
                500, "The weaviate-auth secret guard could not check this file, so it was not saved."
            ) from None
        if count:
            logger = getattr(contents_manager, "log", log)
            logger.warning(
                "weaviate-auth: redacted %d secret value(s) from %s before saving.", count, path or "(root)"
            )


__all__ = ["REDACTED", "SaveGuard", "redact_model", "redact_tree", "secret_forms"]
