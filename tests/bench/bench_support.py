"""Shared by the benchmark's tests: run one of its modules as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_bench(module: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m <module> <args>`` from the repository's root; fails the test unless it exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,  # a guard against a hang, not a timing assertion
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done
