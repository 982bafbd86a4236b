"""Every measured case: one workload against one target (physical, nginx, tus, graphattach).

A case has an untimed ``setup``, a ``run`` that times itself and returns one ``Sample``, an
untimed ``after_run`` (clean-up between runs) and ``teardown``. The suite wraps each ``run`` in a
``Monitor`` of the target's server process tree for CPU seconds and resident memory.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import physical
from bench.anchors import Nginx, Tus, tus_create, tus_upload
from bench.ga import (
    CHUNK,
    Graph,
    GraphServer,
    attachment_id_from_location,
    expect,
    file_attachment_json,
    put_range,
    seg,
    upload,
)
from bench.httpc import Conn, target_of
from bench.procs import Server, free_port
from graphattach.protocol.attachments import STREAM_CHUNK

MB = 1_000_000
MiB = 1024 * 1024
#: The service's smallest upload session (docs/fidelity.md, "Session size window").
SESSION_MIN = 2 * MiB
#: Attachments POSTed to one draft before the load generator moves to the next draft
#: (Exchange allows 250 per item, and the mailbox's maximum message size bounds the total).
POSTS_PER_MESSAGE = 100


@dataclass
class Sizes:
    big: int
    concurrent: int
    concurrent_size: int
    tiny_puts: int
    tiny_chunk: int
    #: The 1 KiB PUT runs also stop after this many seconds (PUT/s over what was done).
    tiny_seconds: float
    tus_tiny_patches: int
    post_raw: int
    post_concurrency: int
    post_seconds: float
    post_max: int
    disk_total: int
    sync_total: int
    sync_seconds: float
    tcp_total: int
    #: Downloads of the big file per run, one after the other on one connection.
    downloads_per_run: int

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            big=150 * MB,
            concurrent=32,
            concurrent_size=16 * MB,
            tiny_puts=20_000,
            tiny_chunk=1024,
            tiny_seconds=15.0,
            tus_tiny_patches=5_000,
            post_raw=1 * MiB,
            post_concurrency=8,
            post_seconds=4.0,
            post_max=2_000,
            disk_total=512 * MiB,
            sync_total=256 * MiB,
            sync_seconds=8.0,
            tcp_total=2048 * MiB,
            downloads_per_run=3,
        )

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(
            big=6 * MiB,
            concurrent=4,
            concurrent_size=SESSION_MIN,
            # Exactly one session's worth (SESSION_MIN): the run completes it, as a fast
            # machine's full run does. The seconds are a guard, not a bound to reach.
            tiny_puts=SESSION_MIN // 1024,
            tiny_chunk=1024,
            tiny_seconds=60.0,
            tus_tiny_patches=200,
            post_raw=1 * MiB,
            post_concurrency=4,
            post_seconds=1.0,
            post_max=12,
            disk_total=16 * MiB,
            sync_total=8 * MiB,
            sync_seconds=2.0,
            tcp_total=64 * MiB,
            downloads_per_run=1,
        )


@dataclass
class Sample:
    value: float
    seconds: float
    latencies: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Unavailable(Exception):
    """The target does not offer what the case needs (the endpoint answered 400/404/405)."""


@dataclass
class Env:
    """What the cases share: sizes, the test data (read once), the servers, a scratch directory."""

    sizes: Sizes
    data: memoryview
    workdir: Path
    smoke: bool
    nginx: Nginx | None = None
    tus: Tus | None = None
    ga: GraphServer | None = None
    #: graphattach runs ``--in-memory``: the floor syncs nothing either (``?no-sync``).
    in_memory: bool = False
    #: Notes from setup (e.g. which attachment the download cases read), by case key.
    notes: dict[str, str] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)


class Case:
    workload = ""
    target = ""
    label = ""
    unit = "MB/s"

    def __init__(self, env: Env) -> None:
        self.env = env
        self.note = ""

    @property
    def key(self) -> str:
        return f"{self.target}.{self.workload}"

    @property
    def server(self) -> Server | None:
        return None

    def setup(self) -> None:
        pass

    def before_run(self) -> None:
        """Untimed preparation of one run (outside the resource monitor too)."""

    def run(self) -> Sample:
        raise NotImplementedError

    def after_run(self) -> None:
        pass

    def teardown(self) -> None:
        pass


def rate(nbytes: int, seconds: float) -> float:
    return nbytes / MB / seconds if seconds > 0 else float("nan")


def concurrently(
    n: int, fn: Callable[[int], Any], on_start: Callable[[], None] | None = None
) -> tuple[list[Any], float]:
    """Run ``fn(i)`` for i < n in n threads released together; (results, wall seconds)."""
    barrier = threading.Barrier(n + 1)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    if on_start is not None:
        on_start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return results, elapsed


def slice_for(data: memoryview, i: int, size: int) -> memoryview:
    """A ``size``-byte window of the test data for the i-th concurrent upload."""
    span = max(1, len(data) - size)
    start = (i * 7_654_321) % span if len(data) > size else 0
    piece = data[start : start + size]
    if len(piece) < size:
        raise ValueError("test data smaller than the requested size")
    return piece


# -- physical ---------------------------------------------------------------------------------------


class DiskWrite(Case):
    target = "physical"
    workload = "disk_write"
    label = "disk write, page cache (4 MiB writes)"

    def run(self) -> Sample:
        n, s = physical.disk_write(
            self.env.workdir, self.env.data, self.env.sizes.disk_total, sync_every_chunk=False, time_limit=30
        )
        return Sample(rate(n, s), s, extra={"bytes": n})


class DiskWriteSync(Case):
    target = "physical"
    workload = "disk_write_fdatasync"
    label = "disk write, fdatasync every 4 MiB"

    def run(self) -> Sample:
        sizes = self.env.sizes
        n, s = physical.disk_write(
            self.env.workdir, self.env.data, sizes.sync_total, sync_every_chunk=True, time_limit=sizes.sync_seconds
        )
        return Sample(rate(n, s), s, extra={"bytes": n})


class LoopbackTcp(Case):
    target = "physical"
    workload = "loopback_tcp"
    label = "loopback TCP, send from memory"

    def run(self) -> Sample:
        n, s = physical.loopback_tcp(self.env.sizes.tcp_total)
        return Sample(rate(n, s), s, extra={"bytes": n})


class LoopbackSendfile(Case):
    target = "physical"
    workload = "loopback_sendfile"
    label = "loopback TCP, sendfile from page cache"

    def setup(self) -> None:
        self.path = self.env.workdir / "sendfile.bin"
        self.path.write_bytes(self.env.data)

    def run(self) -> Sample:
        n, s = physical.loopback_tcp(self.env.sizes.tcp_total, sendfile_from=self.path)
        return Sample(rate(n, s), s, extra={"bytes": n})

    def teardown(self) -> None:
        self.path.unlink(missing_ok=True)


class PageCacheRead(Case):
    target = "physical"
    workload = "page_cache_read"
    label = "read from the page cache (1.5 MiB reads into fresh buffers)"

    def setup(self) -> None:
        self.path = self.env.workdir / "page-cache.bin"
        self.path.write_bytes(self.env.data)
        physical.page_cache_read(self.path, len(self.env.data), chunk=STREAM_CHUNK)  # warm

    def run(self) -> Sample:
        n, s = physical.page_cache_read(self.path, self.env.sizes.tcp_total, chunk=STREAM_CHUNK)
        return Sample(rate(n, s), s, extra={"bytes": n})

    def teardown(self) -> None:
        self.path.unlink(missing_ok=True)


class FloorServer(Server):
    """``granian --interface asgi bench.floor_app:app``: the durable floor (bench/floor_app.py),
    one worker on HTTP/1.1 like ``graphattach serve``."""

    def __init__(self, workdir: Path, app: str = "bench.floor_app:app", name: str = "floor") -> None:
        self.port = free_port()
        directory = workdir / name
        cmd = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--http",
            "1",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            app,
        ]
        root = Path(__file__).resolve().parent.parent
        super().__init__(name, cmd, workdir / f"{name}.log", env={"FLOOR_DIR": str(directory)}, cwd=root)

    def start_and_wait(self) -> FloorServer:
        self.start()

        def ready() -> bool:
            with Conn("127.0.0.1", self.port, timeout=2) as c:
                return c.request("GET", "/").status == 200

        self.wait_ready(ready, 30)
        return self


class FloorCase(Case):
    """A small-request workload against the durable floor (bench/floor_app.py): the ceiling for
    any Python server on granian that syncs what it acknowledges, on this machine."""

    target = "physical"
    #: The label against ``--in-memory`` graphattach (the floor syncs nothing then).
    label_no_sync = ""

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        if env.in_memory and self.label_no_sync:
            self.label = self.label_no_sync

    @property
    def server(self) -> Server | None:
        return self.floor

    def setup(self) -> None:
        self.floor = FloorServer(self.env.workdir).start_and_wait()

    def path(self, path: str) -> str:
        """``path`` on the floor; against ``--in-memory`` graphattach, one that syncs nothing."""
        return f"{path}?no-sync" if self.env.in_memory else path

    def after_run(self) -> None:
        with Conn("127.0.0.1", self.floor.port) as c:
            expect(c.request("DELETE", "/"), "floor clean-up", 200)

    def teardown(self) -> None:
        self.floor.stop()


class FloorUploadBig(FloorCase):
    workload = "upload_big"
    label = "durable floor: 4 MiB PUTs on one connection, append + one fdatasync + unsynced SQLite commit, no-op app"
    label_no_sync = "no-sync floor: 4 MiB PUTs on one connection, append to a file, nothing synced, no-op app"

    def run(self) -> Sample:
        data = self.env.data[: self.env.sizes.big]
        headers = {"Content-Type": "application/octet-stream"}
        with Conn("127.0.0.1", self.floor.port) as c:
            start = time.perf_counter()
            for offset in range(0, len(data), CHUNK):
                expect(c.request("PUT", self.path("/big"), headers, data[offset : offset + CHUNK]), "floor PUT", 200)
            s = time.perf_counter() - start
        return Sample(rate(len(data), s), s)


class FloorUploadConcurrent(FloorCase):
    """The floor's answer to 32 uploads at once: how much a Python server on granian gains from
    concurrent uploads on this machine, the ceiling of the concurrency target. In memory the
    no-sync floor, against its single upload (``FloorUploadBig``). On disk the durable floor with
    its syncs in threads (``?threaded``: its inline syncs would not overlap as graphattach's do),
    against one upload of the big file done the same way just before the run (``single_rate``)."""

    workload = "upload_concurrent"
    label = (
        "durable floor: uploads at once, 4 MiB PUTs each, append + fdatasync in a thread + unsynced SQLite commit,"
        " no-op app"
    )
    label_no_sync = "no-sync floor: uploads at once, 4 MiB PUTs each, append to a file, nothing synced, no-op app"

    def _put_path(self, path: str) -> str:
        return self.path(path) if self.env.in_memory else f"{path}?threaded"

    def _upload(self, c: Conn, path: str, data: memoryview) -> None:
        headers = {"Content-Type": "application/octet-stream"}
        for offset in range(0, len(data), CHUNK):
            expect(c.request("PUT", self._put_path(path), headers, data[offset : offset + CHUNK]), "floor PUT", 200)

    def before_run(self) -> None:
        # Outside the run's figures: the one upload the run's uploads at once are held against.
        self.extra: dict[str, Any] = {}
        if not self.env.in_memory:
            big = self.env.data[: self.env.sizes.big]
            with Conn("127.0.0.1", self.floor.port) as c:
                start = time.perf_counter()
                self._upload(c, "/single", big)
                self.extra["single_rate"] = rate(len(big), time.perf_counter() - start)

    def run(self) -> Sample:
        sizes = self.env.sizes
        upload = self._upload

        def one(i: int) -> None:
            with Conn("127.0.0.1", self.floor.port) as c:
                upload(c, f"/c{i}", slice_for(self.env.data, i, sizes.concurrent_size))

        _, s = concurrently(sizes.concurrent, one)
        return Sample(rate(sizes.concurrent * sizes.concurrent_size, s), s, extra=self.extra)


class FloorTinyPuts(FloorCase):
    workload = "tiny_puts"
    label = "durable floor: 1 KiB PUT, append + one fdatasync + unsynced SQLite commit, no-op app"
    label_no_sync = "no-sync floor: 1 KiB PUT, append to a file, nothing synced, no-op app"
    unit = "PUT/s"

    def run(self) -> Sample:
        sizes = self.env.sizes
        body = bytes(self.env.data[: sizes.tiny_chunk])
        with Conn("127.0.0.1", self.floor.port) as c:
            done, s = self._puts(c, self.path("/tiny"), body, sizes.tiny_seconds)
        self.extra: dict[str, Any] = {"requests": done}
        return Sample(done / s, s, extra=self.extra)

    def after_run(self) -> None:
        # Outside the run's CPU figure, for a third of its time (``self.extra`` is the run's
        # sample's), the floor PUT the report's bound of graphattach's 1 KiB PUT takes apart:
        seconds = self.env.sizes.tiny_seconds / 3
        with Conn("127.0.0.1", self.floor.port) as c:
            if self.env.in_memory:
                # with an empty body, which the app never asks the server for: the difference is
                # what taking a 1 KiB body from the server costs a request (in memory no store
                # wait can hide it);
                done, s = self._puts(c, "/tiny-empty?no-sync", b"", seconds)
                self.extra["empty_rate"] = done / s
            else:
                # without its sync and commit: the difference is what the floor's write costs a
                # request (on disk graphattach reads a small body during its store read).
                body = bytes(self.env.data[: self.env.sizes.tiny_chunk])
                done, s = self._puts(c, "/tiny-nosync?no-sync", body, seconds)
                self.extra["no_sync_rate"] = done / s
        super().after_run()

    def _puts(self, c: Conn, target: str, body: bytes, seconds: float) -> tuple[int, float]:
        done = 0
        start = time.perf_counter()
        deadline = start + seconds
        while done < self.env.sizes.tiny_puts and time.perf_counter() <= deadline:
            expect(c.request("PUT", target, {"Content-Type": "application/octet-stream"}, body), "floor PUT", 200)
            done += 1
        return done, time.perf_counter() - start


class FloorPostSmall(FloorCase):
    workload = "post_small"
    label = (
        "durable floor: POST 1 MiB base64 JSON, base64 lifted out and decoded (pybase64), the rest parsed (orjson),"
        " fdatasync, directory fsync and SQLite commit in threads, echo in pieces"
    )
    label_no_sync = (
        "no-sync floor: POST 1 MiB base64 JSON, base64 lifted out and decoded (pybase64), the rest parsed (orjson),"
        " kept in memory up to graphattach's default --memory-limit (512 MiB) and written to files unsynced past it,"
        " echo in pieces"
    )
    unit = "req/s"

    def setup(self) -> None:
        super().setup()
        self.body = self.env.state.setdefault(
            "post_body", file_attachment_json("bench-1mib.bin", bytes(self.env.data[: self.env.sizes.post_raw]))
        )

    def run(self) -> Sample:
        sizes = self.env.sizes
        headers = {"Content-Type": "application/json", "Accept": "application/json"}

        path = self.path("/post")

        def one(conn: Conn, _: int) -> None:
            expect(conn.request("POST", path, headers, self.body), "floor POST", 201)

        port = self.floor.port
        return load(sizes.post_concurrency, sizes.post_seconds, sizes.post_max, lambda: Conn("127.0.0.1", port), one)


class FloorDownloadBig(FloorCase):
    workload = "download_big"
    label = "send floor: granian sends 150 MB from memory in 1.5 MiB pieces, no file read, no-op app"

    def setup(self) -> None:
        super().setup()
        # Once, untimed: the floor makes its random bytes on the first request of a size.
        with Conn("127.0.0.1", self.floor.port) as c:
            expect(c.request("GET", f"/download/{self.env.sizes.big}", keep_body=False), "floor GET", 200)

    def run(self) -> Sample:
        k, size = self.env.sizes.downloads_per_run, self.env.sizes.big
        with Conn("127.0.0.1", self.floor.port) as c:
            start = time.perf_counter()
            for _ in range(k):
                r = expect(c.request("GET", f"/download/{size}", keep_body=False), "floor GET", 200)
                if r.length != size:
                    raise RuntimeError(f"the floor sent {r.length} bytes, expected {size}")
            s = time.perf_counter() - start
        return Sample(rate(k * size, s), s, extra={"downloads": k})


# -- nginx --------------------------------------------------------------------------------------------


class NginxCase(Case):
    target = "nginx"

    @property
    def nginx(self) -> Nginx:
        assert self.env.nginx is not None
        return self.env.nginx

    @property
    def server(self) -> Server | None:
        return self.env.nginx


class NginxPutBig(NginxCase):
    workload = "upload_big"
    label = "WebDAV PUT (one request)"

    def run(self) -> Sample:
        data = self.env.data[: self.env.sizes.big]
        with Conn("127.0.0.1", self.nginx.port) as c:
            start = time.perf_counter()
            r = c.request("PUT", "/dav/big.bin", {"Content-Type": "application/octet-stream"}, data)
            s = time.perf_counter() - start
        if r.status not in (201, 204):
            raise RuntimeError(f"nginx PUT: HTTP {r.status}")
        return Sample(rate(len(data), s), s)

    def after_run(self) -> None:
        (self.nginx.dav_dir / "big.bin").unlink(missing_ok=True)


class NginxPutConcurrent(NginxCase):
    workload = "upload_concurrent"
    label = "WebDAV PUTs at once"

    def run(self) -> Sample:
        sizes = self.env.sizes

        def one(i: int) -> None:
            with Conn("127.0.0.1", self.nginx.port) as c:
                r = c.request(
                    "PUT",
                    f"/dav/c{i}.bin",
                    {"Content-Type": "application/octet-stream"},
                    slice_for(self.env.data, i, sizes.concurrent_size),
                )
                if r.status not in (201, 204):
                    raise RuntimeError(f"nginx PUT: HTTP {r.status}")

        _, s = concurrently(sizes.concurrent, one)
        return Sample(rate(sizes.concurrent * sizes.concurrent_size, s), s)

    def after_run(self) -> None:
        for f in self.nginx.dav_dir.glob("c*.bin"):
            f.unlink()


class NginxGetBig(NginxCase):
    workload = "download_big"
    label = "static GET (sendfile)"

    def setup(self) -> None:
        (self.nginx.static_dir / "big.bin").write_bytes(self.env.data[: self.env.sizes.big])

    def run(self) -> Sample:
        k = self.env.sizes.downloads_per_run
        with Conn("127.0.0.1", self.nginx.port) as c:
            start = time.perf_counter()
            for _ in range(k):
                r = c.request("GET", "/static/big.bin", keep_body=False)
                if r.status != 200 or r.length != self.env.sizes.big:
                    raise RuntimeError(f"nginx GET: HTTP {r.status}, {r.length} bytes")
            s = time.perf_counter() - start
        return Sample(rate(k * r.length, s), s, extra={"downloads": k})

    def teardown(self) -> None:
        (self.nginx.static_dir / "big.bin").unlink(missing_ok=True)


def load(
    concurrency: int,
    seconds: float,
    max_requests: int,
    make_conn: Callable[[], Conn],
    one: Callable[[Conn, int], None],
) -> Sample:
    """Closed-loop load: ``concurrency`` workers, each on its own keep-alive connection, run
    ``one(conn, n)`` until ``seconds`` pass or ``max_requests`` were started; req/s and latencies."""
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    deadline_box: list[float] = [math.inf]

    def worker(_: int) -> int:
        done = 0
        mine: list[float] = []
        with make_conn() as conn:
            while True:
                with lock:
                    n = next(counter)
                if n >= max_requests or time.perf_counter() > deadline_box[0]:
                    break
                t0 = time.perf_counter()
                one(conn, n)
                mine.append(time.perf_counter() - t0)
                done += 1
        with lock:
            latencies.extend(mine)
        return done

    def start_clock() -> None:
        deadline_box[0] = time.perf_counter() + seconds

    counts, elapsed = concurrently(concurrency, worker, on_start=start_clock)
    total = sum(counts)
    latencies.sort()
    return Sample(
        total / elapsed if elapsed > 0 else float("nan"),
        elapsed,
        latencies=latencies,
        extra={"requests": total, "concurrency": concurrency},
    )


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    idx = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[idx]


class NginxPostSmall(NginxCase):
    workload = "post_small"
    label = "POST to a temp file (client_body_in_file_only)"
    unit = "req/s"

    def setup(self) -> None:
        self.body = self.env.state.setdefault(
            "post_body", file_attachment_json("bench-1mib.bin", bytes(self.env.data[: self.env.sizes.post_raw]))
        )

    def run(self) -> Sample:
        sizes = self.env.sizes

        def one(conn: Conn, _: int) -> None:
            r = conn.request("POST", "/post", {"Content-Type": "application/json"}, self.body)
            if r.status != 201:
                raise RuntimeError(f"nginx POST: HTTP {r.status} {r.text()[:200]}")

        return load(
            sizes.post_concurrency, sizes.post_seconds, sizes.post_max, lambda: Conn("127.0.0.1", self.nginx.port), one
        )


# -- @tus/server --------------------------------------------------------------------------------------


class TusCase(Case):
    target = "tus"

    @property
    def tus(self) -> Tus:
        assert self.env.tus is not None
        return self.env.tus

    @property
    def server(self) -> Server | None:
        return self.env.tus

    def after_run(self) -> None:
        self.tus.clear()


class TusUploadBig(TusCase):
    workload = "upload_big"
    label = "tus POST + 4 MiB PATCHes"

    def run(self) -> Sample:
        data = self.env.data[: self.env.sizes.big]
        with Conn("127.0.0.1", self.tus.port) as c:
            start = time.perf_counter()
            path = tus_create(c, len(data))
            tus_upload(c, path, data, CHUNK)
            s = time.perf_counter() - start
        return Sample(rate(len(data), s), s)


class TusUploadConcurrent(TusCase):
    workload = "upload_concurrent"
    label = "tus uploads at once (4 MiB PATCHes)"

    def run(self) -> Sample:
        sizes = self.env.sizes

        def one(i: int) -> None:
            with Conn("127.0.0.1", self.tus.port) as c:
                data = slice_for(self.env.data, i, sizes.concurrent_size)
                tus_upload(c, tus_create(c, len(data)), data, CHUNK)

        _, s = concurrently(sizes.concurrent, one)
        return Sample(rate(sizes.concurrent * sizes.concurrent_size, s), s)


class TusTinyPatches(TusCase):
    workload = "tiny_puts"
    label = "tus 1 KiB PATCHes"
    unit = "PUT/s"

    def run(self) -> Sample:
        sizes = self.env.sizes
        n, chunk = sizes.tus_tiny_patches, sizes.tiny_chunk
        data = self.env.data[: n * chunk]
        with Conn("127.0.0.1", self.tus.port) as c:
            path = tus_create(c, len(data))
            start = time.perf_counter()
            done = tus_upload(c, path, data, chunk, deadline=start + sizes.tiny_seconds)
            s = time.perf_counter() - start
        return Sample(done / s, s, extra={"requests": done})


class TusGetBig(TusCase):
    workload = "download_big"
    label = "tus GET (FileStore stream)"

    def setup(self) -> None:
        data = self.env.data[: self.env.sizes.big]
        with Conn("127.0.0.1", self.tus.port) as c:
            self.path = tus_create(c, len(data))
            tus_upload(c, self.path, data, CHUNK)

    def run(self) -> Sample:
        k = self.env.sizes.downloads_per_run
        with Conn("127.0.0.1", self.tus.port) as c:
            start = time.perf_counter()
            for _ in range(k):
                r = c.request("GET", self.path, {"Tus-Resumable": "1.0.0"}, keep_body=False)
                if r.status != 200 or r.length != self.env.sizes.big:
                    raise RuntimeError(f"tus GET: HTTP {r.status}, {r.length} bytes")
            s = time.perf_counter() - start
        return Sample(rate(k * r.length, s), s, extra={"downloads": k})

    def after_run(self) -> None:
        pass

    def teardown(self) -> None:
        self.tus.clear()


# -- graphattach --------------------------------------------------------------------------------------


UNAVAILABLE_STATUSES = (400, 404, 405, 501)


class GaCase(Case):
    target = "graphattach"

    @property
    def ga(self) -> GraphServer:
        assert self.env.ga is not None
        return self.env.ga

    @property
    def server(self) -> Server | None:
        return self.env.ga

    def graph(self) -> Graph:
        token = self.env.state.get("token")
        g = Graph(self.ga.port, token)
        self.env.state["token"] = g.token
        return g

    def setup(self) -> None:
        self.env.state.pop("token", None)  # a fresh server process: mint again
        self.g = self.graph()

    def teardown(self) -> None:
        self.g.close()


class GaUploadBig(GaCase):
    workload = "upload_big"
    label = "upload session, 4 MiB PUTs on one connection"

    def setup(self) -> None:
        super().setup()
        self.message = self.g.create_draft("bench upload")
        self.attachment: str | None = None

    def run(self) -> Sample:
        data = self.env.data[: self.env.sizes.big]
        start = time.perf_counter()
        session = self.g.create_session(self.message, len(data))
        with Conn.for_url(session.upload_url) as c:
            self.attachment = upload(c, session.upload_url, data)
        s = time.perf_counter() - start
        return Sample(rate(len(data), s), s)

    def after_run(self) -> None:
        if self.attachment:
            self.g.delete_attachment(self.message, self.attachment)
            self.attachment = None

    def teardown(self) -> None:
        self.g.delete_message(self.message)
        super().teardown()


class GaUploadConcurrent(GaCase):
    workload = "upload_concurrent"
    label = "upload sessions at once (4 MiB PUTs)"

    def setup(self) -> None:
        super().setup()
        self.messages = [self.g.create_draft(f"bench concurrent {i}") for i in range(self.env.sizes.concurrent)]
        self.attachments: list[str | None] = []

    def run(self) -> Sample:
        sizes = self.env.sizes
        token = self.g.token

        def one(i: int) -> str:
            with Graph(self.ga.port, token) as g:
                data = slice_for(self.env.data, i, sizes.concurrent_size)
                session = g.create_session(self.messages[i], len(data))
                with Conn.for_url(session.upload_url) as c:
                    return upload(c, session.upload_url, data)

        self.attachments, s = concurrently(sizes.concurrent, one)
        return Sample(rate(sizes.concurrent * sizes.concurrent_size, s), s)

    def after_run(self) -> None:
        for message, attachment in zip(self.messages, self.attachments, strict=False):
            if attachment:
                self.g.delete_attachment(message, attachment)
        self.attachments = []

    def teardown(self) -> None:
        for m in self.messages:
            self.g.delete_message(m)
        super().teardown()


class GaTinyPuts(GaCase):
    workload = "tiny_puts"
    label = "upload session, 1 KiB PUTs"
    unit = "PUT/s"

    def setup(self) -> None:
        super().setup()
        self.message = self.g.create_draft("bench tiny")
        self.attachment: str | None = None
        self.open_session: str | None = None

    def before_run(self) -> None:
        sizes = self.env.sizes
        self.total = max(sizes.tiny_puts * sizes.tiny_chunk, SESSION_MIN)
        self.open_session = self.g.create_session(self.message, self.total).upload_url

    def run(self) -> Sample:
        sizes = self.env.sizes
        n, chunk, total = sizes.tiny_puts, sizes.tiny_chunk, self.total
        data = self.env.data[:total]
        assert self.open_session is not None
        url = self.open_session
        done = 0
        with Conn.for_url(url) as c:
            start = time.perf_counter()
            deadline = start + sizes.tiny_seconds
            for i in range(n):
                if time.perf_counter() > deadline:
                    break
                done += 1
                r = put_range(c, url, data[i * chunk : (i + 1) * chunk], i * chunk, total)
                if (i + 1) * chunk < total:
                    expect(r, f"1 KiB PUT #{i}", 200)
                else:
                    expect(r, "final 1 KiB PUT", 201)
                    self.attachment = attachment_id_from_location(r.headers.get("location", ""))
                    self.open_session = None
            s = time.perf_counter() - start
        self.extra: dict[str, Any] = {"requests": done, "completed": self.attachment is not None}
        return Sample(done / s, s, extra=self.extra)

    def after_run(self) -> None:
        # Status GETs on the run's session, for a third of the time and outside the run's CPU
        # figure: what every request on an upload URL costs before any write (the report's bound
        # of the 1 KiB PUT). ``self.extra`` is the run's sample's. A run that completed its
        # session (every PUT in time) leaves none open: the GETs go to a new one, as much a
        # session in progress.
        sizes = self.env.sizes
        if self.open_session is None:
            self.open_session = self.g.create_session(self.message, self.total).upload_url
        url = self.open_session
        with Conn.for_url(url) as c:
            gets = 0
            start = time.perf_counter()
            deadline = start + sizes.tiny_seconds / 3
            while gets < sizes.tiny_puts and time.perf_counter() <= deadline:
                expect(c.request("GET", target_of(url)), "upload status GET", 200)
                gets += 1
            self.extra["status_rate"] = gets / (time.perf_counter() - start)
        if self.attachment:
            self.g.delete_attachment(self.message, self.attachment)
            self.attachment = None
        if self.open_session:
            with Conn.for_url(self.open_session) as c:
                c.request("DELETE", target_of(self.open_session))
            self.open_session = None

    def teardown(self) -> None:
        self.g.delete_message(self.message)
        super().teardown()


def ga_big_attachment(case: GaCase) -> tuple[str, str, int]:
    """The big attachment both download cases read: uploaded once per suite through a session.

    In smoke mode, when upload sessions are not available, a POSTed 1 MiB attachment stands in.
    """
    state = case.env.state
    # Kept per server process: each workload starts graphattach again, and ``--in-memory`` starts empty.
    cached = state.get("big_attachment")
    if cached is not None and cached[0] is case.env.ga:
        return cached[1]  # type: ignore[no-any-return]
    g = case.g
    message = g.create_draft("bench download")
    data = case.env.data[: case.env.sizes.big]
    try:
        session = g.create_session(message, len(data))
        with Conn.for_url(session.upload_url) as c:
            attachment = upload(c, session.upload_url, data)
        size = len(data)
    except Exception as exc:
        status = getattr(exc, "status", None)
        if not (case.env.smoke and status in UNAVAILABLE_STATUSES):
            raise
        raw = bytes(case.env.data[: case.env.sizes.post_raw])
        attachment = g.post_attachment(message, file_attachment_json("bench-download.bin", raw))
        size = len(raw)
        case.env.notes["download"] = f"smoke: a POSTed {size} B attachment (createUploadSession answered {status})"
    state["big_attachment"] = (case.env.ga, (message, attachment, size))
    return message, attachment, size


class GaValue(GaCase):
    workload = "download_big"
    label = "$value"

    def setup(self) -> None:
        super().setup()
        self.message, self.attachment, self.size = ga_big_attachment(self)
        self.note = self.env.notes.get("download", "")
        # Once, untimed: the bytes are the uploaded ones.
        path = self.g.attachment_path(self.message, self.attachment) + "/$value"
        r = self.g.conn.request(
            "GET", f"/v1.0{path}", {"Authorization": f"Bearer {self.g.token}"}, keep_body=False, sha256=True
        )
        expect(r, "GET $value", 200)
        if r.sha256 != hashlib.sha256(self.env.data[: self.size]).hexdigest():
            raise RuntimeError("$value does not return the uploaded bytes")

    def run(self) -> Sample:
        k = self.env.sizes.downloads_per_run
        path = self.g.attachment_path(self.message, self.attachment) + "/$value"
        with Conn("127.0.0.1", self.ga.port) as c:
            start = time.perf_counter()
            for _ in range(k):
                r = c.request("GET", f"/v1.0{path}", {"Authorization": f"Bearer {self.g.token}"}, keep_body=False)
                expect(r, "GET $value", 200)
                if r.length != self.size:
                    raise RuntimeError(f"$value returned {r.length} bytes, expected {self.size}")
            s = time.perf_counter() - start
        return Sample(rate(k * r.length, s), s, extra={"downloads": k})


class GaContentBytes(GaCase):
    workload = "content_bytes"
    label = "GET with contentBytes (base64 JSON)"

    def setup(self) -> None:
        super().setup()
        self.message, self.attachment, self.size = ga_big_attachment(self)
        self.note = self.env.notes.get("download", "")
        # Once, untimed: contentBytes decodes to the uploaded bytes.
        r = self.g.call("GET", self.g.attachment_path(self.message, self.attachment))
        expect(r, "GET attachment with contentBytes", 200)
        key = b'"contentBytes":"'
        start = r.body.index(key) + len(key)
        encoded = r.body[start : r.body.index(b'"', start)]
        if base64.b64decode(encoded) != self.env.data[: self.size]:
            raise RuntimeError("contentBytes does not decode to the uploaded bytes")
        del r, encoded

    def run(self) -> Sample:
        k = self.env.sizes.downloads_per_run
        path = self.g.attachment_path(self.message, self.attachment)
        headers = {"Authorization": f"Bearer {self.g.token}", "Accept": "application/json"}
        expected_b64 = 4 * math.ceil(self.size / 3)
        with Conn("127.0.0.1", self.ga.port) as c:
            start = time.perf_counter()
            for _ in range(k):
                r = c.request("GET", f"/v1.0{path}", headers, keep_body=False)
                expect(r, "GET attachment with contentBytes", 200)
                if r.length < expected_b64:
                    raise RuntimeError(f"the JSON answer has {r.length} bytes, less than the {expected_b64} of base64")
            s = time.perf_counter() - start
        # Rate of attachment bytes delivered (the JSON itself is ~4/3 larger).
        return Sample(rate(k * self.size, s), s, extra={"json_bytes": r.length, "downloads": k})


class GaPostSmall(GaCase):
    workload = "post_small"
    label = "POST attachment, 1 MiB as base64 JSON"
    unit = "req/s"

    def setup(self) -> None:
        super().setup()
        self.body = self.env.state.setdefault(
            "post_body", file_attachment_json("bench-1mib.bin", bytes(self.env.data[: self.env.sizes.post_raw]))
        )
        self.messages: list[str] = []

    def before_run(self) -> None:
        sizes = self.env.sizes
        n_messages = max(sizes.post_concurrency, math.ceil(sizes.post_max / POSTS_PER_MESSAGE))
        self.messages = [self.g.create_draft(f"bench post {i}") for i in range(n_messages)]

    def run(self) -> Sample:
        sizes = self.env.sizes
        slots: queue.SimpleQueue[str] = queue.SimpleQueue()
        for _ in range(POSTS_PER_MESSAGE):
            for m in self.messages:
                slots.put(m)
        token = self.g.token
        port = self.ga.port
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"}

        def one(conn: Conn, _: int) -> None:
            message = slots.get_nowait()
            r = conn.request("POST", f"/v1.0/me/messages/{seg(message)}/attachments", headers, self.body)
            expect(r, "POST an attachment", 201)

        return load(sizes.post_concurrency, sizes.post_seconds, sizes.post_max, lambda: Conn("127.0.0.1", port), one)

    def after_run(self) -> None:
        for m in self.messages:
            self.g.delete_message(m)
        self.messages = []


WORKLOADS: list[tuple[str, str, str]] = [
    # key, title, unit
    ("upload_big", "Upload one big file", "MB/s"),
    ("upload_concurrent", "Concurrent uploads (aggregate)", "MB/s"),
    ("tiny_puts", "1 KiB PUTs (msgraph-core's tiny-chunk pattern)", "PUT/s"),
    ("download_big", "Download one big file", "MB/s"),
    ("content_bytes", "GET with contentBytes", "MB/s"),
    ("post_small", "POST a ~1 MiB attachment", "req/s"),
]

PHYSICAL_CASES: list[type[Case]] = [DiskWrite, DiskWriteSync, PageCacheRead, LoopbackTcp, LoopbackSendfile]
CASES: dict[str, list[type[Case]]] = {
    "upload_big": [FloorUploadBig, NginxPutBig, TusUploadBig, GaUploadBig],
    "upload_concurrent": [FloorUploadConcurrent, NginxPutConcurrent, TusUploadConcurrent, GaUploadConcurrent],
    "tiny_puts": [FloorTinyPuts, TusTinyPatches, GaTinyPuts],
    "download_big": [FloorDownloadBig, NginxGetBig, TusGetBig, GaValue],
    "content_bytes": [GaContentBytes],
    "post_small": [FloorPostSmall, NginxPostSmall, GaPostSmall],
}
