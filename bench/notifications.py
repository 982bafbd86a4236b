"""Change-notification figures against real ``graphattach serve`` processes (embedded SQLite + files).

    .venv/bin/python -m bench.notifications [--messages 200] [--posts 600] [--warmup 600]

1. latency: a receiver subscribed to Adele's messages; for each draft POST, the time from the
   moment the request left the client (before the server committed) and from the moment its 201
   arrived (after), to the moment the notification POST arrived at the receiver (all on the
   client's clock: the receiver runs in this process);
2. the cost of an attachment POST (1 KiB file attachment, one client, sequential) on three
   servers started alike: ``none`` (no subscription), ``other mailbox`` (1,000 subscriptions on
   Megan's messages) and ``same mailbox`` (1,000 on Adele's events, which a message change does
   not match: the server looks at them and queues nothing), each after ``--warmup`` untimed
   attachment POSTs. The servers take turns POST by POST (the order rotating), ``--posts`` each,
   so that the drift of a shared machine hits all three alike; each figure is the median time of
   a POST, and the ratios are to ``none`` in the same run.

Prints a Markdown table; ``--json FILE`` also writes the raw figures.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from tests.helpers import ADELE, MEGAN, ServerProcess

from graphattach.testing.receiver import Receiver

ATTACHMENT = {
    "@odata.type": "#microsoft.graph.fileAttachment",
    "name": "one-kib.bin",
    "contentBytes": base64.b64encode(os.urandom(1024)).decode(),
}
#: The most subscriptions one mailbox may have (Outlook change notifications overview).
SUBSCRIPTIONS = 1000


def token(http: httpx.Client, root: str, user: str) -> str:
    response = http.post(f"{root}/_graphattach/token", json={"user": user, "lifetime": 36000})
    response.raise_for_status()
    return str(response.json()["access_token"])


def subscribe(http: httpx.Client, root: str, auth: dict[str, str], url: str, resource: str) -> str:
    expires = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "changeType": "created,updated",
        "notificationUrl": url,
        "resource": resource,
        "expirationDateTime": expires,
    }
    response = http.post(f"{root}/v1.0/subscriptions", json=body, headers=auth)
    response.raise_for_status()
    return str(response.json()["id"])


def latency(http: httpx.Client, root: str, auth: dict[str, str], messages: int) -> tuple[list[float], list[float]]:
    """(request sent → notification arrived, 201 arrived → notification arrived), in ms."""
    from_request, from_answer = [], []
    with Receiver() as receiver:
        sub = subscribe(http, root, auth, receiver.url, "me/messages")
        for n in range(messages):
            sent = time.time()
            response = http.post(f"{root}/v1.0/me/messages", json={"subject": f"latency {n}"}, headers=auth)
            answered = time.time()
            item = response.json()["id"]
            receiver.wait_for(lambda x, item=item: (x.get("resourceData") or {}).get("id") == item)
            arrived = next(
                p.at
                for p in receiver.received
                if isinstance(p.body, dict)
                and any((v.get("resourceData") or {}).get("id") == item for v in p.body["value"])
            )
            from_request.append((arrived - sent) * 1000)
            from_answer.append((arrived - answered) * 1000)
        http.delete(f"{root}/v1.0/subscriptions/{sub}", headers=auth)
    return from_request, from_answer


class Target:
    """One server and Adele's draft the attachment POSTs go to."""

    def __init__(self, name: str, server: ServerProcess, http: httpx.Client) -> None:
        self.name, self.server, self.http = name, server, http
        self.adele = {"Authorization": f"Bearer {token(http, server.root, ADELE)}"}
        self.megan = {"Authorization": f"Bearer {token(http, server.root, MEGAN)}"}
        self.posted = 0
        self.draft = ""
        self.post_ms: list[float] = []

    def post_attachment(self) -> float:
        """One attachment POST; its time in ms (a new draft now and then, untimed: far from the
        limit of 150 attachments)."""
        if self.posted % 100 == 0:
            self.draft = self._new_draft()
        started = time.perf_counter()
        response = self.http.post(
            f"{self.server.root}/v1.0/me/messages/{self.draft}/attachments", json=ATTACHMENT, headers=self.adele
        )
        spent = (time.perf_counter() - started) * 1000
        assert response.status_code == 201, response.text
        self.posted += 1
        return spent

    def _new_draft(self) -> str:
        response = self.http.post(f"{self.server.root}/v1.0/me/messages", json={"subject": "rate"}, headers=self.adele)
        return str(response.json()["id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--posts", type=int, default=600, help="timed attachment POSTs per server")
    parser.add_argument("--warmup", type=int, default=600, help="untimed attachment POSTs per server first")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="graphattach-bench-notify-") as scratch:
        servers = [ServerProcess(Path(scratch) / name / "data") for name in ("none", "other", "same")]
        for server in servers:
            server.data_dir.parent.mkdir(parents=True)
            server.start()
        try:
            with httpx.Client(timeout=60) as http, Receiver() as sink:
                targets = [
                    Target(name, server, http)
                    for name, server in zip(("none", "other mailbox", "same mailbox"), servers, strict=True)
                ]
                none, other, same = targets
                from_request, from_answer = (
                    latency(http, none.server.root, none.adele, args.messages) if args.messages else ([0.0], [0.0])
                )
                print(f"latency: median {statistics.median(from_request):.1f} ms", file=sys.stderr, flush=True)
                # The same history of writes on every server first: a young SQLite file (its WAL
                # not yet grown to the checkpoint size, so each commit extends it) made POSTs up
                # to twice slower than an older one with the same records.
                for target in targets:
                    for _ in range(args.warmup):
                        target.post_attachment()
                started = time.perf_counter()
                for n in range(SUBSCRIPTIONS):
                    subscribe(http, other.server.root, other.megan, sink.url, "me/messages")
                    subscribe(http, same.server.root, same.adele, sink.url, "me/events")
                    if n % 100 == 99:
                        print(
                            f"{n + 1} subscriptions each, {time.perf_counter() - started:.0f} s",
                            file=sys.stderr,
                            flush=True,
                        )
                for n in range(args.posts):  # one POST each in turn, the order rotating
                    for target in targets[n % 3 :] + targets[: n % 3]:
                        target.post_ms.append(target.post_attachment())
                    if n % 100 == 99:
                        medians = ", ".join(f"{t.name} {statistics.median(t.post_ms):.2f} ms" for t in targets)
                        print(f"{n + 1} POSTs each: {medians}", file=sys.stderr, flush=True)
                delivered = len(sink.received)
        finally:
            for server in servers:
                server.stop()
    cores = os.cpu_count()
    print(
        f"## Change notifications ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {cores} cores, load {os.getloadavg()[0]:.1f})"
    )
    print()
    print("| figure | median | min | max |")
    print("|---|---|---|---|")
    for label, values in (
        ("request sent → notification arrived (ms; an upper bound of commit → notification out)", from_request),
        ("201 arrived → notification arrived (ms)", from_answer),
    ):
        print(
            f"| {label}, {len(values)} drafts | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |"
        )
    base = statistics.median(none.post_ms)
    for target in targets:
        med = statistics.median(target.post_ms)
        p90 = statistics.quantiles(target.post_ms, n=10)[-1]
        print(
            f"| attachment POST (ms), {SUBSCRIPTIONS:,} subscriptions: {target.name}"
            f" | {med:.2f} (× {med / base:.3f}) | {min(target.post_ms):.2f} | {max(target.post_ms):.2f} (p90 {p90:.2f}) |"
        )
    print()
    print(
        f"{args.posts} POSTs per server, one each in turn; ratios of medians to `none` in this run;"
        f" notifications the unmatched subscriptions caused: {delivered}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "latency_from_request_ms": from_request,
                    "latency_from_answer_ms": from_answer,
                    "attachment_post_ms": {t.name: t.post_ms for t in targets},
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
