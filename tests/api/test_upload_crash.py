"""Crash safety: SIGKILL a real server at random points during uploads, restart it on the same
data directory, resume from the session status, and check that every attachment is byte-exact,
that none is ever half there, and that no bytes are left behind once the sweeper has run.

The full version (150 MB files, 20 trials) lives in bench/; this one keeps the suite short.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
from pathlib import Path

import httpx
import pytest

from tests.helpers import Graph, ServerProcess
from tests.upload_helpers import MiB, new_item, payload, upload_url

TRIALS = int(os.environ.get("GRAPHATTACH_CRASH_TRIALS", "5"))


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the ASGI server's workers), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_server(server: ServerProcess) -> None:
    """SIGKILL the server and its worker processes at once: ``ServerProcess.kill`` alone would
    leave granian's worker running and serving."""
    assert server.proc is not None
    workers = descendants(server.proc.pid)
    assert workers, "expected the server to run its application in a worker process"
    server.proc.kill()
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.kill()  # reap the parent


def blob_files(data_dir: Path) -> list[Path]:
    """Files of the file blob store (temporary files and key sidecars excluded)."""
    root = data_dir / "blobs"
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".key")]


async def resume(http: httpx.AsyncClient, url: str, data: bytes, chunk: int) -> None:
    """Upload whatever the session still expects; return when the attachment exists."""
    status = await http.get(url)
    if status.status_code == 404:
        return  # completed before the crash (its 201 may have been lost)
    assert status.status_code == 200, status.text
    next_byte = int(status.json()["nextExpectedRanges"][0])
    while True:
        end = min(next_byte + chunk, len(data))
        response = await http.put(
            url,
            content=data[next_byte:end],
            headers={"Content-Range": f"bytes {next_byte}-{end - 1}/{len(data)}"},
        )
        if response.status_code == 201:
            return
        assert response.status_code == 200, response.text
        next_byte = int(response.json()["nextExpectedRanges"][0])


async def check_all_or_nothing(graph: Graph, http: httpx.AsyncClient, item_id: str, url: str, data: bytes) -> bool:
    """The attachment is wholly there (and then the session is finished) or absent. True if there."""
    listed = await graph.get(f"/me/messages/{item_id}/attachments?$select=name,size")
    assert listed.status_code == 200, listed.text
    attachments = listed.json()["value"]
    status = await http.get(url)
    if not attachments:
        assert status.status_code == 200, status.text
        assert 0 <= int(status.json()["nextExpectedRanges"][0]) < len(data)
        return False
    assert len(attachments) == 1
    assert status.status_code == 404, status.text
    raw = await graph.get(f"/me/messages/{item_id}/attachments/{attachments[0]['id']}/$value")
    assert raw.status_code == 200
    assert hashlib.sha256(raw.content).hexdigest() == hashlib.sha256(data).hexdigest()
    return True


@pytest.mark.slow
async def test_sigkill_during_uploads_never_leaves_half_an_attachment(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("GRAPHATTACH_CRASH_SEED", "20261122")))
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir).start()
    kills = interrupted = 0
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            graph = Graph(http, server.root, "server")
            items: list[tuple[str, bytes]] = []
            # how long one upload takes here, so that the kills land during uploads
            calibration = payload(30 * MiB, seed=99)
            started = asyncio.get_running_loop().time()
            await resume(http, await upload_url(graph, await new_item(graph), len(calibration)), calibration, 5 * MiB)
            duration = asyncio.get_running_loop().time() - started
            for trial in range(TRIALS):
                size = rng.randrange(20 * MiB, 40 * MiB)
                chunk = rng.choice([3 * MiB, 5 * MiB + 1, 8 * MiB])
                data = payload(size, seed=trial)
                item_id = await new_item(graph)
                url = await upload_url(graph, item_id, size, name=f"trial-{trial}.bin")
                for _ in range(rng.randint(1, 4)):
                    task = asyncio.create_task(resume(http, url, data, chunk))
                    await asyncio.sleep(rng.uniform(0.0, duration))
                    interrupted += not task.done()
                    kill_server(server)
                    kills += 1
                    try:
                        await task
                    except httpx.TransportError:
                        pass  # the connection died with the server
                    server.start()
                    if await check_all_or_nothing(graph, http, item_id, url, data):
                        break
                await resume(http, url, data, chunk)
                assert await check_all_or_nothing(graph, http, item_id, url, data)
                items.append((item_id, data))

            # one upload abandoned half way: the sweeper frees it once it has expired
            abandoned_item = await new_item(graph)
            abandoned = await upload_url(graph, abandoned_item, 4 * MiB)
            put = await http.put(
                abandoned, content=b"x" * MiB, headers={"Content-Range": f"bytes 0-{MiB - 1}/{4 * MiB}"}
            )
            assert put.status_code == 200
            kill_server(server)
            kills += 1
            server.start()

            # past the sessions' lifetime and the orphan grace period, one sweep leaves exactly the
            # attachments' bytes
            advanced = await graph.admin("POST", "/clock", json={"advanceSeconds": 6 * 3600 + 3600 + 1})
            assert advanced.status_code == 200
            graph.forget_tokens()  # the ones minted before the jump have expired
            swept = await graph.admin("POST", "/sweep")
            assert swept.status_code == 200, swept.text
            assert len(blob_files(data_dir)) == len(items) + 1  # with the calibration upload
            for item_id, data in items:
                listed = (await graph.get(f"/me/messages/{item_id}/attachments?$select=name")).json()["value"]
                raw = await graph.get(f"/me/messages/{item_id}/attachments/{listed[0]['id']}/$value")
                assert hashlib.sha256(raw.content).digest() == hashlib.sha256(data).digest()
            assert (await graph.get(f"/me/messages/{abandoned_item}/attachments")).json()["value"] == []
    finally:
        server.stop()
    assert kills >= TRIALS + 1
    print(f"{TRIALS} trials, {kills} SIGKILLs, {interrupted} of them mid-upload; one upload took {duration:.2f} s")


@pytest.mark.slow
async def test_sigkill_during_small_ranges_keeps_every_acknowledged_range(tmp_path: Path) -> None:
    """Ranges small enough to be read ahead while the session lock is taken (the prefetch path):
    a 200 still means the blob's bytes and the session's commit are on disk, whenever the kill lands."""
    rng = random.Random(20261202)
    chunk = 32 * 1024
    data = payload(3 * MiB + 5_000, seed=7)
    server = ServerProcess(tmp_path / "data").start()
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            graph = Graph(http, server.root, "server")
            item_id = await new_item(graph)
            url = await upload_url(graph, item_id, len(data))
            acknowledged = 0

            async def upload() -> None:
                nonlocal acknowledged
                next_byte = acknowledged
                while next_byte < len(data):
                    end = min(next_byte + chunk, len(data))
                    response = await http.put(
                        url,
                        content=data[next_byte:end],
                        headers={"Content-Range": f"bytes {next_byte}-{end - 1}/{len(data)}"},
                    )
                    assert response.status_code in (200, 201), response.text
                    acknowledged = next_byte = end

            for _ in range(4):
                task = asyncio.create_task(upload())
                await asyncio.sleep(rng.uniform(0.05, 0.4))
                kill_server(server)
                try:
                    await task
                except httpx.TransportError:
                    pass  # the connection died with the server
                server.start()
                status = await http.get(url)
                if status.status_code == 404:
                    break  # completed before the kill
                expected = int(status.json()["nextExpectedRanges"][0])
                # every acknowledged range survived; at most the range in flight went further
                assert acknowledged <= expected <= acknowledged + chunk
                acknowledged = expected
            await resume(http, url, data, chunk)
            assert await check_all_or_nothing(graph, http, item_id, url, data)
    finally:
        server.stop()


@pytest.mark.slow
async def test_a_session_row_that_lost_its_last_commits_comes_back_from_its_blob(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The blob is the journal: an acknowledged range is synced once, in the blob, and the session's
    row follows unsynced. A crash of the machine may lose those row commits (here rewound by
    hand, as an OS crash would leave them); the server takes the session's progress back from
    the blob when it starts, so ``nextExpectedRanges`` still reports every acknowledged byte.
    On the session's stack: a file blob's range records, or S3 part objects."""
    from tests.engines import stack_server_args

    args, env = stack_server_args(request)
    data = payload(4 * MiB, seed=11)
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir, *args, env=env).start()
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            graph = Graph(http, server.root, "server")
            item_id = await new_item(graph)
            url = await upload_url(graph, item_id, len(data))
            for start in (0, MiB, 2 * MiB):
                end = start + MiB
                response = await http.put(
                    url, content=data[start:end], headers={"Content-Range": f"bytes {start}-{end - 1}/{len(data)}"}
                )
                assert response.status_code == 200, response.text
            kill_server(server)
            assert await _rewind_sessions(args, data_dir, MiB) == 1
            server.start()
            status = await http.get(url)
            assert status.status_code == 200, status.text
            assert status.json()["nextExpectedRanges"] == [str(3 * MiB)]
            # the client's retry of its last acknowledged range is answered as before the crash
            retry = await http.put(
                url,
                content=data[2 * MiB : 3 * MiB],
                headers={"Content-Range": f"bytes {2 * MiB}-{3 * MiB - 1}/{len(data)}"},
            )
            assert retry.status_code == 200, retry.text
            assert retry.json()["nextExpectedRanges"] == [str(3 * MiB)]
            final = await http.put(
                url, content=data[3 * MiB :], headers={"Content-Range": f"bytes {3 * MiB}-{4 * MiB - 1}/{len(data)}"}
            )
            assert final.status_code == 201, final.text
            assert await check_all_or_nothing(graph, http, item_id, url, data)
    finally:
        server.stop()
    assert "from its blob" in server.log_path.read_text()


async def _rewind_sessions(server_args: list[str], data_dir: Path, received: int) -> int:
    """Set every active session's progress back to ``received`` in the store, as a lost commit would."""
    if "--store" in server_args:
        import asyncpg

        conn = await asyncpg.connect(server_args[server_args.index("--store") + 1])
        try:
            status = await conn.execute(
                "UPDATE upload_sessions SET received = $1, last_start = 0, last_end = $2 WHERE state = 'active'",
                received,
                received - 1,
            )
        finally:
            await conn.close()
        return int(status.split()[-1])
    import sqlite3

    with sqlite3.connect(data_dir / "metadata.sqlite3") as db:
        return db.execute(
            "UPDATE upload_sessions SET received = ?, last_start = 0, last_end = ? WHERE state = 'active'",
            (received, received - 1),
        ).rowcount
