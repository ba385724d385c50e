"""The device prompt's HTML: the provider names the link and the code, so both are
escaped before they reach a notebook's output (the real-kernel test in
test_device_login.py uses the sandbox's tame values)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from IPython import display as ipython_display

from weaviate_auth_widget import device


def test_a_hostile_link_and_code_are_escaped_in_the_notebook_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[dict[str, str]] = []

    def capture(data: dict[str, str], raw: bool = False, **_: Any) -> None:
        assert raw
        shown.append(data)

    monkeypatch.setattr(device, "_rich_display", lambda: True)
    monkeypatch.setattr(ipython_display, "display", capture)
    code = device.DeviceCode(
        user_code="<b>AB&CD</b>",
        verification_uri="https://idp.example/device",
        verification_uri_complete="https://idp.example/device?code=x'onmouseover='alert(1)&a=<i>",
        expires_at=time.time() + 600,
        interval=5,
        provider_host="idp.example",
        device_code="dc-secret-value",
    )
    device.show_device_code(code)
    [data] = shown
    page = data["text/html"]
    assert "href='https://idp.example/device?code=x&#x27;onmouseover=&#x27;alert(1)&amp;a=&lt;i&gt;'" in page
    assert "<code>&lt;b&gt;AB&amp;CD&lt;/b&gt;</code>" in page
    assert "<b>" not in page and "<i>" not in page
    assert "dc-secret-value" not in page + data["text/plain"]
    assert "https://idp.example/device" in data["text/plain"] and "<b>AB&CD</b>" in data["text/plain"]
