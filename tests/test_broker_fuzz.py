"""Schemathesis against the broker's own OpenAPI document, served by a real Jupyter server
with the extension, authenticated with the server's token: every route, valid and invalid
input. No 500; no secret (the saved ones, the ones the fuzzer sends, tokens handed out) in
any response but those of the token and copy-key routes; afterwards the profiles saved before are unchanged and
their secrets readable and the same, on disk and through the broker.

Bounded: a few examples per route and mode (under a minute on two cores).
"""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_kernel_broker import JupyterServer, server_env
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService

schemathesis = pytest.importorskip("schemathesis", reason="the test extra installs schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

pytestmark = [pytest.mark.timeout(240)]

API = "weaviate-auth/api"
EXAMPLES = 8
#: fields that change with every login (token expiry), not with the store
_LIVE_FIELDS = ("identity", "logged_in")


def _views(server: JupyterServer, names: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for name in names:
        response = server.api("GET", f"{API}/profiles/{name}")
        assert response.status_code == 200, response.text
        out[name] = {k: v for k, v in response.json().items() if k not in _LIVE_FIELDS}
    return out


def _fuzz_secrets(case: Any) -> list[str]:
    """Secret values the fuzzer itself sent (a PUT's ``secrets``): long enough that a
    match in a response is an echo, not chance."""
    body = case.body if isinstance(case.body, dict) else {}
    given_secrets = body.get("secrets")
    if not isinstance(given_secrets, dict):
        return []
    return [v for v in given_secrets.values() if isinstance(v, str) and len(v) >= 12]


def _aimed_at(case: Any, url: str) -> Any:
    if isinstance(case.body, dict):
        case.body["url"] = url
    return case


def _inputs(document: dict[str, Any], label: str) -> bool:
    """Whether the operation ``label`` (``GET /path``) takes parameters or a body."""
    method, path = label.split(" ", 1)
    item = document["paths"][path]
    operation = item[method.lower()]
    return bool(item.get("parameters") or operation.get("parameters") or operation.get("requestBody"))


def test_the_broker_api_under_schemathesis(sandbox: Any, tmp_path: Path) -> None:
    creds = sandbox.credentials
    module_key = "sk-fuzz-" + os.urandom(12).hex()
    env = server_env(tmp_path)
    # credentials may go to the sandbox only: fuzzed URLs are refused, never dialled
    env["WEAVIATE_AUTH_ALLOWED_URLS"] = sandbox.weaviate_url
    server = JupyterServer(env, tmp_path / "root").start()
    kept = ("keep-key", "keep-pw")
    try:
        server.save_profile(
            "keep-key",
            {
                "url": sandbox.weaviate_url,
                "method": "api_key",
                "headers": ["X-OpenAI-Api-Key"],
                "secrets": {"api_key": creds.admin_api_key, "header:X-OpenAI-Api-Key": module_key},
            },
        )
        server.save_profile(
            "keep-pw",
            {
                "url": sandbox.weaviate_url,
                "method": "password",
                "username": creds.username,
                "secrets": {"password": creds.password},
            },
        )
        for name in kept:
            assert server.api("POST", f"{API}/profiles/{name}/login").status_code == 200
        before = _views(server, kept)
        issued = server.api("POST", f"{API}/profiles/keep-pw/token").json()["token"]
        secrets = [creds.admin_api_key, creds.password, module_key, issued]

        served = server.api("GET", f"{API}/openapi.yaml")
        assert served.status_code == 200
        document = yaml.safe_load(served.text)
        schema = schemathesis.openapi.from_dict(document)
        base = server.url + API
        auth = {"Authorization": f"token {server.token}"}
        statuses: collections.Counter[tuple[str, int]] = collections.Counter()
        operations = [result.ok() for result in schema.get_all_operations()]
        every = {
            f"{m.upper()} {path}"
            for path, item in document["paths"].items()
            for m in item
            if m != "parameters"
        }
        assert {op.label for op in operations} == every  # every route of the document, new ones too

        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategy = operation.as_strategy(mode)
                if mode is GenerationMode.POSITIVE and operation.label == "PUT /profiles/{name}":
                    # valid bodies aimed at the one allowed cluster, so saves get through
                    strategy = strategy.map(lambda case: _aimed_at(case, sandbox.weaviate_url))

                @given(case=strategy)
                @settings(
                    max_examples=EXAMPLES,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                def run(case: Any) -> None:
                    if (case.path_parameters or {}).get("name") in kept:
                        return  # the fuzzer must not change the profiles checked afterwards
                    response = case.call(base_url=base, headers=auth, timeout=30)
                    label = case.operation.label
                    statuses[(label, response.status_code)] += 1
                    case.validate_response(response, checks=[not_a_server_error])
                    if label.endswith(("/token", "/copy-key")):
                        return  # the routes that hand out secrets, to their rightful caller
                    for secret in [*secrets, *_fuzz_secrets(case)]:
                        assert secret not in response.text, f"{label} answered with a secret"

                try:
                    run()
                except Unsatisfiable:
                    # no parameter and no body: nothing to make invalid
                    assert mode is GenerationMode.NEGATIVE and not _inputs(document, operation.label)

        # the fuzz reached the routes, not just the auth layer
        reached = {label for (label, status) in statuses if status < 400}
        assert {"GET /status", "GET /profiles", "PUT /profiles/{name}"} <= reached, statuses
        assert all(status != 500 for (_, status) in statuses)

        # the store is intact: same profiles, secrets readable and the same
        assert _views(server, kept) == before
        grant = server.api("POST", f"{API}/profiles/keep-key/token").json()
        assert grant["token"] == creds.admin_api_key
        assert grant["headers"] == {"X-OpenAI-Api-Key": module_key}
        assert server.api("POST", f"{API}/profiles/keep-pw/login").json()["username"] == creds.username
        audit = (tmp_path / "audit.jsonl").read_text()
        for secret in secrets:
            assert secret not in audit
    finally:
        server.stop()
    store = Path(env["WEAVIATE_AUTH_DIR"])
    on_disk = AuthService(directory=store, secrets=SecretStore("file", directory=store))
    try:
        assert on_disk.token("keep-key").value == creds.admin_api_key
        assert on_disk.module_headers("keep-key") == {"X-OpenAI-Api-Key": module_key}
        assert on_disk.login("keep-pw").username == creds.username
        assert json.dumps([p.to_json() for p in on_disk.list_profiles()])  # the file still parses
    finally:
        on_disk.close()
