"""Load and crash: ``python -m bench load --clients 64 --duration 600`` and
``python -m bench crash-mixed --crashes 50 --duration 600``.

``--clients`` concurrent clients against one ``graphattach serve`` (SQLite + files) on a mixed
workload until ``--duration`` seconds have passed: small attachment POSTs (1-100 KB), upload
sessions (3 MB to ``--max-upload``, 4 MiB ranges), ``$value`` downloads checked by SHA-256, lists,
and sends of a draft with attachments to another user. Every attachment is named after the
SHA-256 of its bytes, so any attachment anyone can list can be checked.

Reported (one JSON line): requests, errors (a 5xx, an unexpected status, a connection failure
while the server is up, a SHA-256 mismatch), the server's RSS (sum over its process group) after
warm-up and at the end, and its open file descriptors at both points.

With ``--crashes N`` the server's whole process group is killed with SIGKILL at N random moments
(uniform over the workload's ``--duration``) and restarted on the same data directory and port.
Requests cut by a kill are not errors; after each restart every acknowledged attachment must read
back byte for byte, and every attachment that can be listed (including ones whose request was cut,
and recipients' copies) must be whole: nothing half-written is visible. From the kill until that
check is done the clients start no new operation (the pause does not count as workload time), so
the check reads a quiet server and every kill lands inside the workload.
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
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.procs import free_port

USERS = ("adele", "alex", "megan")
DOMAIN = "contoso.onmicrosoft.com"
CHUNK = 4 * 1024 * 1024
#: The mailboxes' maximum message size (the default profile's 150 MiB, raw attachment bytes): a
#: client starts a new draft rather than have the server refuse the attachment that would pass it
#: (ErrorMessageSizeExceeded, as Exchange does).
MAX_MESSAGE_SIZE = 150 * 1024 * 1024


@dataclass
class Totals:
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    interrupted: int = 0
    acknowledged: dict[str, str] = field(default_factory=dict)  # $value path -> sha256
    uploads: int = 0
    posts: int = 0
    downloads: int = 0
    sends: int = 0
    bytes_up: int = 0
    #: what a check after a restart already read back (bytes never change once acknowledged; the
    #: final check reads everything again)
    verified: set[str] = field(default_factory=set)


class Schedule:
    """Workload time: wall time minus the pauses in which the clients wait while the server is
    restarted and checked (so the check reads a quiet server, and the workload still runs
    ``duration`` seconds with every kill inside it)."""

    def __init__(self, duration: float) -> None:
        self.started = time.monotonic()
        self.duration = duration
        self.gate = threading.Event()  # set: clients may start operations
        self.gate.set()
        self.kills_done = threading.Event()
        self.paused = 0.0
        self.pause_began: float | None = None

    def elapsed(self) -> float:
        now = time.monotonic()
        current = now - self.pause_began if self.pause_began is not None else 0.0
        return now - self.started - self.paused - current

    def running(self) -> bool:
        return self.elapsed() < self.duration or not self.kills_done.is_set()

    def pause(self) -> None:
        self.pause_began = time.monotonic()
        self.gate.clear()

    def resume(self) -> None:
        assert self.pause_began is not None
        self.paused += time.monotonic() - self.pause_began
        self.pause_began = None
        self.gate.set()

    async def wait_gate(self) -> None:
        while not self.gate.is_set():
            await asyncio.sleep(0.1)


class Server:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.root = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.up = False
        self.kills = 0

    def start(self) -> None:
        log = open(self.data_dir.parent / "server.log", "ab")
        cmd = [sys.executable, "-m", "graphattach", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.root}/_graphattach/health", timeout=2).status_code == 200:
                    self.up = True
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        self.up = False
        self.kills += 1
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.kill()

    def pids(self) -> list[int]:
        assert self.proc is not None
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.getpgid(int(entry)) == self.proc.pid:
                        found.append(int(entry))
                except ProcessLookupError:
                    continue
        return found

    def rss_and_fds(self) -> tuple[int, int]:
        rss = fds = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1]) * 1024
                fds += len(os.listdir(f"/proc/{pid}/fd"))
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
        return rss, fds


#: Seconds between two samples of the server's RSS in the report's ``rss_series``.
SAMPLE_EVERY = 30.0


def _named(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32] + ".bin"


class Client:
    def __init__(self, n: int, server: Server, totals: Totals, rng: random.Random, max_upload: int) -> None:
        self.user = f"{USERS[n % len(USERS)]}@{DOMAIN}"
        self.server = server
        self.totals = totals
        self.rng = rng
        self.max_upload = max_upload
        self.http = httpx.AsyncClient(base_url=server.root, timeout=120)
        self.token = ""
        self.draft: str | None = None
        self.draft_bytes = 0
        self.mine: list[str] = []

    async def auth(self) -> dict[str, str]:
        if not self.token:
            response = await self.http.post("/_graphattach/token", json={"user": self.user})
            self.token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, method: str, path: str, *expected: int, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(method, path, headers=await self.auth(), **kwargs)
        self.totals.requests += 1
        if response.status_code not in expected:
            raise RuntimeError(f"{method} {path.split('?')[0][-60:]}: {response.status_code} {response.text[:200]}")
        return response

    async def ensure_draft(self, adding: int = 0) -> str:
        if self.draft is not None and self.draft_bytes + adding > MAX_MESSAGE_SIZE:
            self.draft = None  # that one stays a draft, its attachments still checked
        if self.draft is None:
            self.draft_bytes = 0
            to = [{"emailAddress": {"address": f"{self.rng.choice(USERS)}@{DOMAIN}"}}]
            created = await self.call("POST", "/v1.0/me/messages", 201, json={"subject": "load", "toRecipients": to})
            self.draft = created.json()["id"]
        return self.draft

    async def small_post(self) -> None:
        data = self.rng.randbytes(self.rng.randint(1024, 100 * 1024))
        draft = await self.ensure_draft(len(data))
        body = {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": _named(data),
            "contentBytes": base64.b64encode(data).decode(),
        }
        created = await self.call("POST", f"/v1.0/me/messages/{draft}/attachments", 201, json=body)
        self.acknowledge(f"/v1.0/me/messages/{draft}/attachments/{created.json()['id']}/$value", data)
        self.totals.posts += 1
        self.totals.bytes_up += len(data)
        self.draft_bytes += len(data)

    async def upload(self) -> None:
        size = self.rng.randint(3_000_000, max(3_000_000, self.max_upload))
        draft = await self.ensure_draft(size)
        data = self.rng.randbytes(size)
        session = await self.call(
            "POST",
            f"/v1.0/me/messages/{draft}/attachments/createUploadSession",
            201,
            json={"AttachmentItem": {"attachmentType": "file", "name": _named(data), "size": size}},
        )
        url = session.json()["uploadUrl"]
        start = 0
        while start < size:
            end = min(start + CHUNK, size)
            response = await self.http.put(
                url, content=data[start:end], headers={"Content-Range": f"bytes {start}-{end - 1}/{size}"}
            )
            self.totals.requests += 1
            if response.status_code == 201:
                attachment = response.headers["Location"].rsplit("Attachments('", 1)[1].split("'")[0]
                self.acknowledge(f"/v1.0/me/messages/{draft}/attachments/{attachment}/$value", data)
                self.totals.uploads += 1
                self.totals.bytes_up += size
                self.draft_bytes += size
                return
            if response.status_code != 200:
                raise RuntimeError(f"PUT range: {response.status_code} {response.text[:200]}")
            start = end
        raise RuntimeError("the last range was not answered 201")

    def acknowledge(self, path: str, data: bytes) -> None:
        self.totals.acknowledged[f"{self.user} {path}"] = hashlib.sha256(data).hexdigest()
        self.mine.append(path)

    async def download(self) -> None:
        if not self.mine:
            return await self.small_post()
        path = self.rng.choice(self.mine)
        response = await self.call("GET", path, 200)
        if hashlib.sha256(response.content).hexdigest() != self.totals.acknowledged[f"{self.user} {path}"]:
            self.totals.errors.append(f"SHA-256 mismatch on {path}")
        self.totals.downloads += 1
        return None

    async def lists(self) -> None:
        await self.call("GET", "/v1.0/me/messages?$top=20&$select=subject,hasAttachments", 200)
        if self.draft is not None:
            await self.call("GET", f"/v1.0/me/messages/{self.draft}/attachments?$select=id,name,size", 200)

    async def send(self) -> None:
        if self.draft is None or not self.mine:
            return await self.small_post()
        draft = self.draft
        self.draft = None
        await self.call("POST", f"/v1.0/me/messages/{draft}/send", 202)
        self.totals.sends += 1
        # the sent copy keeps its id and its attachments: still readable at the same paths
        return None

    async def run(self, schedule: Schedule) -> None:
        operations = [self.small_post] * 4 + [self.download] * 4 + [self.lists] * 2 + [self.upload, self.send]
        # Until the duration is over and the last kill was made: every kill lands in the workload.
        while schedule.running():
            await schedule.wait_gate()
            operation = self.rng.choice(operations)
            kills_before = self.server.kills
            try:
                await operation()
            except (httpx.TransportError, RuntimeError) as exc:
                if not self.server.up:
                    self.totals.interrupted += 1
                    await asyncio.sleep(0.2)
                    self.draft = None
                    continue
                if isinstance(exc, httpx.TransportError) and self.server.kills != kills_before:
                    # a kill cut this request even if the server is back by now; with no kill
                    # during the operation a failed connection or a timeout is an error
                    self.totals.interrupted += 1
                    self.draft = None
                    continue
                self.totals.errors.append(f"{type(exc).__name__}: {exc}")
                print(f"load: error: {self.totals.errors[-1]}", file=sys.stderr, flush=True)
                self.draft = None
        await self.http.aclose()


async def verify_everything(server: Server, totals: Totals, *, full: bool = True) -> list[str]:
    """Every acknowledged attachment reads back; every listable attachment is whole. Not
    ``full``: only what no earlier check read (after a restart)."""
    problems: list[str] = []
    async with httpx.AsyncClient(base_url=server.root, timeout=120) as http:
        tokens: dict[str, str] = {}
        for local in USERS:
            upn = f"{local}@{DOMAIN}"
            tokens[upn] = (await http.post("/_graphattach/token", json={"user": upn})).json()["access_token"]
        for key, sha in list(totals.acknowledged.items()):
            if not full and key in totals.verified:
                continue
            totals.verified.add(key)
            user, path = key.split(" ", 1)
            response = await http.get(path, headers={"Authorization": f"Bearer {tokens[user]}"})
            if response.status_code != 200 or hashlib.sha256(response.content).hexdigest() != sha:
                problems.append(f"acknowledged {path}: {response.status_code}")
        for upn, token in tokens.items():
            auth = {"Authorization": f"Bearer {token}"}
            link: str | None = "/v1.0/me/messages?$top=100&$select=id"
            while link:
                page = (await http.get(link, headers=auth)).json()
                for message in page.get("value", []):
                    base = f"/v1.0/me/messages/{message['id']}/attachments"
                    listed = (await http.get(f"{base}?$select=id,name", headers=auth)).json().get("value", [])
                    for attachment in listed:
                        seen = f"{upn} {base}/{attachment['id']}"
                        if not full and seen in totals.verified:
                            continue
                        totals.verified.add(seen)
                        value = await http.get(f"{base}/{attachment['id']}/$value", headers=auth)
                        name = attachment.get("name") or ""
                        digest = hashlib.sha256(value.content).hexdigest()
                        if value.status_code != 200 or not name.startswith(digest[:32]):
                            problems.append(f"{upn} {base}/{attachment['id']}: half-written or unreadable")
                link = page.get("@odata.nextLink")
    return problems


async def _run(
    clients: int, duration: float, max_upload: int, seed_value: int, crashes: int, verbose: bool
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="graphattach-load-"))
    server = Server(workdir / "data", free_port())
    server.start()
    totals = Totals()
    rng = random.Random(seed_value)
    schedule = Schedule(duration)
    started = schedule.started
    runners = [Client(n, server, totals, random.Random(rng.random()), max_upload) for n in range(clients)]
    kills_done = schedule.kills_done
    tasks = [asyncio.create_task(c.run(schedule)) for c in runners]
    warm: tuple[int, int] | None = None
    # moments in workload time (the pauses for the checks do not count)
    kill_times = sorted(rng.uniform(duration * 0.05, duration * 0.95) for _ in range(crashes))
    restarts: list[dict[str, Any]] = []
    peak = {"rss": 0, "fds": 0}
    #: (seconds of workload, RSS MB, fds) every ``SAMPLE_EVERY`` seconds: flat or growing.
    series: list[tuple[int, float, int]] = []
    sampling = threading.Event()

    def sampler() -> None:
        # A thread, so that the busy event loop does not skip samples; peaks over the whole run.
        next_sample = 0.0
        while not sampling.wait(0.5):
            rss, fds = server.rss_and_fds()
            peak["rss"] = max(peak["rss"], rss)
            peak["fds"] = max(peak["fds"], fds)
            if schedule.elapsed() >= next_sample and rss:
                series.append((int(schedule.elapsed()), round(rss / 1e6, 1), fds))
                next_sample += SAMPLE_EVERY

    def killer() -> None:
        # A thread, not a task: 64 busy clients starve the event loop, and kills must land during
        # the workload, at their drawn moments.
        try:
            for when in kill_times:
                while schedule.elapsed() < when:
                    time.sleep(0.05)
                killed_at = round(schedule.elapsed(), 1)
                # The clients finish (or lose) the operation they are in, and start no other
                # until the check is done; the kill lands among the operations in flight.
                schedule.pause()
                server.kill()
                restart_began = time.monotonic()
                server.start()
                restarted_s = time.monotonic() - restart_began
                problems = asyncio.run(verify_everything(server, totals, full=False))
                check_s = time.monotonic() - restart_began - restarted_s
                schedule.resume()
                restarts.append(
                    {
                        "killed_at": killed_at,
                        "restart_s": round(restarted_s, 1),
                        "check_s": round(check_s, 1),
                        "problems": problems[:5],
                    }
                )
                totals.errors.extend(problems)
                if verbose:
                    print(
                        f"load: kill {len(restarts)} at {killed_at} s of workload: restarted in {restarted_s:.1f} s, "
                        f"checked in {check_s:.1f} s, {len(problems)} problems",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            kills_done.set()

    sampling_thread = threading.Thread(target=sampler, daemon=True)
    sampling_thread.start()
    try:
        killing = asyncio.create_task(asyncio.to_thread(killer))
        while schedule.running():
            await asyncio.sleep(0.5)
            if warm is None and schedule.elapsed() > min(30.0, duration * 0.1) and server.up:
                warm = server.rss_and_fds()
            elif verbose and int(time.monotonic() - started) % 30 == 0:
                print(
                    f"load: {int(time.monotonic() - started)} s ({int(schedule.elapsed())} s of workload), "
                    f"{totals.requests} requests, "
                    f"{len(totals.errors)} errors, {totals.interrupted} cut by kills, {len(restarts)} kills",
                    file=sys.stderr,
                    flush=True,
                )
        await killing
        await asyncio.gather(*tasks)
        workload_s = schedule.elapsed()
        end = server.rss_and_fds()
        final_problems = await verify_everything(server, totals)
        totals.errors.extend(final_problems)
    finally:
        sampling.set()
        server.stop()
    elapsed = time.monotonic() - started
    warm = warm or end
    result = {
        "seed": seed_value,
        "clients": clients,
        "duration_s": round(elapsed, 1),
        "workload_s": round(workload_s, 1),
        "paused_for_checks_s": round(schedule.paused, 1),
        "kills": len(restarts),
        "requests": totals.requests,
        "requests_per_s": round(totals.requests / elapsed, 1),
        "small_posts": totals.posts,
        "uploads": totals.uploads,
        "downloads_checked": totals.downloads,
        "sends": totals.sends,
        "mb_uploaded": round(totals.bytes_up / 1e6, 1),
        "acknowledged_attachments": len(totals.acknowledged),
        "interrupted_by_kills": totals.interrupted,
        "errors": len(totals.errors),
        "first_errors": totals.errors[:5],
        "rss_mb_after_warmup": round(warm[0] / 1e6, 1),
        "rss_mb_end": round(end[0] / 1e6, 1),
        "rss_mb_peak": round(peak["rss"] / 1e6, 1),
        "fds_peak": peak["fds"],
        "fds_after_warmup": warm[1],
        "fds_end": end[1],
        "rss_series": series,
        "restarts": restarts,
    }
    if not totals.errors:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        result["kept"] = str(workdir)
    return result


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # so that ``finally`` stops the server (``timeout`` sends SIGTERM)


def run_load(
    clients: int, duration: float, max_upload: int, seed_value: int | None, crashes: int, verbose: bool = True
) -> int:
    seed_value = seed_value if seed_value is not None else random.randrange(2**32)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    result = asyncio.run(_run(clients, duration, max_upload, seed_value, crashes, verbose))
    print(json.dumps(result))
    return 0 if result["errors"] == 0 else 1
