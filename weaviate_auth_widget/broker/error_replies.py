"""The body of every broker error: ``{"error": {"code", "message"}}``.

A :class:`~weaviate_auth_widget.errors.WeaviateAuthError` says its own code and message
(cause and fix, never a secret); anything else gets a fixed message for its HTTP status,
so no exception text reaches a response.
"""

from __future__ import annotations

from ..errors import WeaviateAuthError
from . import MAX_BODY_BYTES

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    500: "internal_error",
    503: "unavailable",
}
_STATUS_MESSAGES = {
    400: "The request is malformed.",
    401: "Authentication is required.",
    403: "Forbidden: authenticate with Jupyter (a token, or the login cookie with the XSRF token) "
    "or, from a kernel of this server, with the broker token.",
    404: "Not found.",
    405: "This method is not allowed here.",
    413: f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB.",
    500: "Internal error in the weaviate-auth broker; see the Jupyter server log.",
}


def status_of(status_code: int, exc: BaseException | None) -> int:
    """The HTTP status to answer: the error's own, else the one tornado chose."""
    return exc.http_status if isinstance(exc, WeaviateAuthError) else status_code


def error_body(status_code: int, exc: BaseException | None) -> dict[str, str]:
    """``{"code", "message"}`` for an error answered with ``status_code``."""
    if isinstance(exc, WeaviateAuthError):
        return exc.to_dict()
    return {
        "code": _STATUS_CODES.get(status_code, f"http_{status_code}"),
        "message": _STATUS_MESSAGES.get(status_code, "The request failed."),
    }


__all__ = ["error_body", "status_of"]
