"""Fuzzing graphattach over raw HTTP: ``python -m bench fuzz --requests 100000 [--seed N]``.

Two parts, against one fresh ``graphattach serve`` (SQLite + files, ``--body-timeout 2``):

1. hypothesis-driven raw HTTP over the upload endpoint, the admin API and attachment POSTs: PUTs
   with valid and broken ``Content-Range`` / ``Content-Length``, bodies cut at random points
   (the socket closed mid-body), random interleavings of PUT / GET / DELETE on a session, clock
   moves (forward and back), sweeps, admin calls with random JSON and attachment POSTs with
   random properties. A model of every session says what the server must report. Invariants:
   no 5xx; ``nextExpectedRanges`` tells the truth (acknowledged bytes survive, nothing past them
   is kept); a completed upload reads back byte for byte; after a sweep no blob is left that
   nothing owns and no record names a blob that is gone.
2. schemathesis over the OpenAPI document (Graph, admin and upload operations): no 5xx.

Every failure prints the seed that reproduces it (``--seed``). ``--requests`` bounds part 1,
``--schemathesis-examples`` part 2 (0 skips it).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from bench.procs import free_port

USER = "adele@contoso.onmicrosoft.com"
MIN_SESSION = 2 * 1024 * 1024
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)


class Violation(AssertionError):
    """An invariant the server broke."""


@dataclass
class Session:
    url: str
    size: int
    data: bytes
    acked: int = 0


@dataclass
class Stats:
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    cut_bodies: int = 0
    completed: int = 0
    sweeps: int = 0
    started: float = field(default_factory=time.monotonic)
    stopped_by_time: bool = False

    def count(self, status: int) -> None:
        self.requests += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.log = open(data_dir.parent / "server.log", "ab")
        cmd = [sys.executable, "-m", "graphattach", "serve", "--port", str(self.port), "--data-dir", str(data_dir)]
        cmd += ["--body-timeout", "2", "--sweep-interval", "0"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.root}/_graphattach/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, 9)
        self.log.close()


@dataclass
class RawResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def raw_request(port: int, method: str, url: str, headers: dict[str, str], body: bytes) -> RawResponse:
    """One request on its own connection, headers exactly as given (httpx refuses a lying
    Content-Length); the answer read to its Content-Length or the close."""
    parts = urlsplit(url)
    head = f"{method} {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        try:
            sock.sendall(head.encode("latin-1", "replace") + body)
        except OSError:
            pass  # refused before the whole body was read: the answer may still be there
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            data += chunk
    raw_head, _, content = data.partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    if not lines or len(lines[0].split(" ")) < 2:
        return RawResponse(499, {}, b"")  # closed without an answer (a refusal by the HTTP server)
    fields = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    found = {k.strip().lower(): v.strip() for k, v in fields.items()}
    return RawResponse(int(lines[0].split(" ")[1]), found, content)


class Fuzzer:
    def __init__(self, server: Server, stats: Stats) -> None:
        self.server = server
        self.stats = stats
        self.http = httpx.Client(base_url=server.root, timeout=60)
        self.token = ""
        self.sessions: list[Session] = []
        self.attachments: dict[str, str] = {}  # path -> sha256
        self.refresh_token()
        self.message = self.post_json("/v1.0/me/messages", {"subject": "fuzz"}, expect=(201,)).json()["id"]

    # plumbing -----------------------------------------------------------------------------------

    def check(self, response: Any, what: str) -> Any:
        self.stats.count(response.status_code)
        if response.status_code >= 500:
            raise Violation(f"{what}: {response.status_code} {response.text[:300]}")
        return response

    def refresh_token(self) -> None:
        response = self.check(self.http.post("/_graphattach/token", json={"user": USER}), "token")
        self.token = response.json()["access_token"]

    def post_json(self, path: str, body: Any, expect: tuple[int, ...] = ()) -> httpx.Response:
        response = self.check(
            self.http.post(path, json=body, headers={"Authorization": f"Bearer {self.token}"}), f"POST {path}"
        )
        if expect and response.status_code not in expect:
            raise Violation(f"POST {path}: {response.status_code} {response.text[:300]}")
        return response

    def status_of(self, session: Session) -> int | None:
        """The first byte the server expects next, None if the session is gone."""
        # self.http, not httpx.get: a client per call builds an SSL context (0.4 s on a busy 2-core
        # machine), which made the fuzz slow
        response = self.check(self.http.get(session.url), "GET session")
        if response.status_code != 200:
            return None
        ranges = response.json()["nextExpectedRanges"]
        return int(ranges[0].split("-")[0]) if ranges else session.size

    def verify(self, session: Session) -> None:
        where = self.status_of(session)
        if where is None:
            self.sessions.remove(session)
            return
        if where != session.acked:
            raise Violation(f"nextExpectedRanges starts at {where}, {session.acked} bytes were acknowledged")

    # operations ---------------------------------------------------------------------------------

    def create_session(self, draw: Any) -> None:
        size = MIN_SESSION + draw(st.integers(0, 1024 * 1024))
        response = self.post_json(
            f"/v1.0/me/messages/{self.message}/attachments/createUploadSession",
            {"AttachmentItem": {"attachmentType": "file", "name": "fuzz.bin", "size": size}},
        )
        if response.status_code == 201:
            data = random.Random(size).randbytes(size)
            self.sessions.append(Session(response.json()["uploadUrl"], size, data))

    def put(self, draw: Any) -> None:
        if not self.sessions:
            return self.create_session(draw)
        session = draw(st.sampled_from(self.sessions))
        start = max(0, session.acked + draw(st.sampled_from([0, 0, 0, 0, -1, 1, -100, 4096])))
        length = draw(st.sampled_from([1, 100, 4096, 65536, 300_000, 1024 * 1024, session.size]))
        end = min(start + length, session.size)
        body = session.data[start:end]
        total = session.size + draw(st.sampled_from([0, 0, 0, 0, 1, -1]))
        content_range = f"bytes {start}-{end - 1}/{total}"
        if draw(st.integers(0, 9)) == 0:
            content_range = draw(st.sampled_from(["", "bytes */*", f"bytes {start}-/{total}", "bytes a-b/c"]))
            content_range = content_range or draw(st.text(max_size=30).filter(lambda t: "\r" not in t))
        declared: str = str(len(body))
        if draw(st.integers(0, 9)) == 0:
            # shorter than the body (a longer one would only wait for the body timeout)
            declared = draw(st.sampled_from([str(max(0, len(body) - 1)), "0", "-1", "x"]))
        cut = draw(st.integers(0, 4)) == 0 and len(body) > 1
        valid = start == session.acked and total == session.size and declared == str(len(body)) and end > start
        valid = valid and content_range == f"bytes {start}-{end - 1}/{total}"
        if cut:
            cut_at = draw(st.integers(0, len(body) - 1))
            self.raw_cut_put(session, content_range, declared, body[:cut_at])
            self.stats.cut_bodies += 1
            self.verify(session)  # nothing past the acknowledged bytes was kept
            return None
        response = raw_request(
            self.server.port, "PUT", session.url, {"Content-Range": content_range, "Content-Length": declared}, body
        )
        self.check(response, "PUT range")
        if response.status_code == 201:
            if not valid:
                raise Violation(f"an invalid range was accepted: {content_range} / {declared}")
            self.stats.completed += 1
            self.sessions.remove(session)
            location = response.headers["location"]
            attachment_id = location.rsplit("Attachments('", 1)[1].split("'")[0]
            path = f"/v1.0/me/messages/{self.message}/attachments/{attachment_id}/$value"
            self.attachments[path] = hashlib.sha256(session.data).hexdigest()
            self.read_back(path)
            return None
        if response.status_code == 200 and valid:
            session.acked = end
        self.verify(session)
        return None

    def raw_cut_put(self, session: Session, content_range: str, declared: str, sent: bytes) -> None:
        parts = urlsplit(session.url)
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as sock:
            head = (
                f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Content-Range: {content_range}\r\nContent-Length: {declared}\r\n\r\n"
            )
            try:
                sock.sendall(head.encode("latin-1", "replace") + sent)
            except OSError:
                pass
        self.stats.requests += 1

    def delete(self, draw: Any) -> None:
        if not self.sessions:
            return
        session = draw(st.sampled_from(self.sessions))
        response = self.check(self.http.delete(session.url), "DELETE session")
        if response.status_code == 204:
            self.sessions.remove(session)
            if self.status_of(session) is not None:
                raise Violation("a deleted session still answers")

    def get(self, draw: Any) -> None:
        if self.sessions:
            self.verify(draw(st.sampled_from(self.sessions)))

    def move_clock(self, draw: Any) -> None:
        seconds = draw(st.sampled_from([60, 3600, 7200, 6 * 3600 + 60]))
        self.check(self.http.post("/_graphattach/clock", json={"advanceSeconds": seconds}), "clock")
        self.refresh_token()
        for session in list(self.sessions):
            self.verify(session)

    def reset_clock(self, draw: Any) -> None:
        self.check(self.http.delete("/_graphattach/clock"), "clock reset")
        self.refresh_token()

    def sweep(self, draw: Any) -> None:
        self.check(self.http.post("/_graphattach/sweep"), "sweep")
        self.stats.sweeps += 1
        self.storage_invariants()
        for session in list(self.sessions):
            self.verify(session)
        for path in list(self.attachments):
            self.read_back(path)

    def admin_junk(self, draw: Any) -> None:
        path = draw(st.sampled_from(["/_graphattach/users", "/_graphattach/clock", "/_graphattach/token"]))
        body = draw(
            st.dictionaries(
                st.sampled_from(
                    [
                        "userPrincipalName",
                        "id",
                        "maxMessageSize",
                        "displayName",
                        "advanceSeconds",
                        "user",
                        "lifetime",
                        "app",
                        "roles",
                    ]
                ),
                JSON_VALUES,
                max_size=4,
            )
        )
        self.check(self.http.post(path, json=body), f"POST {path}")
        self.check(self.http.delete("/_graphattach/clock"), "clock reset")
        self.refresh_token()

    def post_attachment(self, draw: Any) -> None:
        body: dict[str, Any] = {"@odata.type": "#microsoft.graph.fileAttachment", "name": "f.bin"}
        raw = draw(st.binary(max_size=2000))
        body["contentBytes"] = base64.b64encode(raw).decode()
        extra = draw(
            st.dictionaries(
                st.sampled_from(
                    ["name", "contentType", "isInline", "contentId", "size", "@odata.type", "contentBytes", "x"]
                ),
                JSON_VALUES,
                max_size=2,
            )
        )
        body.update(extra)
        response = self.post_json(f"/v1.0/me/messages/{self.message}/attachments", body)
        if response.status_code == 201 and body.get("contentBytes") == base64.b64encode(raw).decode():
            path = f"/v1.0/me/messages/{self.message}/attachments/{response.json()['id']}/$value"
            self.attachments[path] = hashlib.sha256(raw).hexdigest()
            self.read_back(path)

    def read_back(self, path: str) -> None:
        response = self.check(self.http.get(path, headers={"Authorization": f"Bearer {self.token}"}), "GET $value")
        if response.status_code != 200 or hashlib.sha256(response.content).hexdigest() != self.attachments[path]:
            raise Violation(f"{path}: {response.status_code}, acknowledged bytes not read back")

    def storage_invariants(self) -> None:
        """After a sweep (nothing in flight): every blob is owned, every owned blob exists."""
        db = sqlite3.connect(f"file:{self.server.data_dir / 'metadata.sqlite3'}?mode=ro", uri=True)
        try:
            owned = {r[0] for r in db.execute("SELECT blob_key FROM attachments WHERE blob_key IS NOT NULL")}
            sessions = {r[0] for r in db.execute("SELECT blob_key FROM upload_sessions")}
            announced = {r[0] for r in db.execute("SELECT blob_key FROM blob_announcements")}
        finally:
            db.close()
        from graphattach.storage.files import FileBlobStore

        async def listing() -> set[str]:
            store = FileBlobStore(self.server.data_dir / "blobs")
            await store.open()
            try:
                return {key async for key in store.keys()}
            finally:
                await store.close()

        present = asyncio.run(listing())
        orphans = present - owned - sessions - announced
        missing = owned - present
        if orphans or missing:
            raise Violation(f"after a sweep: orphans {sorted(orphans)[:3]}, missing {sorted(missing)[:3]}")


OPERATIONS = ["put"] * 6 + [
    "create_session",
    "get",
    "get",
    "delete",
    "move_clock",
    "reset_clock",
    "sweep",
    "admin_junk",
    "post_attachment",
    "post_attachment",
]


def run_raw(
    server: Server, requests: int, seed_value: int, stats: Stats, verbose: bool, deadline: float | None = None
) -> None:
    """Scenarios of 40 operations, each on a fresh draft and the clock at real time, until
    ``requests`` requests were made (or, with ``deadline``, until that ``time.monotonic()``).
    No shrinking: a failure prints its operation and the seed."""
    steps = 40
    failures: list[str] = []
    admin = httpx.Client(base_url=server.root, timeout=60)

    def done() -> bool:
        if deadline is not None and time.monotonic() >= deadline:
            stats.stopped_by_time = True
        return stats.requests >= requests or stats.stopped_by_time

    @seed(seed_value)
    @settings(
        max_examples=10**9,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
        report_multiple_bugs=False,
    )
    @given(st.data())
    def scenario(data: st.DataObject) -> None:
        if done() or failures:
            return
        before = stats.requests
        admin.delete("/_graphattach/clock")
        fuzzer = Fuzzer(server, stats)
        operation = ""
        try:
            for _ in range(steps):
                operation = data.draw(st.sampled_from(OPERATIONS))
                getattr(fuzzer, operation)(data.draw)
        except Exception as exc:
            failures.append(f"{operation}: {type(exc).__name__}: {exc}")
            raise
        finally:
            fuzzer.http.close()
        if verbose and stats.requests // 1000 != before // 1000:
            print(
                f"fuzz: {stats.requests} requests, {time.monotonic() - stats.started:.0f} s, "
                f"statuses {dict(sorted(stats.statuses.items()))}",
                file=sys.stderr,
                flush=True,
            )

    try:
        scenario()
    except BaseException as exc:
        if not failures and done():
            return  # hypothesis noticed the scenarios stop drawing once the bound is reached
        raise Violation(failures[0] if failures else str(exc)) from None


def run_schemathesis(server: Server, examples: int, seed_value: int, workdir: Path) -> int:
    token = httpx.post(f"{server.root}/_graphattach/token", json={"user": USER}).json()["access_token"]
    cli = Path(sys.executable).with_name("schemathesis")
    if not cli.exists():
        print("fuzz: schemathesis is not installed (pip install -e '.[test]'); part 2 skipped", file=sys.stderr)
        return 0
    config = workdir / "schemathesis.toml"
    config.write_text('headers = { Authorization = "Bearer ${GRAPHATTACH_FUZZ_TOKEN}" }\n')
    done = subprocess.run(
        [
            str(cli),
            "--config-file",
            str(config),
            "run",
            f"{server.root}/openapi.json",
            "--max-examples",
            str(examples),
            "--seed",
            str(seed_value),
            "--generation-database",
            "none",
            "--checks",
            "not_a_server_error",
            "--workers",
            "2",
            "--no-color",
        ],
        cwd=workdir,
        env={**os.environ, "GRAPHATTACH_FUZZ_TOKEN": token},
        capture_output=True,
        text=True,
    )
    tail = "\n".join(done.stdout.splitlines()[-12:])
    print(tail, file=sys.stderr)
    return done.returncode


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # so that ``finally`` stops the server (``timeout`` sends SIGTERM)


def run_fuzz(
    requests: int,
    seed_value: int | None,
    schemathesis_examples: int,
    verbose: bool = True,
    max_seconds: float | None = None,
) -> int:
    seed_value = seed_value if seed_value is not None else random.randrange(2**32)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="graphattach-fuzz-"))
    server = Server(workdir / "data")
    stats = Stats()
    started = time.monotonic()
    deadline = None if max_seconds is None else started + max_seconds
    status = 0
    try:
        try:
            run_raw(server, requests, seed_value, stats, verbose, deadline)
        except Exception as exc:  # hypothesis has printed the falsifying example
            print(f"fuzz: FAILED with seed {seed_value}: {exc}", file=sys.stderr)
            print(f"fuzz: reproduce with: bench/run fuzz --requests {requests} --seed {seed_value}", file=sys.stderr)
            status = 1
        if status == 0 and schemathesis_examples > 0:
            code = run_schemathesis(server, schemathesis_examples, seed_value, workdir)
            if code != 0:
                print(f"fuzz: schemathesis FAILED with seed {seed_value}", file=sys.stderr)
                status = 1
    finally:
        server.stop()
        if status == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"fuzz: server log and data kept in {workdir}", file=sys.stderr)
    summary = {
        "seed": seed_value,
        "requests": stats.requests,
        "cut_bodies": stats.cut_bodies,
        "completed_uploads": stats.completed,
        "sweeps": stats.sweeps,
        "statuses": dict(sorted(stats.statuses.items())),
        "stopped_by_time": stats.stopped_by_time,
        "server_errors": sum(n for s, n in stats.statuses.items() if s >= 500),
        "seconds": round(time.monotonic() - started, 1),
        "ok": status == 0,
    }
    print(json.dumps(summary))
    return status
