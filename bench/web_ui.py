"""The web UI's figures (issue targets in brackets): ``python -m bench.web_ui [--messages 10000]``.

- weight of the first page with its CSS, script and icon [≤ 150 KB];
- time to the first page of a mailbox of N messages, over loopback, median of 30 [≤ 100 ms];
- the same with a filter (a search that scans the newest 5,000);
- live updates per second received by an ``/uploads`` listener during a paced upload [≥ 2/s];
- a 100 MB upload through graphattach's client, watched (a listener open) vs unwatched, median
  of 5 interleaved runs each [watched ≤ 5 % slower], with the server's CPU seconds per upload
  (steadier than wall time on a shared machine);
- what one open ``/uploads`` page costs the server while nothing happens: CPU per second with
  the list full (50 sessions: in flight, completed, cancelled), against the same 10 s unwatched.

A printed benchmark, not a test: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.ga import USER, GraphServer
from graphattach.client import Client, GraphattachTokenProvider, Message
from graphattach.composition import context_for
from graphattach.services import mail
from graphattach.services.users import find_user
from graphattach.settings import Settings

MiB = 1024 * 1024


async def fill(data_dir: Path, count: int) -> None:
    """``count`` messages in the user's Inbox, one in ten with a small attachment, written
    through the services layer before the server starts."""
    async with context_for(Settings(data_dir=data_dir)) as ctx:
        user = await find_user(ctx, USER)
        assert user is not None
        inbox = await mail.well_known(ctx, user, "inbox")
        for index in range(count):
            attachments = None
            if index % 10 == 0:
                attachments = [
                    {
                        "@odata.type": "#microsoft.graph.fileAttachment",
                        "name": f"n{index}.txt",
                        "contentBytes": "aGVsbG8=",
                    }
                ]
            await mail.create_message(
                ctx,
                user,
                inbox,
                {
                    "subject": f"Message {index:05d} about invoice {index * 7 % 1000}",
                    "body": {"contentType": "text", "content": f"Body of message {index}."},
                    "from": {"emailAddress": {"name": "Megan Bowen", "address": "megan@contoso.onmicrosoft.com"}},
                    "toRecipients": [{"emailAddress": {"address": USER}}],
                    "isDraft": False,
                },
                attachments,
            )


def timed(http: httpx.Client, url: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        response = http.get(url)
        out.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
    return out


def server_ms(http: httpx.Client, url: str, runs: int) -> list[float]:
    """The server's own time for the last ``runs`` GETs of ``url``, from the request journal (from
    the request's arrival to its last byte sent; no client, no loopback)."""
    path, _, query = url.partition("?")
    listed = http.get("/_graphattach/requests", params={"method": "GET", "path": path, "limit": 4 * runs}).json()
    mine = [e["durationMs"] for e in listed["value"] if e["path"] == path and e["query"] == query]
    return mine[-runs:]


class Listener(threading.Thread):
    """Reads ``/uploads/live`` and counts the events it receives; ``close`` hangs up at once (the
    server stops polling for it)."""

    def __init__(self, root: str) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.events: list[float] = []
        self.stop = threading.Event()
        self.http = httpx.Client(timeout=None)

    def run(self) -> None:
        try:
            with self.http.stream("GET", f"{self.root}/uploads/live") as response:
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        self.events.append(time.monotonic())
                    if self.stop.is_set():
                        return
        except (httpx.HTTPError, RuntimeError, OSError):
            if not self.stop.is_set():
                raise

    def close(self) -> None:
        self.stop.set()
        self.http.close()
        self.join(5)


def paced_upload(root: str, size: int, piece: int, pause: float) -> tuple[float, float]:
    """An upload session fed ``piece`` bytes every ``pause`` seconds; (start, end) monotonic."""
    token = httpx.post(f"{root}/_graphattach/token", json={"user": USER}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    draft = httpx.post(f"{root}/v1.0/me/messages", json={"subject": "paced"}, headers=headers).json()
    session = httpx.post(
        f"{root}/v1.0/me/messages/{draft['id']}/attachments/createUploadSession",
        json={"AttachmentItem": {"attachmentType": "file", "name": "paced.bin", "size": size}},
        headers=headers,
    ).json()
    data = os.urandom(piece)
    start = time.monotonic()
    with httpx.Client(timeout=60) as http:
        for offset in range(0, size, piece):
            chunk = data[: min(piece, size - offset)]
            answer = http.put(
                session["uploadUrl"],
                content=chunk,
                headers={"Content-Range": f"bytes {offset}-{offset + len(chunk) - 1}/{size}"},
            )
            assert answer.status_code in (200, 201), answer.text
            time.sleep(pause)
    return start, time.monotonic()


def ended_sessions(root: str, count: int) -> None:
    """``count`` upload sessions cancelled after their first range (listed as cancelled)."""
    token = httpx.post(f"{root}/_graphattach/token", json={"user": USER}).json()["access_token"]
    with httpx.Client(base_url=root, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        draft = http.post("/v1.0/me/messages", json={"subject": "cancelled"}).json()
        for index in range(count):
            session = http.post(
                f"/v1.0/me/messages/{draft['id']}/attachments/createUploadSession",
                json={"AttachmentItem": {"attachmentType": "file", "name": f"gone-{index}.bin", "size": 4 * MiB}},
            ).json()
            url = session["uploadUrl"]
            put = httpx.put(url, content=b"x" * MiB, headers={"Content-Range": f"bytes 0-{MiB - 1}/{4 * MiB}"})
            assert put.status_code == 200, put.text
            assert httpx.delete(url).status_code == 204


def client_upload(root: str, path: Path) -> float:
    with Client(f"{root}/v1.0", GraphattachTokenProvider(root, USER)) as client:
        draft = client.create_draft(subject="timed")
        start = time.perf_counter()
        client.attach(Message(draft.id), path)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--upload-mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        began = time.perf_counter()
        asyncio.run(fill(data, args.messages))
        print(f"filled {args.messages} messages in {time.perf_counter() - began:.1f} s")
        server = GraphServer(data, Path(tmp) / "server.log").start_and_wait()
        try:
            root = server.root
            with httpx.Client(base_url=root, timeout=60) as http:
                weight = {
                    p: len(http.get(p).content) for p in ("/", "/static/app.css", "/static/app.js", "/static/icon.svg")
                }
                print(
                    f"first page: {sum(weight.values()) / 1024:.1f} KB ({', '.join(f'{k} {v}' for k, v in weight.items())})"
                )
                mailbox = f"/mail/{USER}"
                print(f"mailbox page of {args.messages}: {len(http.get(mailbox).content) / 1024:.1f} KB of HTML")
                cpu_before = server.procs.cpu()
                plain = timed(http, mailbox, 30)
                cpu_per_get = (server.procs.cpu() - cpu_before) / 30
                inside = server_ms(http, mailbox, 30)
                print(
                    f"mailbox first page: median {statistics.median(plain) * 1000:.1f} ms, max {max(plain) * 1000:.1f} ms;"
                    f" server time median {statistics.median(inside):.1f} ms, max {max(inside):.1f} ms;"
                    f" server CPU {cpu_per_get * 1000:.1f} ms a page"
                )
                filtered = f"{mailbox}?q=invoice+999"
                found = timed(http, filtered, 10)
                print(
                    f"mailbox filtered (scans the newest 5,000): median {statistics.median(found) * 1000:.1f} ms;"
                    f" server time median {statistics.median(server_ms(http, filtered, 10)):.1f} ms"
                )
                last_page = f"{mailbox}?skip={args.messages - 50}"
                older = timed(http, last_page, 10)
                print(
                    f"mailbox last page (skip {args.messages - 50}): median {statistics.median(older) * 1000:.1f} ms;"
                    f" server time median {statistics.median(server_ms(http, last_page, 10)):.1f} ms"
                )
                tenant = timed(http, "/", 10)
                print(f"tenant page: median {statistics.median(tenant) * 1000:.1f} ms")

            listener = Listener(root)
            listener.start()
            time.sleep(1.0)
            start, end = paced_upload(root, 40 * MiB, MiB, 0.1)
            time.sleep(0.5)
            listener.close()
            during = [t for t in listener.events if start <= t <= end]
            print(f"live updates: {len(during) / (end - start):.1f}/s during a {end - start:.1f} s paced upload")

            big = Path(tmp) / "big.bin"
            big.write_bytes(os.urandom(args.upload_mb * MiB))
            procs = server.procs
            unwatched: list[float] = []
            watched: list[float] = []
            cpu_unwatched: list[float] = []
            cpu_watched: list[float] = []
            for _ in range(args.runs):
                before = procs.cpu()
                unwatched.append(client_upload(root, big))
                cpu_unwatched.append(procs.cpu() - before)
                watcher = Listener(root)
                watcher.start()
                time.sleep(0.3)
                before = procs.cpu()
                watched.append(client_upload(root, big))
                cpu_watched.append(procs.cpu() - before)
                watcher.close()
            u, w = statistics.median(unwatched), statistics.median(watched)
            print(
                f"{args.upload_mb} MB upload: unwatched median {u:.2f} s, watched median {w:.2f} s"
                f" ({(w / u - 1) * 100:+.1f} %); runs {[round(x, 2) for x in unwatched]} vs {[round(x, 2) for x in watched]}"
            )
            cu, cw = statistics.median(cpu_unwatched), statistics.median(cpu_watched)
            print(
                f"{args.upload_mb} MB upload, server CPU: unwatched median {cu:.2f} s, watched median {cw:.2f} s"
                f" ({(cw / cu - 1) * 100:+.1f} %)"
            )

            ended_sessions(root, 50)
            listed = len(httpx.get(f"{root}/uploads").text.split("<tr data-id=")) - 1
            quiet = procs.cpu()
            time.sleep(10)
            quiet = procs.cpu() - quiet
            watcher = Listener(root)
            watcher.start()
            time.sleep(1.0)
            busy = procs.cpu()
            time.sleep(10)
            busy = procs.cpu() - busy
            watcher.close()
            print(
                f"an open /uploads page, nothing moving ({listed} sessions listed): server CPU"
                f" {busy * 100:.1f} ms/s watched vs {quiet * 100:.1f} ms/s unwatched"
                f" ({(busy - quiet) * 100:.1f} ms/s: {(busy - quiet) * 10:.1f} % of a core)"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
