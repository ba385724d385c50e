"""The audit log: who did what to which profile, with what outcome — never a value."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from weaviate_auth_widget.broker import KERNEL_HEADER
from weaviate_auth_widget.broker.audit import AuditLog

from .conftest import secret_values


@pytest.fixture
def broker_config(audit_path: Path) -> dict[str, Any]:
    return {"audit_log": str(audit_path)}


def test_audit_log_records_operations(api: Any, broker: Any, sandbox: Any, audit_path: Path) -> None:
    key = sandbox.credentials.admin_api_key
    api("PUT", "profiles/p", json_body={"url": sandbox.weaviate_url, "secrets": {"api_key": key}})
    api("POST", "profiles/p/login")
    api("POST", "profiles/p/token", auth="kernel", headers={KERNEL_HEADER: "5f2c9e1a-kernel"})
    api("POST", "profiles/p/token", auth="kernel", headers={KERNEL_HEADER: 'bad id; "quoted" $(x)'})
    api("POST", "profiles/nope/login")
    api("POST", "profiles/p/token", auth=None)
    api("PUT", "profiles/q", json_body={"url": "http://insecure.example.com"})
    api("DELETE", "profiles/p")

    assert stat.S_IMODE(audit_path.stat().st_mode) == 0o600
    text = audit_path.read_text()
    for value in [*secret_values(sandbox), broker.token]:
        assert value not in text
    entries = [json.loads(line) for line in text.splitlines()]
    summary = [(e["profile"], e["action"], e["outcome"], e.get("kernel"), e["via"]) for e in entries]
    assert summary == [
        ("p", "save", "ok", None, "jupyter"),
        ("p", "login", "ok", None, "jupyter"),
        ("p", "token", "ok", "5f2c9e1a-kernel", "kernel"),
        ("p", "token", "ok", None, "kernel"),
        ("nope", "login", "profile_not_found", None, "jupyter"),
        ("p", "token", "forbidden", None, "jupyter"),
        ("q", "save", "insecure_url", None, "jupyter"),
        ("p", "forget", "ok", None, "jupyter"),
    ]
    for entry in entries:
        assert entry["time"].endswith("Z") and "T" in entry["time"]
    assert entries[2]["user"] == broker.owner_name
    assert entries[5]["user"] is None
    assert set(entries[0]) == {"time", "user", "profile", "action", "outcome", "via"}


def test_audit_lines_never_interleave(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl")

    def write(n: int) -> None:
        for i in range(200):
            log.record(user=f"u{n}", profile="p" * 200, action="token", outcome="ok", kernel=f"k{i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert len(lines) == 1600
    assert all(json.loads(line)["action"] == "token" for line in lines)


def test_audit_log_tightens_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "existing.jsonl"
    path.write_text("")
    path.chmod(0o644)
    AuditLog(path).record(user="u", profile=None, action="status", outcome="ok")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("broker_config", [{}])
def test_no_audit_log_by_default(api: Any, broker: Any) -> None:
    assert broker.audit is None
    assert api("GET", "status").code == 200
