"""Profiles and their file: validation, modes, atomic replace, cross-process writers."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from weaviate_auth_widget.errors import InvalidProfile, PolicyRefused, ProfileNotFound, StoreUnavailable
from weaviate_auth_widget.policy import Policy
from weaviate_auth_widget.profiles import Profile, ProfileStore
from weaviate_auth_widget.urls import normalize_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("abc.weaviate.cloud", "https://abc.weaviate.cloud"),
        ("https://abc.weaviate.cloud/", "https://abc.weaviate.cloud"),
        ("HTTPS://ABC.Weaviate.Cloud:443", "https://abc.weaviate.cloud"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://localhost:80/", "http://localhost"),
        ("https://proxy.example.com/weaviate/", "https://proxy.example.com/weaviate"),
        ("https://proxy.example.com/weaviate/v1", "https://proxy.example.com/weaviate"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("  https://x.example.org  ", "https://x.example.org"),
    ],
)
def test_url_normalisation(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "ftp://x.org",
        "https://user:pw@x.org",
        "https://x.org/?a=1",
        "https://x.org/#f",
        "https://:8080",
        "https://x.org:99999",
        "javascript:alert(1)",
        "https://" + "a" * 3000,
    ],
)
def test_bad_urls_are_refused_with_a_clear_error(raw: str) -> None:
    with pytest.raises(InvalidProfile) as err:
        normalize_url(raw)
    assert "URL" in str(err.value)
    assert "pw" not in str(err.value) or "pw@" not in raw


@pytest.mark.parametrize(
    "name",
    ["", "a" * 65, "../etc", "a/b", "a b", "é", "x\n", "..", ".", "a;rm", "<script>", "\x00"],
)
def test_hostile_profile_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidProfile, match="Profile name"):
        Profile(name=name, url="https://x.org")


def test_profile_rules() -> None:
    with pytest.raises(InvalidProfile, match="needs a username"):
        Profile(name="p", url="https://x.org", method="password")
    with pytest.raises(InvalidProfile, match="client id"):
        Profile(name="p", url="https://x.org", method="client_credentials")
    with pytest.raises(InvalidProfile, match="Unknown login method"):
        Profile(name="p", url="https://x.org", method="magic")  # type: ignore[arg-type]
    with pytest.raises(InvalidProfile, match="module-key header"):
        Profile(name="p", url="https://x.org", headers=("Authorization",))
    with pytest.raises(InvalidProfile, match="scope"):
        Profile(name="p", url="https://x.org", scopes=("a b",))
    p = Profile(name="ok-1_2.3", url="x.org", headers=("X-OpenAI-Api-Key", "X-OpenAI-Api-Key"))
    assert p.url == "https://x.org" and p.headers == ("X-OpenAI-Api-Key",)


def test_from_json_rejects_unknown_and_missing_fields() -> None:
    with pytest.raises(InvalidProfile, match="Unknown profile field"):
        Profile.from_json({"name": "a", "url": "https://x.org", "password": "nope"})
    with pytest.raises(InvalidProfile, match="needs the field url"):
        Profile.from_json({"name": "a"})
    with pytest.raises(InvalidProfile):
        Profile.from_json([1, 2])  # type: ignore[arg-type]


def test_store_round_trip_modes_and_delete(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "store")
    assert store.list() == []
    p = Profile(
        name="prod", url="https://a.weaviate.cloud", scopes=("openid",), headers=("X-Cohere-Api-Key",)
    )
    store.save(p)
    assert store.get("prod") == p
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700
    # a second store object (another process) sees the change
    assert ProfileStore(tmp_path / "store").list() == [p]
    assert store.delete("prod") is True
    assert store.delete("prod") is False
    with pytest.raises(ProfileNotFound, match="no saved profile named 'prod'"):
        store.get("prod")


def test_damaged_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    store.save(Profile(name="a", url="https://x.org"))
    store.path.write_text("{not json")
    with pytest.raises(StoreUnavailable, match="damaged"):
        store.list()
    with pytest.raises(StoreUnavailable):
        store.save(Profile(name="b", url="https://x.org"))
    assert store.path.read_text() == "{not json"


def _writer(directory: str, prefix: str, count: int) -> None:
    store = ProfileStore(Path(directory))
    for i in range(count):
        store.save(Profile(name=f"{prefix}-{i}", url=f"https://{prefix}{i}.example.org"))


def test_two_processes_saving_200_profiles_each_lose_none(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), name, 200)) for name in ("a", "b")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    names = {p.name for p in ProfileStore(tmp_path).list()}
    assert len(names) == 400
    assert {f"a-{i}" for i in range(200)} | {f"b-{i}" for i in range(200)} == names
    data = json.loads((tmp_path / "profiles.json").read_text())
    assert data["version"] == 1
    assert not list(tmp_path.glob("*.tmp"))


# -- issue 8, item 5: dot segments cannot climb out of an allowed path prefix -----------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://h.example/prod/..", "https://h.example"),
        ("https://h.example/prod/../admin", "https://h.example/admin"),
        ("https://h.example/prod/./x/../y/", "https://h.example/prod/y"),
        ("https://h.example/../../prod", "https://h.example/prod"),
    ],
)
def test_dot_segments_are_removed(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["https://h.example/prod/..", "https://h.example/prod/../other", "h.example/prod/./../x"],
)
def test_an_allowed_path_prefix_is_not_escaped_with_dot_segments(raw: str) -> None:
    policy = Policy(allowed_urls=("https://h.example/prod",))
    with pytest.raises(PolicyRefused):
        policy.check_url(raw)
    assert policy.check_url("https://h.example/prod/./x/..") == "https://h.example/prod"


@pytest.mark.parametrize(
    "raw",
    ["https://h.example/prod/%2e%2e", "https://h.example/prod/%2E%2e/x", "https://h.example/prod%2F..%2Fx"],
)
def test_encoded_dots_and_slashes_are_refused(raw: str) -> None:
    with pytest.raises(InvalidProfile, match="encoded"):
        Policy(allowed_urls=("https://h.example/prod",)).check_url(raw)


# -- issue 8, item 8: host names are validated fully (IDNA) when a profile is saved ----------
@pytest.mark.parametrize(
    "raw", ["https://xn--evil.weaviate.cloud", "https://a..b.example", "https://-x.example", "https://x_.y-"]
)
def test_invalid_host_names_are_refused(raw: str) -> None:
    with pytest.raises(InvalidProfile, match="host name") as err:
        Profile(name="p", url=raw)
    assert err.value.fix


def test_valid_international_host_names_are_kept() -> None:
    assert Profile(name="p", url="https://bücher.example/x").url == "https://bücher.example/x"
    assert Profile(name="p", url="https://xn--bcher-kva.example").url == "https://xn--bcher-kva.example"


def test_a_saved_profile_stricter_rules_refuse_is_ignored_not_lost(tmp_path: Path) -> None:
    """profiles.json written by an older version with a URL refused today (issue 8)."""
    store = ProfileStore(tmp_path)
    store.save(Profile(name="good", url="https://good.example.com"))
    data = json.loads(store.path.read_text())
    data["profiles"].append({"name": "evil", "url": "https://xn--evil.weaviate.cloud", "method": "api_key"})
    store.path.write_text(json.dumps(data))
    assert [p.name for p in store.list()] == ["good"]
    with pytest.raises(ProfileNotFound):
        store.get("evil")
    store.save(Profile(name="other", url="https://other.example.com"))
    assert "xn--evil" in store.path.read_text()  # nothing lost
    assert store.delete("evil") is True
    assert [p["name"] for p in json.loads(store.path.read_text())["profiles"]] == ["good", "other"]
