"""The double's gRPC API: ``weaviate.v1.Weaviate`` and ``grpc.health.v1.Health``.

Served by grpcio's thread-pool server (an aio server on the sandbox's loop would share
grpcio's poller with any async client in the same process) from the generated
``weaviate.v1`` modules that ``weaviate-client`` ships (spec
``weaviate-users-grpc-client.md`` section 2), over the same objects and the same authentication code as the REST side: a token in
metadata ``authorization`` goes through :meth:`WeaviateDouble.authenticate`, a refused
one comes back as UNKNOWN ``extract auth: unauthorized: ...``, a forbidden write as
PERMISSION_DENIED ``rbac: ...``. Health needs no token. Each call is recorded with a
fingerprint of its token (a sha256 prefix, never the token).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from google.protobuf import struct_pb2
from weaviate.proto.v1 import (
    batch_pb2,
    health_weaviate_pb2,
    properties_pb2,
    search_get_pb2,
    tenants_pb2,
    weaviate_pb2_grpc,
)

from . import data
from .weaviate import AuthFailure, Principal, WeaviateDouble, fingerprint

T = TypeVar("T")
#: grpc.ServicerContext (grpcio ships no usable type stubs)
Context = Any


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class WeaviateServicer(weaviate_pb2_grpc.WeaviateServicer):  # type: ignore[misc]
    """Search, BatchObjects and TenantsGet; the rest answer UNIMPLEMENTED (the base class)."""

    def __init__(self, double: WeaviateDouble, loop: asyncio.AbstractEventLoop) -> None:
        self.double = double
        self.loop = loop

    def _call(self, name: str, context: Context, body: Callable[[Principal | None], T]) -> T:
        """Delay, authenticate, run ``body``, record; errors become the statuses Weaviate sends.

        The call is recorded before its answer leaves, so a client never sees an answer
        before the log does.
        """
        double = self.double
        _delay(double)
        token = _bearer(context.invocation_metadata() or ())
        principal: Principal | None = None

        def record(code: grpc.StatusCode) -> None:
            who = principal.username if principal else None
            double.record_grpc(name, fingerprint(token) if token else None, who, code.name)

        try:
            principal = self._principal(token)
            reply = body(principal)
        except _Abort as exc:
            record(exc.code)
            context.abort(exc.code, exc.details)
            raise  # pragma: no cover - abort raises
        record(grpc.StatusCode.OK)
        return reply

    def _principal(self, token: str | None) -> Principal | None:
        double = self.double
        if token is None:
            if double.config.anonymous:
                return None
            raise _Abort(grpc.StatusCode.UNKNOWN, f"extract auth: unauthorized: {double.anonymous_message()}")
        try:
            # the double's token verifier lives on the sandbox's loop
            future = asyncio.run_coroutine_threadsafe(double.authenticate(token), self.loop)
            return future.result(15)
        except AuthFailure as exc:
            message = (
                exc.message if exc.message.startswith("unauthorized") else f"unauthorized: {exc.message}"
            )
            raise _Abort(grpc.StatusCode.UNKNOWN, f"extract auth: {message}") from None

    def Search(self, request: Any, context: Context) -> Any:
        def body(principal: Principal | None) -> Any:
            _check_collection(request.collection)
            return search_reply(request, self.double.objects)

        return self._call("Search", context, body)

    def BatchObjects(self, request: Any, context: Context) -> Any:
        def body(principal: Principal | None) -> Any:
            errors = []
            for index, obj in enumerate(request.objects):
                denied = self.double.forbidden_write(principal, obj.collection)
                if denied:
                    raise _Abort(grpc.StatusCode.PERMISSION_DENIED, denied)
                try:
                    stored = data.new_object(_batch_body(obj))
                except ValueError as exc:
                    errors.append(batch_pb2.BatchObjectsReply.BatchError(index=index, error=str(exc)))
                    continue
                self.double.objects.append(stored)
            return batch_pb2.BatchObjectsReply(took=0.001, errors=errors)

        return self._call("BatchObjects", context, body)

    def TenantsGet(self, request: Any, context: Context) -> Any:
        def body(principal: Principal | None) -> Any:
            _check_collection(request.collection)
            # The one collection is not multi-tenant: no tenants to list.
            return tenants_pb2.TenantsGetReply(took=0.001, tenants=[])

        return self._call("TenantsGet", context, body)


def _check_collection(name: str) -> None:
    if name != data.CLASS:
        raise _Abort(grpc.StatusCode.UNKNOWN, f"could not find class {name} in schema")


def _bearer(metadata: Sequence[tuple[str, Any]]) -> str | None:
    """The first ``authorization`` value with a case-sensitive ``Bearer `` prefix."""
    for key, value in metadata:
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else str(value)
            return text[7:] if text.startswith("Bearer ") and text[7:] else None
    return None


def _batch_body(obj: Any) -> dict[str, Any]:
    props: dict[str, Any] = {}
    if obj.properties.HasField("non_ref_properties"):
        props = {k: _plain(v) for k, v in obj.properties.non_ref_properties.fields.items()}
    return {"class": obj.collection, "id": obj.uuid or str(uuid.uuid4()), "properties": props}


def _plain(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    return None if kind in (None, "null_value") else getattr(value, kind)


def _ranked(request: Any, objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], float | None]]:
    """bm25 ranks by how many query words an object holds; near_text keeps a fixed order."""
    if request.HasField("bm25_search"):
        words = request.bm25_search.query.lower().split()
        scored = []
        for obj in objects:
            text = " ".join(str(v) for v in obj["properties"].values()).lower()
            score = float(sum(text.count(w) for w in words))
            if score > 0:
                scored.append((obj, score))
        return sorted(scored, key=lambda pair: -(pair[1] or 0.0))
    return [(obj, None) for obj in objects]


def search_reply(request: Any, objects: list[dict[str, Any]]) -> Any:
    """A SearchReply over ``objects``: limit, offset, the properties and metadata asked for."""
    ranked = _ranked(request, objects)
    start = request.offset or 0
    end = start + request.limit if request.limit else None
    # No properties request, or return_all_nonref_properties: every property (Weaviate's default).
    props = request.properties
    wanted = list(data.FIELDS)
    if request.HasField("properties") and not props.return_all_nonref_properties:
        wanted = list(props.non_ref_properties)
    meta_req = request.metadata
    results: list[Any] = []
    for obj, score in ranked[start:end]:
        fields = {
            name: properties_pb2.Value(text_value=str(obj["properties"][name]))
            for name in wanted
            if obj["properties"].get(name) is not None
        }
        metadata = search_get_pb2.MetadataResult(
            id=obj["id"],
            id_as_bytes=uuid.UUID(obj["id"]).bytes,
        )
        if meta_req.creation_time_unix:
            metadata.creation_time_unix = obj["creationTimeUnixMs"]
            metadata.creation_time_unix_present = True
        if meta_req.last_update_time_unix:
            metadata.last_update_time_unix = obj["lastUpdateTimeUnixMs"]
            metadata.last_update_time_unix_present = True
        if meta_req.score and score is not None:
            metadata.score = score
            metadata.score_present = True
        if meta_req.distance and request.HasField("near_text"):
            metadata.distance = 0.1 * len(results)
            metadata.distance_present = True
        results.append(
            search_get_pb2.SearchResult(
                properties=search_get_pb2.PropertiesResult(
                    target_collection=data.CLASS,
                    non_ref_props=properties_pb2.Properties(fields=fields),
                ),
                metadata=metadata,
            )
        )
    return search_get_pb2.SearchReply(took=0.001, results=results)


def _health_handler(double: WeaviateDouble) -> grpc.GenericRpcHandler:
    """``grpc.health.v1.Health/Check``: always SERVING, no authentication (spec section 2)."""
    serving = health_weaviate_pb2.WeaviateHealthCheckResponse.SERVING

    def check(request: Any, context: Context) -> Any:
        _delay(double)
        double.record_grpc("Health/Check", None, None, "OK")
        return health_weaviate_pb2.WeaviateHealthCheckResponse(status=serving)

    return grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                check,
                request_deserializer=health_weaviate_pb2.WeaviateHealthCheckRequest.FromString,
                response_serializer=health_weaviate_pb2.WeaviateHealthCheckResponse.SerializeToString,
            )
        },
    )


def _delay(double: WeaviateDouble) -> None:
    if double.config.delay > 0:
        time.sleep(double.config.delay)


def serve_grpc(
    double: WeaviateDouble, host: str, port: int, loop: asyncio.AbstractEventLoop
) -> tuple[grpc.Server, int]:
    """Start the gRPC server; port 0 picks a free one, which is returned."""
    server = grpc.server(ThreadPoolExecutor(max_workers=16, thread_name_prefix="sandbox-grpc"))
    servicer = WeaviateServicer(double, loop)
    weaviate_pb2_grpc.add_WeaviateServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    server.add_generic_rpc_handlers((_health_handler(double),))
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = server.add_insecure_port(address)
    server.start()
    return server, bound


def stop_grpc(server: grpc.Server) -> None:
    server.stop(None).wait(5)


__all__ = ["WeaviateServicer", "search_reply", "serve_grpc", "stop_grpc"]
