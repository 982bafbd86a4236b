"""``python -m bench.tiny_ladder`` runs in the suite so that the ladder cannot rot: every rung
answers (each request's status is checked) and is measured (figures printed, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("in_memory", [False, True], ids=["embedded", "in-memory"])
def test_every_rung_of_the_ladder_is_measured(tmp_path: Path, in_memory: bool) -> None:
    out = tmp_path / "ladder.json"
    cmd = [sys.executable, "-m", "bench.tiny_ladder", "--rounds", "1", "--seconds", "0.3", "--requests", "40"]
    done = subprocess.run(
        [*cmd, *(["--in-memory"] if in_memory else []), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,  # a guard against a hang, not a timing assertion
    )
    assert done.returncode == 0, done.stderr[-4000:]
    rungs = json.loads(out.read_text())["rungs"]
    expected = {"floor", "framework", "stack", "status", "put", "bound"} | (set() if in_memory else {"floor-nosync"})
    assert set(rungs) == expected
    assert all(rungs[rung]["median"] > 0 for rung in expected)
    assert "framework" in done.stdout
