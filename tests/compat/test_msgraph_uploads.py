"""msgraph-sdk ``create_upload_session`` + msgraph-core ``LargeFileUploadTask`` on a draft and an event.

``--profile lenient`` bends the two points the task needs (docs/fidelity.md, "nextExpectedRanges in lenient" and "PUT after completion") and the upload
completes byte-exact. The default ``outlook`` profile answers like Outlook, and the task fails
exactly as msgraph-sdk-python-core #691 (multi-chunk: ``int('')``) and #718 (the extra PUT after
completion) report against the real service.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.attachment_item import AttachmentItem
from msgraph.generated.models.attachment_type import AttachmentType
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.event import Event
from msgraph.generated.models.message import Message
from msgraph.generated.models.upload_session import UploadSession
from msgraph.generated.users.item.events.item.attachments.create_upload_session import (
    create_upload_session_post_request_body as event_session,
)
from msgraph.generated.users.item.messages.item.attachments.create_upload_session import (
    create_upload_session_post_request_body as message_session,
)
from msgraph_core.tasks.large_file_upload import LargeFileUploadTask
from tests.compat.test_msgraph_attachments import value_bytes
from tests.helpers import ADELE, ServerProcess

MiB = 1024 * 1024
CHUNK = 5 * MiB  # LargeFileUploadTask's default max_chunk_size


def payload(tmp_path: Path, size: int) -> Path:
    path = tmp_path / f"report-{size}.bin"
    path.write_bytes(random.Random(size).randbytes(size))
    return path


async def new_item(client: Any, kind: str) -> Any:
    user = client.users.by_user_id(ADELE)
    subject = f"large {uuid.uuid4().hex[:6]}"
    if kind == "message":
        created = await user.messages.post(Message(subject=subject))
        return user.messages.by_message_id(created.id)
    created = await user.events.post(
        Event(
            subject=subject,
            start=DateTimeTimeZone(date_time="2031-08-01T09:00:00", time_zone="UTC"),
            end=DateTimeTimeZone(date_time="2031-08-01T10:00:00", time_zone="UTC"),
        )
    )
    return user.events.by_event_id(created.id)


async def create_session(item: Any, kind: str, name: str, size: int) -> UploadSession:
    module = message_session if kind == "message" else event_session
    body = module.CreateUploadSessionPostRequestBody(
        attachment_item=AttachmentItem(
            attachment_type=AttachmentType.File, name=name, size=size, content_type="application/pdf"
        )
    )
    session = await item.attachments.create_upload_session.post(body)
    assert isinstance(session, UploadSession)
    assert session.upload_url and session.expiration_date_time is not None
    assert session.expiration_date_time.tzinfo is not None
    assert session.next_expected_ranges == ["0-"]
    return session


async def attachments_named(item: Any, name: str) -> list[Any]:
    query = item.attachments.AttachmentsRequestBuilderGetQueryParameters(select=["name", "size", "contentType"])
    listed = await item.attachments.get(request_configuration=RequestConfiguration(query_parameters=query))
    return [a for a in listed.value if a.name == name]


@pytest.fixture(params=["message", "event"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("size", [3 * MiB + 17, 12 * MiB + 5], ids=["one-chunk", "three-chunks"])
async def test_large_file_upload_task_completes_in_lenient(
    make_graph: Callable[..., Any], lenient_server: ServerProcess, tmp_path: Path, kind: str, size: int
) -> None:
    client = make_graph(lenient_server)
    item = await new_item(client, kind)
    path = payload(tmp_path, size)
    session = await create_session(item, kind, path.name, size)
    seen: list[Any] = []
    with path.open("rb") as stream:
        task = LargeFileUploadTask(session, client.request_adapter, stream)
        result = await task.upload(lambda uploaded: seen.append(uploaded))
    assert result.upload_succeeded
    assert result.location == session.upload_url  # the task reports the upload URL, not Location
    # The callback runs per acknowledged intermediate range; a 201 (no body) never reaches it.
    assert len(seen) == (size - 1) // CHUNK
    found = await attachments_named(item, path.name)
    assert len(found) == 1  # the repeated final PUT created nothing twice
    assert found[0].content_type == "application/pdf"
    assert found[0].size > size  # Exchange's stored size
    assert await value_bytes(client, item.attachments.by_attachment_id(found[0].id)) == path.read_bytes()


async def test_large_file_upload_task_fails_in_outlook_like_issue_691(
    make_graph: Callable[..., Any], tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Outlook answers ``"nextExpectedRanges": ["5242880"]``; the task appends ``-`` and parses ``int('')``."""
    client = make_graph()
    item = await new_item(client, kind)
    path = payload(tmp_path, 2 * CHUNK + 11)
    session = await create_session(item, kind, path.name, path.stat().st_size)
    with path.open("rb") as stream, caplog.at_level(logging.ERROR):
        task = LargeFileUploadTask(session, client.request_adapter, stream)
        with pytest.raises(ValueError, match=r"^invalid literal for int\(\) with base 10: ''$"):
            await task.upload()
    logged = [r.getMessage() for r in caplog.records]
    assert "Error uploading chunk  invalid literal for int() with base 10: ''" in logged
    assert await attachments_named(item, path.name) == []  # only the first range ever arrived


async def test_large_file_upload_task_single_chunk_raises_after_success_like_issue_718(
    make_graph: Callable[..., Any], tmp_path: Path, kind: str
) -> None:
    """The completing PUT succeeds (201); the task's extra PUT hits the consumed session and raises."""
    client = make_graph()
    item = await new_item(client, kind)
    path = payload(tmp_path, 3 * MiB + 1)
    session = await create_session(item, kind, path.name, path.stat().st_size)
    with path.open("rb") as stream:
        task = LargeFileUploadTask(session, client.request_adapter, stream)
        with pytest.raises(APIError) as info:
            await task.upload()
    assert info.value.response_status_code == 404
    assert info.value.message == (
        "The server returned an unexpected status code and no error class is registered for this code 404"
    )
    found = await attachments_named(item, path.name)
    assert len(found) == 1  # "uploads the file but throws" (#718)
    assert await value_bytes(client, item.attachments.by_attachment_id(found[0].id)) == path.read_bytes()
