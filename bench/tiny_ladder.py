"""Where a 1 KiB upload PUT's time goes: a ladder of requests on one keep-alive connection.

Each rung adds one part of what a 1 KiB range costs, so the rung below a target is the ceiling
that stops it:

1. ``floor``: the durable floor's 1 KiB PUT (bench/floor_app.py: granian, a no-op app, the one
   ``fdatasync`` and an unsynced SQLite commit; ``?no-sync`` with ``--in-memory``);
2. ``framework``: the floor's PUT through Starlette (``bench.floor_app:framework``: a router, a
   ``Request`` read with ``request.stream()``, a ``Response``, the body ended at its declared
   length as graphattach ends it): what the framework graphattach is built on adds;
3. ``stack``: ``GET /_graphattach/health`` on graphattach: granian, Starlette and graphattach's
   middleware (request journal, Graph headers, fault layer, router), a constant answer;
4. ``status``: ``GET`` on an upload URL: the stack, plus the upload URL's signature check, the
   session's read and the status body (what every PUT also does);
5. ``put``: a 1 KiB ``PUT`` into the same session: plus the session lock, the body, the blob's
   append with its ``fdatasync``, and the session row's advance.

On disk a further rung, ``floor-nosync``, is the floor's PUT without its sync and commit: the
difference between the two floors is what the floor's write costs a request. In memory,
``floor-empty`` is the floor's PUT with an empty body, which the app never asks the server for:
the difference is what taking a 1 KiB body from the server costs a request (a round trip
between granian's I/O thread and the event loop). A PUT must do all a status ``GET`` does (which
takes no body), and then what it cannot overlap with that: on disk the write (graphattach reads
a small body while the session is read in the store's thread), in memory taking the body (no
store wait to hide it behind). So ``1 / (1 / status + write)`` on disk and ``1 / (1 / status +
body)`` in memory bound it (the ``bound`` line, ``bench.report.put_bound``): what the PUT could
reach if its own path cost nothing beyond the status GET's and the floor's.

The rungs take turns for ``--rounds`` rounds of ``--seconds`` each (at most ``--requests``);
printed: the median rate per rung with its range, the server's CPU µs per request, each rung
as a share of the floor, and the PUT against the bound. Asserts nothing.

    .venv/bin/python -m bench.tiny_ladder                   # embedded storage
    .venv/bin/python -m bench.tiny_ladder --in-memory --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.cases import FloorServer
from bench.ga import Graph, GraphServer, expect, put_range
from bench.httpc import Conn, target_of
from bench.report import body_receipt, floor_write, put_bound

KiB = 1024
RUNGS = ("floor", "floor-nosync", "floor-empty", "framework", "stack", "status", "put")


def _timed(one: Callable[[int], None], seconds: float, limit: int, cpu: Callable[[], float]) -> tuple[float, float]:
    """(requests per second, server CPU µs per request) of ``one(i)`` repeated."""
    cpu0 = cpu()
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while done < limit and time.perf_counter() < deadline:
        one(done)
        done += 1
    elapsed = time.perf_counter() - start
    return done / elapsed, (cpu() - cpu0) / done * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument(
        "--in-memory", action="store_true", help="graphattach serve --in-memory; the floor syncs nothing"
    )
    parser.add_argument("--out", type=Path, help="write the figures as JSON here too")
    opts = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="tiny-ladder-"))
    floor = FloorServer(scratch).start_and_wait()
    framework = FloorServer(scratch, app="bench.floor_app:framework", name="framework").start_and_wait()
    ga = GraphServer(
        scratch / "ga-data", scratch / "graphattach.log", extra=["--in-memory"] if opts.in_memory else None
    )
    ga.start_and_wait()
    results: dict[str, list[tuple[float, float]]] = {rung: [] for rung in RUNGS}
    body = os.urandom(KiB)
    try:
        with Graph(ga.port) as graph:
            token = graph.token
            # One session big enough for every PUT of every round.
            # (at least 3 MiB: Graph refuses a session for less than 2 MiB)
            total = max((opts.requests * opts.rounds + 1) * KiB, 3 * KiB * KiB)
            url = graph.create_session(graph.create_draft("tiny ladder"), total).upload_url
        offset = 0
        suffix = "?no-sync" if opts.in_memory else ""
        for _ in range(opts.rounds):
            with Conn("127.0.0.1", floor.port) as c:

                def floor_put(i: int, c: Conn = c) -> None:
                    expect(c.request("PUT", f"/tiny{suffix}", {}, body), "floor PUT", 200)

                results["floor"].append(_timed(floor_put, opts.seconds, opts.requests, floor.procs.cpu))
            if not opts.in_memory:
                with Conn("127.0.0.1", floor.port) as c:

                    def floor_nosync(i: int, c: Conn = c) -> None:
                        expect(c.request("PUT", "/tiny-nosync?no-sync", {}, body), "floor PUT", 200)

                    results["floor-nosync"].append(_timed(floor_nosync, opts.seconds, opts.requests, floor.procs.cpu))
            else:
                with Conn("127.0.0.1", floor.port) as c:

                    def floor_empty(i: int, c: Conn = c) -> None:
                        expect(c.request("PUT", "/tiny-empty?no-sync", {}, b""), "floor PUT", 200)

                    results["floor-empty"].append(_timed(floor_empty, opts.seconds, opts.requests, floor.procs.cpu))
            with Conn("127.0.0.1", framework.port) as c:

                def framework_put(i: int, c: Conn = c) -> None:
                    expect(c.request("PUT", f"/tiny{suffix}", {}, body), "framework PUT", 200)

                results["framework"].append(_timed(framework_put, opts.seconds, opts.requests, framework.procs.cpu))
            with Conn("127.0.0.1", ga.port) as c:

                def health(i: int, c: Conn = c) -> None:
                    expect(
                        c.request("GET", "/_graphattach/health", {"Authorization": f"Bearer {token}"}), "health", 200
                    )

                results["stack"].append(_timed(health, opts.seconds, opts.requests, ga.procs.cpu))
            with Conn.for_url(url) as c:

                def status(i: int, c: Conn = c) -> None:
                    expect(c.request("GET", target_of(url)), "upload status", 200)

                results["status"].append(_timed(status, opts.seconds, opts.requests, ga.procs.cpu))
            with Conn.for_url(url) as c:

                def put(i: int, c: Conn = c, start: int = offset) -> None:
                    expect(put_range(c, url, memoryview(body), start + i * KiB, total), "PUT", 200)

                results["put"].append(_timed(put, opts.seconds, opts.requests, ga.procs.cpu))
                # the next round goes on where this one stopped
                answer = c.request("GET", target_of(url))
                offset = int(json.loads(answer.body)["nextExpectedRanges"][0].split("-")[0])
    finally:
        ga.stop()
        framework.stop()
        floor.stop()

    load = os.getloadavg()
    mode = "--in-memory (the floor syncs nothing)" if opts.in_memory else "embedded storage (one fdatasync per PUT)"
    print(f"{opts.rounds} rounds of at most {opts.seconds:g} s per rung, {mode}; load {load[0]:.1f}")
    floor_rate = statistics.median(r for r, _ in results["floor"])
    summary = {}
    for rung in RUNGS:
        if not results[rung]:
            continue  # floor-nosync only on disk, floor-empty only in memory
        rates = [r for r, _ in results[rung]]
        cpus = [c for _, c in results[rung]]
        median = statistics.median(rates)
        summary[rung] = {"median": median, "min": min(rates), "max": max(rates), "cpu_us": statistics.median(cpus)}
        print(
            f"  {rung:12s} {median:8,.0f} req/s ({min(rates):,.0f}-{max(rates):,.0f}), server CPU "
            f"{statistics.median(cpus):6,.0f} µs/request, {median / floor_rate * 100:4.0f} % of the floor"
        )
    # What the PUT adds to the status GET's time and cannot overlap with it: the floor's write on
    # disk, taking the body in memory.
    if opts.in_memory:
        added = body_receipt(floor_rate, summary["floor-empty"]["median"])
        what = "taking the body"
    else:
        added = floor_write(floor_rate, summary["floor-nosync"]["median"])
        what = "the floor's write"
    bound = put_bound(summary["status"]["median"], added)
    summary["bound"] = {"median": bound, "added_us": added * 1e6}
    print(
        f"  {'bound':12s} {bound:8,.0f} req/s: the status GET plus {what} ({added * 1e6:,.0f} µs), "
        f"{bound / floor_rate * 100:4.0f} % of the floor; the PUT reaches {summary['put']['median'] / bound * 100:.0f} % of it"
    )
    if opts.out:
        opts.out.write_text(json.dumps({"in_memory": opts.in_memory, "load": load, "rungs": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
