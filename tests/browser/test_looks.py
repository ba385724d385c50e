"""The login panel looks and works like part of JupyterLab: theme colours (light and
dark), labelled fields, keyboard-only use; checked with axe-core and screenshots
(``artefacts/screenshots/<frontend>-<theme>-<state>.png``).

axe-core comes from npm into ``tests/browser/node_modules`` (``scripts/browser-deps.sh``,
run by ``make test``) and is injected into the page from that file.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from .harness import FRONTENDS, SCREENSHOTS, NotebookPage, Panel
from .test_panel import CELLS, OpenNotebook, assert_connected, show_panel

pytestmark = pytest.mark.timeout(300)

AXE = Path(__file__).with_name("node_modules") / "axe-core" / "axe.min.js"
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


def set_theme(notebook: NotebookPage, theme: str) -> None:
    notebook.page.evaluate(
        "theme => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", THEMES[theme]
    )
    light = "true" if theme == "light" else "false"
    notebook.page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'")
    notebook.page.wait_for_timeout(300)  # the theme's style sheet applies


def axe_violations(notebook: NotebookPage, panel: Panel) -> list[str]:
    """axe-core's WCAG 2 A/AA violations inside the panel (id, impact, the nodes' HTML)."""
    if not notebook.page.evaluate("() => Boolean(window.axe)"):
        notebook.page.add_script_tag(path=str(AXE))
    found = panel.root.evaluate(
        """async (root) => {
            const result = await window.axe.run(root, {runOnly: ['wcag2a', 'wcag2aa']});
            return result.violations.map((v) => `${v.id} (${v.impact}): ` +
                v.nodes.map((n) => n.html.slice(0, 160) + ' ' + n.failureSummary).join(' | '));
        }"""
    )
    return [str(v) for v in found]


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_themes_accessibility_and_screenshots(
    frontend: str, open_notebook: OpenNotebook, sandbox: Any, typed_secrets: set[str]
) -> None:
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run `bash scripts/browser-deps.sh` (make test does)")
    creds = sandbox.credentials
    notebook = open_notebook(frontend, CELLS)
    panel = show_panel(notebook, typed_secrets)
    shot = notebook.cell(1).locator(".jp-OutputArea-output").first
    problems: dict[str, list[str]] = {}
    # positive control: axe does see a problem inside the panel (an unlabelled field)
    panel.root.evaluate(
        "r => { const i = document.createElement('input'); i.id = 'waw-control'; r.append(i); }"
    )
    assert any(v.startswith("label ") for v in axe_violations(notebook, panel))
    panel.root.evaluate("r => r.querySelector('#waw-control').remove()")
    for theme in THEMES:
        set_theme(notebook, theme)
        problems[f"{theme} empty"] = axe_violations(notebook, panel)
        notebook.screenshot(SCREENSHOTS / f"{frontend}-{theme}-empty.png", shot)

    ok, text = panel.login_api_key(sandbox.weaviate_url, f"{frontend}-looks", creds.admin_api_key)
    assert ok, text
    panel.field("Profile").select_option(label="New profile…")
    panel.fill("Profile name", f"{frontend}-looks-wrong")
    panel.fill_secret("API key", "wrong-" + secrets.token_urlsafe(24))
    panel.submit()
    assert not panel.result()[0]
    error_card = panel.card.last.inner_html()
    for theme in THEMES:
        set_theme(notebook, theme)
        problems[f"{theme} error"] = axe_violations(notebook, panel)
        notebook.screenshot(SCREENSHOTS / f"{frontend}-{theme}-error.png", shot)
    # the success card, in both themes (the card once unreadable in JupyterLab Dark)
    panel.field("Profile").select_option(label=f"{frontend}-looks — {sandbox.weaviate_url.split('//')[1]}")
    panel.submit()
    assert_connected(panel.result(), version=sandbox.weaviate_config.version, user="admin")
    for theme in THEMES:
        set_theme(notebook, theme)
        problems[f"{theme} connected"] = axe_violations(notebook, panel)
        colours = panel.card.last.evaluate(
            "c => [getComputedStyle(c).color, getComputedStyle(c).backgroundColor]"
        )
        assert colours[0] != colours[1]
        notebook.screenshot(SCREENSHOTS / f"{frontend}-{theme}-connected.png", shot)
    set_theme(notebook, "light")
    assert "Could not connect" in error_card
    assert not any(problems.values()), {k: v for k, v in problems.items() if v}


def test_keyboard_only(open_notebook: OpenNotebook, sandbox: Any, typed_secrets: set[str]) -> None:
    """Tab from the URL field reaches the secret field, focus is visible, Enter submits."""
    notebook = open_notebook("lab", CELLS)
    panel = show_panel(notebook, typed_secrets)
    panel.fill("Profile name", "lab-keyboard")
    panel.field("Cluster URL").fill(sandbox.weaviate_url)
    panel.field("Cluster URL").focus()
    key = panel.field("API key")
    for _ in range(12):
        if key.evaluate("e => e === document.activeElement"):
            break
        notebook.page.keyboard.press("Tab")
    else:
        raise AssertionError("Tab never reached the API key field")
    outline = key.evaluate("e => getComputedStyle(e).outlineStyle + ' ' + getComputedStyle(e).outlineWidth")
    assert not outline.startswith("none") and not outline.endswith(" 0px"), outline
    typed_secrets.add(sandbox.credentials.admin_api_key)
    notebook.page.keyboard.type(sandbox.credentials.admin_api_key)
    panel.mark_cards()
    notebook.page.keyboard.press("Enter")
    assert_connected(panel.result(), version=sandbox.weaviate_config.version, user="admin")
    # the Connect button comes next in the Tab order
    key.focus()
    notebook.page.keyboard.press("Tab")
    assert panel.root.locator("summary").evaluate("e => e === document.activeElement")
