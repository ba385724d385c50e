"""Hostile and broken input: never a 500, never a corrupted store, always a JSON error."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weaviate_auth_widget.broker import MAX_BODY_BYTES
from weaviate_auth_widget.profiles import Profile

from .conftest import API

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
FIELDS = [
    "url",
    "method",
    "username",
    "client_id",
    "scopes",
    "headers",
    "remember",
    "secrets",
    "name",
    "extra",
]
profile_like = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6) | st.fixed_dictionaries(
    {"url": st.text(max_size=60)},
    optional={
        "method": st.sampled_from(["api_key", "password", "client_credentials", "bearer", "nope"]),
        "username": st.none() | st.text(max_size=20),
        "client_id": st.none() | st.text(max_size=20),
        "scopes": st.lists(st.text(max_size=10), max_size=4),
        "headers": st.lists(st.text(max_size=12), max_size=3),
        "remember": st.booleans(),
        "secrets": st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=3),
    },
)

KEEP = "keep"
ROUTES = [
    ("PUT", "profiles/fuzz"),
    ("POST", "profiles/ghost/token"),
    ("POST", "profiles/ghost/login"),
    ("POST", "profiles/ghost/logout"),
    ("DELETE", "profiles/ghost"),
    ("GET", "profiles"),
]


@pytest.fixture
def kept(broker: Any, sandbox: Any) -> str:
    """A profile saved before the abuse starts; it must survive it."""
    broker.service.save_profile(
        Profile(KEEP, sandbox.weaviate_url), {"api_key": sandbox.credentials.admin_api_key}
    )
    return sandbox.credentials.admin_api_key


def assert_store_intact(store_dir: Path, api: Any, key: str) -> None:
    data = json.loads((store_dir / "profiles.json").read_text())
    assert KEEP in [p["name"] for p in data["profiles"]]
    view = api("GET", f"profiles/{KEEP}").json()
    assert view["has_secret"] is True
    assert api("POST", f"profiles/{KEEP}/token").json()["token"] == key


def assert_sane(reply: Any) -> None:
    assert reply.code < 500, reply.text[:200]
    if reply.code >= 400:
        assert reply.error_code, reply.text[:200]
        assert "Traceback" not in reply.text


def test_random_profile_bodies(api: Any, kept: str, store_dir: Path) -> None:
    @SETTINGS
    @given(body=profile_like)
    def put(body: Any) -> None:
        reply = api("PUT", "profiles/fuzz", json_body=body)
        assert_sane(reply)
        assert reply.code in (200, 400, 403), reply.text[:200]

    put()
    assert_store_intact(store_dir, api, kept)


def test_random_json_anywhere(api: Any, kept: str, store_dir: Path) -> None:
    @SETTINGS
    @given(
        body=json_values,
        route=st.sampled_from(ROUTES),
    )
    def send(body: Any, route: tuple[str, str]) -> None:
        reply = api(*route, json_body=body)
        assert_sane(reply)

    send()
    assert_store_intact(store_dir, api, kept)


def test_random_bytes_and_content_types(api: Any, kept: str, store_dir: Path) -> None:
    @SETTINGS
    @given(
        body=st.binary(min_size=1, max_size=300),
        content_type=st.sampled_from(
            ["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]
        ),
    )
    def send(body: bytes, content_type: str) -> None:
        headers = {"Content-Type": content_type} if content_type else {}
        reply = api("PUT", "profiles/fuzz", body=body, headers=headers)
        assert_sane(reply)
        if content_type != "application/json":
            assert (reply.code, reply.error_code) == (415, "unsupported_media_type")

    send()
    assert_store_intact(store_dir, api, kept)


HOSTILE_NAMES = [
    "..",
    ".",
    "%2e%2e",
    "..%2f..%2fetc%2fpasswd",
    "a%2fb",
    "a%00b",
    "%ff%fe",
    "x" * 65,
    "caf%C3%A9",
    "%F0%9F%94%91",
    "spa%20ce",
    "semi%3Bcolon",
    "quote%22",
    "%3Cscript%3E",
    "a" * 2000,
]


def test_hostile_names(api: Any, kept: str, store_dir: Path) -> None:
    body = {"url": "http://127.0.0.1:1", "secrets": {"api_key": "k" * 12}}
    for name in HOSTILE_NAMES:
        for method, suffix in [
            ("GET", ""),
            ("PUT", ""),
            ("DELETE", ""),
            ("POST", "/token"),
            ("POST", "/login"),
        ]:
            reply = api(method, f"profiles/{name}{suffix}", json_body=body if method == "PUT" else None)
            assert reply.code < 500, (name, method, reply.text[:200])
            assert reply.code in (400, 404), (name, method, reply.code, reply.text[:200])
    assert_store_intact(store_dir, api, kept)
    known = {".profiles.lock", "profiles.json", "secrets.json", ".secrets.json.lock"}
    assert {p.name for p in store_dir.iterdir()} <= known  # nothing written under a hostile name


def test_random_names(api: Any, kept: str, store_dir: Path) -> None:
    @SETTINGS
    @given(name=st.text(min_size=1, max_size=80))
    def send(name: str) -> None:
        quoted = urllib.parse.quote(name, safe="")
        reply = api("PUT", f"profiles/{quoted}", json_body={"url": "http://127.0.0.1:1"})
        assert_sane(reply)
        assert reply.code in (200, 400, 404)

    send()
    assert_store_intact(store_dir, api, kept)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", "bad_request"),
        (b'{"url": NaN}', "bad_request"),
        (b'{"url": Infinity}', "bad_request"),
        (b'{"url": "http://127.0.0.1:1", "url": "http://127.0.0.1:2"}', "bad_request"),
        (b'{"url": "\\ud800"}', "bad_request"),
        (b'{"url": "\xff\xfe"}', "bad_request"),
        (b"[]", "bad_request"),
        (b'"just a string"', "bad_request"),
        (b"   ", "bad_request"),
        (b"[" * 100_00 + b"]" * 100_00, "bad_request"),
        (b'{"url": 5}', "bad_request"),
        (b'{"method": "api_key"}', "bad_request"),
        (b'{"url": "http://127.0.0.1:1", "scopes": "openid"}', "bad_request"),
        (b'{"url": "http://127.0.0.1:1", "scopes": [1]}', "bad_request"),
        (b'{"url": "http://127.0.0.1:1", "secrets": ["k"]}', "bad_request"),
        (b'{"url": "http://127.0.0.1:1", "secrets": {"api_key": 5}}', "bad_request"),
        (b'{"url": "http://127.0.0.1:1", "remember": "yes"}', "bad_request"),
        (b'{"url": "http://127.0.0.1:1", "username": ["a"]}', "bad_request"),
        (b'{"url": "http://127.0.0.1:1", "name": "other"}', "bad_request"),
        (b'{"url": "http://127.0.0.1:1", "password": "p"}', "bad_request"),
        (b'{"url": "http://127.0.0.1:1", "method": "magic"}', "invalid_profile"),
        (b'{"url": "ftp://127.0.0.1"}', "invalid_profile"),
        (b'{"url": "http://user:pw@127.0.0.1"}', "invalid_profile"),
        (b'{"url": "http://127.0.0.1:1", "secrets": {"token": "x"}}', "invalid_profile"),
        (b'{"url": "http://127.0.0.1:1", "secrets": {"api_key": "a\\nb"}}', "invalid_profile"),
        (b'{"url": "http://127.0.0.1:1", "headers": ["Authorization"]}', "invalid_profile"),
    ],
)
def test_malformed_bodies(api: Any, body: bytes, code: str) -> None:
    reply = api("PUT", "profiles/p", body=body, headers={"Content-Type": "application/json"})
    assert reply.code == 400, reply.text[:200]
    assert reply.error_code == code


@pytest.mark.parametrize(
    "body",
    [
        b'{"rejected": "abc"}',
        b'{"rejected": "' + b"A" * 64 + b'"}',
        b'{"other": 1}',
        b"[]",
        b'{"rejected": 1}',
    ],
)
def test_malformed_token_requests(api: Any, kept: str, body: bytes) -> None:
    reply = api("POST", f"profiles/{KEEP}/token", body=body, headers={"Content-Type": "application/json"})
    assert (reply.code, reply.error_code) == (400, "bad_request")
    assert kept not in reply.text


def test_login_and_logout_take_no_body(api: Any, kept: str) -> None:
    for action in ("login", "logout"):
        reply = api("POST", f"profiles/{KEEP}/{action}", json_body={"x": 1})
        assert (reply.code, reply.error_code) == (400, "bad_request")


def test_huge_bodies(
    api: Any, raw_request: Any, jupyter_headers: dict[str, str], kept: str, store_dir: Path
) -> None:
    too_big = json.dumps({"url": "http://127.0.0.1:1", "secrets": {"api_key": "k" * MAX_BODY_BYTES}}).encode()
    for method, path in [("PUT", "profiles/big"), ("POST", f"profiles/{KEEP}/token"), ("GET", "status")]:
        reply = api(method, path, body=too_big, headers={"Content-Type": "application/json"})
        assert (reply.code, reply.error_code) == (413, "too_large"), (method, reply.text[:200])
    # exactly at the limit is read (and then judged on its content)
    at_limit = b'{"url": "http://127.0.0.1:1"' + b" " * (MAX_BODY_BYTES - 29) + b"}"
    assert len(at_limit) == MAX_BODY_BYTES
    assert (
        api("PUT", "profiles/edge", body=at_limit, headers={"Content-Type": "application/json"}).code == 200
    )

    # no Content-Length (chunked): the bytes actually received are counted
    async def chunks(write: Any) -> None:
        for _ in range(20):
            await write(b" " * 8192)

    chunked = raw_request(
        "PUT",
        API + "profiles/big",
        headers={**jupyter_headers, "Content-Type": "application/json"},
        body_producer=chunks,
    )
    assert (chunked.code, chunked.error_code) == (413, "too_large")
    # a large body without credentials is refused before it is read
    anonymous = raw_request(
        "PUT", API + "profiles/big", body=too_big, headers={"Content-Type": "application/json"}
    )
    assert anonymous.code == 403
    assert_store_intact(store_dir, api, kept)
    assert "big" not in [p["name"] for p in api("GET", "profiles").json()["profiles"]]


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"]
)
def test_json_content_types_accepted(api: Any, content_type: str) -> None:
    body = json.dumps({"url": "http://127.0.0.1:1"})
    assert api("PUT", "profiles/ct", body=body, headers={"Content-Type": content_type}).code == 200


def test_errors_before_authentication_are_json_too(raw_request: Any) -> None:
    for method, path in [("GET", "status"), ("POST", "profiles/x/token"), ("PATCH", "profiles/x")]:
        reply = raw_request(method, API + path, body=b"{}" if method != "GET" else None)
        assert reply.code in (403, 405)
        assert reply.error_code in ("forbidden", "method_not_allowed")
        assert reply.headers["Cache-Control"] == "no-store"
