"""``python -m bench.tiny_ladder`` runs in the suite so that the ladder cannot rot: every rung
answers (each request's status is checked) and is measured (figures printed, never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.bench_support import run_bench


@pytest.mark.parametrize("in_memory", [False, True], ids=["embedded", "in-memory"])
def test_every_rung_of_the_ladder_is_measured(tmp_path: Path, in_memory: bool) -> None:
    out = tmp_path / "ladder.json"
    args = ["--rounds", "1", "--seconds", "0.3", "--requests", "40", "--out", str(out)]
    done = run_bench("bench.tiny_ladder", *args, *(["--in-memory"] if in_memory else []), timeout=300)
    rungs = json.loads(out.read_text())["rungs"]
    expected = {"floor", "framework", "stack", "status", "put", "bound"} | (
        {"floor-empty"} if in_memory else {"floor-nosync"}
    )
    assert set(rungs) == expected
    assert all(rungs[rung]["median"] > 0 for rung in expected)
    assert "framework" in done.stdout
