"""Sign in to Weaviate from Jupyter without a secret ever landing in a notebook.

Imports are lazy: ``import weaviate_auth_widget`` costs little more than ``import
httpx``; widgets and server code load only when used. Imported inside IPython (a
kernel, a terminal), it registers the short display of its errors
(:mod:`weaviate_auth_widget.ipython_errors`); so does ``%load_ext``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AuthService": ".service",
    "Identity": ".identity",
    "Profile": ".profiles",
    "ProfileStore": ".profiles",
    "Policy": ".policy",
    "SecretStore": ".secrets",
    "Token": ".tokens",
    "WeaviateSession": ".session",
    "AsyncWeaviateSession": ".session",
    "HttpSettings": ".transport",
    "connect": ".chain",
    "default_service": ".chain",
    "errors": ".errors",
    "LoginPanel": ".widget",
    "login_panel": ".widget",
}

if TYPE_CHECKING:
    from . import errors as errors
    from .chain import connect as connect
    from .chain import default_service as default_service
    from .identity import Identity as Identity
    from .policy import Policy as Policy
    from .profiles import Profile as Profile
    from .profiles import ProfileStore as ProfileStore
    from .secrets import SecretStore as SecretStore
    from .service import AuthService as AuthService
    from .session import AsyncWeaviateSession as AsyncWeaviateSession
    from .session import WeaviateSession as WeaviateSession
    from .tokens import Token as Token
    from .transport import HttpSettings as HttpSettings
    from .widget import LoginPanel as LoginPanel
    from .widget import login_panel as login_panel


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext weaviate_auth_widget`` registers the ``%weaviate_auth`` magic and the
    short display of this package's errors."""
    from .ipython_errors import register
    from .magic import load_ipython_extension as load

    load(ipython)
    register(ipython)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    mod = import_module(module, __name__)
    value = mod if name == "errors" else getattr(mod, name)
    globals()[name] = value
    return value


__all__ = sorted(_EXPORTS)


def _register_error_display() -> None:
    from .ipython_errors import register_in_running_ipython

    register_in_running_ipython()


_register_error_display()
