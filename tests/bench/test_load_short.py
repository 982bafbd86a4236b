"""The load and crash commands (``bench/run load``, ``bench/run crash-mixed``) run here with small
bounds so that they cannot rot; ``bench/README.md`` has the full runs' commands and figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_short_crash_mixed_run_loses_nothing_acknowledged() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "crash-mixed",
            "--clients",
            "6",
            "--duration",
            "12",
            "--crashes",
            "2",
            "--max-upload",
            "4000000",
            "--seed",
            "7",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,  # a guard against a hang, not a timing assertion
    )
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["errors"] == 0 and summary["kills"] == 2
    assert all(not restart["problems"] for restart in summary["restarts"])
    # both kills fell inside the workload, and it acknowledged attachments to check
    assert all(restart["killed_at"] < summary["workload_s"] for restart in summary["restarts"])
    assert summary["acknowledged_attachments"] > 0 and summary["rss_mb_peak"] > 0
