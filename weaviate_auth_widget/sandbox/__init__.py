"""A local Weaviate double and OpenID provider, for tests and demos (loopback only).

``Sandbox.demo()`` starts both with throwaway credentials; ``python -m
weaviate_auth_widget.sandbox`` does the same in the foreground. Needs the ``sandbox``
extra (``joserfc``) for signing tokens.
"""

from __future__ import annotations

from .idp import IdentityProvider, IdPClient, IdPConfig, IdPUser
from .runner import DemoCredentials, Sandbox, sandbox_process
from .weaviate import Principal, RecordedRequest, WeaviateConfig, WeaviateDouble

__all__ = [
    "DemoCredentials",
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
