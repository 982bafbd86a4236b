"""A/B of two builds on the 1 MiB POST (a file attachment as base64 JSON), interleaved in one run.

Each round starts ``graphattach serve`` (embedded SQLite + files, fresh data dir; ``--in-memory``:
the in-memory stores) once per build, ``PYTHONPATH`` pointing at that build's ``src``, and POSTs
the attachment from ``--concurrency`` keep-alive connections for ``--secs`` seconds (the load of
``bench/run``'s POST row), 100 attachments per draft. Records POST/s and the server tree's CPU
milliseconds per POST; prints medians, ranges and the median of the per-round B/A ratios.
Asserts nothing.

    .venv/bin/python -m bench.ab_post --a /tmp/base/src --b src --rounds 8 --secs 4
"""

from __future__ import annotations

import os
import queue
import random
import tempfile
from pathlib import Path

from bench.ab_tiny import ab_parser, alternate, report
from bench.cases import POSTS_PER_MESSAGE, load
from bench.ga import Graph, GraphServer, expect, file_attachment_json, seg
from bench.httpc import Conn

MiB = 1024 * 1024


def one_round(src: Path, scratch: Path, secs: float, concurrency: int, in_memory: bool) -> tuple[float, float]:
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=scratch))
    server = GraphServer(data_dir, scratch / "server.log", extra=["--in-memory"] if in_memory else None)
    server.env = {"PYTHONPATH": str(src.resolve())}
    server.start_and_wait()
    body = file_attachment_json("bench-1mib.bin", random.Random(1).randbytes(MiB))
    max_posts = 4_000
    try:
        with Graph(server.port) as graph:
            drafts = [
                graph.create_draft(f"ab post {i}") for i in range(max(concurrency, max_posts // POSTS_PER_MESSAGE))
            ]
            slots: queue.SimpleQueue[str] = queue.SimpleQueue()
            for _ in range(POSTS_PER_MESSAGE):
                for d in drafts:
                    slots.put(d)
            headers = {
                "Authorization": f"Bearer {graph.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            }

            def one(conn: Conn, _: int) -> None:
                r = conn.request("POST", f"/v1.0/me/messages/{seg(slots.get_nowait())}/attachments", headers, body)
                expect(r, "POST an attachment", 201)

            # A short warm-up, untimed, then the measured load.
            load(concurrency, 0.5, 40, lambda: Conn("127.0.0.1", server.port), one)
            cpu0 = server.procs.cpu()
            sample = load(concurrency, secs, max_posts, lambda: Conn("127.0.0.1", server.port), one)
            cpu = server.procs.cpu() - cpu0
    finally:
        server.stop()
    requests = sample.extra["requests"]
    return sample.value, cpu / requests * 1e3


def main() -> None:
    parser = ab_parser(__doc__)
    parser.add_argument("--secs", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=8)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as scratch:
        results = alternate(
            opts.rounds,
            opts.a,
            opts.b,
            lambda src: one_round(src, Path(scratch), opts.secs, opts.concurrency, opts.in_memory),
        )
    mode = "--in-memory" if opts.in_memory else "embedded storage"
    print(
        f"1 MiB POSTs, {opts.concurrency} connections, {opts.secs:g} s per round, {opts.rounds} rounds, {mode},"
        f" builds alternated; load {os.getloadavg()}"
    )
    report(results, opts.a, opts.b, "POST", "ms", 2)


if __name__ == "__main__":
    main()
