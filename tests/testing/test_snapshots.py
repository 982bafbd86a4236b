"""Snapshots: export everything, import it elsewhere (another store kind), all or nothing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from graphattach.testing import ADELE, ALEX, GraphServer, GraphServerError

BIG = 6 * 1024 * 1024 + 123  # spans several 1 MiB chunks, and an upload session


def _fill(graph: GraphServer) -> dict[str, str]:
    """A mailbox with mail, a folder, an event, an attachment of each size and an upload in flight."""
    graph.add_user("zoe@contoso.onmicrosoft.com", "Zoe")
    graph.send_mail(sender=ALEX, to=ADELE, subject="small", attachments={"a.txt": b"hello"})
    payload = os.urandom(BIG)
    with graph.httpx_client() as client:
        client.post("me/mailFolders", json={"displayName": "Projects"})
        draft = client.post("me/messages", json={"subject": "big"}).json()
        session = client.post(
            f"me/messages/{draft['id']}/attachments/createUploadSession",
            json={"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": BIG}},
        ).json()
        for start in range(0, BIG, 4 * 1024 * 1024):
            end = min(start + 4 * 1024 * 1024, BIG) - 1
            put = httpx.put(
                session["uploadUrl"],
                content=payload[start : end + 1],
                headers={"Content-Range": f"bytes {start}-{end}/{BIG}"},
            )
            assert put.status_code in (200, 201), put.text
        open_session = client.post(
            f"me/messages/{draft['id']}/attachments/createUploadSession",
            json={"AttachmentItem": {"attachmentType": "file", "name": "half.bin", "size": 3_000_000}},
        ).json()
        assert (
            httpx.put(
                open_session["uploadUrl"], content=b"h" * 1_000_000, headers={"Content-Range": "bytes 0-999999/3000000"}
            ).status_code
            == 200
        )
        client.post(
            "me/events",
            json={
                "subject": "Review",
                "start": {"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"},
            },
        )
    return {"big": hashlib.sha256(payload).hexdigest()}


def _state(graph: GraphServer) -> dict[str, object]:
    return {
        "users": sorted((u.upn, u.id) for u in graph.users()),
        "mail": {
            u: [(m.id, m.folder, m.subject, [(a.name, a.sha256) for a in m.attachments]) for m in graph.messages(u)]
            for u in (ADELE, ALEX)
        },
        "events": [(e.id, e.subject) for e in graph.events()],
    }


def test_round_trip_between_memory_and_sqlite(tmp_path: Path) -> None:
    snapshot = tmp_path / "mailbox.jsonl"
    with GraphServer() as source:
        sums = _fill(source)
        before = _state(source)
        source.export_snapshot(snapshot)
    assert snapshot.stat().st_size > BIG  # the bytes are in it
    with GraphServer(data_dir=tmp_path / "data") as target:
        counts = target.import_snapshot(snapshot)
        assert counts["users"] == 4 and counts["sessions"] >= 1
        assert _state(target) == before
        (big,) = [m for m in target.messages(ADELE) if m.subject == "big"]
        assert big.attachment("big.bin").sha256 == sums["big"]
        # like a reset, an import empties the journal (its own request included)
        assert target.requests_matching(operation="admin.snapshotImport") == []
        again = tmp_path / "again.jsonl"
        target.export_snapshot(again)
    # exporting what was imported gives the same records (the header's time aside)
    first, second = snapshot.read_bytes().split(b"\n"), again.read_bytes().split(b"\n")
    assert len(first) == len(second)
    assert sorted(first[1:-2]) == sorted(second[1:-2])


def test_refused_files_change_nothing(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    with GraphServer() as source:
        _fill(source)
        source.export_snapshot(good)
    lines = good.read_bytes().split(b"\n")
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_bytes(b"\n".join(lines[: len(lines) // 2]))
    corrupt = tmp_path / "corrupt.jsonl"
    corrupt.write_bytes(good.read_bytes().replace(b'"subject":"small"', b'"subject":"smell"'))
    newer = tmp_path / "newer.jsonl"
    header = json.loads(lines[0])
    header["version"] = 99
    newer.write_bytes(json.dumps(header).encode() + b"\n" + b"\n".join(lines[1:]))
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"not a snapshot\n")
    with GraphServer() as target:
        target.send_mail(subject="keep me")
        before = _state(target)
        for path, why in [
            (truncated, "truncated"),
            (corrupt, "corrupt"),
            (newer, "newer than this graphattach reads"),
            (garbage, "line 1"),
        ]:
            with pytest.raises(GraphServerError) as refused:
                target.import_snapshot(path)
            assert refused.value.status == 400 and why in str(refused.value), str(refused.value)
            assert "nothing was changed" in str(refused.value)
            assert _state(target) == before


def test_snapshot_commands(tmp_path: Path) -> None:
    path = tmp_path / "cli.jsonl"
    with GraphServer() as source, GraphServer() as target:
        source.send_mail(subject="via the CLI", attachments={"x.txt": b"x"})
        done = subprocess.run(
            [sys.executable, "-m", "graphattach", "snapshot", "export", str(path), "--graph-url", source.url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        done = subprocess.run(
            [sys.executable, "-m", "graphattach", "snapshot", "import", str(path), "--graph-url", target.url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "restored" in done.stdout
        assert [m.subject for m in target.messages(ADELE)] == ["via the CLI"]
        path.write_bytes(path.read_bytes()[:-20])
        done = subprocess.run(
            [sys.executable, "-m", "graphattach", "snapshot", "import", str(path), "--graph-url", target.url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1 and "refused" in done.stderr


@pytest.mark.slow
def test_a_100_mb_mailbox_round_trips_in_bounded_memory(tmp_path: Path) -> None:
    import tracemalloc

    size = 100 * 1000 * 1000
    digest = hashlib.sha256()
    with GraphServer(data_dir=tmp_path / "source") as source, GraphServer(data_dir=tmp_path / "target") as target:
        with source.httpx_client() as client:
            draft = client.post("me/messages", json={"subject": "100 MB"}).json()
            session = client.post(
                f"me/messages/{draft['id']}/attachments/createUploadSession",
                json={"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": size}},
            ).json()
        with httpx.Client(timeout=120) as http:
            for start in range(0, size, 4 * 1024 * 1024):
                end = min(start + 4 * 1024 * 1024, size) - 1
                block = os.urandom(end - start + 1)
                digest.update(block)
                put = http.put(
                    session["uploadUrl"], content=block, headers={"Content-Range": f"bytes {start}-{end}/{size}"}
                )
                assert put.status_code in (200, 201), put.text
        snapshot = tmp_path / "big.jsonl"
        tracemalloc.start()
        try:
            source.export_snapshot(snapshot)
            target.import_snapshot(snapshot)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # both servers and the client run in this process: none of them held the 100 MB
        assert peak < 40 * 1024 * 1024, peak
        (message,) = target.messages(ADELE, folder="drafts")
        assert message.attachment("big.bin").sha256 == digest.hexdigest()


def test_round_trip_through_postgresql_and_s3(tmp_path: Path, pg_url: str, s3_url: str) -> None:
    first, second = tmp_path / "from-memory.jsonl", tmp_path / "from-postgres.jsonl"
    with GraphServer() as source:
        sums = _fill(source)
        before = _state(source)
        source.export_snapshot(first)
    with GraphServer(store=pg_url, blobs=s3_url) as scaled:
        assert scaled.info()["store"].startswith("postgresql://")
        scaled.import_snapshot(first)
        assert _state(scaled) == before
        scaled.export_snapshot(second)
    with GraphServer(data_dir=tmp_path / "data") as embedded:
        embedded.import_snapshot(second)
        assert _state(embedded) == before
        (big,) = [m for m in embedded.messages(ADELE) if m.subject == "big"]
        assert big.attachment("big.bin").sha256 == sums["big"]
