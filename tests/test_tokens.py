"""Token masking, expiry margins and the single-flight cache (no network)."""

from __future__ import annotations

import base64
import json
import pickle
import threading
import time

import pytest

from weaviate_auth_widget.errors import InsecureURL, PolicyRefused
from weaviate_auth_widget.policy import Policy
from weaviate_auth_widget.tokens import CachingTokenSource, Token, bearer_expiry, jwt_expiry, jwt_lifetime

SECRET = "tok-SECRET-value-123"


def test_token_never_shows_its_value() -> None:
    token = Token(SECRET, time.time() + 100)
    for text in (repr(token), str(token), f"{token}", repr([token]), repr({"t": token})):
        assert SECRET not in text
    with pytest.raises(TypeError):
        pickle.dumps(token)


def test_short_tokens_get_a_proportional_margin() -> None:
    assert Token("a", time.time() + 3).fresh()
    long = Token("a", time.time() + 3600)
    long.expires_at = time.time() + 20
    assert not long.fresh()
    assert Token("a").fresh()


def test_jwt_expiry_reads_exp_without_verifying() -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": 1234}).encode()).decode().rstrip("=")
    assert jwt_expiry(f"x.{payload}.y") == 1234.0
    assert jwt_expiry("not-a-jwt") is None
    assert jwt_expiry("a.!!!.c") is None


def test_cache_refreshes_once_for_many_threads() -> None:
    calls = 0
    gate = threading.Event()

    def fetch(rejected: Token | None) -> Token:
        nonlocal calls
        calls += 1
        gate.wait(2)
        return Token(f"t{calls}", time.time() + 60)

    cache = CachingTokenSource(fetch)
    results: list[Token] = []
    threads = [threading.Thread(target=lambda: results.append(cache.token())) for _ in range(50)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join()
    assert calls == 1
    assert {r.value for r in results} == {"t1"}


def test_rejected_token_forces_exactly_one_refresh() -> None:
    seen: list[Token | None] = []

    def fetch(rejected: Token | None) -> Token:
        seen.append(rejected)
        return Token(f"t{len(seen)}", time.time() + 60)

    cache = CachingTokenSource(fetch)
    first = cache.token()
    second = cache.token(rejected=first)
    assert second.value == "t2" and seen == [None, first]
    # a late caller that still holds the first token does not trigger another refresh
    assert cache.token(rejected=first).value == "t2"
    assert len(seen) == 2


def test_policy_allowed_urls_and_https() -> None:
    policy = Policy(allowed_urls=("https://*.weaviate.cloud", "http://localhost:*"))
    assert policy.check_url("abc.weaviate.cloud") == "https://abc.weaviate.cloud"
    assert policy.check_url("http://localhost:8080") == "http://localhost:8080"
    with pytest.raises(PolicyRefused, match=r"evil\.example\.org"):
        policy.check_url("https://evil.example.org")
    with pytest.raises(InsecureURL, match="clear text"):
        Policy().check_url("http://weaviate.internal:8080")
    assert Policy(require_https=False).check_url("http://weaviate.internal:8080")
    assert Policy().check_url("http://127.0.0.1:8080")
    with pytest.raises(PolicyRefused, match="remember"):
        Policy(allow_remember=False).check_remember(True)


@pytest.mark.parametrize(
    ("url", "pattern", "allowed"),
    [
        ("https://abc.weaviate.cloud", "https://*.weaviate.cloud", True),
        ("https://evil.example.net/x.weaviate.cloud", "https://*.weaviate.cloud", False),
        ("https://evil.example.net/x.corp.example", "*://*.corp.example", False),
        ("https://a.corp.example:8443", "https://*.corp.example", False),
        ("https://a.corp.example:8443", "https://*.corp.example:*", True),
        ("https://a.corp.example:8443", "https://*.corp.example:8443", True),
        ("http://a.corp.example", "https://*.corp.example", False),
        ("http://a.corp.example", "*://*.corp.example", True),
        ("https://gw.example.org/weaviate", "https://gw.example.org/weaviate", True),
        ("https://gw.example.org/weaviate/x", "https://gw.example.org/weaviate/", True),
        ("https://gw.example.org/weaviatex", "https://gw.example.org/weaviate", False),
        ("https://gw.example.org/other", "https://gw.example.org/weaviate", False),
        ("https://x.weaviate.cloud", "x.weaviate.cloud", True),
        ("http://[::1]:8080", "http://[::1]:*", True),
    ],
)
def test_allowed_url_patterns_never_reach_past_the_host(url: str, pattern: str, allowed: bool) -> None:
    from weaviate_auth_widget.policy import url_matches

    assert url_matches(url, pattern) is allowed


def test_tokens_compare_by_value_even_when_not_ascii() -> None:
    assert Token("clé-ünïcode") == Token("clé-ünïcode")
    assert Token("clé-ünïcode") != Token("cle-unicode")


def _jwt(claims: dict[str, float]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"e30.{body}.sig"


def test_bearer_expiry_counts_the_lifetime_when_our_clock_is_behind() -> None:
    """A pasted JWT issued "in our future" (our clock is 10 minutes slow) lives exp - iat
    from now, not until its exp read on our slow clock (issue 8, item 10)."""
    now = 1_000_000.0
    ahead = _jwt({"iat": now + 600, "exp": now + 660})
    assert jwt_lifetime(ahead) == 60
    assert bearer_expiry(ahead, now) == now + 60
    issued_earlier = _jwt({"iat": now - 30, "exp": now + 30})
    assert bearer_expiry(issued_earlier, now) == now + 30
    assert bearer_expiry(_jwt({"exp": now + 5}), now) == now + 5
    assert bearer_expiry("not-a-jwt", now) is None
