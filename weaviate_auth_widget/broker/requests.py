"""Request bodies: strict JSON, checked against the shapes of ``api.yaml``.

Parsing only — shapes and types. What a value *means* (a URL allowed by policy, a
method the profile supports, a header name) is the core's to judge: ``Profile(...)``
and ``AuthService`` raise ``invalid_profile`` / ``policy_refused`` for those.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..errors import WeaviateAuthError
from ..profiles import Profile, validate_name
from .proof import valid_nonce

MAX_URL = 2048
MAX_FIELD = 256
MAX_ITEMS = 32
MAX_SECRET = 16 * 1024
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_PROFILE_FIELDS = frozenset(
    {"url", "method", "username", "client_id", "scopes", "headers", "remember", "secrets", "replace"}
)
_JSON_TYPES = ("application/json",)


class BadRequest(WeaviateAuthError):
    """The request is malformed: not JSON, wrong types, unknown fields."""

    code = "bad_request"
    http_status = 400


class UnsupportedMediaType(WeaviateAuthError):
    code = "unsupported_media_type"
    http_status = 415


def _no_constants(name: str) -> Any:
    raise BadRequest(f"The body holds {name}, which is not JSON.")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise BadRequest("The body repeats a field.")
        data[key] = value
    return data


def check_content_type(header: str | None) -> None:
    """A body must be declared as JSON (``application/json``, any parameters)."""
    media = (header or "").split(";", 1)[0].strip().lower()
    if media not in _JSON_TYPES and not (media.startswith("application/") and media.endswith("+json")):
        raise UnsupportedMediaType(
            f"Send the body as application/json, not {media[:60] or 'without a Content-Type'}.",
            fix="Set the header Content-Type: application/json.",
        )


def parse_json(body: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no repeated keys, no lone surrogates."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The body is not UTF-8 text.") from None
    try:
        data = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise BadRequest("The body is nested too deeply.") from None
    except ValueError:
        raise BadRequest("The body is not valid JSON.") from None
    _check_text(data)
    return data


def _check_text(data: Any) -> None:
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest("The body holds a string that is not valid Unicode.") from None
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest(f"The {what} must be a JSON object.")
    return data


def _string(data: Mapping[str, Any], key: str, limit: int, *, nullable: bool = False) -> str | None:
    value = data.get(key)
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"The field {key!r} must be a string{' or null' if nullable else ''}.")
    if len(value) > limit:
        raise BadRequest(f"The field {key!r} is longer than {limit} characters.")
    return value


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"The field {key!r} must be a list of strings.")
    if len(value) > MAX_ITEMS:
        raise BadRequest(f"The field {key!r} has more than {MAX_ITEMS} items.")
    if any(len(v) > MAX_FIELD for v in value):
        raise BadRequest(f"An item of {key!r} is longer than {MAX_FIELD} characters.")
    return tuple(value)


def profile_name(raw: str) -> str:
    """The profile name from the URL path (``invalid_profile`` when not acceptable)."""
    return validate_name(raw)


def parse_profile_input(name: str, data: Any) -> tuple[Profile, dict[str, str], bool]:
    """``PUT profiles/{name}``: the profile, the secrets (kind -> value) to store, and
    whether the caller means to replace a saved login of another method (``replace``)."""
    body = _object(data, "profile")
    unknown = set(body) - _PROFILE_FIELDS
    if unknown:
        raise BadRequest(
            f"The body has {len(unknown)} unknown field(s).",
            fix=f"A profile takes: {', '.join(sorted(_PROFILE_FIELDS))}.",
        )
    if "url" not in body:
        raise BadRequest("The field 'url' is required.")
    url = _string(body, "url", MAX_URL)
    method = _string(body, "method", 64) if "method" in body else "api_key"
    remember, replace = body.get("remember", True), body.get("replace", False)
    if not isinstance(remember, bool) or not isinstance(replace, bool):
        raise BadRequest("The fields 'remember' and 'replace' must be true or false.")
    raw_secrets = body.get("secrets") or {}
    if not isinstance(raw_secrets, dict):
        raise BadRequest("The field 'secrets' must be an object of strings.")
    secrets: dict[str, str] = {}
    for kind, value in raw_secrets.items():
        if not isinstance(value, str):
            raise BadRequest("Every secret must be a string.")
        if len(kind) > 128:
            raise BadRequest("A secret kind is longer than 128 characters.")
        if len(value) > MAX_SECRET:
            raise BadRequest(f"A secret is longer than {MAX_SECRET} characters.")
        secrets[kind] = value
    assert url is not None and method is not None
    profile = Profile(
        name=name,
        url=url,
        method=method,  # type: ignore[arg-type]  # Profile validates it (invalid_profile)
        username=_string(body, "username", MAX_FIELD, nullable=True),
        client_id=_string(body, "client_id", MAX_FIELD, nullable=True),
        scopes=_strings(body, "scopes"),
        headers=_strings(body, "headers"),
        remember=remember,
    )
    return profile, secrets, replace


def parse_token_request(data: Any) -> str | None:
    """``POST profiles/{name}/token``: the digest of a rejected token, if any."""
    if data is None:
        return None
    body = _object(data, "token request")
    unknown = set(body) - {"rejected"}
    if unknown:
        raise BadRequest("A token request takes only the field 'rejected'.")
    rejected = body.get("rejected")
    if rejected is None:
        return None
    if not isinstance(rejected, str) or not _DIGEST_RE.match(rejected):
        raise BadRequest("'rejected' must be the SHA-256 hex digest (64 lower-case hex digits) of a token.")
    return rejected


def require_empty(data: Any, what: str) -> None:
    """``login`` and ``logout`` take no body (an empty object is fine)."""
    if data is not None and data != {}:
        raise BadRequest(f"{what} takes no request body.")


def proof_nonce(values: list[bytes]) -> str:
    """The one ``nonce`` query argument of ``GET proof``: 32-128 lower-case hex digits."""
    text = values[0].decode("ascii", "replace") if len(values) == 1 else ""
    if not valid_nonce(text):
        raise BadRequest("Send exactly one 'nonce' query argument of 32 to 128 lower-case hex digits.")
    return text


__all__ = [
    "BadRequest",
    "UnsupportedMediaType",
    "check_content_type",
    "parse_json",
    "parse_profile_input",
    "parse_token_request",
    "profile_name",
    "proof_nonce",
    "require_empty",
]
