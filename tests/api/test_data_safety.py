"""No acknowledged byte is lost to the sweeper, whatever the clocks say; sending is all or nothing.

These run in-process (the stores of the ``settings`` fixture: memory, or PostgreSQL + S3 with
``GRAPHATTACH_TEST_STACK=postgres-s3``) because they interleave a sweep at an exact point of a
request: between the write of an attachment's bytes and the commit of its record.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable
from typing import Any

from tests.api.attachment_support import attach, file_payload, new_message
from tests.api.test_messages import find_in_inbox
from tests.helpers import ALEX, Graph, assert_graph_error


def _sweep_after_each_write(graph: Graph, prefix: str, reports: list[dict[str, Any]]) -> None:
    """Make every blob write under ``prefix`` run a full sweep right after its bytes are durable,
    before the request commits the record that owns them (the window the sweeper used to hit)."""
    ctx = graph.ctx
    real_write = ctx.blobs.write

    async def write_then_sweep(key: str, chunks: AsyncIterable[bytes], **kwargs: Any) -> int:
        written = await real_write(key, chunks, **kwargs)
        if key.startswith(prefix):
            response = await graph.admin("POST", "/sweep")
            assert response.status_code == 200, response.text
            reports.append(response.json())
        return written

    ctx.blobs.write = write_then_sweep  # type: ignore[method-assign]


async def _blob_keys(graph: Graph) -> set[str]:
    return {key async for key in graph.ctx.blobs.keys()}


async def test_a_sweep_between_write_and_commit_never_takes_the_bytes(inprocess_graph: Graph) -> None:
    """Issue 14, item 1: after ``advanceSeconds: 7200`` a sweep during an attachment POST deleted
    the bytes of an attachment that was then answered 201."""
    graph = inprocess_graph
    base = f"/me/messages/{(await new_message(graph))['id']}"
    reports: list[dict[str, Any]] = []
    _sweep_after_each_write(graph, "attachments/", reports)
    for advance in (7200, 10 * 365 * 86400):
        assert (await graph.admin("POST", "/clock", json={"advanceSeconds": advance})).status_code == 200
        graph.forget_tokens()
        data = os.urandom(200 * 1024)
        created = await attach(graph, base, file_payload("big.bin", data))
        value = await graph.get(f"{base}/attachments/{created['id']}/$value")
        assert value.status_code == 200, value.text
        assert value.content == data
        listed = await graph.get(f"{base}?$expand=attachments")
        assert listed.status_code == 200, listed.text
    assert len(reports) == 2


async def test_a_sweep_never_takes_a_blob_being_copied_for_an_event_attendee(inprocess_graph: Graph) -> None:
    graph = inprocess_graph
    await graph.admin("POST", "/clock", json={"advanceSeconds": 7200})
    graph.forget_tokens()
    reports: list[dict[str, Any]] = []
    ctx = graph.ctx
    real_copy = ctx.blobs.copy

    async def copy_then_sweep(src: str, dst: str) -> None:
        await real_copy(src, dst)
        reports.append((await graph.admin("POST", "/sweep")).json())

    ctx.blobs.copy = copy_then_sweep  # type: ignore[method-assign]
    event = (
        await graph.post(
            "/me/events",
            json={
                "subject": "with a file",
                "start": {"dateTime": "2030-04-15T12:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2030-04-15T13:00:00", "timeZone": "UTC"},
                "attendees": [{"emailAddress": {"address": ALEX}, "type": "required"}],
            },
        )
    ).json()
    data = os.urandom(50_000)
    await attach(graph, f"/me/events/{event['id']}", file_payload("agenda.bin", data))
    patched = await graph.patch(f"/me/events/{event['id']}", json={"subject": "with a file (updated)"})
    assert patched.status_code == 200, patched.text
    assert reports, "no attendee copy was made"
    # every attachment that exists anywhere has its bytes
    found = await ctx.metadata.list_users()
    for user in found:
        items, _ = await ctx.metadata.list_items(user.id, "event", None)
        for item in items:
            for attachment in await ctx.metadata.list_attachments(user.id, item.id):
                if attachment.blob_key is not None:
                    assert await ctx.blobs.size(attachment.blob_key) == len(data)


async def test_a_stray_blob_is_an_orphan_at_once_and_an_announced_one_never(inprocess_graph: Graph) -> None:
    graph = inprocess_graph
    ctx = graph.ctx

    async def one(data: bytes) -> AsyncIterable[bytes]:
        yield data

    await ctx.blobs.write("attachments/stray", one(b"x" * 10))
    await ctx.metadata.announce_blobs(["attachments/in-flight"])
    await ctx.blobs.write("attachments/in-flight", one(b"y" * 10))
    first = (await graph.admin("POST", "/sweep")).json()
    assert first["orphanedBlobs"] == 1
    assert await ctx.blobs.size("attachments/stray") is None
    await graph.admin("POST", "/clock", json={"advanceSeconds": 100 * 365 * 86400})
    (await graph.admin("POST", "/sweep")).json()
    assert await ctx.blobs.size("attachments/in-flight") == 10  # the server clock plays no part
    # the insert never came back: once its announcement is older than the grace period by the
    # store's own clock, the blob goes (here the grace is 0 seconds)
    assert await ctx.metadata.reclaim_announced_blobs(0) == ["attachments/in-flight"]
    await ctx.blobs.delete("attachments/in-flight")
    await graph.admin("DELETE", "/clock")


async def test_send_is_all_or_nothing_when_the_draft_changes_meanwhile(inprocess_graph: Graph) -> None:
    """Issue 14, item 1: a send that fails must deliver nothing and leave the draft as it was."""
    graph = inprocess_graph
    ctx = graph.ctx
    draft = await new_message(graph, toRecipients=[{"emailAddress": {"address": ALEX}}])
    base = f"/me/messages/{draft['id']}"
    payloads = [os.urandom(20_000) for _ in range(5)]
    for n, data in enumerate(payloads):
        await attach(graph, base, file_payload(f"part-{n}.bin", data))
    real_send = ctx.metadata.send_item
    raced: list[int] = []

    async def attach_then_send(*args: Any, **kwargs: Any) -> list[str]:
        if not raced:  # another request adds an attachment while the send is on its way
            raced.append((await graph.post(f"{base}/attachments", json=file_payload("late.txt"))).status_code)
        return await real_send(*args, **kwargs)

    ctx.metadata.send_item = attach_then_send  # type: ignore[method-assign]
    refused = await graph.post(f"{base}/send")
    assert raced == [201]
    assert_graph_error(refused, 409, "ErrorIrresolvableConflict")
    still = (await graph.get(base)).json()
    assert still["isDraft"] is True and still["parentFolderId"] == draft["parentFolderId"]
    assert len((await graph.get(f"{base}/attachments")).json()["value"]) == 6
    try:
        await find_in_inbox(graph, ALEX, draft["internetMessageId"])
    except AssertionError:
        pass
    else:
        raise AssertionError("a refused send delivered a copy")
    # sent again, it goes through whole: the recipient has every attachment, byte for byte
    assert (await graph.post(f"{base}/send")).status_code == 202
    received = await find_in_inbox(graph, ALEX, draft["internetMessageId"])
    copies = (await graph.get(f"/me/messages/{received['id']}/attachments", user=ALEX)).json()["value"]
    assert len(copies) == 6
    for n, data in enumerate(payloads):
        (match,) = [a for a in copies if a["name"] == f"part-{n}.bin"]
        value = await graph.get(f"/me/messages/{received['id']}/attachments/{match['id']}/$value", user=ALEX)
        assert value.content == data


async def test_send_delivers_every_attachment_even_when_a_blob_copy_would_fail(inprocess_graph: Graph) -> None:
    """The copies share the draft's blobs: no byte is copied, so no copy can fail half-way."""
    graph = inprocess_graph
    ctx = graph.ctx
    draft = await new_message(graph, toRecipients=[{"emailAddress": {"address": ALEX}}])
    base = f"/me/messages/{draft['id']}"
    for n in range(4):
        await attach(graph, base, file_payload(f"f{n}.txt", f"content {n}".encode()))

    async def broken_copy(src: str, dst: str) -> None:
        raise OSError("disk full")

    ctx.blobs.copy = broken_copy  # type: ignore[method-assign]
    assert (await graph.post(f"{base}/send")).status_code == 202
    received = await find_in_inbox(graph, ALEX, draft["internetMessageId"])
    copies = (await graph.get(f"/me/messages/{received['id']}/attachments", user=ALEX)).json()["value"]
    assert sorted(a["name"] for a in copies) == [f"f{n}.txt" for n in range(4)]
    # deleting the sender's copy keeps the recipient's bytes
    assert (await graph.delete(base)).status_code == 204
    first = copies[0]
    value = await graph.get(f"/me/messages/{received['id']}/attachments/{first['id']}/$value", user=ALEX)
    assert value.status_code == 200 and value.content.startswith(b"content ")
