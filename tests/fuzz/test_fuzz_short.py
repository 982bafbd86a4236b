"""The fuzz command (``bench/run fuzz``) runs here with a small bound so that it cannot rot: raw
HTTP over uploads, the admin API and attachments with its invariants, then schemathesis over the
OpenAPI document. ``bench/README.md`` has the long run's command and figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_short_fuzz_run_finds_no_5xx_and_no_invariant_violation() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "fuzz",
            "--requests",
            "300",
            "--seed",
            "20261202",
            "--schemathesis-examples",
            "1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,  # a guard against a hang, not a timing assertion
    )
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ok"] and summary["server_errors"] == 0
    assert summary["requests"] >= 300
    assert summary["cut_bodies"] > 0 and summary["sweeps"] > 0
