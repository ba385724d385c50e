"""Sign in at the identity provider's own page from anywhere: the device authorization
grant (RFC 8628).

Outside the broker (a script, IPython in a terminal, VS Code) there is no web server to
receive a redirect, so the provider shows its page on any browser and we poll its token
endpoint until the user has finished: whatever multi-factor steps the provider demands
happen there, and no password ever passes through this process.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any

import httpx

from . import oidc
from .errors import LoginExpired, SignInFailed, UnexpectedResponse, WrongMethod
from .policy import Policy
from .transport import unreachable
from .urls import host_of

log = logging.getLogger(__name__)

#: RFC 8628 section 3.5: 5 seconds when the provider names no interval, +5 on slow_down
DEFAULT_INTERVAL = 5.0
SLOW_DOWN_STEP = 5.0


@dataclass(frozen=True)
class DeviceCode:
    """What the user needs to finish the sign-in: where to go and the code to type.
    The ``device_code`` (what we poll with) is kept out of ``repr``."""

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: float
    interval: float
    provider_host: str
    device_code: str = field(repr=False, default="")

    @property
    def link(self) -> str:
        """The page to open: with the code filled in when the provider offers that."""
        return self.verification_uri_complete or self.verification_uri


DevicePrompt = Callable[[DeviceCode], None]


def start(client: httpx.Client, prov: oidc.Provider, form: Mapping[str, str], policy: Policy) -> DeviceCode:
    """Ask the provider for a user code. Every URL it names must pass the policy: the
    user types their password on the verification page."""
    endpoint = prov.device_authorization_endpoint
    if not endpoint:
        raise WrongMethod(
            f"The identity provider at {host_of(prov.issuer)} does not offer device sign-in.",
            host=host_of(prov.issuer),
            fix="Use the login panel in Jupyter (browser sign-in), or another login method.",
        )
    policy.check_endpoint(endpoint, "the device authorization endpoint at")
    host = host_of(endpoint)
    sent_at = time.time()
    try:
        response = client.post(endpoint, data=dict(form), headers={"Accept": "application/json"})
    except httpx.TransportError as exc:
        raise unreachable(exc, host, what="the identity provider") from None
    error = oidc.oauth_error(response)
    if error is not None:
        raise UnexpectedResponse(
            f"The identity provider at {host} refused to start a device sign-in ({error[0]}: {error[1]}).",
            host=host,
            fix="Check the client id configured for this cluster; the provider may need the "
            "device grant enabled for it.",
        )
    if response.status_code != 200:
        raise UnexpectedResponse(
            f"The identity provider at {host} answered {response.status_code} to a device sign-in request.",
            host=host,
        )
    data = oidc.json_object(response, host, "device authorization response")
    device_code, user_code, uri = (data.get(k) for k in ("device_code", "user_code", "verification_uri"))
    if not all(isinstance(v, str) and v for v in (device_code, user_code, uri)):
        raise UnexpectedResponse(
            f"The identity provider at {host} gave an incomplete device code.", host=host
        )
    assert isinstance(device_code, str) and isinstance(user_code, str) and isinstance(uri, str)
    complete = data.get("verification_uri_complete")
    complete = complete if isinstance(complete, str) and complete else None
    for page in (uri, complete):
        if page:
            policy.check_endpoint(page, "the sign-in page at")
    expires_in = oidc.number(data.get("expires_in")) or 600.0
    interval = oidc.number(data.get("interval")) or DEFAULT_INTERVAL
    return DeviceCode(
        user_code=user_code,
        verification_uri=uri,
        verification_uri_complete=complete,
        expires_at=sent_at + expires_in,
        interval=max(interval, 1.0),
        provider_host=host_of(uri),
        device_code=device_code,
    )


def poll(
    client: httpx.Client,
    prov: oidc.Provider,
    code: DeviceCode,
    form: Mapping[str, str],
    *,
    clock: Callable[[], float] = time.time,
) -> oidc.Grant:
    """Poll the token endpoint politely until the user finishes, refuses or the code
    expires: ``interval`` seconds apart, five more after each ``slow_down``.

    Cancelling is an interrupt (Ctrl-C in a terminal, the kernel's interrupt in a
    notebook): it ends the wait at once with ``KeyboardInterrupt`` before anything is
    kept, and each door says "cancelled" in one line. The broker's own sign-in is the
    code flow (:mod:`.code_flow`), which never waits here."""
    interval = code.interval
    body = {**form, "grant_type": oidc.DEVICE_GRANT, "device_code": code.device_code}
    host = host_of(prov.token_endpoint)
    while True:
        wait = min(interval, max(code.expires_at - clock(), 0.0))
        time.sleep(wait)  # an interrupt ends it at once
        if clock() >= code.expires_at:
            raise _expired(host)
        response, sent_at = oidc.post_token(client, prov, body)
        error = oidc.oauth_error(response)
        if error is None:
            return oidc.read_grant(response, sent_at)
        if error[0] == "authorization_pending":
            continue
        if error[0] == "slow_down":
            interval += SLOW_DOWN_STEP
            log.info("the identity provider at %s asked to poll more slowly (every %.0fs)", host, interval)
            continue
        if error[0] == "expired_token":
            raise _expired(host)
        if error[0] == "access_denied":
            raise SignInFailed(
                f"The sign-in at {host} was refused or cancelled on the provider's page.",
                host=host,
                fix="Start it again and choose to allow access.",
            )
        return oidc.read_grant(response, sent_at)  # raises the provider's other errors


def _expired(host: str) -> LoginExpired:
    return LoginExpired(
        f"The sign-in code from {host} expired before the sign-in finished.",
        host=host,
        fix="Start the sign-in again and finish it on the provider's page within the time shown.",
    )


def show_device_code(code: DeviceCode) -> None:
    """The default prompt: a link in a notebook (IPython's display), text in a terminal."""
    minutes = max(1, round((code.expires_at - time.time()) / 60))
    text = (
        f"To sign in, open {code.verification_uri} and enter the code {code.user_code} "
        f"(valid for about {minutes} min)."
    )
    if _rich_display():
        from IPython import display as ipython_display

        show: Any = ipython_display.display  # untyped
        link = escape(code.link, quote=True)
        page = (
            f"<p>Sign in at <a href='{link}' target='_blank' rel='noopener'>"
            f"{escape(code.provider_host)}</a> with the code <code>{escape(code.user_code)}</code> "
            f"(valid for about {minutes} min).</p>"
        )
        # the text too: front ends that show only text/plain (jupyter console) need the link
        show({"text/html": page, "text/plain": text}, raw=True)
        return
    print(text, file=sys.stderr, flush=True)


def _rich_display() -> bool:
    """A kernel with a front end that renders HTML (not IPython in a terminal)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
