"""Scale-out benchmark: graphattach on PostgreSQL + S3 with one and with two server processes.

    .venv/bin/python -m bench.scale                      # throwaway PostgreSQL + moto S3, 1 and 2 processes
    .venv/bin/python -m bench.scale --processes 1,2,4 --size-mb 150 --concurrency 32 --out results.json
    .venv/bin/python -m bench.scale --store postgresql://... --blobs s3://bucket/prefix   # engines you run

Workloads, each against N ``graphattach serve`` processes sharing one metadata store and one blob
store; the client spreads requests over the processes round-robin (as a load balancer would):

- ``upload``: one upload session of ``--size-mb`` MB in ``--chunk-mib`` MiB PUTs (default 150 MB
  in 4 MiB PUTs), ranges alternating between processes;
- ``download``: ``GET .../$value`` of that attachment, streamed, once from each process;
- ``concurrent``: ``--concurrency`` clients at once (default 32), each uploading a
  ``--concurrent-mib`` MiB attachment (4 MiB PUTs) and reading it back.

Reported per run: MB/s (10^6 bytes per second), PUT latency percentiles, and the CPU seconds each
part of the system used (server processes, PostgreSQL, the S3 server, this client), which tells
what limits scaling on the machine at hand. Also a baseline: the S3 server alone (``S3BlobStore``
writes and reads with no graphattach server in between).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.engines import MotoServer, PostgresCluster
from tests.helpers import ServerProcess

from bench.procs import machine_busy

MiB = 1024 * 1024
PUBLIC_URL = "http://graph.bench.test:8765"
UPLOAD_ORIGIN = "http://uploads.bench.test:8765"
USERS = ("adele", "alex", "megan")


# CPU accounting (Linux /proc) ---------------------------------------------------------------------


def _cpu_of(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _tree(pid: int) -> list[int]:
    pids, queue = [pid], [pid]
    while queue:
        for child in _children(queue.pop()):
            pids.append(child)
            queue.append(child)
    return pids


def _postmaster_pid(cluster: PostgresCluster) -> int | None:
    if cluster.directory is None:
        return None
    try:
        return int((cluster.directory / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class CpuMeter:
    """CPU seconds used by named process trees between ``start`` and ``stop``; ``machine`` is every
    process's (others' jobs included) and ``cores_busy`` the machine's average busy cores."""

    roots: dict[str, list[int]]
    before: dict[str, float] = field(default_factory=dict)
    started: float = 0.0

    def _sample(self) -> dict[str, float]:
        sample = {name: sum(_cpu_of(p) for root in roots for p in _tree(root)) for name, roots in self.roots.items()}
        sample["client"] = _cpu_of(os.getpid())
        sample["machine"] = machine_busy()
        return sample

    def start(self) -> None:
        self.before = self._sample()
        self.started = time.perf_counter()

    def stop(self) -> dict[str, float]:
        after = self._sample()
        elapsed = time.perf_counter() - self.started
        used = {name: round(after[name] - self.before.get(name, 0.0), 2) for name in after}
        used["cores_busy"] = round(used["machine"] / elapsed, 2) if elapsed > 0 else 0.0
        return used


# the client -------------------------------------------------------------------------------------


def _at(process: ServerProcess, url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("http", f"127.0.0.1:{process.port}", parts.path, parts.query, parts.fragment))


class Bench:
    def __init__(self, http: httpx.AsyncClient, processes: list[ServerProcess]) -> None:
        self.http = http
        self.processes = processes
        self.tokens: dict[str, str] = {}
        self._next = 0
        self.put_latencies: list[float] = []

    def pick(self) -> ServerProcess:
        process = self.processes[self._next % len(self.processes)]
        self._next += 1
        return process

    async def token(self, user: str) -> str:
        if user not in self.tokens:
            response = await self.http.post(
                f"{self.processes[0].root}/_graphattach/token", json={"user": f"{user}@contoso.onmicrosoft.com"}
            )
            response.raise_for_status()
            self.tokens[user] = response.json()["access_token"]
        return self.tokens[user]

    async def graph(self, user: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {await self.token(user)}"}
        return await self.http.request(method, f"{self.pick().root}/v1.0{path}", headers=headers, **kwargs)

    async def upload(self, user: str, data: bytes, chunk: int) -> tuple[str, str]:
        """Draft + upload session + ranges; returns (message id, attachment id)."""
        draft = await self.graph(user, "POST", "/me/messages", json={"subject": "bench"})
        assert draft.status_code == 201, draft.text
        message_id = draft.json()["id"]
        session = await self.graph(
            user,
            "POST",
            f"/me/messages/{quote(message_id, safe='')}/attachments/createUploadSession",
            json={"AttachmentItem": {"attachmentType": "file", "name": "bench.bin", "size": len(data)}},
        )
        assert session.status_code == 201, session.text
        upload_url = session.json()["uploadUrl"]
        response: httpx.Response | None = None
        for start in range(0, len(data), chunk):
            body = data[start : start + chunk]
            began = time.perf_counter()
            response = await self.http.put(
                _at(self.pick(), upload_url),
                content=body,
                headers={
                    "Content-Range": f"bytes {start}-{start + len(body) - 1}/{len(data)}",
                    "Content-Type": "application/octet-stream",
                },
            )
            self.put_latencies.append(time.perf_counter() - began)
            assert response.status_code in (200, 201), response.text
        assert response is not None and response.status_code == 201
        match = re.search(r"/attachments\('([^']+)'\)$", response.headers["Location"], re.IGNORECASE)
        assert match
        return message_id, match.group(1)

    async def download(self, user: str, message_id: str, attachment_id: str) -> tuple[int, str]:
        path = f"/me/messages/{quote(message_id, safe='')}/attachments/{quote(attachment_id, safe='')}/$value"
        digest = hashlib.sha256()
        size = 0
        headers = {"Authorization": f"Bearer {await self.token(user)}"}
        async with self.http.stream("GET", f"{self.pick().root}/v1.0{path}", headers=headers) as response:
            assert response.status_code == 200
            async for block in response.aiter_bytes(1024 * 1024):
                digest.update(block)
                size += len(block)
        return size, digest.hexdigest()


def _mbps(size: int, seconds: float) -> float:
    return round(size / seconds / 1e6, 1)


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"p50_ms": at(0.5), "p95_ms": at(0.95), "max_ms": round(ordered[-1] * 1000, 1)}


async def run_workloads(
    processes: list[ServerProcess], meter: CpuMeter, *, size: int, chunk: int, concurrency: int, each: int
) -> dict[str, Any]:
    data = random.Random(1).randbytes(size)
    expected = hashlib.sha256(data).hexdigest()
    results: dict[str, Any] = {}
    limits = httpx.Limits(max_connections=concurrency * 2 + 8, max_keepalive_connections=concurrency * 2 + 8)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        bench = Bench(http, processes)
        for user in USERS:
            await bench.token(user)

        meter.start()
        began = time.perf_counter()
        message_id, attachment_id = await bench.upload("adele", data, chunk)
        seconds = time.perf_counter() - began
        results["upload"] = {
            "bytes": size,
            "seconds": round(seconds, 2),
            "MB_per_s": _mbps(size, seconds),
            "put": _percentiles(bench.put_latencies),
            "cpu_s": meter.stop(),
        }

        meter.start()
        began = time.perf_counter()
        for _ in processes:
            got, digest = await bench.download("adele", message_id, attachment_id)
            assert (got, digest) == (size, expected), "downloaded bytes differ"
        seconds = time.perf_counter() - began
        results["download"] = {
            "bytes": size * len(processes),
            "seconds": round(seconds, 2),
            "MB_per_s": _mbps(size * len(processes), seconds),
            "cpu_s": meter.stop(),
        }

        blobs = [random.Random(100 + n).randbytes(each) for n in range(concurrency)]
        bench.put_latencies = []
        meter.start()
        began = time.perf_counter()
        uploaded = await asyncio.gather(
            *(bench.upload(USERS[n % len(USERS)], blobs[n], chunk) for n in range(concurrency))
        )
        up_seconds = time.perf_counter() - began
        up_cpu = meter.stop()
        meter.start()
        began = time.perf_counter()
        downloaded = await asyncio.gather(
            *(bench.download(USERS[n % len(USERS)], *uploaded[n]) for n in range(concurrency))
        )
        down_seconds = time.perf_counter() - began
        for n, (got, digest) in enumerate(downloaded):
            assert got == each and digest == hashlib.sha256(blobs[n]).hexdigest(), "concurrent bytes differ"
        results["concurrent"] = {
            "clients": concurrency,
            "bytes_each": each,
            "upload_seconds": round(up_seconds, 2),
            "upload_MB_per_s": _mbps(each * concurrency, up_seconds),
            "download_seconds": round(down_seconds, 2),
            "download_MB_per_s": _mbps(each * concurrency, down_seconds),
            "put": _percentiles(bench.put_latencies),
            "upload_cpu_s": up_cpu,
            "download_cpu_s": meter.stop(),
        }
    return results


async def s3_baseline(blobs_url: str, size: int, chunk: int) -> dict[str, Any]:
    """The blob store alone: ``size`` bytes written in ``chunk`` writes, then read back."""
    from graphattach.storage.s3 import S3BlobStore

    store = S3BlobStore(blobs_url)
    await store.open()
    try:
        data = random.Random(2).randbytes(size)
        key = f"baseline-{uuid.uuid4().hex}"

        async def one(piece: bytes) -> AsyncIterator[bytes]:
            yield piece

        began = time.perf_counter()
        for start in range(0, size, chunk):
            await store.write(key, one(data[start : start + chunk]), offset=start)
        write_s = time.perf_counter() - began
        began = time.perf_counter()
        got = 0
        async for block in store.read(key):
            got += len(block)
        read_s = time.perf_counter() - began
        assert got == size
        await store.delete(key)
    finally:
        await store.close()
    return {"write_MB_per_s": _mbps(size, write_s), "read_MB_per_s": _mbps(size, read_s)}


# orchestration ----------------------------------------------------------------------------------


def start_processes(count: int, root: Path, store: str, blobs: str, env: dict[str, str]) -> list[ServerProcess]:
    processes = []
    for n in range(count):
        data_dir = root / f"p{n}" / "data"
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        args = ["--store", store, "--blobs", blobs, "--public-url", PUBLIC_URL, "--upload-origin", UPLOAD_ORIGIN]
        args += ["--sweep-interval", "0"]
        processes.append(ServerProcess(data_dir, *args, env=env).start(timeout=120))
    return processes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", default="1,2", help="comma-separated process counts to run (default 1,2)")
    parser.add_argument("--size-mb", type=float, default=150, help="upload/download size in MB (10^6 bytes)")
    parser.add_argument("--chunk-mib", type=float, default=4, help="PUT size in MiB")
    parser.add_argument("--concurrency", type=int, default=32, help="clients in the concurrent workload")
    parser.add_argument("--concurrent-mib", type=float, default=8, help="attachment size of each concurrent client")
    parser.add_argument("--store", help="postgresql:// URL of an existing database (default: a throwaway cluster)")
    parser.add_argument("--blobs", help="s3:// URL (with AWS_* set for it; default: a throwaway moto server)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here too")
    args = parser.parse_args(argv)

    counts = [int(c) for c in args.processes.split(",") if c.strip()]
    size, chunk = int(args.size_mb * 1e6), int(args.chunk_mib * MiB)
    each = int(args.concurrent_mib * MiB)
    root = Path(tempfile.mkdtemp(prefix="graphattach-bench-"))
    cluster = PostgresCluster.start() if not args.store else None
    moto = MotoServer.start(root) if not args.blobs else None
    env = moto.env() if moto else {}
    os.environ.update(env)
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "parameters": {
            "size_bytes": size,
            "chunk_bytes": chunk,
            "concurrency": args.concurrency,
            "concurrent_bytes_each": each,
            "stores": "external" if args.store or args.blobs else "throwaway PostgreSQL 15 + moto S3 server",
        },
        "runs": {},
    }
    try:
        bucket_url = args.blobs or (moto.url("bench-baseline") if moto else "")
        report["s3_baseline"] = asyncio.run(s3_baseline(bucket_url, size, chunk))
        print(f"S3 alone: {report['s3_baseline']}", flush=True)
        for count in counts:
            store = args.store or (cluster.create_database("bench") if cluster else "")
            blobs = args.blobs or (moto.url(f"bench-{count}") if moto else "")
            processes = start_processes(count, root / f"n{count}", store, blobs, env)
            try:
                roots = {f"server{n}": [p.proc.pid] for n, p in enumerate(processes) if p.proc}
                if cluster and (pm := _postmaster_pid(cluster)):
                    roots["postgres"] = [pm]
                if moto:
                    roots["s3"] = [moto.process.pid]
                result = asyncio.run(
                    run_workloads(
                        processes,
                        CpuMeter(roots),
                        size=size,
                        chunk=chunk,
                        concurrency=args.concurrency,
                        each=each,
                    )
                )
            finally:
                for process in processes:
                    process.stop()
                if cluster and not args.store:
                    cluster.drop_database(store)
            report["runs"][f"{count}_process" + ("es" if count > 1 else "")] = result
            print(f"{count} process(es): {json.dumps(result)}", flush=True)
    finally:
        if moto:
            moto.stop()
        if cluster:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
