"""The panel's "Sign in with <provider>" button (broker mode): kernel side.

Offered when the cluster's OIDC discovery and its provider's discovery allow a browser
sign-in (authorization endpoint, PKCE S256). On a click the view opens a popup, the
kernel saves the profile (method ``browser``) and asks the broker to start the sign-in;
the view points the popup at the authorize URL and polls the broker until the sign-in
ends, then the kernel asks the broker for the outcome itself. Only the authorize URL and
a sign-in id pass through here: never a code or a token.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from . import oidc
from .errors import SignInFailed, WeaviateAuthError
from .policy import Policy
from .profiles import Profile, default_name, free_name
from .transport import HttpSettings
from .urls import host_of, normalize_url

if TYPE_CHECKING:
    from .widget import LoginPanel

log = logging.getLogger(__name__)

#: typing settles before the discovery documents are fetched
DEBOUNCE = 0.4
_offers: dict[str, str | None] = {}


def provider_offer(url: str, policy: Policy | None = None) -> str | None:
    """The provider host to sign in with at cluster ``url``, or None when its discovery
    does not allow a browser sign-in. Public documents only, and only from a cluster and
    a provider the administrator's policy allows (with its CA bundle); cached per URL."""
    if url in _offers:
        return _offers[url]
    policy = policy or Policy()
    offer: str | None = None
    try:
        policy.check_url(url)
        with HttpSettings(read_timeout=5.0, ca_bundle=policy.ca_bundle).client() as client:
            info = oidc.cluster_oidc(client, url)
            if info is not None:
                policy.check_issuer(oidc.issuer_of(info.href), host_of(url))
                prov = oidc.provider(client, info.href)
                offer = host_of(prov.issuer) if prov.offers_code_flow() else None
    except WeaviateAuthError as exc:  # not remembered: the next URL change asks again
        log.info("no browser sign-in offered for %s: %s", host_of(url), exc.code)
        return None
    _offers[url] = offer
    return offer


class BrowserSignIn:
    """One panel's sign-in button and the sign-ins it starts."""

    def __init__(self, panel: LoginPanel) -> None:
        self.panel = panel
        self._generation = 0
        self._names: dict[str, str] = {}  # sign-in id -> profile name

    @property
    def available(self) -> bool:
        """Only with a broker: the callback is one of its routes."""
        return callable(getattr(self.panel.backend, "start_sign_in", None))

    def url_changed(self, url: str) -> None:
        """Check the cluster at ``url`` in the background; show the button if it offers."""
        self._generation += 1
        generation = self._generation
        self.panel.form.sign_in = {}
        if not self.available:
            return
        try:
            url = normalize_url(url)
        except WeaviateAuthError:
            return

        def check() -> None:
            time.sleep(DEBOUNCE)
            if generation != self._generation:
                return
            host = provider_offer(url, self.panel.policy)
            if generation == self._generation and host:
                self.panel.form.sign_in = {"label": f"Sign in with {host}", "provider": host}

        threading.Thread(target=check, name="weaviate-auth-offer", daemon=True).start()

    def start(self, request: str, origin: Any) -> None:
        """The view's click: save the profile as a browser sign-in, start it at the broker."""
        panel = self.panel
        try:
            name = panel.picker.selected() or panel.name.value.strip() or default_name(panel.url.value)
            view = panel.picker.views.get(name)
            if view is not None and (view.get("method") != "browser" or view.get("read_only")):
                # never turn a saved login of another kind into this one (its secrets would go)
                name = free_name(f"{name}-browser", panel.picker.views)
            profile = Profile(
                name=name, url=panel.url.value, method="browser", remember=bool(panel.remember.value)
            )
            panel.backend.save_profile(profile, {})
            started = panel.backend.start_sign_in(name, origin if isinstance(origin, str) else None)
        except WeaviateAuthError as exc:
            panel.form.reply(request, "sign_in_failed")
            panel.show_error(exc)
            return
        self._names[str(started["id"])] = name
        panel.pending_name = name
        panel.status.value = _waiting(str(started["provider"]))
        panel.form.reply(request, "open", url=started["authorize_url"], sign_in=started["id"])

    def ended(self, sign_in_id: Any) -> None:
        """The view saw the sign-in end: ask the broker (not the view) how it ended."""
        panel = self.panel
        name = self._names.pop(str(sign_in_id), None)
        if name is None:
            return
        try:
            identity = panel.backend.sign_in_result(str(sign_in_id))
            if identity is None:
                raise SignInFailed("The sign-in window closed before the sign-in finished.", fix="Try again.")
            panel.finish_login(name, identity)
        except WeaviateAuthError as exc:
            panel.show_error(exc)
            panel.refresh_profiles(select=name)


def _waiting(provider: str) -> str:
    from html import escape

    from .widget_cards import card

    return card([("Signing in", f"finish on {escape(provider)}'s page in the window that opened")])
