"""``graphattach requests``: the journal of a running server in a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from graphattach.testing import ADELE, GraphServer


@pytest.fixture(scope="module")
def server() -> Iterator[GraphServer]:
    with GraphServer() as graph:
        yield graph


def _cli(graph: GraphServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graphattach", "requests", "--graph-url", graph.url, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_lists_filters_and_exports(server: GraphServer, tmp_path: Path) -> None:
    server.reset()
    with server.httpx_client() as client:
        client.get("me/messages")
        client.get("me/messages/AAMkAGI2THVSAAA=")
    done = _cli(server, "--operation", "messages.")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert "GET" in lines[0] and " 200 " in lines[0] and "messages.list" in lines[0] and ADELE in lines[0]
    assert "Mail.Read" in lines[0] and "/v1.0/me/messages" in lines[0]
    assert " 404 " in lines[1] and "messages.get" in lines[1]

    as_json = _cli(server, "--status", "4xx", "--json")
    assert [json.loads(line)["operation"] for line in as_json.stdout.splitlines()] == ["messages.get"]

    har = tmp_path / "out.har"
    assert _cli(server, "--har", str(har)).returncode == 0
    assert json.loads(har.read_text())["log"]["version"] == "1.2"

    report = _cli(server, "--permissions")
    assert "minimal: Mail.Read" in report.stdout

    bad = _cli(server, "--status", "nope")
    assert bad.returncode == 1 and "status must be" in bad.stderr  # the server refused it


def test_follow_prints_new_requests_as_they_come(server: GraphServer) -> None:
    server.reset()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "graphattach",
            "requests",
            "--follow",
            "--interval",
            "0.1",
            "--graph-url",
            server.url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    seen: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        token = server.token()
        for _ in range(3):
            httpx.get(f"{server.url}/me/mailFolders", headers={"Authorization": f"Bearer {token}"})
        deadline = time.monotonic() + 60
        while sum("mailFolders.list" in line for line in seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum("mailFolders.list" in line for line in list(seen)) == 3
    finally:
        process.terminate()
        process.wait(30)
        reader.join(30)
