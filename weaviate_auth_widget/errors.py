"""Typed errors. Each says what happened, to which host, and what to do about it.

Messages are built only from non-secret facts (host names, profile names, status codes,
server messages that never echo credentials), so they are safe to show and to log.
"""

from __future__ import annotations


class WeaviateAuthError(Exception):
    """Base class: ``str(err)`` is the whole user-facing message (cause + fix)."""

    code = "error"

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


class ProfileNotFound(WeaviateAuthError, KeyError):
    code = "profile_not_found"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingSecret(WeaviateAuthError):
    """The profile has no stored secret for its method (never saved, or not remembered)."""

    code = "missing_secret"


class InvalidCredentials(WeaviateAuthError):
    """The cluster or identity provider refused the key / password / secret."""

    code = "invalid_credentials"


class WrongMethod(WeaviateAuthError):
    """The cluster does not accept this kind of credential (e.g. password without OIDC)."""

    code = "wrong_method"


class ClusterUnreachable(WeaviateAuthError):
    """Timeout, DNS failure, refused connection or TLS failure."""

    code = "unreachable"


class PermissionDenied(WeaviateAuthError):
    """Authenticated, but the user's roles do not allow the action (HTTP 403)."""

    code = "permission_denied"


class LoginExpired(WeaviateAuthError):
    """The login can no longer be refreshed; the user must log in again."""

    code = "login_expired"


class StoreUnavailable(WeaviateAuthError):
    """The secret or profile store cannot be read or written (locked keyring, wrong key...)."""

    code = "store_unavailable"


class PolicyRefused(WeaviateAuthError):
    """The administrator's policy does not allow this URL or action."""

    code = "policy_refused"


class InsecureURL(PolicyRefused):
    """Credentials would travel in clear text to a non-loopback host."""

    code = "insecure_url"


class UnexpectedResponse(WeaviateAuthError):
    """The server answered in a way the spec does not describe."""

    code = "unexpected_response"
