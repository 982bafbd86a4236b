"""``graphattach notifications listen``: answers the validation handshake, prints each notification
POST as one JSON line, and receives what a real server sends."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.helpers import free_port, running_server


def test_listen_prints_what_a_server_sends(tmp_path: Path) -> None:
    port = free_port()
    listener = subprocess.Popen(
        [sys.executable, "-m", "graphattach", "notifications", "listen", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None
        assert f"http://127.0.0.1:{port}/" in listener.stdout.readline()
        echoed = httpx.post(f"http://127.0.0.1:{port}/?validationToken=a%20b%2Bc", content=b"")
        assert echoed.status_code == 200 and echoed.text == "a b+c"
        assert echoed.headers["content-type"].startswith("text/plain")
        with running_server(tmp_path / "data") as server, httpx.Client(timeout=30) as http:
            token = http.post(f"{server.root}/_graphattach/token", json={"user": "adele@contoso.onmicrosoft.com"})
            auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
            expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            sub = http.post(
                f"{server.root}/v1.0/subscriptions",
                headers=auth,
                json={
                    "changeType": "created",
                    "notificationUrl": f"http://127.0.0.1:{port}/",
                    "resource": "me/messages",
                    "expirationDateTime": expires,
                },
            )
            assert sub.status_code == 201, sub.text
            draft = http.post(f"{server.root}/v1.0/me/messages", headers=auth, json={"subject": "listen"}).json()
            line = listener.stdout.readline()
            printed = json.loads(line)
            assert printed["value"][0]["resourceData"]["id"] == draft["id"]
            assert printed["value"][0]["subscriptionId"] == sub.json()["id"]
    finally:
        listener.terminate()
        listener.wait(10)
