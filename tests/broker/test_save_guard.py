"""The save-time guard: secrets never reach files saved through Jupyter."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import nbformat
import pytest

from weaviate_auth_widget.broker.save_guard import REDACTED, SaveGuard, redact_model, secret_forms

KEY = "sk-Live/Key+with=odd&chars_0123456789"
TOKEN_LIKE = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJkZW1vIn0.c2lnbmF0dXJl"


def forms_of(value: str) -> list[str]:
    data = value.encode()
    out = [
        value,
        base64.b64encode(data).decode(),
        base64.b64encode(data).decode().rstrip("="),
        base64.urlsafe_b64encode(data).decode(),
        base64.urlsafe_b64encode(data).decode().rstrip("="),
        quote(value, safe=""),
        quote_plus(value),
        re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(value, safe="")),
    ]
    return [f for f in out if f]


def test_secret_forms_cover_encodings() -> None:
    literals, regexes = secret_forms(KEY)
    for form in forms_of(KEY):
        assert form in literals or any(re.fullmatch(r, form) for r in regexes), form
    assert json.dumps(KEY)[1:-1] in literals


def make_guard(*values: str) -> SaveGuard:
    frozen = frozenset(values)
    return SaveGuard(lambda: frozen)


def test_redacts_every_form_everywhere() -> None:
    guard = make_guard(KEY, TOKEN_LIKE)
    forms = guard.forms()
    assert forms is not None
    blob = base64.b64encode(b"prefix!" + KEY.encode() + b"suffix").decode()  # embedded, unaligned
    lower_hex = quote(KEY, safe="").replace("%2F", "%2f").replace("%2B", "%2b")
    model = {
        "type": "notebook",
        "content": {
            "cells": [
                {"source": [f"key = '{KEY}'\n", "print(1)"], "outputs": [{"text": f"Bearer {TOKEN_LIKE}"}]},
                {"source": f"url = 'https://x/?k={quote_plus(KEY)}'", "metadata": {KEY: "as a key"}},
                {"source": lower_hex, "attachments": {"a.png": {"image/png": blob}}},
            ],
            "metadata": {
                "widgets": {
                    "state": {"m": {"state": {"value": base64.urlsafe_b64encode(KEY.encode()).decode()}}}
                },
                "deep": [[[[[{"x": base64.b64encode(TOKEN_LIKE.encode()).decode().rstrip("=")}]]]]],
            },
        },
    }
    count = redact_model(model, forms)
    assert count == 8
    text = json.dumps(model)
    for value in (KEY, TOKEN_LIKE):
        for form in forms_of(value):
            assert form not in text, form
    assert REDACTED in text
    assert model["content"]["cells"][0]["source"][1] == "print(1)"


@pytest.mark.parametrize("shift", [0, 1, 2, 3, 4, 5])
def test_embedded_base64_at_any_offset(shift: int) -> None:
    forms = make_guard(KEY).forms()
    assert forms is not None
    payload = os.urandom(shift) + b"Authorization: Basic " + KEY.encode() + os.urandom(7)
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        model = {"type": "file", "format": "text", "content": encode(payload).decode()}
        assert redact_model(model, forms) >= 1, (shift, encode)


def test_files_text_and_binary() -> None:
    forms = make_guard(KEY).forms()
    assert forms is not None
    text = {"type": "file", "format": "text", "content": f"API_KEY={KEY}\n"}
    assert redact_model(text, forms) == 1 and text["content"] == f"API_KEY={REDACTED}\n"
    raw = b"\x00\x01binary" + KEY.encode() + b"\xff"
    binary = {"type": "file", "format": "base64", "content": base64.b64encode(raw).decode()}
    assert redact_model(binary, forms) == 1
    assert base64.b64decode(binary["content"]) == b"\x00\x01binary" + REDACTED.encode() + b"\xff"
    clean = {"type": "file", "format": "text", "content": "nothing here"}
    assert redact_model(clean, forms) == 0 and clean["content"] == "nothing here"
    assert redact_model({"type": "directory", "content": None}, forms) == 0


def test_no_secrets_no_work() -> None:
    calls = []

    def values() -> frozenset[str]:
        calls.append(1)
        return frozenset()

    guard = SaveGuard(values)
    model = {"type": "file", "format": "text", "content": "x" * 10}
    guard.pre_save_hook(model=model, path="a.txt")
    assert guard.forms() is None and model["content"] == "x" * 10


def test_forms_are_cached_by_identity_and_remembered() -> None:
    current = {"set": frozenset({KEY})}
    guard = SaveGuard(lambda: current["set"])
    first = guard.forms()
    assert guard.forms() is first  # same frozenset: nothing recompiled
    current["set"] = frozenset({KEY})  # equal, new object
    assert guard.forms() is first
    current["set"] = frozenset({TOKEN_LIKE})  # KEY forgotten by the service...
    forms = guard.forms()
    assert forms is not None and forms is not first
    model = {"type": "file", "format": "text", "content": KEY + TOKEN_LIKE}
    assert redact_model(model, forms) == 2  # ...but still redacted: it may still work


def test_failing_secret_source_uses_what_it_knew() -> None:
    state = {"fail": False}

    def values() -> frozenset[str]:
        if state["fail"]:
            raise RuntimeError("keyring locked")
        return frozenset({KEY})

    guard = SaveGuard(values)
    known = guard.forms()
    state["fail"] = True
    assert guard.forms() is known


# -- through the contents API ------------------------------------------------------------------
def _notebook(secrets: list[str]) -> dict[str, Any]:
    key, header_key, token = secrets
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            source=f"client = connect(api_key='{key}')",
            outputs=[
                nbformat.v4.new_output("stream", name="stdout", text=f"token: {token}\n"),
                nbformat.v4.new_output(
                    "execute_result",
                    data={
                        "text/plain": base64.b64encode(key.encode()).decode(),
                        "application/json": {"url": f"https://h/?key={quote(header_key, safe='')}"},
                    },
                    execution_count=1,
                ),
            ],
            execution_count=1,
        ),
        nbformat.v4.new_markdown_cell(source=base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")),
    ]
    nb.cells[0].metadata["debug"] = {"headers": {"X-OpenAI-Api-Key": header_key}}
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {
            "state": {"abc": {"model_name": "PasswordModel", "state": {"value": key}}},
            "version_major": 2,
            "version_minor": 0,
        }
    }
    return dict(nb)


@pytest.fixture
def save(jp_fetch: Any, jp_asyncio_loop: Any) -> Any:
    """Save ``model`` at ``path`` through the contents API (``PUT /api/contents/...``)."""

    def put(path: str, model: dict[str, Any]) -> None:
        response = jp_asyncio_loop.run_until_complete(
            jp_fetch("api", "contents", path, method="PUT", body=json.dumps(model))
        )
        assert response.code in (200, 201), response.body[:300]

    return put


@pytest.fixture
def logged_in_secrets(api: Any, sandbox: Any) -> list[str]:
    key = sandbox.credentials.admin_api_key
    header_key = "sk-openai-" + "Zq9/" * 8
    body = {
        "url": sandbox.weaviate_url,
        "headers": ["X-OpenAI-Api-Key"],
        "secrets": {"api_key": key, "header:X-OpenAI-Api-Key": header_key},
    }
    assert api("PUT", "profiles/p", json_body=body).code == 200
    creds = sandbox.credentials
    password = {"url": sandbox.weaviate_url, "method": "password", "username": creds.username}
    assert (
        api("PUT", "profiles/pw", json_body={**password, "secrets": {"password": creds.password}}).code == 200
    )
    token = api("POST", "profiles/pw/token").json()["token"]
    return [key, header_key, token]


def test_contents_api_saves_are_redacted(
    save: Any, logged_in_secrets: list[str], jp_root_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    save("leaky.ipynb", {"type": "notebook", "content": _notebook(logged_in_secrets)})
    save("notes.txt", {"type": "file", "format": "text", "content": "k=" + logged_in_secrets[0]})
    binary = b"\x89PNG" + logged_in_secrets[2].encode() + b"\x00"
    save("blob.bin", {"type": "file", "format": "base64", "content": base64.b64encode(binary).decode()})

    for name in ("leaky.ipynb", "notes.txt", "blob.bin"):
        on_disk = (jp_root_dir / name).read_bytes()
        for value in logged_in_secrets:
            for form in forms_of(value):
                assert form.encode() not in on_disk, (name, form[:12])
        assert REDACTED.encode() in on_disk
    saved = nbformat.reads((jp_root_dir / "leaky.ipynb").read_text(), as_version=4)
    nbformat.validate(saved)
    state = saved.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert state["abc"]["state"]["value"] == REDACTED

    warnings = [r.getMessage() for r in caplog.records if "redacted" in r.getMessage()]
    assert any("leaky.ipynb" in w and "redacted 7 secret value(s)" in w for w in warnings), warnings
    assert any("notes.txt" in w for w in warnings)
    for record in caplog.records:
        for value in logged_in_secrets:
            assert value not in record.getMessage()


def inject_secret_hook(model: dict[str, Any], **_: Any) -> None:
    """An administrator's own pre-save hook (runs before the guard) that adds a secret."""
    if model.get("type") == "notebook":
        model["content"]["metadata"]["injected"] = os.environ.get("TEST_INJECTED_SECRET", "")
        model["content"]["metadata"]["own_hook_ran"] = True


@pytest.mark.filterwarnings("ignore:Overriding existing pre_save_hook:UserWarning")  # config applied twice
@pytest.mark.parametrize(
    ("extra_config", "broker_environ"),
    [
        (
            {"FileContentsManager": {"pre_save_hook": inject_secret_hook}},
            {"TEST_INJECTED_SECRET": "placeholder"},
        )
    ],
)
def test_guard_chains_with_a_configured_hook(
    save: Any, logged_in_secrets: list[str], jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_INJECTED_SECRET", logged_in_secrets[0])
    save("chained.ipynb", {"type": "notebook", "content": _notebook(logged_in_secrets)})
    saved = json.loads((jp_root_dir / "chained.ipynb").read_text())
    assert saved["metadata"]["own_hook_ran"] is True
    assert saved["metadata"]["injected"] == REDACTED


@pytest.mark.parametrize("broker_config", [{"save_guard": False}])
def test_guard_can_be_turned_off(save: Any, logged_in_secrets: list[str], jp_root_dir: Path) -> None:
    save("plain.txt", {"type": "file", "format": "text", "content": logged_in_secrets[0]})
    assert (jp_root_dir / "plain.txt").read_text() == logged_in_secrets[0]


def test_whole_forms_are_replaced_not_just_their_core() -> None:
    forms = make_guard(KEY).forms()
    assert forms is not None
    padded = base64.b64encode(KEY.encode()).decode()
    assert padded.endswith("=")
    model = {"type": "notebook", "content": {"a": padded, "b": f"x{quote(KEY, safe='')}y"}}
    assert redact_model(model, forms) == 2
    assert model["content"] == {"a": REDACTED, "b": f"x{REDACTED}y"}


def test_big_clean_strings_are_checked_once_per_secret_set() -> None:
    current = {"set": frozenset({KEY})}
    guard = SaveGuard(lambda: current["set"])
    output = "row\n" * 5000
    forms = guard.forms()
    assert forms is not None
    assert redact_model({"type": "notebook", "content": {"text": output}}, forms) == 0
    assert (len(output), hash(output)) in forms.clean
    # a secret learned later is found in the same (previously clean) string
    tainted = output + TOKEN_LIKE
    assert redact_model({"type": "notebook", "content": {"text": tainted}}, forms) == 0
    current["set"] = frozenset({KEY, TOKEN_LIKE})
    fresh = guard.forms()
    assert fresh is not None and fresh is not forms and not fresh.clean
    model = {"type": "notebook", "content": {"text": tainted}}
    assert redact_model(model, fresh) == 1
    assert model["content"]["text"].endswith(REDACTED)


# -- forms broken across lines, list items and upload chunks ---------------------------------
def all_text(node: Any) -> str:
    """Every string of a parsed notebook (multiline lists joined, as nbformat reads
    them), line breaks removed: where a broken or split form would show whole."""
    out: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            out.extend(k for k in item if isinstance(k, str))
            stack.extend(item.values())
        elif isinstance(item, list) and item and all(isinstance(v, str) for v in item):
            out.append("".join(item))
        elif isinstance(item, list):
            stack.extend(item)
    return "\x00".join(out).replace("\n", "").replace("\r", "")


def assert_no_form(text: str, values: list[str]) -> None:
    for value in values:
        literals, regexes = secret_forms(value)
        for form in literals:
            assert form not in text, form[:12]
        for regex in regexes:
            assert not re.search(regex, text)


def png_with_text(text: bytes) -> bytes:
    """A small real PNG whose tEXt chunk holds ``text`` (from byte 49 on: its base64
    crosses the 76-column line break)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"tEXt", b"Comment\x00" + text)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


def test_forms_broken_across_lines_are_redacted() -> None:
    forms = make_guard(KEY).forms()
    assert forms is not None
    wrapped = base64.encodebytes(b"x" * 40 + KEY.encode() + b"y" * 40).decode()  # 76 columns
    assert KEY not in base64.b64decode(wrapped.replace("\n", "")[:76]).decode("latin-1")
    split = f"api_key = 'sk-{KEY[3:12]}\n{KEY[12:]}'"  # a line break inside the value
    for text in (wrapped, wrapped.replace("\n", "\r\n"), split, KEY[:20] + "\n" + KEY[20:]):
        model = {"type": "file", "format": "text", "content": text}
        assert redact_model(model, forms) >= 1, text
        assert_no_form(model["content"].replace("\n", "").replace("\r", ""), [KEY])
    binary = {"type": "file", "format": "base64", "content": base64.encodebytes(wrapped.encode()).decode()}
    assert redact_model(binary, forms) == 1
    assert_no_form(base64.b64decode(binary["content"]).decode().replace("\n", ""), [KEY])


def test_a_secret_split_across_list_items_is_redacted() -> None:
    forms = make_guard(KEY).forms()
    assert forms is not None
    cut = 15
    lines = [f"key = '{KEY[:cut]}", f"{KEY[cut:]}'\n", "print(key)\n"]
    tags = ["keep", "these"]
    model = {"type": "notebook", "content": {"cells": [{"source": lines, "metadata": {"tags": tags}}]}}
    assert redact_model(model, forms) == 1
    source = model["content"]["cells"][0]["source"]
    assert "".join(source) == f"key = '{REDACTED}'\nprint(key)\n" and source[-1] == "print(key)\n"
    assert tags == ["keep", "these"]


def test_wrapped_png_and_split_lists_through_the_contents_api(
    save: Any, logged_in_secrets: list[str], jp_root_dir: Path
) -> None:
    key, header_key, token = logged_in_secrets
    png = base64.encodebytes(png_with_text(b"Authorization: Bearer " + token.encode())).decode()
    wrapped_key = base64.encodebytes(b"api_key=" + key.encode()).decode().splitlines(keepends=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            source=[
                f"connect(api_key='{key[:9]}",
                f"{key[9:]}')\n",
                f"h = '{header_key[:5]}",
                header_key[5:],
            ],
            outputs=[
                nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": wrapped_key}),
                nbformat.v4.new_output("stream", name="stdout", text=[token[:30], token[30:] + "\n"]),
            ],
            execution_count=1,
        )
    ]
    save("wrapped.ipynb", {"type": "notebook", "content": dict(nb)})
    saved = nbformat.reads((jp_root_dir / "wrapped.ipynb").read_text(), as_version=4)
    nbformat.validate(saved)
    assert_no_form(all_text(saved), logged_in_secrets)
    assert REDACTED in json.dumps(saved)


def test_a_secret_straddling_upload_chunks_is_redacted(
    save: Any, logged_in_secrets: list[str], jp_root_dir: Path
) -> None:
    """The contents API's chunked upload (what JupyterLab does for big files): pre-save
    hooks see only chunk 1; the file is checked once the last chunk (-1) is in."""
    key, _, token = logged_in_secrets
    body = ("x" * 1000 + "\n") * 50
    text = body + f"API_KEY={key}\n" + body + f"TOKEN={token}\n"
    cut_key, cut_token = len(body) + 15, len(text) - 20
    parts = [text[:cut_key], text[cut_key:cut_token], text[cut_token:]]
    for number, part in zip((1, 2, -1), parts, strict=True):
        save("upload.txt", {"type": "file", "format": "text", "content": part, "chunk": number})
    on_disk = (jp_root_dir / "upload.txt").read_text()
    assert_no_form(on_disk.replace("\n", ""), [key, token])
    assert on_disk.count(REDACTED) == 2 and on_disk.startswith(body)

    data = png_with_text(key.encode()) * 3
    encoded = [base64.b64encode(data[i : i + 51]).decode() for i in range(0, len(data), 51)]
    for number, part in enumerate(encoded, start=1):
        last = number == len(encoded)
        save(
            "upload.png",
            {"type": "file", "format": "base64", "content": part, "chunk": -1 if last else number},
        )
    assert key.encode() not in (jp_root_dir / "upload.png").read_bytes()

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source=[f"k = '{key[:9]}", f"{key[9:]}'"])]
    raw = nbformat.writes(nb)
    for number, part in ((1, raw[:100]), (-1, raw[100:])):
        save("upload.ipynb", {"type": "file", "format": "text", "content": part, "chunk": number})
    saved = nbformat.reads((jp_root_dir / "upload.ipynb").read_text(), as_version=4)
    assert_no_form(all_text(saved), [key])
