"""``--in-memory`` with ``--memory-limit``: attachment bytes past the limit go to a temporary
directory (removed when the server stops), and a spill that fails answers 507."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest

from graphattach.settings import Settings
from graphattach.storage.memory import SPILL_PREFIX, MemoryBlobStore
from tests.conftest import inprocess
from tests.helpers import ADELE, Graph, running_server
from tests.upload_helpers import MiB, new_item, payload, put_range, upload_all, upload_url

LIMIT = 4 * MiB
SIZE = 3 * MiB + 12_345
CHUNK = 10 * 320 * 1024


def _spilled_bytes(tmp: Path) -> int:
    return sum(p.stat().st_size for d in tmp.glob(f"{SPILL_PREFIX}*") for p in (d / "blobs").rglob("*") if p.is_file())


async def test_a_server_keeps_at_most_its_memory_limit_of_attachment_bytes_in_memory(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    files = [payload(SIZE, seed=i) for i in range(4)]  # 12.05 MiB through a 4 MiB limit
    with running_server(tmp_path / "data", "--in-memory", "--memory-limit", "4MB", env={"TMPDIR": str(tmp)}) as server:
        async with httpx.AsyncClient(timeout=60) as http:
            graph = Graph(http, server.root, "server")
            item = await new_item(graph)
            for data in files:
                url = await upload_url(graph, item, len(data))
                assert (await upload_all(graph, url, data, CHUNK)).status_code == 201
            # Every byte is in one place: what is not on disk is in memory, and that is at most the limit.
            total = sum(len(d) for d in files)
            assert _spilled_bytes(tmp) >= total - LIMIT
            listing = await graph.get(f"/users/{ADELE}/messages/{item}/attachments?$select=id", user=ADELE)
            ids = [a["id"] for a in listing.json()["value"]]
            assert len(ids) == len(files)
            contents = set()
            for attachment_id in ids:
                value = await graph.get(
                    f"/users/{ADELE}/messages/{item}/attachments/{attachment_id}/$value", user=ADELE
                )
                contents.add(value.content)
            assert contents == set(files)
        assert len(list(tmp.glob(f"{SPILL_PREFIX}*"))) == 1
    assert list(tmp.glob(f"{SPILL_PREFIX}*")) == []  # removed when the server stopped


@pytest.fixture
def capped(settings: Settings) -> Settings:
    return dataclasses.replace(settings, memory_limit=MiB)


async def test_a_spill_that_fails_answers_507_and_keeps_the_acknowledged_bytes(
    capped: Settings, tmp_path: Path
) -> None:
    if capped.blobs not in (None, "memory:"):
        pytest.skip("the memory limit is the in-memory blob store's")
    async with inprocess(capped) as graph:
        blobs = graph.ctx.blobs
        assert isinstance(blobs, MemoryBlobStore)
        not_a_directory = tmp_path / "file"
        not_a_directory.write_bytes(b"")
        blobs.spill_parent = not_a_directory  # the spill directory cannot be made: as good as a full disk
        data = payload(SIZE)
        url = await upload_url(graph, await new_item(graph), len(data))
        first = 320 * 1024
        assert (await put_range(graph, url, data[:first], 0, len(data))).status_code == 200
        response = await put_range(graph, url, data[first : first + CHUNK], first, len(data))
        assert response.status_code == 507, response.text
        error = response.json()["error"]
        assert error["code"] == "QuotaExceededException"
        assert str(not_a_directory) in error["message"] and "--memory-limit" in error["message"]
        status = await graph.http.get(url)
        assert status.json()["nextExpectedRanges"] == [str(first)]  # nothing of the refused range kept
        blobs.spill_parent = tmp_path  # room again: the upload goes on where it stopped
        rest = data[first:]
        for start in range(0, len(rest), CHUNK):
            response = await put_range(graph, url, rest[start : start + CHUNK], first + start, len(data))
        assert response.status_code == 201, response.text
