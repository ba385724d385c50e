"""Shared fixtures."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# --- sandbox: a local Weaviate double + OpenID provider (weaviate_auth_widget.sandbox) ---


@pytest.fixture(scope="session")
def sandbox_session() -> Iterator[Any]:
    """The demo sandbox, started once per session (see ``Sandbox.demo``)."""
    from weaviate_auth_widget.sandbox import Sandbox

    with Sandbox.demo() as running:
        yield running


@pytest.fixture(scope="module")
def sandbox_default_grpc() -> Iterator[Any]:
    """A sandbox serving gRPC on Weaviate's own port (50051), where the official client
    looks with its defaults: for what users run as written (README, quickstart)."""
    from weaviate_auth_widget.sandbox import Sandbox
    from weaviate_auth_widget.sandbox.demo_setup import DEFAULT_GRPC_PORT

    with Sandbox.demo(grpc_port=DEFAULT_GRPC_PORT) as running:
        yield running


@pytest.fixture
def sandbox(sandbox_session: Any) -> Any:
    """The session's demo sandbox with its counters and request logs zeroed."""
    sandbox_session.reset_stats()
    return sandbox_session


@pytest.fixture
def weaviate_factory(sandbox_session: Any) -> Iterator[Callable[..., Any]]:
    """``make(config=None, **fields) -> WeaviateDouble``: another double sharing the session's
    provider (OIDC doubles without an issuer get it), stopped after the test."""
    from weaviate_auth_widget.sandbox import WeaviateConfig

    urls: list[str] = []

    def make(config: Any = None, **fields: Any) -> Any:
        if config is None:
            config = WeaviateConfig(**fields)
        elif fields:
            config = dataclasses.replace(config, **fields)
        url = sandbox_session.add_weaviate(config)
        urls.append(url)
        return sandbox_session.weaviates[url]

    yield make
    for url in urls:
        sandbox_session.remove_weaviate(url)


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Any]]:
    """``make(idp=IdPConfig|None, weaviate=WeaviateConfig|None, **kw) -> Sandbox``, started;
    stopped after the test. For provider settings (lifetimes, delays, users) of one's own."""
    from weaviate_auth_widget.sandbox import Sandbox

    made: list[Any] = []

    def make(idp: Any = None, weaviate: Any = None, **kwargs: Any) -> Any:
        running = Sandbox(idp, weaviate, **kwargs).start()
        made.append(running)
        return running

    yield make
    for running in made:
        running.stop()
