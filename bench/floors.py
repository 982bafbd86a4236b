"""The upload floors of the two designs, interleaved in one run: ``python -m bench.floors``.

The durable floor (``bench/floor_app.py``) answers an upload range after one ``fdatasync`` (the
session's SQLite commit unsynced: the blob is the journal) or, with ``?two-syncs``, after two (the
bytes, then a ``synchronous=FULL`` commit: the earlier design); ``?no-sync`` syncs nothing (the
floor of ``--in-memory``). Each round runs every mode once, in a rotating order, on one
keep-alive connection: ``--puts`` 1 KiB PUTs, and ``--mb`` MB in 4 MiB PUTs. Prints the median
and range of each mode, and the ratios of the medians. Asserts nothing.

    .venv/bin/python -m bench.floors --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.cases import FloorServer
from bench.ga import CHUNK, expect
from bench.httpc import Conn

MODES = ("one sync", "two syncs", "no sync")
QUERY = {"one sync": "", "two syncs": "?two-syncs", "no sync": "?no-sync"}


def tiny(port: int, mode: str, puts: int) -> float:
    body = os.urandom(1024)
    with Conn("127.0.0.1", port) as conn:
        path = f"/tiny-{mode.replace(' ', '-')}{QUERY[mode]}"
        started = time.perf_counter()
        for _ in range(puts):
            expect(conn.request("PUT", path, {"Content-Type": "application/octet-stream"}, body), "floor PUT", 200)
        return puts / (time.perf_counter() - started)


def big(port: int, mode: str, data: memoryview) -> float:
    with Conn("127.0.0.1", port) as conn:
        path = f"/big-{mode.replace(' ', '-')}{QUERY[mode]}"
        started = time.perf_counter()
        for offset in range(0, len(data), CHUNK):
            chunk = data[offset : offset + CHUNK]
            expect(conn.request("PUT", path, {"Content-Type": "application/octet-stream"}, chunk), "floor PUT", 200)
        return len(data) / (time.perf_counter() - started) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--puts", type=int, default=2000, help="1 KiB PUTs per mode and round")
    parser.add_argument("--mb", type=int, default=150, help="MB per mode and round in 4 MiB PUTs")
    args = parser.parse_args()
    data = memoryview(os.urandom(args.mb * 1_000_000))
    results: dict[str, dict[str, list[float]]] = {m: {"tiny": [], "big": []} for m in MODES}
    with tempfile.TemporaryDirectory(prefix="graphattach-floors-") as scratch:
        floor = FloorServer(Path(scratch)).start_and_wait()
        try:
            for round_ in range(args.rounds):
                order = MODES[round_ % 3 :] + MODES[: round_ % 3]
                for mode in order:
                    results[mode]["tiny"].append(tiny(floor.port, mode, args.puts))
                    results[mode]["big"].append(big(floor.port, mode, data))
                    with Conn("127.0.0.1", floor.port) as conn:
                        expect(conn.request("DELETE", "/"), "floor clean-up", 200)
        finally:
            floor.stop()
    print(f"{args.rounds} rounds; load average {os.getloadavg()[0]:.1f} at the end")
    medians: dict[str, dict[str, float]] = {}
    for mode in MODES:
        medians[mode] = {k: statistics.median(v) for k, v in results[mode].items()}
        t, b = results[mode]["tiny"], results[mode]["big"]
        print(
            f"{mode:>9}: 1 KiB PUTs {medians[mode]['tiny']:,.0f} PUT/s ({min(t):,.0f}-{max(t):,.0f}); "
            f"4 MiB PUTs {medians[mode]['big']:,.0f} MB/s ({min(b):,.0f}-{max(b):,.0f})"
        )
    one, two = medians["one sync"], medians["two syncs"]
    print(f"one sync / two syncs: 1 KiB {one['tiny'] / two['tiny']:.2f}x, 4 MiB {one['big'] / two['big']:.2f}x")


if __name__ == "__main__":
    main()
