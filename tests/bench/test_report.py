"""The benchmark report's targets: each held against its reference, and against the ceiling
measured in the same run where one bounds it."""

from __future__ import annotations

from typing import Any

import pytest
from bench.report import checks, markdown, tiny_put_bound


def _result(median: float, extra: list[dict[str, Any]] | None = None, unit: str = "PUT/s") -> dict[str, Any]:
    return {
        "status": "ok",
        "summary": {"median": median, "min": median, "max": median, "runs": 1},
        "extra": extra or [{}],
        "unit": unit,
        "label": "x",
        "note": "",
    }


def _results() -> dict[str, Any]:
    return {
        "physical.tiny_puts": _result(800, [{"no_sync_rate": 1500}, {"no_sync_rate": 1700}, {}]),
        "graphattach.tiny_puts": _result(400, [{"status_rate": 900}, {"status_rate": 1100}, {"status_rate": 1000}]),
        "physical.upload_big": _result(300, unit="MB/s"),
        "physical.disk_write_fdatasync": _result(800, unit="MB/s"),
        "tus.upload_big": _result(250, unit="MB/s"),
        "graphattach.upload_big": _result(280, unit="MB/s"),
        "physical.post_small": _result(100, unit="req/s"),
        "graphattach.post_small": _result(95, unit="req/s"),
    }


def test_the_1_kib_bound_is_the_status_get_plus_the_floors_write_on_disk() -> None:
    results = _results()
    # the floor's write: 1/800 - 1/1600 s (the medians of the runs that measured it)
    assert tiny_put_bound(results, in_memory=False) == pytest.approx(1 / (1 / 1000 + 1 / 800 - 1 / 1600))
    del results["physical.tiny_puts"]["extra"]
    assert tiny_put_bound(results, in_memory=False) is None


def test_the_1_kib_bound_is_the_status_get_plus_taking_the_body_in_memory() -> None:
    results = _results()
    assert tiny_put_bound(results, in_memory=True) is None  # the empty-body floor was not measured
    results["physical.tiny_puts"] = _result(800, [{"empty_rate": 1500}, {"empty_rate": 1700}, {}])
    # taking the body: the floor's 1/800 s less the empty-body floor's 1/1600 s
    assert tiny_put_bound(results, in_memory=True) == pytest.approx(1 / (1 / 1000 + 1 / 800 - 1 / 1600))
    text = markdown({**_data(), "results": results, "meta": {**_data()["meta"], "in_memory": True}})
    assert "status GET + taking the body: 77 % (615)" in text


def test_a_miss_past_its_ceiling_is_told_apart_from_graphattachs_own() -> None:
    by_name = {c.name: c for c in checks(_results())}
    vs_disk = by_name["Upload, one big file vs the disk (fdatasync every 4 MiB)"]
    assert vs_disk.ok is False and vs_disk.ceiling_ok is False  # the floor reaches 38 % of the disk
    assert "the target is past the ceiling" in vs_disk.verdict and "**" not in vs_disk.verdict
    assert "graphattach at 93 % of the ceiling" in vs_disk.verdict  # 280 of the floor's 300
    vs_tus = by_name["Upload, one big file vs @tus/server"]
    assert vs_tus.ok is False and vs_tus.ceiling_ok is False  # 1.12× against a floor at 1.2×
    tiny = by_name["1 KiB PUTs vs the one-sync floor"]
    assert tiny.ok is False and tiny.ceiling_ok is False  # the bound is 615 of the floor's 800: 77 %
    assert "77 %" in tiny.ceiling
    post = by_name["POST ~1 MiB attachment vs the durable floor"]
    assert post.ok is True and post.verdict == "met"
    results = _results()
    results["graphattach.post_small"] = _result(50, unit="req/s")
    post = {c.name: c for c in checks(results)}["POST ~1 MiB attachment vs the durable floor"]
    assert post.ceiling == "" and post.verdict.startswith("**missed by 44 %")


def test_the_absolute_1_kib_target_is_bounded_by_the_lower_of_the_floor_and_the_put_bound() -> None:
    results = _results()
    results["physical.tiny_puts"] = _result(2000, [{"no_sync_rate": 4000}])
    results["graphattach.tiny_puts"] = _result(900, [{"status_rate": 2000}])
    absolute = {c.name: c for c in checks(results)}["1 KiB PUTs"]
    # the floor (2,000) reaches 1,500, the bound (1 / (1/2000 + 1/2000 - 1/4000) = 1,333) does not
    assert absolute.ceiling == "status GET + the floor's write: 1,333 PUT/s"
    assert absolute.ceiling_ok is False and "the target is past the ceiling" in absolute.verdict
    # faster status GETs: the bound (2,667) is above the floor, which is then the ceiling
    results["graphattach.tiny_puts"] = _result(900, [{"status_rate": 8000}])
    absolute = {c.name: c for c in checks(results)}["1 KiB PUTs"]
    assert absolute.ceiling == "durable floor: 2,000 PUT/s"
    assert absolute.ceiling_ok is True and absolute.verdict.startswith("**missed by 40 %")


def test_a_ceiling_that_reaches_the_target_leaves_the_miss_graphattachs() -> None:
    results = _results()
    results["tus.upload_big"] = _result(150, unit="MB/s")  # the floor 2×, graphattach 1.33×: target 1.5×
    results["graphattach.upload_big"] = _result(200, unit="MB/s")
    check = {c.name: c for c in checks(results)}["Upload, one big file vs @tus/server"]
    assert check.ok is False and check.ceiling_ok is True
    assert check.verdict.startswith("**missed by")


def _data() -> dict[str, Any]:
    """A whole run's data, as ``markdown`` takes it."""
    return {
        "meta": {
            "started": "now",
            "mode": "full",
            "runs": 1,
            "command": "bench/run",
            "machine": {"cpus": 2, "mem_total_mb": 1, "kernel": "6", "loadavg_start": [0.0]},
            "versions": {},
            "git": {"commit": "0123456789ab", "branch": "main"},
        },
        "results": _results(),
    }


def test_the_markdown_has_the_ceiling_column() -> None:
    data = _data()
    text = markdown(data)
    assert "| check | measured (medians) | target | ceiling in this run | result |" in text
    assert "status GET + the floor's write: 77 % (615)" in text
    assert "commit 0123456789 (main)." in text
    # a run of code that no commit holds says so
    data["meta"]["git"]["uncommitted"] = True
    assert "commit 0123456789 (main, with uncommitted changes)." in markdown(data)


def test_in_memory_concurrency_is_held_against_the_no_sync_floors_own_gain() -> None:
    results = _results()
    results["physical.upload_concurrent"] = _result(330, unit="MB/s")  # the floor: 1.1× its single upload
    results["graphattach.upload_concurrent"] = _result(280, unit="MB/s")  # 1.0× graphattach's single upload
    check = {c.name: c for c in checks(results, in_memory=True)}["Concurrent uploads, aggregate vs one upload"]
    assert check.ok is False and check.ceiling_ok is False
    assert check.ceiling == "no-sync floor's own: 1.10×"
    assert "graphattach at 91 % of the ceiling" in check.verdict  # 1.0× of the floor's 1.1×
    # on disk the floor's uploads at once sync in threads and are held against its own single
    # upload made that way (``single_rate``), not against its inline-sync single upload
    on_disk = {c.name: c for c in checks(results)}["Concurrent uploads, aggregate vs one upload"]
    assert on_disk.ceiling == "" and on_disk.ceiling_ok is None  # not measured: no ceiling
    results["physical.upload_concurrent"] = _result(330, [{"single_rate": 220}, {"single_rate": 240}], unit="MB/s")
    on_disk = {c.name: c for c in checks(results)}["Concurrent uploads, aggregate vs one upload"]
    assert on_disk.ceiling == "durable floor's own: 1.43×"  # 330 / 230
    assert on_disk.ceiling_ok is True and on_disk.verdict.startswith("**missed by")


def test_the_floors_uploads_at_once_are_named_for_the_mode() -> None:
    data = _data()
    data["results"]["physical.upload_concurrent"] = _result(330, unit="MB/s")
    assert "| Concurrent uploads (aggregate) | durable floor |" in markdown(data)
    data["meta"]["in_memory"] = True
    assert "| Concurrent uploads (aggregate) | no-sync floor |" in markdown(data)


def test_uploads_at_once_are_bounded_by_the_cpus_the_single_upload_left_idle() -> None:
    results = _results()
    results["graphattach.upload_big"]["summary"]["cores_busy"] = 1.6  # of 2: at most 1.25× more
    results["graphattach.upload_concurrent"] = _result(320, unit="MB/s")  # 1.14× the single upload
    check = {c.name: c for c in checks(results, cpus=2)}["Concurrent uploads, aggregate vs one upload"]
    assert check.ok is False and check.ceiling_ok is False
    assert check.ceiling == "the 2 CPUs (1.60 busy in the single upload): 1.25×"
    assert "graphattach at 91 % of the ceiling" in check.verdict
    # in memory the tighter of that and the no-sync floor's own gain
    results["physical.upload_concurrent"] = _result(390, unit="MB/s")  # the floor: 1.3× its single upload
    check = {c.name: c for c in checks(results, in_memory=True, cpus=2)}["Concurrent uploads, aggregate vs one upload"]
    assert check.ceiling.startswith("the 2 CPUs")
    results["physical.upload_concurrent"] = _result(330, unit="MB/s")  # 1.1×
    check = {c.name: c for c in checks(results, in_memory=True, cpus=2)}["Concurrent uploads, aggregate vs one upload"]
    assert check.ceiling == "no-sync floor's own: 1.10×"
    # without the machine's figures, no CPU bound
    assert {c.name: c for c in checks(results, cpus=None)}["Concurrent uploads, aggregate vs one upload"].ceiling == ""
