"""``python -m bench.testkit --smoke`` runs in the suite so that the test kit's benchmark cannot rot
(figures are printed, never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bench.bench_support import run_bench


def test_testkit_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "testkit.json"
    done = run_bench("bench.testkit", "--smoke", "--json", str(out))
    results = json.loads(out.read_text())["results"]
    assert any(name.startswith("graphattach reset") for name in results)
    assert any(name.startswith("moto POST /moto-api/reset") for name in results)
    assert all(figure["n"] >= 1 and figure["median_ms"] > 0 for figure in results.values())
    assert "median" in done.stdout
