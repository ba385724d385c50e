"""A local Weaviate double and OpenID provider, for tests and demos (loopback only).

``Sandbox.demo()`` starts both with throwaway credentials on free ports; ``python -m
weaviate_auth_widget.sandbox`` does the same in the foreground, on fixed ports with
credentials that stay the same across runs (see ``demo_setup``). Each double serves REST
and gRPC (``double.grpc_port``). Needs the ``sandbox`` extra (``joserfc`` for signing
tokens; ``weaviate-client`` and ``grpcio`` for the gRPC API).

Names are imported on first use, so ``python -m weaviate_auth_widget.sandbox`` can say
which extra is missing instead of failing on the package's own import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .idp import IdentityProvider, IdPClient, IdPConfig, IdPUser
    from .idp_interactive import InteractiveSettings
    from .runner import SHAPES, DemoCredentials, Sandbox, sandbox_process
    from .weaviate import GrpcCall, Principal, RecordedRequest, WeaviateConfig, WeaviateDouble

_WHERE = {
    "SHAPES": "runner",
    "GrpcCall": "weaviate",
    "IdentityProvider": "idp",
    "IdPClient": "idp",
    "IdPConfig": "idp",
    "IdPUser": "idp",
    "InteractiveSettings": "idp_interactive",
    "DemoCredentials": "runner",
    "Sandbox": "runner",
    "sandbox_process": "runner",
    "Principal": "weaviate",
    "RecordedRequest": "weaviate",
    "WeaviateConfig": "weaviate",
    "WeaviateDouble": "weaviate",
}

__all__ = [
    "SHAPES",
    "DemoCredentials",
    "GrpcCall",
    "IdPClient",
    "IdPConfig",
    "IdPUser",
    "IdentityProvider",
    "InteractiveSettings",
    "Principal",
    "RecordedRequest",
    "Sandbox",
    "WeaviateConfig",
    "WeaviateDouble",
    "sandbox_process",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
