"""Browser sign-in under the real JupyterHub: the broker's callback through the proxy.

A starts a sign-in on A's server (the redirect URI is A's callback behind the proxy),
signs in on the sandbox provider's page; the provider's answer reaching A's callback in
B's browser is refused there (B is not A) and leaves A's sign-in untouched; in A's
browser it completes.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.idp_browser import Browser as ProviderBrowser

from .conftest import Browser, Hub

pytestmark = pytest.mark.timeout(600)


def test_a_callback_reaching_another_users_server_is_refused(hub: Hub) -> None:
    users, creds = hub.users, hub.sandbox.credentials
    a = Browser(hub, users.a, hub.user_password)
    b = Browser(hub, users.b, hub.user_password)
    provider = ProviderBrowser()
    try:
        a.open_server(users.a)
        b.open_server(users.b)
        saved = a.api(
            "PUT",
            users.a,
            "profiles/browser-sso",
            json={"url": hub.sandbox.weaviate_url, "method": "browser"},
        )
        assert saved.status_code == 200, saved.text
        origin = hub.proxy_url.rstrip("/")
        started = a.api("POST", users.a, "profiles/browser-sso/sign-in", json={"origin": origin})
        assert started.status_code == 200, started.text
        sign_in = started.json()
        callback = f"{hub.proxy_url}user/{users.a}/weaviate-auth/api/sign-in/callback"
        assert sign_in["redirect_uri"] == callback
        page = provider.open(sign_in["authorize_url"])
        back = provider.login(page, creds.username, creds.password)
        location = back.headers["location"]
        assert location.startswith(callback + "?") and "code" in parse_qs(urlsplit(location).query)

        stolen = b.client.get(location, headers={"Sec-Fetch-Mode": "navigate"})
        assert "Signed in" not in stolen.text, "B's browser completed A's sign-in"
        assert stolen.status_code in (403, 404) or "/hub/" in stolen.url.path, (
            stolen.status_code,
            stolen.url,
        )
        pending = a.api("GET", users.a, f"sign-in/{sign_in['id']}")
        assert pending.json()["status"] == "pending"  # B's attempt did not use A's state

        done = a.client.get(location, headers={"Sec-Fetch-Mode": "navigate"})
        assert done.status_code == 200 and f"as {creds.username}" in done.text, done.text[:300]
        assert a.api("GET", users.a, f"sign-in/{sign_in['id']}").json()["status"] == "done"
        view = a.api("GET", users.a, "profiles/browser-sso").json()
        assert view["kept_secrets"] == ["refresh_token"]
    finally:
        provider.close()
        a.close()
        b.close()
