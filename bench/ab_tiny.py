"""A/B of two builds on upload PUTs, interleaved in one run: 1 KiB ranges (msgraph-core's tiny
ranges) by default, any size with ``--range-kib`` (4096: the big upload's 4 MiB ranges).

Each round starts ``graphattach serve`` (embedded SQLite + files, fresh data dir; ``--in-memory``:
the in-memory stores) once per build,
``PYTHONPATH`` pointing at that build's ``src`` (same interpreter and dependencies), uploads
``--puts`` ranges of ``--range-kib`` KiB into one session on one keep-alive connection (a new
session, on a new draft, whenever one is full; the full one's draft is deleted, untimed), and
records PUT/s and
the server tree's CPU seconds per PUT (which shared-machine load disturbs less than the rate).
Prints medians and ranges per build, and the median of the per-round B/A ratios (robuster than
two medians on a shared machine). Asserts nothing.

    .venv/bin/python -m bench.ab_tiny --a /tmp/base/src --b src --rounds 6 --puts 2000
    .venv/bin/python -m bench.ab_tiny --a /tmp/base/src --b src --in-memory
    .venv/bin/python -m bench.ab_tiny --a /tmp/base/src --b src --range-kib 4096 --puts 144
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.ga import Graph, GraphServer, expect, put_range
from bench.httpc import Conn

KiB = 1024
SESSION_MIN = 3 * 1024 * 1024
#: The most one session takes: Graph's 150 MB attachment limit, in whole ranges.
SESSION_MAX = 150_000_000
WARM_UP = 50


def one_round(src: Path, puts: int, scratch: Path, in_memory: bool = False, range_kib: int = 1) -> tuple[float, float]:
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=scratch))
    server = GraphServer(data_dir, scratch / "server.log", extra=["--in-memory"] if in_memory else None)
    server.env = {"PYTHONPATH": str(src.resolve())}
    server.start_and_wait()
    step = range_kib * KiB
    per_session = SESSION_MAX // step
    warm_up = min(WARM_UP, per_session)
    try:
        with Graph(server.port) as graph:
            total = min(max((warm_up + puts) * step, SESSION_MIN), per_session * step)
            data = memoryview(random.Random(1).randbytes(total))
            url, draft, done = "", "", total
            conn: Conn | None = None
            # Only the PUTs are timed: making a session, and deleting the draft of a full one
            # (the clean-up a test suite does, which frees its bytes), are not.
            seconds = cpu = 0.0
            cpu0 = started = None
            for i in range(warm_up + puts):
                if done + step > total:  # a new session, on its own draft (the message size limit)
                    if conn is not None:
                        conn.close()
                        if cpu0 is not None and started is not None:
                            seconds += time.perf_counter() - started
                            cpu += server.procs.cpu() - cpu0
                        graph.delete_message(draft)
                    draft = graph.create_draft()
                    url, done = graph.create_session(draft, total).upload_url, 0
                    conn = Conn.for_url(url)
                    if i >= warm_up:
                        cpu0, started = server.procs.cpu(), time.perf_counter()
                if i == warm_up and started is None:
                    cpu0, started = server.procs.cpu(), time.perf_counter()
                assert conn is not None
                expect(put_range(conn, url, data[done : done + step], done, total), f"PUT #{i}", 200, 201)
                done += step
            if cpu0 is not None and started is not None:
                seconds += time.perf_counter() - started
                cpu += server.procs.cpu() - cpu0
            if conn is not None:
                conn.close()
    finally:
        server.stop()
    return puts / seconds, cpu / puts * 1e6


def alternate(
    rounds: int, a: Path, b: Path, one: Callable[[Path], tuple[float, float]]
) -> dict[str, list[tuple[float, float]]]:
    """Run ``one(src)`` for builds A and B, ``rounds`` times each, alternating which goes first."""
    results: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
    for n in range(rounds):
        for build in ("A", "B") if n % 2 == 0 else ("B", "A"):
            results[build].append(one(a if build == "A" else b))
    return results


def report(results: dict[str, list[tuple[float, float]]], a: Path, b: Path, what: str, cpu: str, digits: int) -> None:
    """Print each build's median rate and CPU per request (``cpu``: its unit) and the per-round B/A ratio."""
    for build, rounds in results.items():
        rates, cpus = [r[0] for r in rounds], [r[1] for r in rounds]
        print(
            f"{build} ({a if build == 'A' else b}): {statistics.median(rates):.0f} {what}/s"
            f" ({min(rates):.0f}-{max(rates):.0f}), server CPU {statistics.median(cpus):.{digits}f} {cpu}/{what}"
            f" ({min(cpus):.{digits}f}-{max(cpus):.{digits}f})"
        )
    ratios = [rb[0] / ra[0] for ra, rb in zip(results["A"], results["B"], strict=True)]
    print(f"B/A {what}/s per round: median {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")


def ab_parser(description: str | None) -> argparse.ArgumentParser:
    """The options every A/B tool takes: the two builds, the rounds, the storage."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, required=True, help="the src directory of build A")
    parser.add_argument("--b", type=Path, required=True, help="the src directory of build B")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--in-memory", action="store_true", help="serve both builds with --in-memory")
    return parser


def main() -> None:
    parser = ab_parser(__doc__)
    parser.add_argument("--puts", type=int, default=2000)
    parser.add_argument("--range-kib", type=int, default=1, help="KiB per range (4096: the big upload's ranges)")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as scratch:
        results = alternate(
            opts.rounds,
            opts.a,
            opts.b,
            lambda src: one_round(src, opts.puts, Path(scratch), opts.in_memory, opts.range_kib),
        )
    mode = "--in-memory" if opts.in_memory else "embedded storage"
    print(
        f"{opts.puts} PUTs of {opts.range_kib} KiB per round, {opts.rounds} rounds, {mode}, builds alternated; load {os.getloadavg()}"
    )
    report(results, opts.a, opts.b, "PUT", "µs", 0)


if __name__ == "__main__":
    main()
