"""HTTP handlers of the sandbox provider: the back channel (discovery, JWKS, token,
revocation, device authorization, userinfo) and the browser's pages (authorize, login,
consent, device code, logout)."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode

from ._http import BaseHandler
from .idp_interactive import GRANTS, Interaction, OAuthError, PageError, Session
from .idp_pages import consent_page, device_page, login_page, message_page

if TYPE_CHECKING:
    from .idp import IdentityProvider

SESSION_COOKIE = "sandbox_idp_session"
HTML = "text/html; charset=utf-8"


class _Handler(BaseHandler):
    def initialize(self, idp: IdentityProvider) -> None:
        self.idp = idp
        self._started = time.monotonic()

    async def prepare(self) -> None:
        if self.idp.config.delay > 0:
            await asyncio.sleep(self.idp.config.delay)

    def on_finish(self) -> None:
        if not self.request.path.startswith("/_sandbox"):
            self.idp.record_span(self.request.path, self._started, time.monotonic())

    def form(self) -> dict[str, str]:
        return {name: self.get_body_argument(name) for name in self.request.body_arguments}

    def basic_auth(self) -> tuple[str, str] | None:
        header = self.request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except ValueError:
            return None
        client_id, _, secret = decoded.partition(":")
        return unquote(client_id), unquote(secret)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = "invalid_request" if status_code < 500 else "server_error"
        self.send_json(status_code, {"error": error, "error_description": f"HTTP {status_code}"})

    def oauth_error(self, exc: OAuthError) -> None:
        self.set_header("Cache-Control", "no-store")
        self.send_json(exc.status, {"error": exc.error, "error_description": exc.description})


class _Discovery(_Handler):
    def get(self) -> None:
        self.idp.count("discovery")
        self.send_json(200, self.idp.discovery())


class _Jwks(_Handler):
    def get(self) -> None:
        self.idp.count("jwks")
        self.send_json(200, self.idp.jwks())


class _Token(_Handler):
    async def post(self) -> None:
        form = self.form()
        grant_type = form.get("grant_type", "")
        self.idp.count(grant_type if grant_type in GRANTS else "other")
        if self.idp.config.token_delay > 0:
            await asyncio.sleep(self.idp.config.token_delay)
        try:
            body = self.idp.token(form, self.basic_auth())
        except OAuthError as exc:
            self.oauth_error(exc)
            return
        self.set_header("Cache-Control", "no-store")
        self.set_header("Pragma", "no-cache")
        self.send_json(200, body)


class _Revoke(_Handler):
    def post(self) -> None:
        self.idp.count("revoke")
        self.idp.revoke(self.form(), self.basic_auth())
        self.send_empty(200)


class _Stats(_Handler):
    def get(self) -> None:
        self.send_json(200, self.idp.stats())


class _ResetStats(_Handler):
    def post(self) -> None:
        self.idp.reset_stats()
        self.send_empty(204)


class _Page(_Handler):
    """A browser page: HTML, never cached, never framed."""

    def html(self, status: int, body: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", HTML)
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Frame-Options", "DENY")
        self.finish(body)

    def current_session(self) -> Session | None:
        return self.idp.interactions.session(self.get_cookie(SESSION_COOKIE))

    def back_to_client(self, interaction: Interaction, params: dict[str, str]) -> None:
        """Redirect to the client's (checked) redirect URI with ``state`` and ``iss``."""
        if interaction.state is not None:
            params["state"] = interaction.state
        params["iss"] = self.idp.issuer
        uri = interaction.redirect_uri
        self.set_header("Cache-Control", "no-store")
        self.redirect(uri + ("&" if "?" in uri else "?") + urlencode(params))

    def complete(self, rid: str, session: Session, consented: bool) -> None:
        """The user is signed in (and agreed): hand out the code, or approve the device."""
        interactions = self.idp.interactions
        interaction = interactions.finish(rid)
        if interaction.kind == "device":
            interactions.decide_device(interaction.device_code, session.username, session.auth_time, True)
            self.html(
                200,
                message_page("Device connected", "You can close this window and return to the application."),
            )
            return
        code = interactions.issue_code(interaction, session.username, session.auth_time, consented)
        self.back_to_client(interaction, {"code": code})

    def refuse(self, rid: str) -> None:
        interactions = self.idp.interactions
        interaction = interactions.finish(rid)
        if interaction.kind == "device":
            interactions.decide_device(interaction.device_code, "", 0, False)
            self.html(200, message_page("Sign-in refused", "The application was not given access."))
            return
        self.back_to_client(
            interaction, {"error": "access_denied", "error_description": "The user refused the sign-in"}
        )

    def next_step(self, rid: str, interaction: Interaction, session: Session | None) -> None:
        """Login form, consent page, or straight on with an existing session."""
        if session is None or "login" in interaction.prompt:
            self.html(200, login_page(rid, interaction.client_id))
        elif "consent" in interaction.prompt or interaction.kind == "device":
            self.html(200, consent_page(rid, interaction.client_id, session.username, interaction.scopes))
        else:
            self.complete(rid, session, consented=False)

    def page_error(self, exc: PageError) -> None:
        self.html(400, message_page("Sign-in failed", str(exc), status_error=True))


class _Authorize(_Page):
    def get(self) -> None:
        query = {name: self.get_query_argument(name) for name in self.request.query_arguments}
        interactions = self.idp.interactions
        try:
            rid, interaction = interactions.begin_authorize(
                query, self.idp.is_public(query.get("client_id", ""))
            )
        except PageError as exc:
            self.page_error(exc)
            return
        except OAuthError as exc:
            fake = Interaction(
                "code", "", (), 0.0, redirect_uri=query["redirect_uri"], state=query.get("state")
            )
            self.back_to_client(fake, {"error": exc.error, "error_description": exc.description})
            return
        session = self.current_session()
        if session is None and "none" in interaction.prompt:
            interactions.finish(rid)
            self.back_to_client(interaction, {"error": "login_required"})
            return
        self.next_step(rid, interaction, session)


class _Login(_Page):
    def post(self) -> None:
        rid = self.get_body_argument("rid", "")
        try:
            interaction = self.idp.interactions.interaction(rid)
            if self.get_body_argument("action", "login") == "cancel":
                self.refuse(rid)
                return
            username = self.get_body_argument("username", "")
            error = self.idp.check_password(username, self.get_body_argument("password", ""))
            if error is not None:
                self.html(200, login_page(rid, interaction.client_id, error=error, username=username))
                return
            sid, session = self.idp.interactions.open_session(username)
            self.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Lax", path="/")
            if "consent" in interaction.prompt:
                self.html(200, consent_page(rid, interaction.client_id, username, interaction.scopes))
            else:
                self.complete(rid, session, consented=False)
        except PageError as exc:
            self.page_error(exc)


class _Consent(_Page):
    def post(self) -> None:
        rid = self.get_body_argument("rid", "")
        try:
            interaction = self.idp.interactions.interaction(rid)
            session = self.current_session()
            if self.get_body_argument("action", "") != "allow":
                self.refuse(rid)
            elif session is None:
                self.html(
                    200, login_page(rid, interaction.client_id, error="Your session ended: sign in again.")
                )
            else:
                self.complete(rid, session, consented=True)
        except PageError as exc:
            self.page_error(exc)


class _DevicePage(_Page):
    def get(self) -> None:
        user_code = self.get_query_argument("user_code", "")
        if not user_code:
            self.html(200, device_page())
            return
        try:
            rid, interaction = self.idp.interactions.begin_device_login(user_code)
        except PageError as exc:
            self.html(200, device_page(error=str(exc), user_code=user_code))
            return
        self.next_step(rid, interaction, self.current_session())


class _Logout(_Page):
    def get(self) -> None:
        self.idp.interactions.end_session(self.get_cookie(SESSION_COOKIE))
        self.clear_cookie(SESSION_COOKIE, path="/")
        self.html(200, message_page("Signed out", "You are signed out of the sandbox provider."))


class _DeviceAuthorization(_Handler):
    def post(self) -> None:
        form = self.form()
        try:
            client_id = self.idp.client_for(form, self.basic_auth())
        except OAuthError as exc:
            self.oauth_error(exc)
            return
        scopes = tuple(dict.fromkeys(form.get("scope", "openid").split()))
        device_code, grant = self.idp.interactions.begin_device(client_id, scopes)
        verification = self.idp.url + "/device"
        self.set_header("Cache-Control", "no-store")
        self.send_json(
            200,
            {
                "device_code": device_code,
                "user_code": grant.user_code,
                "verification_uri": verification,
                "verification_uri_complete": verification + "?" + urlencode({"user_code": grant.user_code}),
                "expires_in": int(grant.expires_at - time.time()),
                "interval": grant.interval,
            },
        )


class _Userinfo(_Handler):
    def get(self) -> None:
        header = self.request.headers.get("Authorization", "")
        try:
            if not header.startswith("Bearer "):
                raise OAuthError(401, "invalid_token", "Missing bearer token")
            body = self.idp.userinfo(header[7:].strip())
        except OAuthError as exc:
            self.set_header("WWW-Authenticate", f'Bearer error="{exc.error}"')
            self.oauth_error(exc)
            return
        self.send_json(200, body)

    post = get


def browser_routes(idp: IdentityProvider) -> list[Any]:
    """Routes of the authorization-code and device flows, and userinfo."""
    return [
        (r"/authorize", _Authorize, {"idp": idp}),
        (r"/login", _Login, {"idp": idp}),
        (r"/consent", _Consent, {"idp": idp}),
        (r"/device", _DevicePage, {"idp": idp}),
        (r"/device/code", _DeviceAuthorization, {"idp": idp}),
        (r"/userinfo", _Userinfo, {"idp": idp}),
        (r"/logout", _Logout, {"idp": idp}),
    ]
