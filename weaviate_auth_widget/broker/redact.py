"""Redaction of contents-API models, text and bytes, given the compiled forms of the
secrets (:class:`.save_guard._Forms`): the save guard's second half.

A form is found also when broken across lines (base64 wrapped at 76 columns; a value
split by a line break) and, in a notebook, when split across the items of an nbformat
multiline list (nbformat reads such a list as the concatenation of its items).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, AnyStr

if TYPE_CHECKING:
    from .save_guard import _Forms

REDACTED = "[REDACTED]"


def unbroken(text: AnyStr) -> AnyStr:
    """``text`` without line breaks: what a form broken across lines looks like whole."""
    if isinstance(text, str):
        return text.replace("\n", "").replace("\r", "")
    return text.replace(b"\n", b"").replace(b"\r", b"")


def redact_text(text: AnyStr, pattern: re.Pattern[AnyStr]) -> tuple[AnyStr, int]:
    """Replace every match of ``pattern`` in ``text``, also one broken by line breaks
    (the whole broken stretch, breaks included, becomes one ``[REDACTED]``)."""
    replacement: Any = REDACTED if isinstance(text, str) else REDACTED.encode("ascii")
    new, count = pattern.subn(replacement, text)
    flat = unbroken(new)
    if len(flat) == len(new) or not pattern.search(flat):
        return new, count
    breaks: Any = "\r\n" if isinstance(new, str) else b"\r\n"
    kept = [i for i, c in enumerate(new) if c not in breaks]  # flat index -> index in new
    parts: list[AnyStr] = []
    last = 0
    for match in pattern.finditer(flat):
        start, end = kept[match.start()], kept[match.end() - 1] + 1
        parts += [new[last:start], replacement]
        last = end
        count += 1
    parts.append(new[last:])
    return new[:0].join(parts), count


def redact_model(model: dict[str, Any], forms: _Forms) -> int:
    """Redact ``model`` (a contents-API model) in place; the number of values replaced."""
    kind = model.get("type")
    content = model.get("content")
    if content is None:
        return 0
    if kind == "file" and model.get("format") == "base64" and isinstance(content, str):
        new, count = _redact_base64(content, forms)
        if count:
            model["content"] = new
        return count
    if isinstance(content, str):
        new, count = _redact_str(content, forms)
        if count:
            model["content"] = new
        return count
    if isinstance(content, (dict, list)):
        return redact_tree(content, forms)
    return 0


def _redact_str(content: str, forms: _Forms) -> tuple[str, int]:
    found = forms.present(unbroken(content))
    return redact_text(content, forms.text_pattern(found)) if found else (content, 0)


def redact_bytes(data: bytes, forms: _Forms) -> tuple[bytes, int]:
    """``data`` with every form (also one broken across lines) replaced."""
    found = forms.present_bytes(unbroken(data))
    return redact_text(data, forms.bytes_pattern(found)) if found else (data, 0)


def _redact_base64(content: str, forms: _Forms) -> tuple[str, int]:
    try:
        data = base64.b64decode(content.encode("ascii"), validate=False)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        # not base64 after all: treat it as text, which is how it will be written
        return _redact_str(content, forms)
    new, count = redact_bytes(data, forms)
    return (base64.b64encode(new).decode("ascii"), count) if count else (content, 0)


def _lines(value: Any) -> bool:
    """An nbformat multiline string: a non-empty list of strings only (one text)."""
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _redact_lines(lines: list[str], pattern: re.Pattern[str]) -> int:
    """Redact each line; then, if a form still spans several items, the joined text
    (re-split into lines: nbformat reads the list as their concatenation)."""
    total = 0
    for index, line in enumerate(lines):
        new, count = redact_text(line, pattern)
        if count:
            lines[index] = new
            total += count
    joined = "".join(lines)
    if pattern.search(unbroken(joined)):
        new, count = redact_text(joined, pattern)
        lines[:] = new.splitlines(keepends=True)
        total += count
    return total


def redact_tree(root: dict[str, Any] | list[Any], forms: _Forms) -> int:
    """Redact every string (values and keys) under ``root`` in place; iterative, so any
    nesting depth is fine. One pass gathers the strings (a list of strings only — an
    nbformat multiline string — as one text); a second rewrites only when a form was
    found."""
    strings: list[str] = []
    big: list[tuple[int, int]] = []
    clean = forms.clean
    limit = forms.CLEAN_MIN
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        values: Iterable[Any]
        if isinstance(node, dict):
            strings.extend(k for k in node if isinstance(k, str))
            values = node.values()
        else:
            values = node
        for value in values:
            if isinstance(value, str):
                text = value
            elif _lines(value):
                text = "".join(value)
            elif isinstance(value, (dict, list)):
                stack.append(value)
                continue
            else:
                continue
            if len(text) >= limit:
                key = (len(text), hash(text))
                if key in clean:
                    continue
                big.append(key)
            strings.append(text)
    # Line breaks removed and texts joined without a separator: a form broken across
    # lines is found whole; one spanning two texts only adds a candidate (the second
    # pass then finds nothing). Nothing can be hidden this way.
    found = forms.present(unbroken("".join(strings)))
    if not found:
        forms.remember_clean(big)
        return 0
    pattern = forms.text_pattern(found)
    total = 0
    stack = [root]
    while stack:
        node = stack.pop()
        items: Iterable[tuple[Any, Any]] = node.items() if isinstance(node, dict) else enumerate(node)
        renamed: list[tuple[str, str]] = []
        for key, value in items:
            total += _redact_item(node, key, value, pattern, stack)
            if isinstance(node, dict) and isinstance(key, str):
                new_key, count = pattern.subn(REDACTED, key)
                if count:
                    renamed.append((key, new_key))
                    total += count
        for old, new_key in renamed:
            node[new_key] = node.pop(old)  # type: ignore[call-overload]
    return total


def _redact_item(node: Any, key: Any, value: Any, pattern: re.Pattern[str], stack: list[Any]) -> int:
    """Redact ``node[key]`` (a string or a multiline list) in place, or queue it to visit."""
    if isinstance(value, str):
        new, count = redact_text(value, pattern)
        if count:
            node[key] = new
        return count
    if _lines(value):
        return _redact_lines(value, pattern)
    if isinstance(value, (dict, list)):
        stack.append(value)
    return 0


__all__ = ["REDACTED", "redact_bytes", "redact_model", "redact_text", "redact_tree", "unbroken"]
