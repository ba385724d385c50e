"""Defaults of the extension's traits from the environment (containers, JupyterHub
spawners): a setting in ``jupyter_server_config.py`` or on the command line wins."""

from __future__ import annotations

import logging
import os

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def env(name: str) -> str | None:
    """The variable's value, None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def env_list(name: str) -> list[str]:
    """A comma-separated variable's items (blank items dropped)."""
    return [p.strip() for p in (env(name) or "").split(",") if p.strip()]


def env_bool(name: str, *, default: bool, safe: bool, log: logging.Logger) -> bool:
    """A true/false variable; a value that is neither is logged and read as ``safe``."""
    raw = env(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    log.error("weaviate-auth: %s=%r is not true or false; using %s.", name, raw[:20], safe)
    return safe


__all__ = ["env", "env_bool", "env_list"]
