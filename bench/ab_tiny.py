"""A/B of two builds on 1 KiB upload PUTs (msgraph-core's tiny ranges), interleaved in one run.

Each round starts ``graphattach serve`` (embedded SQLite + files, fresh data dir; ``--in-memory``:
the in-memory stores) once per build,
``PYTHONPATH`` pointing at that build's ``src`` (same interpreter and dependencies), uploads
``--puts`` ranges of 1 KiB into one session on one keep-alive connection, and records PUT/s and
the server tree's CPU seconds per PUT (which shared-machine load disturbs less than the rate).
Prints medians and ranges per build, and the median of the per-round B/A ratios (robuster than
two medians on a shared machine). Asserts nothing.

    .venv/bin/python -m bench.ab_tiny --a /tmp/base/src --b src --rounds 6 --puts 2000
    .venv/bin/python -m bench.ab_tiny --a /tmp/base/src --b src --in-memory
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.ga import Graph, GraphServer, expect, put_range
from bench.httpc import Conn

KiB = 1024
SESSION_MIN = 3 * 1024 * 1024


def one_round(src: Path, puts: int, scratch: Path, in_memory: bool = False) -> tuple[float, float]:
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=scratch))
    server = GraphServer(data_dir, scratch / "server.log", extra=["--in-memory"] if in_memory else None)
    server.env = {"PYTHONPATH": str(src.resolve())}
    server.start_and_wait()
    try:
        total = max(puts * KiB, SESSION_MIN)
        data = memoryview(random.Random(1).randbytes(total))
        with Graph(server.port) as graph:
            url = graph.create_session(graph.create_draft(), total).upload_url
        with Conn.for_url(url) as conn:
            for i in range(50):  # warm-up
                expect(put_range(conn, url, data[i * KiB : (i + 1) * KiB], i * KiB, total), "warm-up PUT", 200)
            cpu0 = server.procs.cpu()
            started = time.perf_counter()
            for i in range(50, 50 + puts):
                expect(put_range(conn, url, data[i * KiB : (i + 1) * KiB], i * KiB, total), f"PUT #{i}", 200)
            seconds = time.perf_counter() - started
            cpu = server.procs.cpu() - cpu0
    finally:
        server.stop()
    return puts / seconds, cpu / puts * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, required=True, help="the src directory of build A")
    parser.add_argument("--b", type=Path, required=True, help="the src directory of build B")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--puts", type=int, default=2000)
    parser.add_argument("--in-memory", action="store_true", help="serve both builds with --in-memory")
    opts = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as scratch:
        for n in range(opts.rounds):
            order = ("A", "B") if n % 2 == 0 else ("B", "A")
            for build in order:
                src = opts.a if build == "A" else opts.b
                results[build].append(one_round(src, opts.puts, Path(scratch), opts.in_memory))
    mode = "--in-memory" if opts.in_memory else "embedded storage"
    print(
        f"{opts.puts} PUTs of 1 KiB per round, {opts.rounds} rounds, {mode}, builds alternated; load {os.getloadavg()}"
    )
    for build, rounds in results.items():
        rates, cpus = [r[0] for r in rounds], [r[1] for r in rounds]
        print(
            f"{build} ({opts.a if build == 'A' else opts.b}): {statistics.median(rates):.0f} PUT/s"
            f" ({min(rates):.0f}-{max(rates):.0f}), server CPU {statistics.median(cpus):.0f} µs/PUT"
            f" ({min(cpus):.0f}-{max(cpus):.0f})"
        )
    ratios = [b[0] / a[0] for a, b in zip(results["A"], results["B"], strict=True)]
    print(f"B/A PUT/s per round: median {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
