"""Sign in at the identity provider's own page from Jupyter: authorization code + PKCE.

The broker starts a sign-in (state, nonce and PKCE verifier stay here, server-side),
the user's browser goes to the provider's authorize URL and comes back to the broker's
callback with a code; the code is exchanged here and the refresh token kept like a
password login's. The page's script and the kernel only ever see the authorize URL and
a sign-in id to ask for the outcome: never a code, access or refresh token.

No tornado here: the broker's handlers call :class:`CodeFlow`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from . import oidc
from .errors import SignInFailed, WeaviateAuthError, WrongMethod
from .tokens import jwt_claims
from .urls import host_of

if TYPE_CHECKING:
    from .identity import Identity
    from .profiles import Profile
    from .service import AuthService

log = logging.getLogger(__name__)

SIGN_IN_LIFETIME = 600.0
#: finished sign-ins stay readable this long (the view polls, then shows the result)
RESULT_LIFETIME = 300.0
MAX_PENDING = 64


@dataclass(frozen=True)
class BrowserClient:
    """What the administrator configures for browser sign-ins (see the broker's traits).

    ``client_id`` None: the cluster's ``clientId``. ``client_secret``: for providers that
    register the broker as a confidential client. ``prompt_consent``: ask with
    ``prompt=consent`` (providers that grant ``offline_access`` only then).
    """

    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    extra_scopes: tuple[str, ...] = ()
    prompt_consent: bool = False
    redirect_uri: str | None = None


@dataclass
class _SignIn:
    id: str
    profile: Profile
    redirect_uri: str
    client_id: str
    scope: str
    provider: oidc.Provider
    nonce: str = field(repr=False)
    verifier: str = field(repr=False)
    expires_at: float
    status: str = "pending"  # pending, done, failed
    identity: Identity | None = None
    error: dict[str, str] | None = None


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class CodeFlow:
    """Sign-ins in progress, keyed by their ``state``; outcomes by their id."""

    def __init__(self, service: AuthService, client: BrowserClient | None = None) -> None:
        self.service = service
        self.client = client or BrowserClient()
        self._by_state: dict[str, _SignIn] = {}
        self._by_id: dict[str, _SignIn] = {}
        self._lock = threading.Lock()

    def start(self, name: str, redirect_uri: str) -> dict[str, Any]:
        """A new sign-in for profile ``name``: the authorize URL to open and its id."""
        profile, prov, cluster_client, scope = self.service.browser_plan(name)
        host = host_of(profile.url)
        if not prov.offers_code_flow():
            raise WrongMethod(
                f"The identity provider of {host} ({host_of(prov.issuer)}) offers no browser sign-in "
                "(authorization code with PKCE S256).",
                host=host,
                fix="Use another login method, or ask the provider's administrator.",
            )
        assert prov.authorization_endpoint
        self.service.policy.check_endpoint(prov.authorization_endpoint, "the sign-in page at")
        client_id = self.client.client_id or cluster_client
        if not client_id:
            raise WrongMethod(
                f"No client id for browser sign-in to {host}: the cluster names none.",
                host=host,
                fix="Ask the administrator to set WeaviateAuthApp.browser_client_id.",
            )
        verifier, state = secrets.token_urlsafe(64), secrets.token_urlsafe(32)
        sign_in = _SignIn(
            id=secrets.token_urlsafe(16),
            profile=profile,
            redirect_uri=redirect_uri,
            client_id=client_id,
            scope=scope,
            provider=prov,
            nonce=secrets.token_urlsafe(24),
            verifier=verifier,
            expires_at=time.time() + SIGN_IN_LIFETIME,
        )
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "nonce": sign_in.nonce,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
        if self.client.prompt_consent:
            query["prompt"] = "consent"
        endpoint = prov.authorization_endpoint
        url = endpoint + ("&" if "?" in endpoint else "?") + urlencode(query)
        with self._lock:
            self._sweep()
            if len(self._by_state) >= MAX_PENDING:
                raise SignInFailed(
                    "Too many sign-ins are waiting.", fix="Finish or close one, then try again."
                )
            self._by_state[state] = sign_in
            self._by_id[sign_in.id] = sign_in
        log.info("browser sign-in %s for profile %s started at %s", sign_in.id[:6], name, host_of(endpoint))
        return {
            "id": sign_in.id,
            "authorize_url": url,
            "redirect_uri": redirect_uri,
            "provider": host_of(prov.issuer),
            "expires_at": sign_in.expires_at,
        }

    def finish(self, params: dict[str, str]) -> _SignIn:
        """The callback: check ``state`` (single use), then exchange the code. (Who may
        call is the broker's to settle: Jupyter authentication and the owner rule.)

        Raises :class:`SignInFailed` when the answer belongs to no sign-in in progress;
        a sign-in that fails afterwards is recorded as failed and returned.
        """
        state = params.get("state", "")
        with self._lock:
            sign_in = self._by_state.pop(state, None) if state else None
        if sign_in is None:
            raise SignInFailed(
                "This sign-in answer belongs to no sign-in in progress here (unknown, already used or "
                "expired state); nothing was stored.",
                fix="Start the sign-in again from the login panel.",
            )
        try:
            self._exchange(sign_in, params)
        except WeaviateAuthError as exc:
            sign_in.status, sign_in.error = "failed", exc.to_dict()
            log.info("browser sign-in %s failed: %s", sign_in.id[:6], exc.code)
        return sign_in

    def _exchange(self, sign_in: _SignIn, params: dict[str, str]) -> None:
        prov = sign_in.provider
        host = host_of(prov.issuer)
        if time.time() > sign_in.expires_at:
            raise SignInFailed(
                f"The sign-in at {host} took too long and expired.", host=host, fix="Start it again."
            )
        error = params.get("error")
        if error:
            if error == "access_denied":
                raise SignInFailed(
                    f"The sign-in at {host} was refused or cancelled.",
                    host=host,
                    fix="Start it again if you want.",
                )
            raise SignInFailed(
                f"The identity provider at {host} refused the sign-in ({error[:60]}: "
                f"{params.get('error_description', 'no description')[:200]}).",
                host=host,
                fix="Check the client id and redirect URI registered at the provider.",
            )
        iss = params.get("iss")
        if iss is not None and iss.rstrip("/") != prov.issuer.rstrip("/"):  # RFC 9207: no mix-up
            raise SignInFailed(
                f"The sign-in answer came from another identity provider ({host_of(iss)}), not {host}.",
                host=host,
                fix="Start the sign-in again.",
            )
        code = params.get("code")
        if not code:
            raise SignInFailed(
                f"The identity provider at {host} sent no code.", host=host, fix="Start again."
            )
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": sign_in.redirect_uri,
            "client_id": sign_in.client_id,
            "code_verifier": sign_in.verifier,
        }
        secret = self.client.client_secret
        self.service.policy.check_endpoint(prov.token_endpoint, "the token endpoint at")
        response, sent_at = oidc.post_token(
            self.service.client, prov, form, auth=(sign_in.client_id, secret) if secret else None
        )
        refused = oidc.oauth_error(response)
        if refused is not None:
            raise SignInFailed(
                f"The identity provider at {host} refused the sign-in code ({refused[0]}: {refused[1]}).",
                host=host,
                fix="Start the sign-in again (a code works once, for a minute or so).",
            )
        grant = oidc.read_grant(response, sent_at)
        check_id_token(grant.id_token, prov.issuer, sign_in.client_id, sign_in.nonce, host)
        sign_in.identity = self.service.finish_browser_sign_in(
            sign_in.profile, grant, prov, sign_in.client_id, sign_in.scope, secret
        )
        sign_in.status = "done"

    def status(self, sign_in_id: str) -> dict[str, Any]:
        with self._lock:
            self._sweep()
            sign_in = self._by_id.get(sign_in_id)
        if sign_in is None:
            raise SignInFailed("No such sign-in (it expired, or was never started here).", fix="Start again.")
        if sign_in.status == "pending" and time.time() > sign_in.expires_at:
            sign_in.status = "failed"
            sign_in.error = SignInFailed(
                "The sign-in took too long and expired.", fix="Start it again."
            ).to_dict()
        return {
            "id": sign_in.id,
            "profile": sign_in.profile.name,
            "status": sign_in.status,
            "identity": sign_in.identity.to_json() if sign_in.identity else None,
            "error": sign_in.error,
        }

    def _sweep(self) -> None:
        now = time.time()
        for state, item in list(self._by_state.items()):
            if item.expires_at < now:
                del self._by_state[state]
        for key, item in list(self._by_id.items()):
            if item.expires_at + RESULT_LIFETIME < now:
                del self._by_id[key]


def check_id_token(id_token: str | None, issuer: str, client_id: str, nonce: str, host: str) -> None:
    """The id_token came straight from the token endpoint over TLS (OIDC Core 3.1.3.7
    lets TLS stand in for the signature there); its issuer, audience and our nonce must
    match, or the answer belongs to another sign-in."""
    claims = jwt_claims(id_token) if id_token else {}
    if not claims:
        raise SignInFailed(f"The identity provider at {host} returned no usable id_token.", host=host)
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if str(claims.get("iss", "")).rstrip("/") != issuer.rstrip("/") or client_id not in audiences:
        raise SignInFailed(f"The id_token from {host} was issued for someone else.", host=host)
    if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise SignInFailed(
            f"The sign-in answer from {host} does not belong to this sign-in (nonce).",
            host=host,
            fix="Start again.",
        )
