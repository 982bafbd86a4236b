"""graphattach's own client under a seeded mix of faults (the full run: ``bench/run chaos``)."""

from __future__ import annotations

from pathlib import Path

from bench.chaos import attach_under_faults, chaos_rules, make_files, sizes_for

from tests.helpers import running_server


def test_the_client_attaches_every_file_exactly_once_under_a_seeded_fault_mix(tmp_path: Path) -> None:
    sizes = sizes_for(6, 3_200_000, 9_000_000, seed=7)
    files = make_files(tmp_path, sizes, seed=7)
    with running_server(tmp_path / "data") as server:
        outcome = attach_under_faults(server.root, files, chaos_rules(seed=7), concurrency=1, timeout=600)
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.files_ok == len(files), outcome.stderr
    assert outcome.fired >= 3  # the seed gives faults of several kinds to get through
