"""Several ``graphattach serve`` processes on one PostgreSQL and one S3, behind one URL.

Every process mints the same URLs (``--public-url``, ``--upload-origin``), so a client may send
any request to any process: here the client plays the load balancer and picks the process by
rewriting the origin of each URL it was given.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from graphattach.services.uploads import BLOB_PREFIX
from graphattach.storage.s3 import S3BlobStore
from tests.helpers import ADELE, ALEX, MEGAN, ServerProcess
from tests.scale.conftest import PUBLIC_URL, UPLOAD_ORIGIN, Cluster

MiB = 1024 * 1024
CHUNK = 4 * MiB


class ClientGaveUp(Exception):
    """The request body of a client whose server died under it."""


def at(process: ServerProcess, url: str) -> str:
    """``url`` (on the public or upload origin) sent to ``process`` instead."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" in (PUBLIC_URL, UPLOAD_ORIGIN), url
    return urlunsplit(("http", f"127.0.0.1:{process.port}", parts.path, parts.query, parts.fragment))


class Client:
    """A Graph client that sends each request to the process it is told."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.token = token

    async def graph(self, process: ServerProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return await self.http.request(method, f"{process.root}/v1.0{path}", headers=headers, **kwargs)

    async def draft(self, process: ServerProcess, subject: str) -> str:
        response = await self.graph(process, "POST", "/me/messages", json={"subject": subject})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def upload_session(self, process: ServerProcess, message_id: str, name: str, size: int) -> str:
        response = await self.graph(
            process,
            "POST",
            f"/me/messages/{quote(message_id, safe='')}/attachments/createUploadSession",
            json={"AttachmentItem": {"attachmentType": "file", "name": name, "size": size}},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["nextExpectedRanges"] == ["0-"]
        upload_url = str(body["uploadUrl"])
        assert upload_url.startswith(UPLOAD_ORIGIN + "/"), upload_url  # whichever process minted it
        return upload_url

    async def put(self, process: ServerProcess, upload_url: str, data: bytes, start: int, total: int) -> httpx.Response:
        """One range, as clients send it: Content-Range, no Authorization header."""
        return await self.http.put(
            at(process, upload_url),
            content=data,
            headers={
                "Content-Range": f"bytes {start}-{start + len(data) - 1}/{total}",
                "Content-Type": "application/octet-stream",
            },
        )

    async def value(self, process: ServerProcess, message_id: str, attachment_id: str) -> str:
        """SHA-256 of the attachment's ``$value``, streamed."""
        digest = hashlib.sha256()
        path = f"/me/messages/{quote(message_id, safe='')}/attachments/{quote(attachment_id, safe='')}/$value"
        async with self.http.stream(
            "GET", f"{process.root}/v1.0{path}", headers={"Authorization": f"Bearer {self.token}"}
        ) as response:
            assert response.status_code == 200, (await response.aread())[:500]
            async for block in response.aiter_bytes():
                digest.update(block)
        return digest.hexdigest()


def attachment_id_of(response: httpx.Response) -> str:
    """The id in the final range's ``Location: .../Attachments('{id}')``."""
    assert response.status_code == 201, response.text
    location = response.headers["Location"]
    match = re.search(r"/attachments\('([^']+)'\)$", location, re.IGNORECASE)
    assert match, location
    return match.group(1)


def session_id_of(upload_url: str) -> str:
    match = re.search(r"/AttachmentSessions\('([^']+)'\)", urlsplit(upload_url).path)
    assert match, upload_url
    return unquote(match.group(1))


def expect_next(response: httpx.Response, offset: int) -> None:
    assert response.status_code == 200, response.text
    assert response.json()["nextExpectedRanges"] == [str(offset)]


async def token_for(http: httpx.AsyncClient, process: ServerProcess, upn: str) -> str:
    response = await http.post(f"{process.root}/_graphattach/token", json={"user": upn})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


async def upload_alternating(client: Client, processes: list[ServerProcess], data: bytes, name: str) -> tuple[str, str]:
    """Draft on one process, session on another, ranges round-robin; returns (message, attachment)."""
    message_id = await client.draft(processes[0], name)
    upload_url = await client.upload_session(processes[-1], message_id, name, len(data))
    response: httpx.Response | None = None
    for n, start in enumerate(range(0, len(data), CHUNK)):
        chunk = data[start : start + CHUNK]
        response = await client.put(processes[n % len(processes)], upload_url, chunk, start, len(data))
        if start + len(chunk) < len(data):
            expect_next(response, start + len(chunk))
    assert response is not None
    return message_id, attachment_id_of(response)


# the processes share everything that makes them one service -----------------------------------


async def test_processes_share_the_tenant_keys_and_users(cluster: Cluster) -> None:
    a, b = cluster.start(), cluster.start()
    async with httpx.AsyncClient(timeout=60) as http:
        infos = [(await http.get(f"{p.root}/_graphattach/info")).json() for p in (a, b)]
        assert infos[0]["tenantId"] == infos[1]["tenantId"]
        assert infos[0]["uploadOrigin"] == infos[1]["uploadOrigin"] == UPLOAD_ORIGIN
        assert infos[0]["store"] == cluster.store and infos[0]["blobs"] == cluster.blobs
        # a token minted by one process is good at the other (one signing key, in the store)
        token = await token_for(http, a, ADELE)
        for process in (a, b):
            me = await http.get(f"{process.root}/v1.0/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
            assert me.json()["userPrincipalName"] == ADELE
        # a user added through one process exists at the other
        upn = f"scale-{os.urandom(4).hex()}@contoso.onmicrosoft.com"
        added = await http.post(f"{a.root}/_graphattach/users", json={"userPrincipalName": upn})
        assert added.status_code in (200, 201), added.text
        listed = (await http.get(f"{b.root}/_graphattach/users")).json()
        upns = {u["userPrincipalName"] for u in (listed["value"] if isinstance(listed, dict) else listed)}
        assert {upn, ADELE, ALEX, MEGAN} <= upns
        # one process dies hard; the other goes on serving the same data
        a.kill()
        token_b = await token_for(http, b, upn)
        me = await http.get(f"{b.root}/v1.0/me", headers={"Authorization": f"Bearer {token_b}"})
        assert me.status_code == 200 and me.json()["userPrincipalName"] == upn
        # and a process started later joins without migrating or seeding anything twice
        c = cluster.start()
        me = await http.get(f"{c.root}/v1.0/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["userPrincipalName"] == ADELE


# upload sessions across processes -------------------------------------------------------------


async def test_upload_survives_a_killed_process(cluster: Cluster) -> None:
    """PUTs alternate between two processes; one is SIGKILLed in the middle of a PUT; the upload
    finishes on the other, and ``$value`` is the same bytes at every process."""
    a, b = cluster.start(), cluster.start()
    size = 40 * 1000 * 1000
    data = payload(size, seed=1)
    expected = hashlib.sha256(data).hexdigest()
    async with httpx.AsyncClient(timeout=120) as http:
        client = Client(http, await token_for(http, a, ADELE))
        message_id = await client.draft(a, "survives a crash")
        upload_url = await client.upload_session(b, message_id, "crash.bin", size)
        starts = list(range(0, size, CHUNK))
        killed_at = starts[4]
        for n, start in enumerate(starts[:4]):
            response = await client.put((a, b)[n % 2], upload_url, data[start : start + CHUNK], start, size)
            expect_next(response, start + CHUNK)

        # The fifth range goes to A, which dies half-way through reading it.
        sent_half, killed = asyncio.Event(), asyncio.Event()

        async def half_then_hang() -> AsyncIterator[bytes]:
            yield data[killed_at : killed_at + CHUNK // 2]
            sent_half.set()
            await killed.wait()
            raise ClientGaveUp  # the rest never comes

        put = asyncio.create_task(
            http.put(
                at(a, upload_url),
                content=half_then_hang(),
                headers={
                    "Content-Length": str(CHUNK),
                    "Content-Range": f"bytes {killed_at}-{killed_at + CHUNK - 1}/{size}",
                    "Content-Type": "application/octet-stream",
                },
            )
        )
        await asyncio.wait_for(sent_half.wait(), 60)
        # A holds the session lock and has stored bytes past the acknowledged offset: kill it now.
        blobs = S3BlobStore(cluster.blobs)
        await blobs.open()
        try:
            blob_key = BLOB_PREFIX + session_id_of(upload_url)
            async with asyncio.timeout(60):
                while (await blobs.size(blob_key) or 0) <= killed_at:
                    await asyncio.sleep(0.05)
            a.kill()
            killed.set()
            with pytest.raises((httpx.TransportError, ClientGaveUp)):
                await asyncio.wait_for(put, 60)

            # B is not blocked by the dead holder's lock, and resumes at the last acknowledged range.
            for start in starts[4:]:
                chunk = data[start : start + CHUNK]
                response = await asyncio.wait_for(client.put(b, upload_url, chunk, start, size), 120)
                if start + len(chunk) < size:
                    expect_next(response, start + len(chunk))
            attachment_id = attachment_id_of(response)
            assert await blobs.size(blob_key) == size  # what A left past the offset is gone
        finally:
            await blobs.close()

        a2 = cluster.start()  # A again, on the same stores
        assert await client.value(b, message_id, attachment_id) == expected
        assert await client.value(a2, message_id, attachment_id) == expected
        listed = await client.graph(a2, "GET", f"/me/messages/{quote(message_id, safe='')}/attachments")
        assert listed.status_code == 200
        assert [att["name"] for att in listed.json()["value"]] == ["crash.bin"]


async def test_puts_of_one_session_at_two_processes_never_interleave(cluster: Cluster) -> None:
    """The same ranges sent to both processes at once: each range is stored once, whole, and the
    session ends with exactly the bytes sent."""
    a, b = cluster.start(), cluster.start()
    size = 3 * CHUNK + 1000
    data = payload(size, seed=3)
    async with httpx.AsyncClient(timeout=120) as http:
        client = Client(http, await token_for(http, a, ADELE))
        message_id = await client.draft(a, "twice at once")
        upload_url = await client.upload_session(a, message_id, "twice.bin", size)
        final: list[httpx.Response] = []
        for start in range(0, size, CHUNK):
            chunk = data[start : start + CHUNK]
            both = await asyncio.gather(*(client.put(p, upload_url, chunk, start, size) for p in (a, b)))
            codes = sorted(r.status_code for r in both)
            if start + len(chunk) < size:
                # one stores the range; the other, serialised behind it, sees a repeat of the last range
                assert codes == [200, 200], [r.text for r in both]
                for response in both:
                    expect_next(response, start + len(chunk))
            else:
                assert codes[0] == 201, [r.text for r in both]
                final = [r for r in both if r.status_code == 201]
                continue
            status = await http.get(at(b, upload_url))  # the session reports the range once
            assert status.status_code == 200, status.text
            assert status.json()["nextExpectedRanges"] == [str(start + len(chunk))]
        attachment_ids = {attachment_id_of(r) for r in final}
        assert len(attachment_ids) == 1  # a repeated final range names the same attachment
        attachment_id = attachment_ids.pop()
        expected = hashlib.sha256(data).hexdigest()
        assert await client.value(a, message_id, attachment_id) == expected
        listed = await client.graph(b, "GET", f"/me/messages/{quote(message_id, safe='')}/attachments")
        assert [att["id"] for att in listed.json()["value"]] == [attachment_id]


async def test_concurrent_sessions_spread_over_two_processes(cluster: Cluster) -> None:
    a, b = cluster.start(), cluster.start()
    sizes = [6 * MiB + 17, 5 * MiB, 9 * MiB + 3, 3 * MiB, 7 * MiB + 1, 4 * MiB + 999]
    users = [ADELE, ALEX, MEGAN]
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=64)) as http:
        clients = {upn: Client(http, await token_for(http, (a, b)[i % 2], upn)) for i, upn in enumerate(users)}

        async def one(n: int, size: int) -> tuple[str, str, str, str]:
            data = payload(size, seed=100 + n)
            order = [a, b] if n % 2 else [b, a]
            client = clients[users[n % len(users)]]
            message_id, attachment_id = await upload_alternating(client, order, data, f"concurrent-{n}.bin")
            return users[n % len(users)], message_id, attachment_id, hashlib.sha256(data).hexdigest()

        results = await asyncio.wait_for(asyncio.gather(*(one(n, size) for n, size in enumerate(sizes))), 600)
        for upn, message_id, attachment_id, expected in results:
            assert await clients[upn].value(a, message_id, attachment_id) == expected
            assert await clients[upn].value(b, message_id, attachment_id) == expected


async def test_background_sweepers_of_two_processes_expire_sessions(cluster: Cluster) -> None:
    """Both processes run the sweeper (one at a time): an abandoned session is forgotten and its
    bytes freed, and no sweep fails."""
    flags = ("--session-lifetime", "2", "--sweep-interval", "0.3")
    a, b = cluster.start(*flags), cluster.start(*flags)
    size = 6 * MiB
    data = payload(size, seed=7)
    blobs = S3BlobStore(cluster.blobs)
    await blobs.open()
    try:
        async with httpx.AsyncClient(timeout=120) as http:
            client = Client(http, await token_for(http, a, ADELE))
            message_id = await client.draft(a, "abandoned")
            upload_url = await client.upload_session(b, message_id, "abandoned.bin", size)
            expect_next(await client.put(a, upload_url, data[:CHUNK], 0, size), CHUNK)
            blob_key = BLOB_PREFIX + session_id_of(upload_url)
            assert await blobs.size(blob_key) == CHUNK
            async with asyncio.timeout(120):
                while await blobs.size(blob_key) is not None:
                    await asyncio.sleep(0.2)
            session_id = session_id_of(upload_url)
            conn = await asyncpg.connect(cluster.store)
            try:
                left = await conn.fetchrow(
                    "SELECT state, received, ended IS NOT NULL AS ended FROM upload_sessions WHERE id = $1", session_id
                )
            finally:
                await conn.close()
            # only the record of how it ended is left (for the web UI), holding no bytes
            assert left is not None and dict(left) == {"state": "expired", "received": CHUNK, "ended": True}
            for process in (a, b):
                # the expired session is gone for every process...
                response = await client.put(process, upload_url, data[CHUNK:], CHUNK, size)
                assert response.status_code in (401, 404), response.text
                # ...and every process's web UI lists how it ended
                page = (await http.get(f"{process.root}/uploads")).text
                row = page.split(f'<tr data-id="{session_id}">', 1)[1].split("</tr>", 1)[0]
                assert "state-expired" in row and "abandoned.bin" in row
    finally:
        await blobs.close()
    for process in (a, b):
        assert "Traceback" not in process.log_path.read_text(errors="replace")


@pytest.mark.slow
async def test_150_mb_upload_across_two_processes(cluster: Cluster) -> None:
    a, b = cluster.start(), cluster.start()
    data = payload(150 * 1000 * 1000, seed=150)
    async with httpx.AsyncClient(timeout=300) as http:
        client = Client(http, await token_for(http, a, ADELE))
        message_id, attachment_id = await upload_alternating(client, [a, b], data, "big.bin")
        expected = hashlib.sha256(data).hexdigest()
        assert await client.value(a, message_id, attachment_id) == expected
        assert await client.value(b, message_id, attachment_id) == expected
