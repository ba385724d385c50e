"""Secrets are radioactive: after successful and failing logins of every kind, with
DEBUG logging on (ours, httpx's, httpcore's), no secret value appears in captured logs,
reprs, exception strings, tracebacks or the environment."""

from __future__ import annotations

import base64
import logging
import os
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from weaviate_auth_widget import oidc
from weaviate_auth_widget.errors import WeaviateAuthError
from weaviate_auth_widget.profiles import Profile
from weaviate_auth_widget.sandbox import Sandbox
from weaviate_auth_widget.secrets import SecretStore
from weaviate_auth_widget.service import AuthService


def _forms(value: str) -> list[str]:
    return [value, base64.b64encode(value.encode()).decode(), quote(value, safe="")]


def test_no_secret_in_logs_reprs_errors_or_environment(
    tmp_path: Path, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    oidc.discovery_cache.clear()
    creds = sandbox.credentials
    wrong_key, wrong_password = "wrong-KEY-" + "k" * 16, "wrong-PASSWORD-" + "p" * 12
    module_key = "sk-MODULE-" + "m" * 20
    secrets = [
        creds.admin_api_key,
        creds.password,
        creds.service_client_secret,
        wrong_key,
        wrong_password,
        module_key,
    ]
    caplog.set_level(logging.DEBUG)
    for name in ("", "httpx", "httpcore", "weaviate_auth_widget", "tornado", "keyring"):
        logging.getLogger(name).setLevel(logging.DEBUG)

    service = AuthService(directory=tmp_path, secrets=SecretStore("file", directory=tmp_path))
    shown: list[Any] = [service, service.secrets, service.profiles]
    failures: list[BaseException] = []

    def attempt(profile: Profile, secret: dict[str, str]) -> None:
        try:
            service.save_profile(profile, secret)
            identity = service.login(profile.name)
            session = service.session(profile.name)
            shown.extend(
                [
                    identity,
                    session,
                    session.token_source,
                    session.auth,
                    service.login_states.by_name[profile.name],
                ]
            )
            session.graphql("{ Get { Article { title } } }")
            session.close()
        except WeaviateAuthError as exc:
            failures.append(exc)

    url = sandbox.weaviate_url
    attempt(
        Profile(name="key", url=url, headers=("X-OpenAI-Api-Key",)),
        {"api_key": creds.admin_api_key, "header:X-OpenAI-Api-Key": module_key},
    )
    attempt(
        Profile(name="pw", url=url, method="password", username=creds.username), {"password": creds.password}
    )
    attempt(
        Profile(name="svc", url=url, method="client_credentials", client_id=creds.service_client_id),
        {"client_secret": creds.service_client_secret},
    )
    attempt(Profile(name="badkey", url=url), {"api_key": wrong_key})
    attempt(
        Profile(name="badpw", url=url, method="password", username=creds.username),
        {"password": wrong_password},
    )
    attempt(
        Profile(name="nopw", url=url, method="password", username="nobody@example.com", remember=False),
        {"password": wrong_password},
    )
    assert len(failures) == 3  # the three wrong ones, and only those

    refresh = service.secrets.get("pw", "refresh_token")
    tokens = [service.token(n).value for n in ("pw", "svc")]
    assert refresh
    radioactive = [*secrets, refresh, *tokens]

    texts = [caplog.text, *(repr(o) for o in shown), *(str(o) for o in shown)]
    for exc in failures:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    texts.append(repr(dict(os.environ)))
    haystack = "\n".join(texts)
    assert len(caplog.records) > 10  # DEBUG logging really ran
    for secret in radioactive:
        for form in _forms(secret):
            assert form not in haystack, "a secret leaked"
    service.close()


def test_profiles_file_holds_no_secret(tmp_path: Path, sandbox: Sandbox) -> None:
    service = AuthService(
        directory=tmp_path, secrets=SecretStore("encrypted-file", directory=tmp_path, key="k" * 32)
    )
    service.save_profile(
        Profile(name="key", url=sandbox.weaviate_url), {"api_key": sandbox.credentials.admin_api_key}
    )
    service.login("key")
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for form in _forms(sandbox.credentials.admin_api_key):
                assert form.encode() not in data, f"secret found in {path.name}"
    service.close()
