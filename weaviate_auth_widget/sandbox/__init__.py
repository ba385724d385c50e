"""A local Weaviate double and OpenID provider, for tests and demos (loopback only).

``Sandbox.demo()`` starts both with throwaway credentials; ``python -m
weaviate_auth_widget.sandbox`` does the same in the foreground. Each double serves REST
and gRPC (``double.grpc_port``). Needs the ``sandbox`` extra (``joserfc`` for signing
tokens; ``weaviate-client`` and ``grpcio`` for the gRPC API).
"""

from __future__ import annotations

from .idp import IdentityProvider, IdPClient, IdPConfig, IdPUser
from .runner import SHAPES, DemoCredentials, Sandbox, sandbox_process
from .weaviate import GrpcCall, Principal, RecordedRequest, WeaviateConfig, WeaviateDouble

__all__ = [
    "SHAPES",
    "DemoCredentials",
    "GrpcCall",
    "IdPClient",
    "IdPConfig",
    "IdPUser",
    "IdentityProvider",
    "Principal",
    "RecordedRequest",
    "Sandbox",
    "WeaviateConfig",
    "WeaviateDouble",
    "sandbox_process",
]
