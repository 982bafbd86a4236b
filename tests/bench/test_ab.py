"""The A/B tools (``bench.ab_tiny``, ``bench.ab_post``) run in the suite, this checkout as both
builds, so that they cannot rot: every request's status is checked, figures are printed, never
asserted."""

from __future__ import annotations

import re

from tests.bench.bench_support import REPO, run_bench

SRC = str(REPO / "src")


def test_ab_tiny_measures_both_builds() -> None:
    done = run_bench("bench.ab_tiny", "--a", SRC, "--b", SRC, "--rounds", "2", "--puts", "20", "--in-memory")
    assert re.search(r"^A \(.*\): \d+ PUT/s", done.stdout, re.M)
    assert re.search(r"^B \(.*\): \d+ PUT/s", done.stdout, re.M)
    assert "B/A PUT/s per round: median" in done.stdout


def test_ab_post_measures_both_builds() -> None:
    done = run_bench("bench.ab_post", "--a", SRC, "--b", SRC, "--rounds", "2", "--secs", "0.3", "--concurrency", "2")
    assert re.search(r"^A \(.*\): \d+ POST/s", done.stdout, re.M)
    assert "B/A POST/s per round: median" in done.stdout
