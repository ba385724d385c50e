"""The quickstart as a newcomer meets it: `make run` (scripts/run.sh), the quickstart run
exactly as its markdown says, then `make run` again the next day and the same steps.

run.sh runs for real in a copy of the repository's scripts/ and notebooks/ (its
``.venv/bin/python`` is this interpreter), with the sandbox on its configured fixed
ports; the notebook runs in a real kernel with nbclient, using the user's store the way
make run left it. The panel cell cannot be clicked here: make run's saved profile is
what step 1 tells the user to pick, and step 2 reconnects with it by name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.helpers import closed_port
from weaviate_auth_widget.sandbox.demo_setup import DEFAULT_GRPC_PORT

ROOT = Path(__file__).parent.parent
QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clone-like directory where `make run` already installed its venv."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    shutil.copytree(ROOT / "notebooks", repo / "notebooks")
    venv_python = repo / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    venv_python.chmod(0o755)
    env = {
        "PYTHONPATH": str(ROOT),
        "WEAVIATE_AUTH_DIR": str(tmp_path / "store"),  # the user's store
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",  # its file backend
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_PORT": str(closed_port()),
        "WEAVIATE_SANDBOX_PORT": str(closed_port()),
        "WEAVIATE_SANDBOX_IDP_PORT": str(closed_port()),
        "WEAVIATE_SANDBOX_GRPC_PORT": str(DEFAULT_GRPC_PORT),  # where the quickstart's client looks
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in (
        "WEAVIATE_URL",
        "WEAVIATE_PROFILE",
        "WEAVIATE_AUTH_BROKER_FILE",
        "WEAVIATE_AUTH_DEFAULT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    return repo


@contextmanager
def make_run(repo: Path, log: Path) -> Iterator[str]:
    """scripts/run.sh until JupyterLab prints its URL; yields what it printed; Ctrl-C after."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", str(repo / "scripts" / "run.sh")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        lab = f"http://127.0.0.1:{os.environ['JUPYTER_PORT']}/lab"
        deadline = time.monotonic() + 120
        while lab not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield log.read_text()
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to run.sh
        try:
            proc.wait(30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def run_quickstart(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    nbformat.write(nb, path)  # the user's work, saved
    return nb


def cell_after(nb: nbformat.NotebookNode, heading: str) -> list[nbformat.NotebookNode]:
    """The code cells of the section whose markdown starts with ``heading``."""
    start = next(
        i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith(heading)
    )
    cells = []
    for cell in nb.cells[start + 1 :]:
        if cell.cell_type == "markdown":
            break
        cells.append(cell)
    return cells


def test_quickstart_steps_work_on_two_make_runs_in_a_row(checkout: Path, tmp_path: Path) -> None:
    clean = QUICKSTART.read_text()
    original = nbformat.reads(clean, as_version=4)
    step1_text = next(c.source for c in original.cells if c.source.startswith("## 1."))
    assert "**sandbox**" in step1_text and "`sandbox` as *Profile name*" in step1_text
    assert [c.source for c in cell_after(original, "## 1.")] == ["%weaviate_auth"]
    step2 = [c.source for c in cell_after(original, "## 2.")]
    assert step2[-1] == "%weaviate_auth sandbox"  # reconnects by the name step 1 gives

    scratch = checkout / ".run" / "notebooks" / "quickstart.ipynb"
    printed = []
    for day in (1, 2):
        with make_run(checkout, tmp_path / f"run-{day}.log") as output:
            assert "Saved the demo profile 'sandbox'" in output
            assert scratch.read_text() == clean  # every run starts from the clean quickstart
            nb = run_quickstart(scratch)
        banner = re.search(r"Weaviate: +(\S+).*\n +Admin API key: +(\S+)", output)
        assert banner is not None, output
        printed.append(banner.groups())
        outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
        assert '"output_type": "error"' not in outputs, outputs
        step2_outputs = json.dumps(cell_after(nb, "## 2.")[-1].outputs)
        sandbox_url = f"http://127.0.0.1:{os.environ['WEAVIATE_SANDBOX_PORT']}"
        assert f"Connected to {sandbox_url} as admin" in step2_outputs
        assert "Hello, Weaviate" in outputs
        assert printed[-1][1] not in outputs  # the admin key never lands in the notebook
    assert printed[0] == printed[1]  # the same address and credentials the next day
    assert (checkout / ".run" / "previous" / "quickstart.ipynb").read_text() != clean  # day 1's work kept
