"""The sandbox's gRPC API follows spec weaviate-users-grpc-client.md section 2."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

grpc = pytest.importorskip("grpc", reason="grpcio comes with the 'client' extra, installed by make test")
pytest.importorskip("weaviate", reason="the generated stubs come with the official client")

from weaviate.proto.v1 import (  # noqa: E402
    base_search_pb2,
    batch_pb2,
    health_weaviate_pb2,
    search_get_pb2,
    tenants_pb2,
    weaviate_pb2_grpc,
)

from tests.test_sandbox import user_token  # noqa: E402
from weaviate_auth_widget.sandbox import Sandbox, sandbox_process  # noqa: E402


@pytest.fixture
def channel(sandbox: Sandbox) -> Iterator[Any]:
    with grpc.insecure_channel(f"127.0.0.1:{sandbox.weaviate.grpc_port}") as ch:
        yield ch


def _md(token: str | None) -> list[tuple[str, str]]:
    return [] if token is None else [("authorization", f"Bearer {token}")]


def _search(channel: Any, token: str | None, **fields: Any) -> Any:
    stub = weaviate_pb2_grpc.WeaviateStub(channel)
    request = search_get_pb2.SearchRequest(collection="Article", uses_127_api=True, **fields)
    return stub.Search(request, metadata=_md(token), timeout=5)


def _code(exc: pytest.ExceptionInfo[Any]) -> tuple[Any, str]:
    return exc.value.code(), exc.value.details()


def test_health_check_needs_no_token(sandbox: Sandbox, channel: Any) -> None:
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_weaviate_pb2.WeaviateHealthCheckRequest.SerializeToString,
        response_deserializer=health_weaviate_pb2.WeaviateHealthCheckResponse.FromString,
    )
    reply = check(health_weaviate_pb2.WeaviateHealthCheckRequest(), timeout=5)
    assert reply.status == health_weaviate_pb2.WeaviateHealthCheckResponse.SERVING


def test_search_with_api_key_returns_the_rest_objects(sandbox: Sandbox, channel: Any) -> None:
    key = sandbox.credentials.admin_api_key
    reply = _search(channel, key, limit=10)
    ids = [r.metadata.id for r in reply.results]
    assert ids == [o["id"] for o in sandbox.weaviate.objects]
    assert reply.results[0].properties.non_ref_props.fields["title"].text_value == "Hello, Weaviate"
    bm25 = _search(channel, key, bm25_search=base_search_pb2.BM25(query="tokens"))
    assert [r.properties.non_ref_props.fields["title"].text_value for r in bm25.results] == ["Tokens expire"]
    calls = sandbox.weaviate.grpc_calls
    assert [c.method for c in calls] == ["Search", "Search"]
    fp = hashlib.sha256(key.encode()).hexdigest()[:16]
    assert {c.token for c in calls} == {fp} and {c.username for c in calls} == {"admin"}
    assert key not in repr(calls)


def test_search_with_a_jwt_from_the_provider(sandbox: Sandbox, channel: Any) -> None:
    creds = sandbox.credentials
    reply = _search(channel, user_token(sandbox), limit=1)
    assert len(reply.results) == 1
    assert sandbox.weaviate.grpc_calls[-1].username == creds.username


@pytest.mark.parametrize("token", [None, "not-a-key", "a.b.c"])
def test_missing_or_bad_token_is_unknown_extract_auth(
    sandbox: Sandbox, channel: Any, token: str | None
) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        _search(channel, token)
    code, details = _code(exc)
    assert code == grpc.StatusCode.UNKNOWN
    assert details.startswith("extract auth: unauthorized: ")
    assert sandbox.weaviate.grpc_calls[-1].code == "UNKNOWN"


def test_authorization_prefix_is_case_sensitive(sandbox: Sandbox, channel: Any) -> None:
    stub = weaviate_pb2_grpc.WeaviateStub(channel)
    md = [("authorization", f"bearer {sandbox.credentials.admin_api_key}")]
    with pytest.raises(grpc.RpcError) as exc:
        stub.Search(search_get_pb2.SearchRequest(collection="Article"), metadata=md, timeout=5)
    assert _code(exc)[0] == grpc.StatusCode.UNKNOWN


def test_viewer_write_is_permission_denied_with_rbac_text(sandbox: Sandbox, channel: Any) -> None:
    stub = weaviate_pb2_grpc.WeaviateStub(channel)
    request = batch_pb2.BatchObjectsRequest(
        objects=[batch_pb2.BatchObject(collection="Article", uuid="9f0b3c1e-6a35-4d1f-9a0e-0d1c8f4b2aff")]
    )
    before = len(sandbox.weaviate.objects)
    with pytest.raises(grpc.RpcError) as exc:
        stub.BatchObjects(request, metadata=_md(sandbox.credentials.readonly_api_key), timeout=5)
    code, details = _code(exc)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details.startswith("rbac: authorization, forbidden action: user 'reader'")
    assert len(sandbox.weaviate.objects) == before
    reply = stub.BatchObjects(request, metadata=_md(sandbox.credentials.admin_api_key), timeout=5)
    assert list(reply.errors) == []
    try:
        rest = {o["id"] for o in sandbox.weaviate.objects}
        assert "9f0b3c1e-6a35-4d1f-9a0e-0d1c8f4b2aff" in rest
    finally:
        sandbox.weaviate.objects[:] = [o for o in sandbox.weaviate.objects if not o["id"].endswith("2aff")]


def test_tenants_get_and_unknown_collection(sandbox: Sandbox, channel: Any) -> None:
    stub = weaviate_pb2_grpc.WeaviateStub(channel)
    md = _md(sandbox.credentials.admin_api_key)
    assert (
        list(stub.TenantsGet(tenants_pb2.TenantsGetRequest(collection="Article"), metadata=md).tenants) == []
    )
    with pytest.raises(grpc.RpcError) as exc:
        stub.Search(search_get_pb2.SearchRequest(collection="Nope"), metadata=md, timeout=5)
    assert "could not find class Nope" in _code(exc)[1]


@pytest.mark.parametrize(("shape", "refused"), [("apikey", "jwt"), ("oidc", "key")])
def test_shapes_choose_the_scheme_as_rest_does(shape: str, refused: str) -> None:
    with (
        Sandbox.demo(shape=shape) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.weaviate.grpc_port}") as ch,
    ):
        creds = running.credentials
        assert creds is not None
        good = creds.admin_api_key if shape == "apikey" else None
        if good is not None:
            assert len(_search(ch, good).results) == 2
        bad = creds.admin_api_key if refused == "key" else "eyJ.eyJ.sig"
        with pytest.raises(grpc.RpcError) as exc:
            _search(ch, bad)
        assert _code(exc)[0] == grpc.StatusCode.UNKNOWN
        assert _code(exc)[1].startswith("extract auth: unauthorized")


def test_module_prints_the_grpc_port() -> None:
    with sandbox_process("--shape", "apikey") as info:
        port = info["grpc_port"]
        assert isinstance(port, int) and port > 0
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            assert len(_search(ch, info["credentials"]["admin_api_key"]).results) == 2
