"""``python -m bench.testkit --smoke`` runs in the suite so that the test kit's benchmark cannot rot
(figures are printed, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_testkit_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "testkit.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.testkit", "--smoke", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,  # a guard against a hang, not a timing assertion
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(out.read_text())["results"]
    assert any(name.startswith("graphattach reset") for name in results)
    assert any(name.startswith("moto POST /moto-api/reset") for name in results)
    assert all(figure["n"] >= 1 and figure["median_ms"] > 0 for figure in results.values())
    assert "median" in done.stdout
