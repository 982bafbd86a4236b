"""Figures for the workflows around attachments: ``$batch``, delta and ``$search``.

    .venv/bin/python -m bench.workflows [--messages 10000] [--changes 100] [--runs 7]

Starts ``graphattach serve`` on a temporary data dir (SQLite + files, default profile) and prints:

- ``$batch`` of 20 GETs of single messages vs the slowest of the same 20 GETs made one by one, in
  ``--rounds`` interleaved rounds (medians; wall time on 127.0.0.1, one connection, and server
  time from the request journal, ``GET /_graphattach/requests``);
- delta over a folder of ``--messages`` messages: the first round (pages of 1000), then the
  deltaLink call after ``--changes`` PATCHes (server time from the request journal, wall time
  and the server's CPU seconds);
- ``$search`` for one word over the same folder.

The messages are created 20 at a time through ``$batch``. Timing is printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.procs import ProcTree, free_port


def _serve(data_dir: Path, port: int) -> Any:
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "graphattach", "serve", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_graphattach/info", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("graphattach did not start")


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _last_durations(http: httpx.Client, root: str, count: int) -> list[float]:
    """The server time (ms) of the last ``count`` requests, from the journal (``durationMs``:
    from the outermost middleware in to the last byte handed to the server, HTTP parsing excluded)."""
    entries = http.get(f"{root}/_graphattach/requests", params={"limit": count}).json()["value"]
    return [float(e["durationMs"]) for e in entries]


def _batch_vs_direct(http: httpx.Client, root: str, g: str, sample: list[str], rounds: int, procs: ProcTree) -> None:
    """``rounds`` interleaved rounds, each the 20 GETs made directly and the same 20 as one
    ``$batch`` (which goes first alternates), so that the drift of a shared machine hits both alike;
    the figures are the medians over the rounds, and the median of the per-round ratios. The
    server's CPU seconds are summed over all rounds (10 ms clock ticks add up to a usable figure),
    which a loaded machine disturbs far less than wall or server time."""
    body = {"requests": [{"id": str(n), "method": "GET", "url": f"/me/messages/{i}"} for n, i in enumerate(sample)]}
    walls: dict[str, list[float]] = {"batch": [], "slowest": [], "sum": [], "ratio": []}
    server: dict[str, list[float]] = {"batch": [], "slowest": [], "ratio": []}
    cpu = {"direct": 0.0, "batch": 0.0}

    def direct() -> tuple[list[float], list[float]]:
        before = procs.cpu()
        times = [_timed(lambda i=i: http.get(f"{g}/me/messages/{i}").raise_for_status()) for i in sample]
        cpu["direct"] += procs.cpu() - before
        return times, _last_durations(http, root, len(sample))

    def batch() -> tuple[float, float]:
        before = procs.cpu()
        wall = _timed(lambda: http.post(f"{g}/$batch", json=body).raise_for_status())
        cpu["batch"] += procs.cpu() - before
        return wall, _last_durations(http, root, 1)[0]

    for _ in range(3):  # warm-up, not counted
        direct(), batch()
    cpu.update(direct=0.0, batch=0.0)
    for n in range(rounds):
        if n % 2:
            (direct_walls, direct_server), (batch_wall, batch_server) = direct(), batch()
        else:
            (batch_wall, batch_server), (direct_walls, direct_server) = batch(), direct()
        walls["batch"].append(batch_wall)
        walls["slowest"].append(max(direct_walls))
        walls["sum"].append(sum(direct_walls))
        walls["ratio"].append(batch_wall / max(direct_walls))
        server["batch"].append(batch_server)
        server["slowest"].append(max(direct_server))
        server["ratio"].append(batch_server / max(direct_server))
    med = {k: statistics.median(v) for k, v in walls.items()}
    smed = {k: statistics.median(v) for k, v in server.items()}
    q = statistics.quantiles(walls["ratio"], n=4)
    print(
        f"$batch of 20 GETs ({rounds} interleaved rounds, medians): wall {med['batch'] * 1000:.1f} ms vs slowest direct "
        f"GET {med['slowest'] * 1000:.1f} ms, ratio {med['ratio']:.2f}x (quartiles {q[0]:.2f}-{q[2]:.2f}); "
        f"the 20 direct GETs in sequence {med['sum'] * 1000:.1f} ms"
    )
    print(
        f"  server time (journal): $batch {smed['batch']:.2f} ms vs slowest direct GET {smed['slowest']:.2f} ms "
        f"(ratio {smed['ratio']:.2f}x)"
    )
    per_get = cpu["direct"] / rounds / len(sample)
    per_batch = cpu["batch"] / rounds
    print(
        f"  server CPU (summed over the rounds): {per_batch * 1000:.2f} ms per $batch, {per_get * 1000:.2f} ms per "
        f"direct GET ({per_batch / per_get:.1f}x one GET)"
        if per_get
        else "  server CPU: too little to measure (more --rounds)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=31, help="rounds of the $batch comparison")
    args = parser.parse_args(argv)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        process = _serve(Path(tmp) / "data", port)
        try:
            _run(f"http://127.0.0.1:{port}", ProcTree(process.pid), args)
        finally:
            process.terminate()
            process.wait(30)


def _run(root: str, procs: ProcTree, args: argparse.Namespace) -> None:
    token = httpx.post(f"{root}/_graphattach/token", json={"user": "adele@contoso.onmicrosoft.com"}).json()[
        "access_token"
    ]
    g = f"{root}/v1.0"
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=300) as http:
        folder = http.post(f"{g}/me/mailFolders", json={"displayName": f"bench {time.time()}"}).json()["id"]
        ids: list[str] = []
        started = time.perf_counter()
        while len(ids) < args.messages:
            count = min(20, args.messages - len(ids))
            requests = [
                {
                    "id": str(i),
                    "method": "POST",
                    "url": f"/me/mailFolders/{folder}/messages",
                    "headers": {"Content-Type": "application/json"},
                    "body": {
                        "subject": f"report {len(ids) + i}",
                        "body": {"contentType": "text", "content": "numbers"},
                    },
                }
                for i in range(count)
            ]
            answer = http.post(f"{g}/$batch", json={"requests": requests}).json()
            ids += [r["body"]["id"] for r in answer["responses"]]
        print(f"created {len(ids)} messages through $batch in {time.perf_counter() - started:.1f} s")

        _batch_vs_direct(http, root, g, ids[:20], args.rounds, procs)

        # delta: first round, then the changes
        prefer = {"Prefer": "odata.maxpagesize=1000"}
        link = f"{g}/me/mailFolders/{folder}/messages/delta?$select=subject"
        started, pages, seen = time.perf_counter(), 0, 0
        while True:
            page = http.get(link, headers=prefer).json()
            pages += 1
            seen += len(page["value"])
            if "@odata.deltaLink" in page:
                delta_link = page["@odata.deltaLink"]
                break
            link = page["@odata.nextLink"]
        print(f"delta first round: {seen} messages in {pages} pages, {time.perf_counter() - started:.2f} s")
        step = max(1, len(ids) // args.changes)
        for i in ids[::step][: args.changes]:
            http.patch(f"{g}/me/messages/{i}", json={"subject": "changed"}).raise_for_status()
        walls, cpus, servers = [], [], []
        for _ in range(args.runs):
            cpu = procs.cpu()
            started = time.perf_counter()
            page = http.get(delta_link, headers=prefer).json()
            walls.append(time.perf_counter() - started)
            cpus.append(procs.cpu() - cpu)
            servers.append(_last_durations(http, root, 1)[0])
            assert len(page["value"]) == args.changes, len(page["value"])
        print(
            f"delta after {args.changes} changes over {len(ids)} messages: {statistics.median(servers):.1f} ms server "
            f"time (journal), {statistics.median(walls) * 1000:.1f} ms wall, {statistics.median(cpus) * 1000:.0f} ms "
            f"server CPU (medians of {args.runs}; CPU at 10 ms clock ticks)"
        )

        # $search over the folder: a word in 100 messages (the full-text index narrows the
        # candidates), and one under NOT (no word is required: every message is checked)
        for kql, label in (('"changed"', "indexed word"), ('"NOT changed"', "NOT: a scan")):
            walls, cpus, servers = [], [], []
            for _ in range(max(3, args.runs // 2)):
                cpu = procs.cpu()
                walls.append(
                    _timed(lambda kql=kql: http.get(f"{g}/me/mailFolders/{folder}/messages?$search={kql}&$top=10"))
                )
                cpus.append(procs.cpu() - cpu)
                servers.append(_last_durations(http, root, 1)[0])
            print(
                f"$search {kql} over {len(ids)} messages ({label}): {statistics.median(servers):.1f} ms server time, "
                f"{statistics.median(walls) * 1000:.0f} ms wall, {statistics.median(cpus) * 1000:.0f} ms server CPU"
            )


if __name__ == "__main__":
    main()
