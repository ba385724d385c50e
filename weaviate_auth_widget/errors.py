"""Typed errors. Each says what happened, to which host, and what to do about it.

Messages are built only from non-secret facts (host names, profile names, status codes,
server messages that never echo credentials), so they are safe to show and to log.
"""

from __future__ import annotations


class WeaviateAuthError(Exception):
    """Base class: ``str(err)`` is the whole user-facing message (cause + fix)."""

    code = "error"
    #: the status the broker answers with for this error
    http_status = 500

    def __init__(self, message: str, *, host: str | None = None, fix: str | None = None) -> None:
        self.host = host
        self.fix = fix
        self.reason = message
        full = message if not fix else f"{message} {fix}"
        super().__init__(full)

    def to_dict(self) -> dict[str, str]:
        """The stable JSON shape the broker returns for errors."""
        return {"code": self.code, "message": str(self)}


class InvalidProfile(WeaviateAuthError, ValueError):
    """A profile name, URL, method or field is not acceptable."""

    code = "invalid_profile"
    http_status = 400


class ProfileNotFound(WeaviateAuthError, KeyError):
    code = "profile_not_found"
    http_status = 404

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingSecret(WeaviateAuthError):
    """The profile has no stored secret for its method (never saved, or not remembered)."""

    code = "missing_secret"
    http_status = 409


class InvalidCredentials(WeaviateAuthError):
    """The cluster or identity provider refused the key / password / secret."""

    code = "invalid_credentials"
    http_status = 422


class WrongMethod(WeaviateAuthError):
    """The cluster does not accept this kind of credential (e.g. password without OIDC),
    or the profile's method has no such credential (copying the key of a password login)."""

    code = "wrong_method"
    http_status = 422


class MethodChange(WeaviateAuthError):
    """A save would change a profile's login method and so drop the secrets kept for it;
    only a caller that means it (``replace=True``) may do that."""

    code = "method_change"
    http_status = 409


class ClusterUnreachable(WeaviateAuthError):
    """Timeout, DNS failure, refused connection or TLS failure."""

    code = "unreachable"
    http_status = 502


class PermissionDenied(WeaviateAuthError):
    """Authenticated, but the user's roles do not allow the action (HTTP 403)."""

    code = "permission_denied"
    http_status = 403


class LoginExpired(WeaviateAuthError):
    """The login can no longer be refreshed; the user must log in again."""

    code = "login_expired"
    http_status = 409


class SignInFailed(WeaviateAuthError):
    """A sign-in at the identity provider's page did not finish: refused or cancelled,
    expired, or its answer did not belong to it (wrong state, a replayed code)."""

    code = "sign_in_failed"
    http_status = 400


class StoreUnavailable(WeaviateAuthError):
    """The secret or profile store cannot be read or written (locked keyring, wrong key...)."""

    code = "store_unavailable"
    http_status = 503


class PolicyRefused(WeaviateAuthError):
    """The administrator's policy does not allow this URL or action."""

    code = "policy_refused"
    http_status = 403


class InsecureURL(PolicyRefused):
    """Credentials would travel in clear text to a non-loopback host."""

    code = "insecure_url"
    http_status = 403


class UnexpectedResponse(WeaviateAuthError):
    """The server answered in a way the spec does not describe."""

    code = "unexpected_response"
    http_status = 502


class NotOwner(WeaviateAuthError):
    """On a shared server, only its owner may obtain tokens or write secrets."""

    code = "not_owner"
    http_status = 403


class RequestTooLarge(WeaviateAuthError):
    code = "too_large"
    http_status = 413


class BrokerUnavailable(WeaviateAuthError):
    """The kernel's broker did not answer (server stopped or restarting)."""

    code = "broker_unavailable"
    http_status = 503


class NotSupported(WeaviateAuthError):
    """The cluster has no such feature (database users before Weaviate 1.30, or switched off)."""

    code = "not_supported"
    http_status = 409


class UserNotFound(WeaviateAuthError):
    code = "user_not_found"
    http_status = 404


class UserConflict(WeaviateAuthError):
    """The user already exists, or is already (in)active."""

    code = "user_conflict"
    http_status = 409


class UserRefused(WeaviateAuthError):
    """The cluster never allows this for this user (static, root, your own, a bad name)."""

    code = "user_refused"
    http_status = 422


def _all_error_classes() -> dict[str, type[WeaviateAuthError]]:
    found: dict[str, type[WeaviateAuthError]] = {}
    stack: list[type[WeaviateAuthError]] = [WeaviateAuthError]
    while stack:
        cls = stack.pop()
        found.setdefault(cls.code, cls)
        stack.extend(cls.__subclasses__())
    return found


def from_code(code: str, message: str, *, host: str | None = None) -> WeaviateAuthError:
    """Rebuild a typed error from the broker's ``{"code", "message"}`` (kernel side)."""
    cls = _all_error_classes().get(code, WeaviateAuthError)
    return cls(message, host=host)
