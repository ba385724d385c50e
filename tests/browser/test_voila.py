"""The login panel in Voilà, both ways Voilà runs, with the README's cells as written.

- As a server extension (``/voila/render/<nb>.ipynb``) on a Jupyter server that runs the
  broker: the view finds the broker of the page's server and posts the API key straight
  to it; no kernel-channel frame carries it.
- Standalone (``voila <nb>.ipynb``): no broker behind the page, so the view says so and
  sends the key to the kernel once, in one message; nothing comes back.

Every request leaving the machine is aborted and recorded (no CDN at run time). Afterwards
the page is rendered again and its served HTML, its text and fields, the browser's
storage, every widget-state message from the kernel and every file under the server's
home (its log included, the secret store excepted) are searched for the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from .harness import REPO, SCREENSHOTS, Panel, Traffic, carrying, serving, temp_home
from .test_panel import assert_connected
from .test_secret_paths import wait_route
from .voila import VoilaPage, VoilaServer, assert_nothing_from_outside, block_remote

pytestmark = pytest.mark.timeout(300)

README = REPO / "README.md"

try:  # a test dependency (the [test] extra): missing, the tests fail rather than skip
    import voila  # noqa: F401

    VOILA_MISSING = ""
except ImportError:
    VOILA_MISSING = "voila is not installed: `make test` installs the [test] extra, which has it"


def readme_cell() -> str:
    """The README's first Python block with the magic, as a user copies it into a cell."""
    fences = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL)
    return next(code for code in fences if "%weaviate_auth" in code)


@pytest.fixture(scope="module", params=["alone", "next-to-lab"])
def standalone_voila(request: pytest.FixtureRequest, chromium: Any) -> Iterator[VoilaServer]:
    """``voila app.ipynb`` on its own, or next to a running JupyterLab with the broker
    (same runtime dir: the kernel finds that broker, the page's server is not it)."""
    assert not VOILA_MISSING, VOILA_MISSING
    lab = request.getfixturevalue("jupyter") if request.param == "next-to-lab" else None
    name = f"voila-{request.param}"
    server = VoilaServer(
        temp_home(name), "app.ipynb", name=name, runtime_dir=lab.runtime_dir if lab else None
    )
    server.root_dir.mkdir(parents=True)
    server.write_notebook(server.notebook, [readme_cell()])
    yield from serving(server)


@pytest.fixture
def open_app(browser_context: Any) -> Iterator[Any]:
    """``open_app(server, path) -> (page, traffic, blocked)``: the Voilà page with its traffic
    recorded and the outside world blocked; closed after the test (after the failure
    hook's screenshot)."""
    opened: list[VoilaPage] = []

    def open_(server: Any, path: str) -> tuple[VoilaPage, Traffic, list[str]]:
        page = VoilaPage(server, browser_context, path)
        opened.append(page)
        traffic = Traffic(page.page)
        blocked = block_remote(page.page)
        return page.open(), traffic, blocked

    yield open_
    for page in opened:
        page.close()


def show(page: VoilaPage, typed: set[str]) -> Panel:
    panel = Panel(page, 0, typed, root=page.page.locator(".waw-panel").first)
    return panel.wait(timeout=60_000)


def leaks_after_rerender(page: VoilaPage, traffic: Traffic, secret: str) -> list[str]:
    """Render the app again (a new kernel runs the cell again, the profile now saved) and
    list every place holding ``secret``."""
    page.open()
    show(page, set())
    places: dict[str, bytes] = {
        "served HTML": page.served.encode(),
        "page text, HTML and field values": page.visible_text().encode(),
        "localStorage + sessionStorage": page.storage().encode(),
        # widget state reaches the page only in these (comm_open, update, echo)
        **{f"kernel frame #{i}": f for i, f in enumerate(traffic.kernel_frames("received"))},
    }
    server = page.server
    for path in sorted(p for p in server.home.rglob("*") if p.is_file()):
        if not (path.parent == server.store_dir and path.name.startswith("secrets")):
            places[f"file {path.relative_to(server.home)}"] = path.read_bytes()
    assert any(name.endswith("server.log") for name in places)
    assert "Cluster URL" in places["page text, HTML and field values"].decode()  # the scan sees the panel
    return [where for where, data in places.items() if carrying([data], secret)]


def test_voila_extension_posts_the_key_to_the_broker(
    jupyter: Any, open_app: Any, sandbox: Any, typed_secrets: set[str]
) -> None:
    """``/voila/render/`` on the broker's own server: secrets go browser -> broker."""
    assert not VOILA_MISSING, VOILA_MISSING
    assert jupyter.broker_active()
    key = sandbox.credentials.admin_api_key
    path = jupyter.write_notebook("voila-app.ipynb", [readme_cell()])
    page, traffic, blocked = open_app(jupyter, path)
    panel = show(page, typed_secrets)
    assert "data-voila" in page.served  # it is Voilà's page, not Lab's
    wait_route(panel, "broker")
    assert "straight to the weaviate-auth broker" in panel.root.inner_text()
    card = panel.login_api_key(sandbox.weaviate_url, "voila-broker", key)
    assert_connected(card, version=sandbox.weaviate_config.version, user="admin")
    assert panel.field("API key").input_value() == ""
    panel.connect_button.wait_for()  # the form back from "Connecting…"
    page.screenshot(SCREENSHOTS / "voila-extension-connected.png")

    sent, received = traffic.kernel_frames("sent"), traffic.kernel_frames("received")
    assert len(sent) > 5 and len(received) > 5, "no kernel traffic recorded: the scan would mean nothing"
    assert carrying(sent, "voila-broker")  # what the scan sees
    assert not carrying(sent, key) and not carrying(received, key)
    posts = [b for m, u, b in traffic.requests if m == "POST" and u.endswith("/voila-broker/connect")]
    assert len(posts) == 1 and key.encode() in posts[0]  # it went to the broker, once
    assert not leaks_after_rerender(page, traffic, key)
    assert_nothing_from_outside(page, blocked)


def test_standalone_voila_sends_the_key_to_the_kernel_once(
    standalone_voila: VoilaServer, open_app: Any, sandbox: Any, typed_secrets: set[str]
) -> None:
    """``voila app.ipynb``: no broker behind the page; the view says so and falls back."""
    key = sandbox.credentials.admin_api_key
    page, traffic, blocked = open_app(standalone_voila, standalone_voila.notebook)
    panel = show(page, typed_secrets)
    next_to_lab = standalone_voila.name == "voila-next-to-lab"
    mode = panel.root.locator(".waw-mode").inner_text()
    assert ("broker at" if next_to_lab else "in-process") in mode, mode
    wait_route(panel, "kernel")
    assert "No weaviate-auth broker is reachable" in panel.root.inner_text()
    card = panel.login_api_key(sandbox.weaviate_url, standalone_voila.name, key)
    assert_connected(card, version=sandbox.weaviate_config.version, user="admin")
    assert panel.field("API key").input_value() == ""  # cleared on Connect
    panel.connect_button.wait_for()  # the form back from "Connecting…"
    page.screenshot(SCREENSHOTS / f"{standalone_voila.name}-connected.png")

    sent, received = traffic.kernel_frames("sent"), traffic.kernel_frames("received")
    with_key = carrying(sent, key)
    assert len(with_key) == 1, f"{len(with_key)} messages carried the key"
    assert re.search(rb'"event": ?"connect"', with_key[0])
    assert not carrying(received, key)
    assert not [r for r in traffic.requests if key.encode() in r[2]]  # no HTTP body either
    assert not leaks_after_rerender(page, traffic, key)
    assert_nothing_from_outside(page, blocked)
