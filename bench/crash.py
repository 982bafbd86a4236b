"""Crash durability of upload sessions: ``python -m bench crash --trials 20``.

Each trial uploads a file (150 MB by default) to a fresh draft in 4 MiB PUTs and SIGKILLs the
whole ``graphattach serve`` process group at a random point: between two PUTs, in the middle of a
PUT's body, or after a whole PUT was sent but before its answer (the first two trials kill during
the final range, where the attachment is committed). The server is restarted on the
same data directory and port, the client asks where to go on (``GET`` on the upload URL, which
answers ``nextExpectedRanges``; failing that, the next PUT's answer), finishes the upload and
checks the SHA-256 of ``$value``. Every range the server had acknowledged with a 200 must have
survived the kill.

After the trials it advances the server clock by a day (``POST /_graphattach/clock``), runs
``POST /_graphattach/sweep`` and counts the blob files under ``<data-dir>/blobs``: no more may
remain than attachments refer to.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.ga import CHUNK, Graph, GraphServer, attachment_id_from_location, expect, next_expected, put_range, seg
from bench.httpc import Conn, ConnectionBroken, HTTPError, target_of
from bench.procs import free_port

RESULTS = Path(__file__).resolve().parent / "results"
MODES = ("between-puts", "mid-body", "before-answer")


@dataclass
class Trial:
    index: int
    mode: str
    kill_chunk: int
    kill_fraction: float
    #: Bytes the server had acknowledged (200) before the kill.
    acked: int = 0
    #: Bytes the client had sent before the kill.
    sent: int = 0
    #: Where the server said to go on after the restart (None: the upload was already complete).
    resumed_at: int | None = None
    resume_via: str = ""
    completed_by_killed_put: bool = False
    restart_s: float = 0.0
    total_s: float = 0.0
    sha_ok: bool = False
    ok: bool = False
    problem: str = ""
    attachment_id: str = ""
    message_id: str = ""


@dataclass
class CrashReport:
    started: str
    trials: list[Trial] = field(default_factory=list)
    size: int = 0
    seed: int = 0
    blob_files_before_sweep: int | None = None
    temp_files_before_sweep: int | None = None
    blob_files_after_sweep: int | None = None
    temp_files_after_sweep: int | None = None
    referenced_attachments: int | None = None
    sweep_status: str = ""
    orphans: int | None = None
    ok: bool = False
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def count_blob_files(blobs: Path) -> tuple[int, int]:
    """(blob files, temporary files) under ``blobs``: dot-files are temporary, ``*.key`` sidecars skipped."""
    files = temps = 0
    if not blobs.exists():
        return 0, 0
    for _root, _dirs, names in os.walk(blobs):
        for name in names:
            if name.startswith("."):
                temps += 1
            elif not name.endswith(".key"):
                files += 1
    return files, temps


def _log(verbose: bool, msg: str) -> None:
    if verbose:
        print(msg, file=sys.stderr, flush=True)


def _resume_point(
    g: Graph, upload_url: str, acked: int, data: memoryview, size: int, name: str, message: str
) -> tuple[int | None, str, str]:
    """Where to go on after the restart: (offset or None when complete, how we learnt it, attachment id)."""
    with Conn.for_url(upload_url) as c:
        r = c.request("GET", target_of(upload_url), {"Accept": "application/json"})
        if r.status == 200:
            nxt = next_expected(r.json())
            if nxt is not None:
                return nxt, "GET uploadUrl", ""
        if r.status in (404, 410):
            # A finished (or forgotten) session: the killed PUT may have completed the upload.
            for a in _attachments(g, message):
                if a.get("name") == name:
                    return None, f"GET uploadUrl {r.status}; attachment present", str(a["id"])
            return -1, f"GET uploadUrl {r.status} and no attachment", ""
        # No status endpoint: the next PUT's answer says where to go on.
        piece = data[acked : acked + CHUNK]
        r2 = put_range(c, upload_url, piece, acked, size)
        if r2.status in (200, 201):
            if r2.status == 201:
                return (
                    None,
                    f"GET {r.status}; PUT at acked completed",
                    attachment_id_from_location(r2.headers.get("location", "")),
                )
            nxt = next_expected(r2.json())
            return (nxt if nxt is not None else acked + len(piece)), f"GET {r.status}; PUT at acked accepted", ""
        try:
            body = r2.json()
            nxt = next_expected(body) or next_expected(body.get("error", {}))
        except (ValueError, AttributeError):
            nxt = None
        if nxt is not None:
            return nxt, f"GET {r.status}; PUT answered {r2.status} with nextExpectedRanges", ""
        raise RuntimeError(
            f"cannot find the resume point: GET {r.status} {r.text()[:200]}; PUT {r2.status} {r2.text()[:200]}"
        )


def _attachments(g: Graph, message: str) -> list[dict[str, Any]]:
    r = g.call("GET", f"/me/messages/{seg(message)}/attachments?$select=id,name,size")
    return list(expect(r, "list attachments", 200).json()["value"])


def _fresh_graph(server: GraphServer, token: str | None) -> Graph:
    return Graph(server.port, token)


def run_trial(
    index: int, server: GraphServer, token: str, data: memoryview, digest: str, rng: random.Random, verbose: bool
) -> Trial:
    size = len(data)
    nchunks = math.ceil(size / CHUNK)
    trial = Trial(index, rng.choice(MODES), rng.randrange(nchunks), round(rng.random(), 3))
    if index < 2:
        # The first two trials kill on the final range, where the attachment is committed: once
        # after the whole range was sent (it may be complete at the restart), once mid-body.
        trial.mode = ("before-answer", "mid-body")[index]
        trial.kill_chunk = nchunks - 1
    t0 = time.perf_counter()
    name = f"crash-{index}.bin"
    with _fresh_graph(server, token) as g:
        message = g.create_draft(f"crash trial {index}")
        trial.message_id = message
        upload_url = g.create_session(message, size, name).upload_url
    conn = Conn.for_url(upload_url, timeout=60)
    offset = 0
    try:
        while offset < size:
            piece = data[offset : offset + CHUNK]
            chunk_no = offset // CHUNK
            if chunk_no == trial.kill_chunk:
                if trial.mode == "mid-body":
                    headers = {
                        "Content-Range": f"bytes {offset}-{offset + len(piece) - 1}/{size}",
                        "Content-Type": "application/octet-stream",
                    }
                    trial.sent = offset + conn.send_request(
                        "PUT", target_of(upload_url), headers, piece, body_limit=int(trial.kill_fraction * len(piece))
                    )
                    time.sleep(0.005)
                elif trial.mode == "before-answer":
                    headers = {
                        "Content-Range": f"bytes {offset}-{offset + len(piece) - 1}/{size}",
                        "Content-Type": "application/octet-stream",
                    }
                    trial.sent = offset + conn.send_request("PUT", target_of(upload_url), headers, piece)
                    time.sleep(trial.kill_fraction * 0.1)
                else:
                    trial.sent = offset
                break
            r = put_range(conn, upload_url, piece, offset, size)
            offset += len(piece)
            trial.sent = trial.acked = offset
            if offset < size:
                expect(r, f"PUT at {offset - len(piece)}", 200)
            else:
                # The kill point was never reached (cannot happen: kill_chunk < nchunks).
                expect(r, "final PUT", 201)
    finally:
        conn.close()
    # The crash.
    server.kill()
    t1 = time.perf_counter()
    server.start_and_wait()
    trial.restart_s = round(time.perf_counter() - t1, 3)
    with _fresh_graph(server, token) as g:
        resumed, via, attachment = _resume_point(g, upload_url, trial.acked, data, size, name, message)
        trial.resume_via = via
        trial.resumed_at = resumed
        if resumed is not None and resumed < 0:
            trial.problem = f"the session and the upload are gone after the restart ({via})"
            trial.total_s = round(time.perf_counter() - t0, 3)
            return trial
        if resumed is not None and resumed < trial.acked:
            trial.problem = f"acknowledged bytes lost: the server acknowledged {trial.acked}, resumes at {resumed}"
        if resumed is not None and resumed > trial.sent:
            trial.problem = f"the server resumes at {resumed}, beyond the {trial.sent} bytes sent"
        if resumed is None:
            trial.completed_by_killed_put = True
        else:
            with Conn.for_url(upload_url, timeout=120) as c:
                offset = resumed
                while offset < size:
                    piece = data[offset : offset + CHUNK]
                    r = put_range(c, upload_url, piece, offset, size)
                    offset += len(piece)
                    if offset < size:
                        expect(r, f"resumed PUT at {offset - len(piece)}", 200)
                    else:
                        expect(r, "final resumed PUT", 201)
                        attachment = attachment_id_from_location(r.headers.get("location", ""))
        trial.attachment_id = attachment
        with Conn("127.0.0.1", server.port, timeout=120) as c:
            r = c.request(
                "GET",
                f"/v1.0{g.attachment_path(message, attachment)}/$value",
                {"Authorization": f"Bearer {g.token}"},
                keep_body=False,
                sha256=True,
            )
        expect(r, "GET $value", 200)
        trial.sha_ok = r.sha256 == digest and r.length == size
        if not trial.sha_ok:
            trial.problem = (trial.problem + f"; $value differs ({r.length} bytes, sha256 {r.sha256})").lstrip("; ")
    trial.ok = trial.sha_ok and not trial.problem
    trial.total_s = round(time.perf_counter() - t0, 3)
    return trial


class _Stack:
    """Where the server keeps its data: embedded (SQLite + files under the data directory) or a
    throwaway PostgreSQL cluster + moto S3 server (``--stack postgres-s3``)."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.cluster: Any = None
        self.moto: Any = None
        self.extra: list[str] = []
        self.env: dict[str, str] = {}
        self.blobs_url = ""
        if name == "postgres-s3":
            from tests.engines import MotoServer, PostgresCluster

            self.cluster = PostgresCluster.start()
            self.moto = MotoServer.start(workdir)
            self.env = self.moto.env()
            self.blobs_url = self.moto.url("crash")
            self.extra = ["--store", self.cluster.create_database("crash"), "--blobs", self.blobs_url]

    def count_blobs(self, data_dir: Path) -> tuple[int, int]:
        """Blobs, and temporary files (always 0 on S3)."""
        if not self.blobs_url:
            return count_blob_files(data_dir / "blobs")
        import asyncio

        from graphattach.storage.s3 import S3BlobStore

        async def count() -> int:
            store = S3BlobStore(self.blobs_url)
            await store.open()
            try:
                return len([key async for key in store.keys()])
            finally:
                await store.close()

        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            return asyncio.run(count()), 0
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def stop(self) -> None:
        if self.moto is not None:
            self.moto.stop()
        if self.cluster is not None:
            self.cluster.stop()


def run_crash(
    trials: int,
    size: int,
    seed: int | None,
    out: Path | None,
    *,
    keep: bool = False,
    verbose: bool = True,
    stack: str = "embedded",
) -> int:
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    report = CrashReport(started=datetime.now(UTC).isoformat(timespec="seconds"), size=size, seed=seed)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="graphattach-crash-"))
    data_dir = workdir / "data"
    _log(verbose, f"crash: {trials} trials of {size / 1e6:.0f} MB, seed {seed}, data dir {data_dir}")
    data = memoryview(random.Random(seed).randbytes(size))
    digest = hashlib.sha256(data).hexdigest()
    stores = _Stack(stack, workdir)
    report.notes.append(f"stack: {stack}")
    server = GraphServer(data_dir, workdir / "graphattach.log", port=free_port(), extra=stores.extra, env=stores.env)
    status = 1
    try:
        server.start_and_wait()
        with Graph(server.port) as g:
            token = g.token
        for i in range(trials):
            try:
                trial = run_trial(i, server, token, data, digest, rng, verbose)
            except (HTTPError, ConnectionBroken, RuntimeError, ValueError, OSError) as exc:
                trial = Trial(i, "?", -1, 0.0, problem=f"{type(exc).__name__}: {exc}"[:500])
                if not server.alive():
                    server.stop()
                    server.start_and_wait()
            report.trials.append(trial)
            _log(
                verbose,
                f"  trial {i + 1:2}/{trials}: {trial.mode:13} chunk {trial.kill_chunk:3} acked {trial.acked:>11,} "
                f"sent {trial.sent:>11,} resumed {trial.resumed_at if trial.resumed_at is not None else 'done':>11} "
                f"({trial.resume_via}) restart {trial.restart_s:.1f}s -> {'ok' if trial.ok else 'FAIL: ' + trial.problem}",
            )
            if trial.problem.startswith("HTTPError") and getattr(trial, "resume_via", "") == "" and i == 0:
                # The very first trial could not even start (no messages or upload sessions): stop here.
                if any(code in trial.problem for code in ("HTTP 400", "HTTP 404", "HTTP 405")):
                    report.notes.append("upload sessions are not available on this build: " + trial.problem[:300])
                    break
        report.blob_files_before_sweep, report.temp_files_before_sweep = stores.count_blobs(data_dir)
        with Graph(server.port, token) as g:
            referenced = 0
            for t in report.trials:
                if t.message_id:
                    try:
                        referenced += len(_attachments(g, t.message_id))
                    except HTTPError:
                        pass
            report.referenced_attachments = referenced
            r = g.admin("POST", "/clock", {"advanceSeconds": 86400})
            if r.status != 200:
                report.notes.append(f"POST /_graphattach/clock answered {r.status}")
            r = g.admin("POST", "/sweep", {})
            report.sweep_status = f"{r.status} {r.text()[:200]}"
        report.blob_files_after_sweep, report.temp_files_after_sweep = stores.count_blobs(data_dir)
        if r.status in (200, 202, 204):
            report.orphans = report.blob_files_after_sweep + report.temp_files_after_sweep - referenced
        else:
            report.notes.append(f"POST /_graphattach/sweep answered {r.status}: orphans not checked")
        ran = [t for t in report.trials if t.mode != "?"]
        report.ok = (
            len(report.trials) == trials
            and all(t.ok for t in report.trials)
            and report.orphans is not None
            and report.orphans <= 0
        )
        status = 0 if report.ok else 1
        _log(
            verbose,
            f"crash: {sum(t.ok for t in report.trials)}/{len(report.trials)} trials ok ({len(ran)} ran); blob files "
            f"{report.blob_files_before_sweep} (+{report.temp_files_before_sweep} temporary) before the sweep, "
            f"{report.blob_files_after_sweep} (+{report.temp_files_after_sweep}) after; {referenced} attachments; "
            f"sweep: {report.sweep_status[:80]}; orphans: {report.orphans}",
        )
    finally:
        server.stop()
        stores.stop()
        report.elapsed_s = round(time.monotonic() - started, 1)
        path = out or RESULTS / "crash.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(report), indent=1) + "\n")
        _log(verbose, f"crash: wrote {path}")
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return status
