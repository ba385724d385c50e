"""The official weaviate-client v4 handed our login (REST only: no gRPC server here)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import byte_sink
from weaviate_auth_widget.client import grpc_target
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import Sandbox
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService

pytest.importorskip("weaviate", reason="the official client is the 'client' extra, installed by make test")


def _service(tmp_path: Path) -> AuthService:
    return AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path))


def test_api_key_client(tmp_path: Path, sandbox: Sandbox) -> None:
    service = _service(tmp_path)
    service.save_profile(
        Profile(name="k", url=sandbox.weaviate_url, headers=("X-OpenAI-Api-Key",)),
        {"api_key": sandbox.credentials.admin_api_key, "header:X-OpenAI-Api-Key": "sk-test"},
    )
    with service.session("k") as session:
        client = session.weaviate_client(skip_init_checks=True)
        try:
            assert client.get_meta()["version"] == sandbox.weaviate_config.version
            assert "Article" in client.collections.list_all(simple=True)
        finally:
            client.close()
    seen = [r for r in sandbox.weaviate.requests if "x-weaviate-client" in r.headers]
    assert {r.path for r in seen} >= {"/v1/meta", "/v1/schema"}
    assert all(r.username == "admin" for r in seen)
    assert all("x-openai-api-key" in r.headers for r in seen)
    service.close()


def test_oidc_client_keeps_working_over_several_expiries(tmp_path: Path, sandbox_factory: Any) -> None:
    demo = Sandbox.demo(token_lifetime=3)
    running = sandbox_factory(demo.idp.config, demo._first_config, credentials=demo.credentials)
    creds = running.credentials
    service = _service(tmp_path)
    profile = Profile(name="pw", url=running.weaviate_url, method="password", username=creds.username)
    service.save_profile(profile, {"password": creds.password})
    session = service.session("pw")
    client = session.weaviate_client(skip_init_checks=True)
    try:
        deadline = time.time() + 10  # more than three token lifetimes
        while time.time() < deadline:
            assert client.get_meta()["version"]
            assert "Article" in client.collections.list_all(simple=True)
            time.sleep(0.5)
    finally:
        client.close()
        session.close()
    assert running.idp_stats()["token"]["refresh_token"] >= 3
    users = {r.username for r in running.weaviate.requests if r.path == "/v1/schema"}
    assert users == {creds.username}
    service.close()


def test_grpc_to_a_loopback_cluster_never_goes_through_a_proxy(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weaviate.classes.query import Filter
    from weaviate.config import AdditionalConfig, Timeout
    from weaviate.exceptions import WeaviateDeleteManyError

    service = _service(tmp_path)
    service.save_profile(
        Profile(name="k", url=sandbox.weaviate_url), {"api_key": sandbox.credentials.admin_api_key}
    )
    with byte_sink() as (proxy, received):
        for name in ("grpc_proxy", "https_proxy", "http_proxy", "HTTPS_PROXY", "HTTP_PROXY"):
            monkeypatch.setenv(name, proxy)
        for name in ("no_grpc_proxy", "no_proxy", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        with service.session("k") as session:
            quick = AdditionalConfig(timeout=Timeout(insert=2))  # the caller's config is kept, merged
            client = session.weaviate_client(skip_init_checks=True, additional_config=quick)
            try:
                assert client._connection.timeout_config.insert == 2
                articles = client.collections.get("Article")
                with pytest.raises(WeaviateDeleteManyError, match="UNAVAILABLE"):  # no gRPC server here
                    articles.data.delete_many(where=Filter.by_property("title").equal("x"))  # gRPC, no retry
            finally:
                client.close()
    assert received == []
    service.close()


def test_grpc_targets_follow_cloud_naming() -> None:
    assert grpc_target("https://abc.europe-west3.gcp.weaviate.cloud") == (
        "grpc-abc.europe-west3.gcp.weaviate.cloud",
        443,
        True,
    )
    assert grpc_target("https://abc.weaviate.network") == ("abc.grpc.weaviate.network", 443, True)
    assert grpc_target("http://localhost:8080") == ("localhost", 50051, False)
