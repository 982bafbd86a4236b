"""Change-notification figures against a real ``graphattach serve`` (embedded SQLite + files).

    .venv/bin/python -m bench.notifications [--messages 200] [--posts 300] [--runs 3]

1. latency: a receiver subscribed to Adele's messages; each draft POST is timed from the moment
   its 201 arrived at the client (the change is committed and its notification queued by then) to
   the moment the notification POST arrived at the receiver (the receiver's clock is the client's);
2. attachment POSTs per second (1 KiB file attachments, one client, sequential) with no
   subscriptions, then with 1,000 subscriptions on another mailbox, then with 1,000 on the same
   mailbox's events (which the message POSTs do not match: the server reads them and matches none).

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


def latency(http: httpx.Client, root: str, auth: dict[str, str], messages: int) -> list[float]:
    with Receiver() as receiver:
        sub = subscribe(http, root, auth, receiver.url, "me/messages")
        figures = []
        for n in range(messages):
            response = http.post(f"{root}/v1.0/me/messages", json={"subject": f"latency {n}"}, headers=auth)
            answered = time.time()
            item = response.json()["id"]
            found = receiver.wait_for(lambda x, item=item: (x.get("resourceData") or {}).get("id") == item)
            arrived = next(
                p.at
                for p in receiver.received
                if isinstance(p.body, dict)
                and any(v is not None and v.get("resourceData", {}).get("id") == item for v in p.body["value"])
            )
            assert found
            figures.append((arrived - answered) * 1000)
        http.delete(f"{root}/v1.0/subscriptions/{sub}", headers=auth)
    return figures


def attachment_rate(http: httpx.Client, root: str, auth: dict[str, str], posts: int) -> float:
    draft = http.post(f"{root}/v1.0/me/messages", json={"subject": "rate"}, headers=auth).json()["id"]
    started = time.perf_counter()
    for n in range(posts):
        if n and n % 200 == 0:
            draft = http.post(f"{root}/v1.0/me/messages", json={"subject": "rate"}, headers=auth).json()["id"]
        response = http.post(f"{root}/v1.0/me/messages/{draft}/attachments", json=ATTACHMENT, headers=auth)
        assert response.status_code == 201, response.text
    return posts / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="graphattach-bench-notify-") as scratch:
        server = ServerProcess(Path(scratch) / "data").start()
        try:
            with httpx.Client(timeout=60) as http, Receiver() as sink:
                root = server.root
                adele = {"Authorization": f"Bearer {token(http, root, ADELE)}"}
                megan = {"Authorization": f"Bearer {token(http, root, MEGAN)}"}
                lat = latency(http, root, adele, args.messages)
                print(f"latency median {statistics.median(lat):.1f} ms", file=sys.stderr, flush=True)
                rates: dict[str, list[float]] = {"none": [], "other mailbox": [], "same mailbox": []}
                for _ in range(args.runs):
                    rates["none"].append(attachment_rate(http, root, adele, args.posts))
                print(f"no subscriptions: {rates['none']}", file=sys.stderr, flush=True)
                for _ in range(1000):
                    subscribe(http, root, megan, sink.url, "me/messages")
                for _ in range(args.runs):
                    rates["other mailbox"].append(attachment_rate(http, root, adele, args.posts))
                print(f"other mailbox: {rates['other mailbox']}", file=sys.stderr, flush=True)
                for _ in range(1000):
                    subscribe(http, root, adele, sink.url, "me/events")
                for _ in range(args.runs):
                    rates["same mailbox"].append(attachment_rate(http, root, adele, args.posts))
        finally:
            server.stop()
    cores = os.cpu_count()
    print(
        f"## Change notifications ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {cores} cores, load {os.getloadavg()[0]:.1f})"
    )
    print()
    print("| figure | median | min | max |")
    print("|---|---|---|---|")
    print(
        f"| notification after the 201 (ms, {len(lat)} drafts) | {statistics.median(lat):.1f} | {min(lat):.1f} | {max(lat):.1f} |"
    )
    base = statistics.median(rates["none"])
    for name, values in rates.items():
        med = statistics.median(values)
        print(
            f"| attachment POST/s, 1,000 subscriptions: {name} | {med:.0f} ({med / base - 1:+.1%}) | {min(values):.0f} | {max(values):.0f} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"latency_ms": lat, "attachment_posts_per_s": rates}, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
