"""AsyncClient runs the same flows: the same wire behaviour, awaited."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import httpx
import pytest

from graphattach.client import AsyncClient, Message, NotFound, Progress, RetryPolicy
from tests.client.conftest import MiB, Sleeps
from tests.client.fakegraph import GRAPH, TOKEN, UPLOAD_HOST, FakeGraph, cut_after, status, upload_put_at

MakeFile = Callable[..., Path]


@pytest.fixture
async def aclient(fake: FakeGraph, sleeps: Sleeps) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        GRAPH, TOKEN, transport=fake.transport, sleep=sleeps.asleep, retry=RetryPolicy(attempts=4)
    ) as client:
        yield client


async def test_async_session_with_throttling_and_a_cut(
    aclient: AsyncClient, fake: FakeGraph, sleeps: Sleeps, make_file: MakeFile
) -> None:
    item = fake.add_message()
    path = make_file(13 * MiB)
    fake.script(upload_put_at(4 * MiB), status(429, retry_after="2.128"))
    fake.script(upload_put_at(8 * MiB), cut_after())
    attachment = await aclient.attach(Message(item), path)
    assert fake.attachments("message", item)[attachment.id].data == path.read_bytes()
    assert sleeps[0] == 2.128 and len(sleeps) == 2
    assert all("authorization" not in r.headers for r in fake.calls(host=UPLOAD_HOST))


async def test_async_small_file_list_download_delete(
    aclient: AsyncClient, fake: FakeGraph, make_file: MakeFile, tmp_path: Path
) -> None:
    item = fake.add_message()
    path = make_file(2000, "a.csv")
    attachment = await aclient.attach(Message(item), path)
    assert attachment.content_type == "text/csv"
    assert [a.id for a in await aclient.list_attachments(Message(item))] == [attachment.id]
    assert await aclient.download(Message(item), attachment, tmp_path / "copy.csv") == 2000
    assert (tmp_path / "copy.csv").read_bytes() == path.read_bytes()
    await aclient.delete_attachment(Message(item), attachment.id)
    with pytest.raises(NotFound):
        await aclient.get_attachment(Message(item), attachment.id)


async def test_async_attach_many(aclient: AsyncClient, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()
    files = [make_file(100 * (i + 1), f"f{i}.bin", seed=i) for i in range(6)] + [make_file(5 * MiB, "big.bin")]
    results = await aclient.attach_many(Message(item), files, concurrency=2)
    assert all(r.ok for r in results)
    assert len(fake.attachments("message", item)) == 7


async def test_async_cancellation_cancels_the_session(
    aclient: AsyncClient, fake: FakeGraph, make_file: MakeFile
) -> None:
    item = fake.add_message()
    cancel_scope = anyio.CancelScope()

    def stop(progress: Progress) -> None:
        if progress.done == 4 * MiB:
            cancel_scope.cancel()

    with cancel_scope:
        await aclient.attach(Message(item), make_file(9 * MiB), progress=stop)
    assert cancel_scope.cancel_called
    assert len(fake.calls("DELETE", UPLOAD_HOST)) == 1 and fake.sessions == {}


async def test_async_token_callable(fake: FakeGraph, make_file: MakeFile) -> None:
    async def token() -> str:
        return TOKEN

    item = fake.add_message()
    async with AsyncClient(GRAPH, token, transport=fake.transport) as client:
        await client.attach(Message(item), make_file(10))
    assert fake.calls("POST")[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_async_resume_and_cancel(aclient: AsyncClient, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()
    path = make_file(6 * MiB)
    with httpx.Client(transport=fake.transport) as http:
        created = http.post(
            f"{GRAPH}/me/messages/{item}/attachments/createUploadSession",
            json={"attachmentItem": {"attachmentType": "file", "name": "x.bin", "size": 6 * MiB}},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        url = created.json()["uploadUrl"]
    attachment = await aclient.resume(url, path)
    assert fake.attachments("message", item)[attachment.id].data == path.read_bytes()
    with pytest.raises(NotFound):
        await aclient.cancel(url)
