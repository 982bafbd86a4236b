"""The benchmark's smoke mode runs in the test suite so that it cannot rot.

``python -m bench --smoke`` uses tiny sizes, one run, and whatever anchors are installed. A
workload whose endpoint this build does not have yet (400/404/405) is reported "unavailable";
anything else that goes wrong (a harness crash, a 5xx, a dead server) fails the run. Once a feature
is on the build, the workloads that use it must have run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench.report import checks

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench-smoke")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,  # a guard against a hang, not a timing assertion
    )
    assert proc.returncode == 0, f"bench --smoke failed ({proc.returncode}):\n{proc.stderr[-6000:]}"
    data = json.loads((out / "latest.json").read_text())
    assert (out / "latest.md").exists()
    data["_stderr"] = proc.stderr
    data["_markdown"] = (out / "latest.md").read_text()
    return data


def test_smoke_runs_every_case_without_errors(smoke: dict) -> None:
    results = smoke["results"]
    assert smoke["meta"]["mode"] == "smoke"
    errors = {k: v["note"] for k, v in results.items() if v["status"] == "error"}
    assert not errors, errors
    for key in (
        "physical.disk_write",
        "physical.disk_write_fdatasync",
        "physical.loopback_tcp",
        "physical.loopback_sendfile",
    ):
        assert results[key]["status"] == "ok", results[key]
        assert results[key]["summary"]["median"] > 0
    expected_ga = {
        "upload_big",
        "upload_concurrent",
        "tiny_puts",
        "download_big",
        "content_bytes",
        "post_small",
    }
    assert {k.split(".", 1)[1] for k in results if k.startswith("graphattach.")} == expected_ga
    for key, result in results.items():
        assert result["status"] in ("ok", "unavailable", "skipped"), (key, result)
        if result["status"] == "ok":
            assert result["summary"]["median"] > 0, (key, result)
        else:
            assert result["note"], (key, result)  # says why


def test_anchors_run_or_say_why_not(smoke: dict) -> None:
    for key, result in smoke["results"].items():
        if key.startswith(("nginx.", "tus.")) and result["status"] == "skipped":
            assert "bench-setup" in result["note"] or "not" in result["note"], result


def test_every_workload_runs(smoke: dict) -> None:
    """Every endpoint a workload drives is on this build: each graphattach workload runs."""
    results = smoke["results"]
    for workload in ("post_small", "upload_big", "upload_concurrent", "tiny_puts", "download_big", "content_bytes"):
        result = results[f"graphattach.{workload}"]
        assert result["status"] == "ok", (workload, result["note"])


def test_on_disk_the_floor_measures_its_own_gain_from_uploads_at_once(smoke: dict) -> None:
    """The durable floor's uploads at once (syncs in threads) and its single upload made the same way."""
    result = smoke["results"]["physical.upload_concurrent"]
    assert result["status"] == "ok" and result["summary"]["median"] > 0
    assert all(e["single_rate"] > 0 for e in result["extra"])
    assert "| Concurrent uploads (aggregate) | durable floor |" in smoke["_markdown"]
    # the report's ceiling for uploads at once (the CPUs' bound left out: the lower one is shown)
    check = {c.name: c for c in checks(smoke["results"])}["Concurrent uploads, aggregate vs one upload"]
    assert check.ceiling.startswith("durable floor's own: ")


def test_the_1_kib_puts_measure_their_bound(smoke: dict) -> None:
    """The floor's PUT without its sync, and status GETs on the upload URL: the report's bound."""
    results = smoke["results"]
    assert all(e["no_sync_rate"] > 0 for e in results["physical.tiny_puts"]["extra"])
    extras = results["graphattach.tiny_puts"]["extra"]
    assert all(e["status_rate"] > 0 for e in extras)
    # The smoke's PUTs fill their session, as a fast machine's full run does: the status GETs go
    # to a new one (a run that left no session open once measured none).
    assert all(e["completed"] for e in extras)


def test_in_memory_the_1_kib_puts_measure_their_bound(tmp_path: Path) -> None:
    """In memory the bound adds taking the body: the floor's PUT with an empty body is measured."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--in-memory", "--workloads", "tiny_puts", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,  # a guard against a hang, not a timing assertion
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    results = json.loads((tmp_path / "latest.json").read_text())["results"]
    assert all(e["empty_rate"] > 0 for e in results["physical.tiny_puts"]["extra"])
    assert "status GET + taking the body: " in (tmp_path / "latest.md").read_text()
