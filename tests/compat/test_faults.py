"""Real clients under fault rules: msgraph-sdk's retry handler on 429/503 with Retry-After, and
what msgraph-core's ``LargeFileUploadTask`` and O365 do when a range's answer is lost (``drop``)
or its connection is cut (``cut``). The measured behaviour is in docs/known-client-issues.md."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from msgraph.generated.models.attachment_item import AttachmentItem
from msgraph.generated.models.attachment_type import AttachmentType
from msgraph.generated.models.message import Message
from msgraph.generated.users.item.messages.item.attachments.create_upload_session import (
    create_upload_session_post_request_body as message_session,
)
from msgraph_core.tasks.large_file_upload import LargeFileUploadTask
from tests.helpers import ADELE, ServerProcess

MiB = 1024 * 1024
LFU_SIZE = 12 * MiB + 5  # three 5 MiB chunks for LargeFileUploadTask
O365_SIZE = 10 * MiB + 7  # four ranges for O365


@pytest.fixture
def faults(outlook_server: ServerProcess, lenient_server: ServerProcess) -> Iterator[Callable[..., None]]:
    """``faults(server, rule)`` adds a rule; every rule of both servers goes afterwards."""

    def add(server: ServerProcess, rule: dict[str, Any]) -> None:
        response = httpx.post(f"{server.root}/_graphattach/faults", json=rule, timeout=30)
        assert response.status_code == 201, response.text

    yield add
    for server in (outlook_server, lenient_server):
        httpx.delete(f"{server.root}/_graphattach/faults", timeout=30)


def fault_counts(server: ServerProcess) -> list[tuple[int, int]]:
    rules = httpx.get(f"{server.root}/_graphattach/faults", timeout=30).json()["value"]
    return [(r["matched"], r["fired"]) for r in rules]


def attachment_values(server: ServerProcess, token: str, message_id: str) -> list[bytes]:
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{server.root}/v1.0/users/{ADELE}/messages/{message_id}/attachments"
    listed = httpx.get(f"{base}?$select=id", headers=headers, timeout=60).json()["value"]
    return [httpx.get(f"{base}/{a['id']}/$value", headers=headers, timeout=120).content for a in listed]


@pytest.mark.parametrize("status", [429, 503])
async def test_msgraph_sdk_retry_handler_recovers_after_retry_after(
    make_graph: Callable[..., Any], outlook_server: ServerProcess, faults: Callable[..., None], status: int
) -> None:
    faults(outlook_server, {"match": {"operation": "messages.list", "nth": 1},
                            "action": {"type": "status", "status": status, "retryAfter": 1}})  # fmt: skip
    listed = await make_graph().users.by_user_id(ADELE).messages.get()
    assert listed is not None and listed.value is not None
    assert fault_counts(outlook_server) == [(2, 1)]  # one 429/503, one retry that succeeded
    throttling = httpx.get(f"{outlook_server.root}/_graphattach/throttling", timeout=30).json()
    assert throttling["violations"] == []  # kiota waited the Retry-After


async def lfu_upload(make_graph: Callable[..., Any], server: ServerProcess, tmp_path: Path) -> tuple[Any, bytes, str]:
    client = make_graph(server)
    user = client.users.by_user_id(ADELE)
    created = await user.messages.post(Message(subject=f"lfu {uuid.uuid4().hex[:6]}"))
    item = user.messages.by_message_id(created.id)
    body = message_session.CreateUploadSessionPostRequestBody(
        attachment_item=AttachmentItem(attachment_type=AttachmentType.File, name="f.bin", size=LFU_SIZE)
    )
    session = await item.attachments.create_upload_session.post(body)
    data = random.Random(LFU_SIZE).randbytes(LFU_SIZE)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    with path.open("rb") as stream:
        result = await LargeFileUploadTask(session, client.request_adapter, stream).upload()
    return result, data, str(created.id)


@pytest.mark.parametrize("nth", [2, 3], ids=["middle-range", "final-range"])
@pytest.mark.parametrize("action", [{"type": "drop"}, {"type": "cut", "afterBytes": 65536}], ids=["drop", "cut"])
async def test_large_file_upload_task_resends_the_range_in_lenient(
    make_graph: Callable[..., Any],
    lenient_server: ServerProcess,
    tokens: Callable[..., str],
    faults: Callable[..., None],
    tmp_path: Path,
    action: dict[str, Any],
    nth: int,
) -> None:
    """The task logs "Error uploading chunk" and PUTs the same range again at once; the server
    answers the repeat of a committed range (drop) with the status, or takes it (cut)."""
    faults(lenient_server, {"match": {"operation": "uploadSession.put", "nth": nth}, "action": action})
    result, data, message_id = await lfu_upload(make_graph, lenient_server, tmp_path)
    assert result.upload_succeeded
    assert fault_counts(lenient_server)[0][1] == 1
    assert attachment_values(lenient_server, tokens(lenient_server), message_id) == [data]


def o365_draft_with(make_o365: Callable[..., Any], server: ServerProcess, tmp_path: Path) -> tuple[Any, bytes]:
    account = make_o365(server)
    message = account.mailbox().new_message()
    message.subject = f"O365 {uuid.uuid4().hex[:6]}"
    assert message.save_draft() is True
    data = random.Random(O365_SIZE).randbytes(O365_SIZE)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    message.attachments.add([path])
    return message, data


@pytest.mark.parametrize(
    ("action", "nth"),
    [({"type": "drop"}, 2), ({"type": "cut", "afterBytes": 65536}, 2), ({"type": "cut", "afterBytes": 65536}, 4)],
    ids=["drop-middle-range", "cut-middle-range", "cut-final-range"],
)
async def test_o365_retries_the_range_and_recovers(
    make_o365: Callable[..., Any],
    outlook_server: ServerProcess,
    tokens: Callable[..., str],
    faults: Callable[..., None],
    tmp_path: Path,
    action: dict[str, Any],
    nth: int,
) -> None:
    """urllib3 retries the PUT (an idempotent method); the retried range is taken, or, when the
    dropped range was committed, answered with the session's status."""
    message, data = o365_draft_with(make_o365, outlook_server, tmp_path)
    faults(outlook_server, {"match": {"operation": "uploadSession.put", "nth": nth}, "action": action})
    assert message.save_draft() is True
    assert fault_counts(outlook_server)[0][1] == 1
    assert attachment_values(outlook_server, tokens(outlook_server), message.object_id) == [data]


async def test_o365_raises_404_when_the_final_acknowledgement_is_lost(
    make_o365: Callable[..., Any],
    outlook_server: ServerProcess,
    lenient_server: ServerProcess,
    tokens: Callable[..., str],
    faults: Callable[..., None],
    tmp_path: Path,
) -> None:
    """Outlook consumed the session with the final range; urllib3's retry of that PUT gets 404 and
    ``save_draft`` raises although the attachment is there, once. ``lenient`` answers the 201 again."""
    message, data = o365_draft_with(make_o365, outlook_server, tmp_path)
    faults(outlook_server, {"match": {"operation": "uploadSession.put", "nth": 4}, "action": {"type": "drop"}})
    with pytest.raises(requests.HTTPError, match="^404 Client Error"):
        message.save_draft()
    assert attachment_values(outlook_server, tokens(outlook_server), message.object_id) == [data]

    message, data = o365_draft_with(make_o365, lenient_server, tmp_path)
    faults(lenient_server, {"match": {"operation": "uploadSession.put", "nth": 4}, "action": {"type": "drop"}})
    assert message.save_draft() is True
    assert attachment_values(lenient_server, tokens(lenient_server), message.object_id) == [data]
