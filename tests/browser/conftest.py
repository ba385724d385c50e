"""Fixtures for the browser tests: one real Jupyter server and one chromium per module.

Every test in this folder is marked ``browser``. On a failure the hook below adds, to the
report, a screenshot of each open page (``artefacts/browser-failures/``), its URL and
console, and the tail of the server log.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    ACTIVE_PAGES,
    ACTIVE_SERVERS,
    FAILURES,
    VIEWPORT,
    JupyterServer,
    NotebookPage,
    chromium_available,
    launch_browser,
    serving,
    temp_home,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives JupyterLab / Notebook 7 in chromium")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.failed and report.when in ("setup", "call"):
        _add_diagnostics(item, report)
    return report


def _add_diagnostics(item: pytest.Item, report: pytest.TestReport) -> None:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", item.nodeid.split("::", 1)[-1])[:100]
    lines: list[str] = []
    for i, notebook in enumerate(list(ACTIVE_PAGES)):
        shot = FAILURES / f"{slug}-{i}-{notebook.frontend}.png"
        try:
            notebook.screenshot(shot)
            lines.append(f"screenshot: {shot}")
        except Exception as exc:
            lines.append(f"screenshot failed: {exc!r}")
        with contextlib.suppress(Exception):
            lines.append(f"url: {notebook.page.url}")
        if notebook.console:
            lines.append("browser console (last 30):")
            lines.extend("  " + line[:500] for line in notebook.console[-30:])
    for server in list(ACTIVE_SERVERS):
        lines.append(f"--- {server.name} log tail ({server.log_path}) ---")
        lines.append(server.log_tail(80))
    if lines:
        report.sections.append(("browser diagnostics", "\n".join(lines)))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not chromium_available():
        pytest.skip("no chromium at /usr/bin/chromium: run `make system-deps` (never `playwright install`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def browser_context(chromium: Any) -> Iterator[Any]:
    """One context for the module: the leak scan reads the storage every test left."""
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    yield context
    context.close()


def _server(broker: bool | None, name: str) -> Iterator[JupyterServer]:
    yield from serving(JupyterServer(temp_home(name), broker=broker, name=name))


@pytest.fixture(scope="module")
def jupyter(chromium: Any) -> Iterator[JupyterServer]:
    """JupyterLab + Notebook 7 with whatever server extensions are installed (the broker
    when it is there)."""
    yield from _server(None, "jupyter")


@pytest.fixture(scope="module")
def jupyter_in_process(chromium: Any) -> Iterator[JupyterServer]:
    """A second server with the weaviate-auth extension disabled: kernels fall back to
    the in-process service."""
    yield from _server(False, "jupyter-in-process")


@pytest.fixture(scope="module")
def typed_secrets() -> set[str]:
    """Every secret value typed into a panel in this module (the leak scan's list)."""
    return set()


@pytest.fixture
def open_notebook(
    jupyter: JupyterServer, browser_context: Any, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """``open_notebook(frontend, sources, server=jupyter) -> NotebookPage``: writes a notebook
    named after the test, opens it; closes the tab and its kernel afterwards."""
    opened: list[NotebookPage] = []
    base = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:60]

    def open_(frontend: str, sources: list[str], server: JupyterServer | None = None) -> NotebookPage:
        server = server or jupyter
        name = server.write_notebook(f"{base}-{len(opened)}.ipynb", sources)
        notebook = NotebookPage(server, browser_context, frontend, name)  # type: ignore[arg-type]
        opened.append(notebook)
        return notebook.open()

    yield open_
    for notebook in opened:
        notebook.close()
