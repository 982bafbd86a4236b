"""The web UI's figures (issue targets in brackets): ``python -m bench.web_ui [--messages 10000]``.

- weight of the first page with its CSS, script and icon [≤ 150 KB];
- time to the first page of a mailbox of N messages, over loopback, median of 30 [≤ 100 ms];
- the same with a filter (a search that scans the newest 5,000);
- live updates per second received by an ``/uploads`` listener during a paced upload [≥ 2/s];
- a 100 MB upload through graphattach's client, watched (a listener open) vs unwatched, median
  of 5 interleaved runs each [watched ≤ 5 % slower].

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


class Listener(threading.Thread):
    """Reads ``/uploads/live`` and counts the events it receives."""

    def __init__(self, root: str) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.events: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=None) as http, http.stream("GET", f"{self.root}/uploads/live") as response:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    self.events.append(time.monotonic())
                if self.stop.is_set():
                    return


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
                plain = timed(http, mailbox, 30)
                print(
                    f"mailbox first page: median {statistics.median(plain) * 1000:.1f} ms, max {max(plain) * 1000:.1f} ms"
                )
                found = timed(http, f"{mailbox}?q=invoice+999", 10)
                print(f"mailbox filtered (scans the newest 5,000): median {statistics.median(found) * 1000:.1f} ms")
                older = timed(http, f"{mailbox}?skip={args.messages - 50}", 10)
                print(f"mailbox last page (skip {args.messages - 50}): median {statistics.median(older) * 1000:.1f} ms")
                tenant = timed(http, "/", 10)
                print(f"tenant page: median {statistics.median(tenant) * 1000:.1f} ms")

            listener = Listener(root)
            listener.start()
            time.sleep(1.0)
            start, end = paced_upload(root, 40 * MiB, MiB, 0.1)
            time.sleep(0.5)
            listener.stop.set()
            during = [t for t in listener.events if start <= t <= end]
            print(f"live updates: {len(during) / (end - start):.1f}/s during a {end - start:.1f} s paced upload")

            big = Path(tmp) / "big.bin"
            big.write_bytes(os.urandom(args.upload_mb * MiB))
            unwatched: list[float] = []
            watched: list[float] = []
            for _ in range(args.runs):
                unwatched.append(client_upload(root, big))
                watcher = Listener(root)
                watcher.start()
                time.sleep(0.3)
                watched.append(client_upload(root, big))
                watcher.stop.set()
            u, w = statistics.median(unwatched), statistics.median(watched)
            print(
                f"{args.upload_mb} MB upload: unwatched median {u:.2f} s, watched median {w:.2f} s"
                f" ({(w / u - 1) * 100:+.1f} %); runs {[round(x, 2) for x in unwatched]} vs {[round(x, 2) for x in watched]}"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
