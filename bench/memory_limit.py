"""``--in-memory`` with and without ``--memory-limit``: RSS and throughput of several big uploads.

Starts ``graphattach serve --in-memory`` once per setting (``unlimited`` and each limit given), with
``TMPDIR`` in a scratch directory, uploads ``--files`` files of ``--size`` bytes (one draft each) in
4 MiB PUTs on one connection, and prints per setting: the server tree's RSS before and at its peak
(sampled every 20 ms), the growth, MB/s over all uploads, the server's CPU seconds, and the bytes
in the spill directory at the end. Settings are interleaved over ``--runs`` rounds. Asserts nothing.

    .venv/bin/python -m bench.memory_limit                      # 6 x 150 MiB, unlimited vs 512MB
    .venv/bin/python -m bench.memory_limit --files 3 --size 20000000 --limits 16MB --runs 1
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.ga import Graph, GraphServer, upload
from bench.procs import Monitor

MiB = 1024 * 1024


def _spilled(tmp: Path) -> int:
    return sum(p.stat().st_size for p in tmp.glob("graphattach-spill-*/blobs/**/*") if p.is_file())


def one_run(limit: str, files: int, data: memoryview, scratch: Path) -> dict[str, float | str]:
    tmp = Path(tempfile.mkdtemp(prefix="tmp-", dir=scratch))
    server = GraphServer(
        scratch / "data", scratch / f"server-{limit}.log", extra=["--in-memory", "--memory-limit", limit]
    )
    server.env = {"TMPDIR": str(tmp)}
    server.start_and_wait()
    try:
        with Graph(server.port) as graph:
            drafts = [graph.create_draft() for _ in range(files)]  # one each: 150 MiB is a draft's maximum
            with Monitor(server.procs) as usage:
                started = time.perf_counter()
                for draft in drafts:
                    session = graph.create_session(draft, len(data))
                    upload(graph.conn, session.upload_url, data)
                seconds = time.perf_counter() - started
        spilled = _spilled(tmp)
    finally:
        server.stop()
    return {
        "limit": limit,
        "rss_before_mb": usage.rss_before / 1e6,
        "rss_peak_mb": usage.rss_peak / 1e6,
        "rss_growth_mb": usage.growth / 1e6,
        "mb_per_s": files * len(data) / seconds / 1e6,
        "server_cpu_s": usage.cpu_s,
        "spilled_mb": spilled / 1e6,
        "spill_dirs_left": float(len(list(tmp.glob("graphattach-spill-*")))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--size", type=int, default=150 * MiB)
    parser.add_argument("--limits", default="512MB", help="comma-separated --memory-limit values besides unlimited")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    opts = parser.parse_args()
    data = memoryview(random.Random(20).randbytes(opts.size))
    settings = ["unlimited", *[s for s in opts.limits.split(",") if s]]
    results: dict[str, list[dict[str, float | str]]] = {s: [] for s in settings}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
        for _ in range(opts.runs):
            for setting in settings:
                results[setting].append(one_run(setting, opts.files, data, Path(scratch)))
    print(f"{opts.files} uploads of {opts.size:,} bytes, 4 MiB PUTs, {opts.runs} interleaved runs (median, min-max)")
    for setting, runs in results.items():
        line = [f"--memory-limit {setting}:"]
        for key in ("rss_peak_mb", "rss_growth_mb", "mb_per_s", "server_cpu_s", "spilled_mb", "spill_dirs_left"):
            values = [float(r[key]) for r in runs]
            line.append(f"{key} {statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})")
        print("  ".join(line))
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
