"""Cold `make run`: seconds from a fresh clone (fresh venv) to JupyterLab's URL.

Usage: python bench/make_run_cold.py BASELINE_REF [CANDIDATE_REF]   (candidate: HEAD)

Clones this repository at each ref into a temporary directory, runs `make run` there,
and stops it as soon as JupyterLab prints its URL. Both runs happen here, one after the
other, with whatever pip cache the machine has (warm it first with one run). Not part of
`make bench`: it installs two environments. Prints `name: value` lines:

make_run_cold_s_baseline  seconds at BASELINE_REF
make_run_cold_s           seconds at CANDIDATE_REF
make_run_cold_ratio       candidate / baseline (target <= 0.5)
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB_URL = re.compile(rb"http://127\.0\.0\.1:\d+/lab")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cold_make_run(ref: str, timeout: float = 900) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "-q", ref], check=True)
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("WEAVIATE_", "JUPYTER_", "VIRTUAL_ENV"))
            },
            "WEAVIATE_AUTH_DIR": str(Path(tmp) / "store"),  # leave the user's profiles alone
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            "JUPYTER_CONFIG_DIR": str(Path(tmp) / "jupyter-config"),
            "JUPYTER_RUNTIME_DIR": str(Path(tmp) / "runtime"),
            "JUPYTER_PORT": str(_free_port()),
        }
        log = Path(tmp) / "make-run.log"
        started = time.perf_counter()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["make", "run"],
                cwd=clone,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            while not LAB_URL.search(log.read_bytes()):
                if proc.poll() is not None or time.perf_counter() - started > timeout:
                    raise RuntimeError(
                        f"make run at {ref} did not reach JupyterLab:\n{log.read_text()[-3000:]}"
                    )
                time.sleep(0.1)
            return time.perf_counter() - started
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.split("\n\n")[1])
    baseline_ref, candidate_ref = sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else "HEAD"
    baseline = cold_make_run(baseline_ref)
    candidate = cold_make_run(candidate_ref)
    print(f"make_run_cold_s_baseline: {baseline:.1f}")
    print(f"make_run_cold_s: {candidate:.1f}")
    print(f"make_run_cold_ratio: {candidate / baseline:.2f}")


if __name__ == "__main__":
    main()
