"""Crash safety on PostgreSQL + S3: SIGKILL a server at random points during uploads, restart it on
the same stores, resume from the session status; every attachment is byte-exact or absent, and
after the sweeper has run the bucket holds exactly the attachments' bytes, with no stray part."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import uuid
from pathlib import Path

import httpx

from graphattach.storage.s3 import S3BlobStore
from tests.api.test_upload_crash import check_all_or_nothing, kill_server, resume
from tests.engines import MotoServer, PostgresCluster
from tests.helpers import Graph, ServerProcess
from tests.upload_helpers import MiB, new_item, payload, upload_url

TRIALS = int(os.environ.get("GRAPHATTACH_SCALE_CRASH_TRIALS", "3"))


async def test_sigkill_during_uploads_on_postgres_and_s3(
    tmp_path: Path, postgres: PostgresCluster, s3: MotoServer
) -> None:
    rng = random.Random(int(os.environ.get("GRAPHATTACH_CRASH_SEED", "20261122")))
    store = postgres.create_database("crash")
    blobs_url = s3.url(f"crash-{uuid.uuid4().hex[:12]}")
    # small parts: a range in flight is several objects, so a kill can land between them
    env = {**s3.env(), "GRAPHATTACH_S3_PART_SIZE": str(MiB)}
    server = ServerProcess(tmp_path / "data", "--store", store, "--blobs", blobs_url, env=env).start(timeout=60)
    kills = 0
    items: list[tuple[str, bytes]] = []
    try:
        async with httpx.AsyncClient(timeout=120) as http:
            graph = Graph(http, server.root, "server")
            calibration = payload(20 * MiB, seed=99)
            started = asyncio.get_running_loop().time()
            await resume(http, await upload_url(graph, await new_item(graph), len(calibration)), calibration, 4 * MiB)
            duration = asyncio.get_running_loop().time() - started
            for trial in range(TRIALS):
                size = rng.randrange(12 * MiB, 24 * MiB)
                chunk = rng.choice([3 * MiB, 4 * MiB, 5 * MiB + 1])
                data = payload(size, seed=trial)
                item_id = await new_item(graph)
                url = await upload_url(graph, item_id, size, name=f"trial-{trial}.bin")
                for _ in range(rng.randint(1, 3)):
                    task = asyncio.create_task(resume(http, url, data, chunk))
                    await asyncio.sleep(rng.uniform(0.0, duration))
                    kill_server(server)
                    kills += 1
                    try:
                        await task
                    except httpx.TransportError:
                        pass  # the connection died with the server
                    server.start(timeout=60)
                    if await check_all_or_nothing(graph, http, item_id, url, data):
                        break
                await resume(http, url, data, chunk)
                assert await check_all_or_nothing(graph, http, item_id, url, data)
                items.append((item_id, data))

            # an upload abandoned half way, then a crash: the sweeper frees it once it has expired
            abandoned_item = await new_item(graph)
            abandoned = await upload_url(graph, abandoned_item, 4 * MiB)
            put = await http.put(
                abandoned, content=b"x" * MiB, headers={"Content-Range": f"bytes 0-{MiB - 1}/{4 * MiB}"}
            )
            assert put.status_code == 200
            kill_server(server)
            kills += 1
            server.start(timeout=60)

            advanced = await graph.admin("POST", "/clock", json={"advanceSeconds": 6 * 3600 + 3600 + 1})
            assert advanced.status_code == 200
            graph.forget_tokens()
            swept = await graph.admin("POST", "/sweep")
            assert swept.status_code == 200, swept.text
            for item_id, data in items:
                listed = (await graph.get(f"/me/messages/{item_id}/attachments?$select=name")).json()["value"]
                raw = await graph.get(f"/me/messages/{item_id}/attachments/{listed[0]['id']}/$value")
                assert hashlib.sha256(raw.content).digest() == hashlib.sha256(data).digest()
            assert (await graph.get(f"/me/messages/{abandoned_item}/attachments")).json()["value"] == []
    finally:
        server.stop()

    blobs = S3BlobStore(blobs_url)
    await blobs.open()
    try:
        keys = [key async for key in blobs.keys()]
        assert len(keys) == len(items) + 1  # the attachments' bytes (with the calibration upload), nothing else
        sizes = sorted([await blobs.size(key) for key in keys])
        assert sizes == sorted([len(calibration), *(len(data) for _, data in items)])
        for key in keys:  # and no part past a blob's end was left by a killed write
            parts = await blobs._parts(blobs._name(key))
            assert blobs._contiguous(parts)[0] == parts
    finally:
        await blobs.close()
        postgres.drop_database(store)
    assert kills >= TRIALS + 1
