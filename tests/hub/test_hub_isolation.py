"""The broker under a real JupyterHub: two Unix users, LocalProcessSpawner, the proxy.

One hub for the whole module (``hub`` fixture, see conftest). The tests run in file
order: everything before ``test_shared_*`` runs with no server shared; the sharing
tests then share A's server with B for the rest of the module.

A = ``hub_users.a``, B = ``hub_users.b``; "proxy" routes go through
configurable-http-proxy (``/user/A/...``), "direct" ones to A's single-user server
port (from the hub's proxy table). Every measurement lands in the isolation matrix.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from .conftest import (
    ADMIN_PROFILE,
    Browser,
    Checks,
    Hub,
    HubUsers,
    Kernel,
    as_user,
    derived_store_key,
    describe,
)

# the first test's setup builds the users' venv when the package changed (about a minute)
pytestmark = pytest.mark.timeout(600)

#: Pause after a request the server refused before reading its body (see
#: ``test_rejected_requests_keep_proxy_connections_usable``): the server then drops
#: the connection, and the proxy may reuse it for the next request.


# -- helpers ---------------------------------------------------------------------------------
def call(
    method: str,
    url: str,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
) -> httpx.Response:
    """One request on a fresh connection (a probe must not inherit a pooled one)."""
    merged = {"Authorization": f"token {token}"} if token else {}
    merged.update(headers or {})
    with httpx.Client(timeout=60, follow_redirects=False) as client:
        reply = client.request(method, url, headers=merged, json=json_body)
    return reply


def short(users: HubUsers, text: str) -> str:
    """Route labels with A/B instead of the generated user names."""
    return text.replace(users.a, "A").replace(users.b, "B").replace(users.admin, "admin")


def api_key_body(url: str, key: str, *, remember: bool = True) -> dict[str, Any]:
    return {"url": url, "method": "api_key", "remember": remember, "secrets": {"api_key": key}}


#: (action, method, path, JSON body) against A's profile "mine"; PUT/DELETE target a
#: scratch profile so that a wrongly allowed call would not hide later failures.
def owner_actions(sandbox: Any) -> list[tuple[str, str, str, Any]]:
    return [
        ("status", "GET", "status", None),
        ("list profiles", "GET", "profiles", None),
        ("read profile", "GET", "profiles/mine", None),
        ("get token", "POST", "profiles/mine/token", None),
        ("log in", "POST", "profiles/mine/login", None),
        ("log out", "POST", "profiles/mine/logout", None),
        ("write profile+secret", "PUT", "profiles/mine", api_key_body(sandbox.weaviate_url, "stolen-key")),
        # what the login panel posts from the browser
        (
            "connect (save+login)",
            "POST",
            "profiles/mine/connect",
            api_key_body(sandbox.weaviate_url, "stolen-key"),
        ),
        ("delete profile", "DELETE", "profiles/mine", None),
        ("admin profile token", "POST", f"profiles/{ADMIN_PROFILE}/token", None),
    ]


def store_dir(users: HubUsers, user: str) -> Path:
    return users.home(user) / ".local/share/jupyter/weaviate_auth"


def connection_file(users: HubUsers, user: str) -> Path:
    runtime = users.home(user) / ".local/share/jupyter/runtime"
    found = sorted(runtime.glob("weaviate-auth-broker-*.json"))
    assert len(found) == 1, f"expected one broker connection file in {runtime}, found {found}"
    return found[0]


# -- module state ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def users(hub: Hub) -> HubUsers:
    return hub.users


@pytest.fixture(scope="module")
def owner_profiles(hub: Hub, users: HubUsers) -> dict[str, Any]:
    """A's own profiles, saved through the proxy with A's hub token, as the login panel's
    requests would be: an API key (admin) and a username/password login (OIDC)."""
    creds = hub.sandbox.credentials
    url = hub.sandbox.weaviate_url
    bodies = {
        "mine": api_key_body(url, creds.admin_api_key),
        "oidc": {
            "url": url,
            "method": "password",
            "username": creds.username,
            "remember": True,
            "secrets": {"password": creds.password},
        },
    }
    for name, body in bodies.items():
        reply = call(
            "PUT", hub.broker_url(users.a) + f"profiles/{name}", token=hub.tokens[users.a], json_body=body
        )
        assert reply.status_code == 200, reply.text
        reply = call("POST", hub.broker_url(users.a) + f"profiles/{name}/login", token=hub.tokens[users.a])
        assert reply.status_code == 200, reply.text
    return bodies


@pytest.fixture(scope="module")
def kernel_a(hub: Hub, users: HubUsers, owner_profiles: dict[str, Any]) -> Kernel:
    return hub.start_kernel(users.a, hub.tokens[users.a])


@pytest.fixture(scope="module")
def kernel_b(hub: Hub, users: HubUsers) -> Kernel:
    return hub.start_kernel(users.b, hub.tokens[users.b])


@pytest.fixture(scope="module")
def b_profile(hub: Hub, users: HubUsers) -> str:
    """B's own profile: the read-only key, not remembered (B's policy forbids remembering)."""
    body = api_key_body(hub.sandbox.weaviate_url, hub.sandbox.credentials.readonly_api_key, remember=False)
    reply = call("PUT", hub.broker_url(users.b) + "profiles/bees", token=hub.tokens[users.b], json_body=body)
    assert reply.status_code == 200, reply.text
    return "bees"


@pytest.fixture(scope="module")
def b_browser(hub: Hub, users: HubUsers) -> Iterator[Browser]:
    browser = Browser(hub, users.b, hub.user_password)
    yield browser
    browser.close()


# -- the owner --------------------------------------------------------------------------------
def test_servers_run_as_their_own_users(hub: Hub, users: HubUsers, check: Checks) -> None:
    for user in (users.a, users.b):
        pid = hub.server_pid(user)
        uid = os.stat(f"/proc/{pid}").st_uid
        check(
            short(users, user),
            "single-user server process",
            "LocalProcessSpawner",
            f"uid {uid}",
            f"uid {users.uid(user)}",
        )
        status = call("GET", hub.broker_url(user) + "status", token=hub.tokens[user])
        check(short(users, user), "status", "proxy", status, "200")
        data = status.json()
        assert data["mode"] == "broker" and data["owner"] == user and data["user"] == user, data
        assert data["store"] == "encrypted file", data
    check.done()


def test_owner_kernel_gets_tokens_for_its_own_profiles(
    hub: Hub, users: HubUsers, kernel_a: Kernel, check: Checks
) -> None:
    creds = hub.sandbox.credentials
    result = kernel_a.run(
        f"""
import os
from weaviate_auth_widget.kernel import get_backend, describe_mode, find_broker
backend = get_backend()
info = find_broker()
who = {{}}
for name in ("mine", "oidc", {ADMIN_PROFILE!r}):
    with backend.session(name) as session:
        who[name] = session.whoami().get("username")
token = backend.token("mine")
result = {{
    "mode": backend.mode,
    "describe": describe_mode(backend),
    "broker_url": info.url,
    "broker_user": info.user,
    "uid": os.getuid(),
    "profiles": sorted(view["name"] for view in backend.profile_views()),
    "whoami": who,
    "token_is_the_key": token.value == {creds.admin_api_key!r},
    "weaviate_env": sorted(k for k in os.environ if k.startswith("WEAVIATE_")),
}}
"""
    )
    check("A kernel", "get_backend()", "connection file", result["mode"], "broker")
    check(
        "A kernel",
        "token + session (API key)",
        "broker token",
        f"user {result['whoami']['mine']}",
        f"user {creds.admin_user}",
    )
    check(
        "A kernel",
        "token + session (password, OIDC)",
        "broker token",
        f"user {result['whoami']['oidc']}",
        f"user {creds.username}",
    )
    check(
        "A kernel",
        "token + session (admin profile)",
        "broker token",
        f"user {result['whoami'][ADMIN_PROFILE]}",
        f"user {creds.readonly_user}",
    )
    assert result["uid"] == users.uid(users.a)
    assert result["broker_user"] == users.a
    assert result["broker_url"].startswith("http://127.0.0.1:") and result["broker_url"].endswith(
        f"/user/{users.a}/weaviate-auth/api/"
    ), result
    assert result["profiles"] == sorted(["mine", "oidc", ADMIN_PROFILE]), result
    assert result["token_is_the_key"], "an API-key profile's bearer is the key itself"
    # the policy reaches the server; the store key and the admin secret never reach kernels
    assert "WEAVIATE_AUTH_STORE_KEY" not in result["weaviate_env"], result["weaviate_env"]
    assert "WEAVIATE_AUTH_BROKER_FILE" in result["weaviate_env"]
    check.done()


def test_owner_through_the_proxy_and_directly(
    hub: Hub, users: HubUsers, owner_profiles: dict[str, Any], check: Checks
) -> None:
    """A's own hub token works on every route, through the proxy and on the server's port."""
    token = hub.tokens[users.a]
    url = hub.sandbox.weaviate_url
    for route in ("proxy", "direct"):
        base = hub.broker_url(users.a, direct=route == "direct")
        check("A (hub token)", "list profiles", route, call("GET", base + "profiles", token=token), "200")
        got = call("POST", base + "profiles/mine/token", token=token)
        check("A (hub token)", "get token", route, got, "200")
        assert got.json()["token"] == hub.sandbox.credentials.admin_api_key
        body = api_key_body(url, "scratch-key")
        check(
            "A (hub token)",
            "write profile+secret",
            route,
            call("PUT", base + "profiles/scratch", token=token, json_body=body),
            "200",
        )
        check(
            "A (hub token)",
            "delete profile",
            route,
            call("DELETE", base + "profiles/scratch", token=token),
            "204",
        )
    check.done()


def test_owner_browser_session_needs_xsrf(
    hub: Hub, users: HubUsers, owner_profiles: dict[str, Any], check: Checks
) -> None:
    browser = Browser(hub, users.a, hub.user_password)
    try:
        browser.open_server(users.a)
        assert browser.xsrf(users.a), "no _xsrf cookie for A's server after the OAuth round trip"
        check(
            "A (browser cookie+xsrf)",
            "list profiles",
            "proxy",
            browser.api("GET", users.a, "profiles"),
            "200",
        )
        check(
            "A (browser cookie+xsrf)",
            "get token",
            "proxy",
            browser.api("POST", users.a, "profiles/mine/token"),
            "200",
        )
        for action, method, path in (
            ("list profiles", "GET", "profiles"),
            ("get token", "POST", "profiles/mine/token"),
        ):
            reply = browser.api(method, users.a, path, xsrf=False)
            check("A (browser cookie, no xsrf)", action, "proxy", reply, "403 forbidden")
    finally:
        browser.close()
    check.done()


# -- the other user ----------------------------------------------------------------------------
def test_other_user_cannot_reach_the_owners_broker(
    hub: Hub, users: HubUsers, owner_profiles: dict[str, Any], b_browser: Browser, check: Checks
) -> None:
    actions = owner_actions(hub.sandbox)
    for route in ("proxy", "direct"):
        base = hub.broker_url(users.a, direct=route == "direct")
        for action, method, path, body in actions:
            reply = call(method, base + path, token=hub.tokens[users.b], json_body=body)
            check("B (hub token)", action, route, reply, "403 forbidden")
            reply = call(method, base + path, json_body=body)
            check("anonymous", action, route, reply, "403 forbidden")
        kernels = call(
            "POST",
            hub.server_url(users.a, direct=route == "direct") + "api/kernels",
            token=hub.tokens[users.b],
        )
        check("B (hub token)", "start a kernel on A's server", route, kernels, "403")

    # B's browser: the hub refuses B the OAuth round trip to A's server ...
    reply = b_browser.open_server(users.a)
    check("B (browser)", "open A's server (OAuth)", "proxy /user/A/", reply, "403")
    assert reply.url.path.endswith("/hub/api/oauth2/authorize"), reply.url
    assert b_browser.xsrf(users.a) is None
    # ... and B's cookies, with or without B's own _xsrf, get nothing from A's broker
    b_browser.open_server(users.b)
    own_xsrf = b_browser.xsrf(users.b)
    assert own_xsrf, "B has no _xsrf for B's own server"
    for action, method, path, body in actions:
        reply = b_browser.api(method, users.a, path, json=body, xsrf=False)
        check("B (browser cookie)", action, "proxy", reply, "403 forbidden")
        reply = b_browser.client.request(
            method,
            f"user/{users.a}/weaviate-auth/api/{path}",
            json=body,
            headers={"X-XSRFToken": own_xsrf, "Sec-Fetch-Mode": "cors", "Origin": hub.proxy_url.rstrip("/")},
        )
        check("B (browser cookie + B's xsrf)", action, "proxy", reply, "403 forbidden")

    # A's profiles are intact
    view = call("GET", hub.broker_url(users.a) + "profiles/mine", token=hub.tokens[users.a])
    assert view.status_code == 200 and view.json()["has_secret"] is True, view.text
    got = call("POST", hub.broker_url(users.a) + "profiles/mine/token", token=hub.tokens[users.a])
    assert got.status_code == 200 and got.json()["token"] == hub.sandbox.credentials.admin_api_key
    check.done()


def test_other_users_kernel_cannot_use_the_owners_broker(
    hub: Hub, users: HubUsers, kernel_b: Kernel, b_profile: str, owner_profiles: dict[str, Any], check: Checks
) -> None:
    """B's kernel runs as B: it gets its own profiles and nothing of A's, whatever it tries."""
    a_conn = connection_file(users, users.a)
    a_store = store_dir(users, users.a)
    a_broker = hub.broker_url(users.a, direct=True)
    result = kernel_b.run(
        f"""
import json, os, httpx
from weaviate_auth_widget.kernel import get_backend, find_broker
from weaviate_auth_widget.errors import WeaviateAuthError

def attempt(fn):
    try:
        return fn()
    except PermissionError as exc:
        return "denied (EACCES)"
    except FileNotFoundError:
        return "not found"
    except WeaviateAuthError as exc:
        return f"{{exc.http_status}} {{exc.code}}"

def status(reply):
    try:
        code = reply.json()["error"]["code"]
    except Exception:
        code = None
    return f"{{reply.status_code}} {{code}}" if code else str(reply.status_code)

backend = get_backend()
own = find_broker()
out = {{"uid": os.getuid(), "profiles": sorted(v["name"] for v in backend.profile_views())}}
with backend.session({b_profile!r}) as session:
    out["own whoami"] = session.whoami().get("username")
out["own token for A's profile name"] = attempt(lambda: backend.token("mine"))
out["read A's connection file"] = attempt(lambda: open({str(a_conn)!r}).read())
out["list A's runtime dir"] = attempt(lambda: os.listdir({str(a_conn.parent)!r}))
out["list A's store dir"] = attempt(lambda: os.listdir({str(a_store)!r}))
out["read A's secrets.json"] = attempt(lambda: open({str(a_store / "secrets.json")!r}).read())
out["read A's profiles.json"] = attempt(lambda: open({str(a_store / "profiles.json")!r}).read())
routes = {{}}
for label, headers in (
    ("no credentials", {{}}),
    ("B's own broker token", {{"X-Weaviate-Auth-Broker": own.token}}),
    ("forged broker token", {{"X-Weaviate-Auth-Broker": "x" * 43}}),
    ("B's JupyterHub API token", {{"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}}),
):
    # one connection per request: the broker drops a connection after refusing it
    routes[label] = {{
        "list": status(httpx.get({a_broker!r} + "profiles", headers=headers, timeout=30)),
        "token": status(httpx.post({a_broker!r} + "profiles/mine/token", headers=headers, timeout=30)),
        "write": status(httpx.put({a_broker!r} + "profiles/mine", headers=headers, json={{"url": "http://127.0.0.1:1"}}, timeout=30)),
    }}
out["routes"] = routes
result = out
"""
    )
    assert result["uid"] == users.uid(users.b)
    assert result["profiles"] == sorted([b_profile, ADMIN_PROFILE]), result
    check(
        "B kernel",
        "token + session, own profile",
        "broker token",
        f"user {result['own whoami']}",
        f"user {hub.sandbox.credentials.readonly_user}",
    )
    check(
        "B kernel",
        "token for a profile named like A's",
        "own broker",
        result["own token for A's profile name"],
        "404 profile_not_found",
    )
    for what in (
        "read A's connection file",
        "list A's runtime dir",
        "list A's store dir",
        "read A's secrets.json",
        "read A's profiles.json",
    ):
        check("B kernel", what, "file system", result[what], "denied (EACCES)")
    expect = {"list": "403 forbidden", "token": "403 forbidden", "write": "403 forbidden"}
    for label, outcomes in result["routes"].items():
        for action, status in outcomes.items():
            check(f"B kernel ({label})", action, "direct", status, expect[action])
    check.done()


def test_store_files_are_private_to_their_owner(
    hub: Hub, users: HubUsers, owner_profiles: dict[str, Any], b_profile: str, check: Checks
) -> None:
    for owner, other in ((users.a, users.b), (users.b, users.a)):
        directory = store_dir(users, owner)
        st = directory.stat()
        assert st.st_uid == users.uid(owner), f"{directory} owned by uid {st.st_uid}"
        assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
        files = [p for p in directory.iterdir() if p.is_file()] + [connection_file(users, owner)]
        assert any(p.name == "profiles.json" for p in files), files
        if owner == users.a:
            assert any(p.name == "secrets.json" for p in files), files
        for path in files:
            st = path.stat()
            assert st.st_uid == users.uid(owner), f"{path} owned by uid {st.st_uid}"
            mode = stat.S_IMODE(st.st_mode)
            if path.name.endswith(".lock"):
                assert st.st_size == 0, f"{path}: {st.st_size} bytes"
            assert mode == 0o600, f"{path}: {oct(mode)}"
            readable_by_owner = as_user(owner, "cat", str(path)).returncode == 0
            assert readable_by_owner, f"{owner} cannot read its own {path}"
            if path.name in ("secrets.json", "profiles.json") or path.name.startswith("weaviate-auth-broker"):
                proc = as_user(other, "cat", str(path))
                outcome = (
                    "denied (EACCES)"
                    if proc.returncode != 0 and "Permission denied" in proc.stderr
                    else f"exit {proc.returncode}"
                )
                label = "connection file" if path.name.startswith("weaviate-auth-broker") else path.name
                check(
                    f"{short(users, other)} (shell, runuser)",
                    f"cat {short(users, owner)}'s {label}",
                    "file system",
                    outcome,
                    "denied (EACCES)",
                )
    check.done()


def test_store_is_encrypted_with_the_key_the_hub_derives(
    hub: Hub, users: HubUsers, owner_profiles: dict[str, Any], tmp_path: Path, check: Checks
) -> None:
    from weaviate_auth_widget.secrets import SecretStore

    creds = hub.sandbox.credentials
    source = store_dir(users, users.a) / "secrets.json"
    raw = source.read_bytes()
    for secret in (creds.admin_api_key, creds.password):
        assert secret.encode() not in raw, "a secret in clear text in the store file"
    doc = json.loads(raw)
    assert doc.get("cipher") == "AES-256-GCM", sorted(doc)
    check("root (test)", "grep secrets in A's secrets.json", "file system", "no plaintext", "no plaintext")
    # a copy (nothing of root's may land in A's directory) opens with the derived key only
    copy = tmp_path / "store"
    copy.mkdir(mode=0o700)
    (copy / "secrets.json").write_bytes(raw)
    store = SecretStore("encrypted-file", directory=copy, key=derived_store_key(hub, users.a))
    assert store.get("mine", "api_key") == creds.admin_api_key
    with pytest.raises(Exception, match=r"(?i)key|decrypt|store"):
        SecretStore("encrypted-file", directory=copy, key=derived_store_key(hub, users.b)).get(
            "mine", "api_key"
        )
    check("root (test)", "decrypt A's store with B's key", "file system", "refused", "refused")
    check.done()


# -- the administrator's policy --------------------------------------------------------------------
def test_policy_from_the_hub_applies(
    hub: Hub, users: HubUsers, kernel_a: Kernel, owner_profiles: dict[str, Any], check: Checks
) -> None:
    url = hub.sandbox.weaviate_url
    status_a = call("GET", hub.broker_url(users.a) + "status", token=hub.tokens[users.a]).json()["policy"]
    status_b = call("GET", hub.broker_url(users.b) + "status", token=hub.tokens[users.b]).json()["policy"]
    assert status_a["default_url"] == url and status_a["require_https"] is True, status_a
    assert status_a["allowed_urls"] == [url, "*://*.corp.example"], status_a
    assert status_a["allow_remember"] is True and status_b["allow_remember"] is False, (status_a, status_b)

    # the kernel skips every front door and calls the broker API itself
    result = kernel_a.run(
        """
import httpx
from weaviate_auth_widget.kernel import find_broker, get_backend
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.errors import WeaviateAuthError
info = find_broker()
headers = {"X-Weaviate-Auth-Broker": info.token}

def status(reply):
    try:
        return f"{reply.status_code} {reply.json()['error']['code']}"
    except Exception:
        return str(reply.status_code)

out = {}
with httpx.Client(timeout=30) as client:
    for label, target in (("not allowed", "https://evil.example.net"), ("allowed, http", "http://db.corp.example")):
        body = {"url": target, "method": "api_key", "secrets": {"api_key": "k-" + "x" * 20}}
        out[f"save, {label}"] = status(client.put(info.url + "profiles/steer", headers=headers, json=body))
        out[f"log in, {label}"] = status(client.post(info.url + "profiles/steer/login", headers=headers))
        out[f"token, {label}"] = status(client.post(info.url + "profiles/steer/token", headers=headers))
    # steering an existing profile to another host
    body = {"url": "https://evil.example.net", "method": "api_key"}
    out["re-point 'mine'"] = status(client.put(info.url + "profiles/mine", headers=headers, json=body))
    out["token 'mine' afterwards"] = status(client.post(info.url + "profiles/mine/token", headers=headers))
try:
    get_backend().connect(Profile(name="steer2", url="https://evil.example.net"), {"api_key": "k-" + "y" * 20})
    out["front door connect"] = "200"
except WeaviateAuthError as exc:
    out["front door connect"] = f"{exc.http_status} {exc.code}"
result = out
"""
    )
    expected = {
        "save, not allowed": "403 policy_refused",
        "log in, not allowed": "404 profile_not_found",
        "token, not allowed": "404 profile_not_found",
        "save, allowed, http": "403 insecure_url",
        "log in, allowed, http": "404 profile_not_found",
        "token, allowed, http": "404 profile_not_found",
        "re-point 'mine'": "403 policy_refused",
        "token 'mine' afterwards": "200",
        "front door connect": "403 policy_refused",
    }
    for action, status in result.items():
        check(
            "A kernel (broker token, raw httpx)", action, "direct (connection file)", status, expected[action]
        )

    # allow_remember=false for B: remembering is refused, a session-only login works
    base = hub.broker_url(users.b)
    key = hub.sandbox.credentials.readonly_api_key
    remembered = call(
        "PUT", base + "profiles/kept", token=hub.tokens[users.b], json_body=api_key_body(url, key)
    )
    check("B (hub token)", "save with remember (policy: off)", "proxy", remembered, "403 policy_refused")
    session_only = call(
        "PUT",
        base + "profiles/kept",
        token=hub.tokens[users.b],
        json_body=api_key_body(url, key, remember=False),
    )
    check("B (hub token)", "save without remember", "proxy", session_only, "200")
    call("DELETE", base + "profiles/kept", token=hub.tokens[users.b])
    secrets_file = store_dir(users, users.b) / "secrets.json"
    assert not secrets_file.exists() or key.encode() not in secrets_file.read_bytes()
    check.done()


def test_allowed_url_patterns_cannot_be_bypassed_with_a_path(
    hub: Hub, users: HubUsers, kernel_a: Kernel, check: Checks
) -> None:
    target = "https://evil.example.net/x.corp.example"
    result = kernel_a.run(
        f"""
import httpx
from weaviate_auth_widget.kernel import find_broker
info = find_broker()
headers = {{"X-Weaviate-Auth-Broker": info.token}}
body = {{"url": {target!r}, "method": "api_key", "secrets": {{"api_key": "k-" + "z" * 20}}}}
reply = httpx.put(info.url + "profiles/steer3", headers=headers, json=body, timeout=30)
try:
    status = f"{{reply.status_code}} {{reply.json()['error']['code']}}"
except Exception:
    status = str(reply.status_code)
httpx.delete(info.url + "profiles/steer3", headers=headers, timeout=30)
result = status
"""
    )
    check(
        "A kernel (broker token, raw httpx)",
        f"save {target}",
        "direct (connection file)",
        result,
        "403 policy_refused",
    )
    check.done()


def test_admin_profile_usable_but_never_readable_or_changeable(
    hub: Hub, users: HubUsers, kernel_a: Kernel, kernel_b: Kernel, check: Checks
) -> None:
    secret = hub.sandbox.credentials.readonly_api_key
    for user in (users.a, users.b):
        actor = f"{short(users, user)} (hub token)"
        base = hub.broker_url(user)
        token = hub.tokens[user]
        listing = call("GET", base + "profiles", token=token)
        view = call("GET", base + f"profiles/{ADMIN_PROFILE}", token=token)
        check(actor, "read admin profile", "proxy", view, "200")
        assert view.json()["read_only"] is True and view.json()["has_secret"] is True, view.text
        for reply in (listing, view):
            assert secret not in reply.text and "secret_file" not in reply.text, "the admin secret shows"
        body = api_key_body(hub.sandbox.weaviate_url, "replaced-key")
        check(
            actor,
            "overwrite admin profile",
            "proxy",
            call("PUT", base + f"profiles/{ADMIN_PROFILE}", token=token, json_body=body),
            "403 policy_refused",
        )
        check(
            actor,
            "delete admin profile",
            "proxy",
            call("DELETE", base + f"profiles/{ADMIN_PROFILE}", token=token),
            "403 policy_refused",
        )
    for kernel in (kernel_a, kernel_b):
        label = f"{short(users, kernel.owner)} kernel"
        result = kernel.run(
            f"""
import os, httpx
from weaviate_auth_widget.kernel import get_backend, find_broker
backend = get_backend()
with backend.session({ADMIN_PROFILE!r}) as session:
    who = session.whoami().get("username")
info = find_broker()
with httpx.Client(timeout=30) as client:
    reply = client.delete(info.url + "profiles/{ADMIN_PROFILE}", headers={{"X-Weaviate-Auth-Broker": info.token}})
view = backend.describe({ADMIN_PROFILE!r})
result = {{
    "who": who,
    "delete": f"{{reply.status_code}} {{reply.json()['error']['code']}}",
    "view_keys": sorted(view),
    "env_has_secret": any({secret!r} in v for v in os.environ.values()),
}}
"""
        )
        check(
            label,
            "use admin profile",
            "broker token",
            f"user {result['who']}",
            f"user {hub.sandbox.credentials.readonly_user}",
        )
        check(label, "delete admin profile", "broker token", result["delete"], "403 policy_refused")
        assert not result["env_has_secret"]
        assert not {"secret", "secrets", "api_key", "secret_file"} & set(result["view_keys"]), result[
            "view_keys"
        ]
    check.done()


def test_limitations_measured(hub: Hub, users: HubUsers, kernel_a: Kernel, check: Checks) -> None:
    """What the design does not protect against (code running as the owner), measured,
    so that docs/jupyterhub.md states it truthfully. Not assertions of desired behaviour."""
    result = kernel_a.run(
        f"""
import os
def attempt(fn):
    try:
        fn()
        return "readable"
    except PermissionError:
        return "denied (EACCES)"
result = {{
    "admin key file": attempt(lambda: open({str(hub.readonly_key_file)!r}).read()),
    "server's initial environment": attempt(lambda: open(f"/proc/{{os.getppid()}}/environ", "rb").read()),
    "key in server's initial environment": "WEAVIATE_AUTH_STORE_KEY=" in open(f"/proc/{{os.getppid()}}/environ", "rb").read().decode("latin-1"),
}}
"""
    )
    check(
        "A kernel",
        "read the admin profile's key file",
        "file system (same Unix user)",
        result["admin key file"],
        "readable",
        note="limitation",
    )
    check(
        "A kernel",
        "read the server's initial environ (store key)",
        "/proc (same Unix user)",
        "key present" if result["key in server's initial environment"] else "key absent",
        "key present|key absent",
        note="limitation",
    )
    check.done()


#: What someone with access to A's server who is not A gets from the broker: reads only.
NOT_OWNER_EXPECTED = {
    "status": "200",
    "list profiles": "200",
    "read profile": "200",
    "get token": "403 not_owner",
    "log in": "403 not_owner",
    "log out": "403 not_owner",
    "write profile+secret": "403 not_owner",
    "connect (save+login)": "403 not_owner",
    "delete profile": "403 not_owner",
    "admin profile token": "403 not_owner",
}


def test_a_hub_service_named_like_the_owner_is_not_the_owner(
    hub: Hub, users: HubUsers, owner_profiles: dict[str, Any], check: Checks
) -> None:
    """JupyterHub keeps services and users apart: a service called A (allowed into A's
    server) authenticates there with the hub model ``{"kind": "service", "name": A}``,
    so names alone would take it for A."""
    expected = NOT_OWNER_EXPECTED
    secrets_ = [hub.sandbox.credentials.admin_api_key, hub.sandbox.credentials.password]
    for route in ("proxy", "direct"):
        base = hub.broker_url(users.a, direct=route == "direct")
        for action, method, path, body in owner_actions(hub.sandbox):
            reply = call(method, base + path, token=hub.namesake_token, json_body=body)
            check("service named A (token)", action, route, reply, expected[action])
            assert not any(s in reply.text for s in secrets_)
    got = call("POST", hub.broker_url(users.a) + "profiles/mine/token", token=hub.tokens[users.a])
    assert got.status_code == 200 and got.json()["token"] == hub.sandbox.credentials.admin_api_key
    check.done()


# -- sharing and admin access (JupyterHub 5) --------------------------------------------------------
@pytest.fixture(scope="module")
def shared(hub: Hub, users: HubUsers) -> str:
    """A shares A's server with B (A's own token, JupyterHub 5 ``shares`` API); returns a B
    token issued after the share (the single-user server caches token checks, 5 min)."""
    reply = hub.hub_api("POST", f"shares/{users.a}/", token=hub.tokens[users.a], json={"user": users.b})
    assert reply.status_code == 200, reply.text
    assert reply.json()["scopes"] == [f"access:servers!server={users.a}/"], reply.text
    return hub.new_token(users.b, "after the share")


def test_shared_visitor_reads_but_cannot_obtain_tokens_or_write(
    hub: Hub, users: HubUsers, owner_profiles: dict[str, Any], shared: str, check: Checks
) -> None:
    secrets_ = [hub.sandbox.credentials.admin_api_key, hub.sandbox.credentials.password]
    expected = NOT_OWNER_EXPECTED
    visitors = {"B, shared (hub token)": shared, "admin (hub token)": hub.tokens[users.admin]}
    for actor, token in visitors.items():
        for route in ("proxy", "direct"):
            base = hub.broker_url(users.a, direct=route == "direct")
            for action, method, path, body in owner_actions(hub.sandbox):
                reply = call(method, base + path, token=token, json_body=body)
                check(actor, action, route, reply, expected[action])
                assert not any(s in reply.text for s in secrets_), f"{actor} {action}: a secret in the reply"
                if action == "status":
                    assert reply.json()["owner"] == users.a and reply.json()["user"] != users.a, reply.text

    for actor, user, password in (
        ("B, shared (browser", users.b, hub.user_password),
        ("admin (browser", users.admin, hub.admin_password),
    ):
        browser = Browser(hub, user, password)
        try:
            reply = browser.open_server(users.a)  # JupyterHub's "Authorize access" form, accepted
            assert browser.xsrf(users.a), (
                f"{actor}: no cookie for A's server ({reply.status_code} {reply.url})"
            )
            for action, method, path, body in owner_actions(hub.sandbox):
                reply = browser.api(method, users.a, path, json=body)
                check(f"{actor} cookie+xsrf)", action, "proxy", reply, expected[action])
                assert not any(s in reply.text for s in secrets_)
            reply = browser.api("POST", users.a, "profiles/mine/token", xsrf=False)
            check(f"{actor} cookie, no xsrf)", "get token", "proxy", reply, "403 forbidden")
        finally:
            browser.close()

    # nothing changed for the owner
    got = call("POST", hub.broker_url(users.a) + "profiles/mine/token", token=hub.tokens[users.a])
    assert got.status_code == 200 and got.json()["token"] == hub.sandbox.credentials.admin_api_key
    check.done()


def test_shared_visitor_kernel_runs_as_the_owner(
    hub: Hub, users: HubUsers, shared: str, check: Checks
) -> None:
    """A share grants the visitor A's whole server: a kernel the visitor starts there runs
    as A and can use A's broker token like any of A's kernels. Measured and documented
    (docs/jupyterhub.md, "Sharing"); the broker cannot tell such a kernel from A's own."""
    kernel = hub.start_kernel(users.a, shared)
    result = kernel.run(
        """
import os
from weaviate_auth_widget.kernel import get_backend
from weaviate_auth_widget.errors import WeaviateAuthError
try:
    get_backend().token("mine")
    outcome = "200"
except WeaviateAuthError as exc:
    outcome = f"{exc.http_status} {exc.code}"
result = {"uid": os.getuid(), "token": outcome}
"""
    )
    check(
        "B, shared: kernel B started on A's server",
        "process uid",
        "kernel",
        f"uid {result['uid']}",
        f"uid {users.uid(users.a)}",
        note="limitation",
    )
    check(
        "B, shared: kernel B started on A's server",
        "get token",
        "broker token",
        result["token"],
        "200",
        note="limitation",
    )
    check.done()


# -- a bug found here -----------------------------------------------------------------------------------
def test_rejected_requests_keep_proxy_connections_usable(hub: Hub, users: HubUsers, check: Checks) -> None:
    """A refused request must not leave a kept-alive connection that the server then drops.

    Asserted deterministically on A's port (raw HTTP/1.1: does the server close the
    connection after answering, without having said ``Connection: close``?); what users
    see of it through configurable-http-proxy (503s for the next request) is recorded."""
    direct = urlsplit(hub.server_url(users.a, direct=True))
    path = f"/user/{users.a}/weaviate-auth/api/profiles/mine/token"
    head, closed = raw_http(direct.hostname or "127.0.0.1", direct.port or 80, "POST", path)
    announced = re.search(rb"(?im)^connection:\s*close", head) is not None
    status = head.split(b" ", 2)[1].decode() if head else "no answer"
    check(
        "anonymous (raw HTTP/1.1, keep-alive)",
        "POST token: connection afterwards",
        "direct",
        f"{status}, {'closed' if closed else 'kept open'}, {'announced' if announced else 'not announced'}",
        "403, kept open, not announced|403, closed, announced",
    )

    base = hub.broker_url(users.a)
    outcomes: dict[str, int] = {}
    with httpx.Client(timeout=30) as client:
        for _ in range(40):
            client.post(base + "profiles/mine/token")  # anonymous: refused in prepare()
            reply = client.get(base + "status", headers={"Authorization": f"token {hub.tokens[users.a]}"})
            outcomes[describe(reply)] = outcomes.get(describe(reply), 0) + 1
    summary = ", ".join(f"{k} x{v}" for k, v in sorted(outcomes.items()))
    check(
        "A (hub token), right after an anonymous POST",
        "status (x40)",
        "proxy",
        summary,
        "200 x40",
        note="symptom, racy",
        required=False,
    )
    check.done()


def raw_http(host: str, port: int, method: str, path: str) -> tuple[bytes, bool]:
    """Send one keep-alive request with an empty body; return the response head and whether
    the server closed the connection within a second after the response."""
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n"
        "Connection: keep-alive\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data, True
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        remaining = int(length.group(1)) - len(body) if length else 0
        while remaining > 0:
            chunk = sock.recv(65536)
            if not chunk:
                return head, True
            remaining -= len(chunk)
        sock.settimeout(1.0)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
        return head, closed
