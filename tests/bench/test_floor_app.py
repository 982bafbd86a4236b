"""The floor app (bench/floor_app.py): what its POST keeps and writes, and its threaded PUT."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from bench import floor_app


def _body(raw: bytes) -> bytes:
    return orjson.dumps(
        {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": "a.bin",
            "contentBytes": base64.b64encode(raw).decode(),
        }
    )


@pytest.fixture
def floor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(floor_app, "_DIR", tmp_path)
    monkeypatch.setattr(floor_app, "_state", {})
    floor_app._open()
    yield tmp_path
    floor_app._state["db_thread"].shutdown()
    floor_app._state["db"].close()
    floor_app._state["lazy_db"].close()


def _post_all(bodies: list[bytes], query: str) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=floor_app.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://floor") as client:
            return [await client.post(f"/post{query}", content=body) for body in bodies]

    return asyncio.run(run())


def _posted_files(directory: Path) -> list[bytes]:
    return sorted(path.read_bytes() for path in directory.glob("post-*"))


def test_the_no_sync_floor_keeps_bytes_up_to_the_memory_limit_then_writes_files(
    floor: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As graphattach's in-memory store: kept in memory until the cap is reached, spilled past it."""
    monkeypatch.setattr(floor_app, "MEMORY_LIMIT", 2500)
    raws = [bytes([i]) * 1000 for i in range(5)]
    answers = _post_all([_body(raw) for raw in raws], "?no-sync")
    assert [a.status_code for a in answers] == [201] * 5
    assert [a.json()["contentBytes"] for a in answers] == [base64.b64encode(raw).decode() for raw in raws]
    # 0, 1000 and 2000 bytes were kept when the first three came: under the cap, so they stay.
    assert sorted(floor_app._state["kept"].values()) == raws[:3]
    assert _posted_files(floor) == raws[3:]


def test_the_durable_floor_writes_every_post_to_a_file(floor: Path) -> None:
    raws = [bytes([i]) * 100 for i in range(3)]
    assert [a.status_code for a in _post_all([_body(raw) for raw in raws], "")] == [201] * 3
    assert "kept" not in floor_app._state
    assert _posted_files(floor) == raws
    assert floor_app._state["db"].execute("SELECT count(*) FROM files").fetchone()[0] == 3


def test_a_threaded_put_appends_syncs_and_commits_as_the_inline_one_does(floor: Path) -> None:
    """``?threaded`` (the floor's uploads at once on disk) moves the sync and commit off the loop."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=floor_app.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://floor") as client:
            return [await client.put("/up?threaded", content=piece) for piece in (b"a" * 10, b"b" * 5)]

    answers = asyncio.run(run())
    assert [a.json() for a in answers] == [{"nextExpectedRanges": ["10"]}, {"nextExpectedRanges": ["15"]}]
    assert _put_files(floor) == [b"a" * 10 + b"b" * 5]
    assert floor_app._state["lazy_db"].execute("SELECT received FROM progress").fetchone()[0] == 15


def _put_files(directory: Path) -> list[bytes]:
    return sorted(path.read_bytes() for path in directory.glob("put-*"))
