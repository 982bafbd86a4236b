"""File attachments on a draft and an event through msgraph-sdk: POST, GET (with and without $select),
list, ``$value`` through the request adapter, DELETE."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.models.attachment import Attachment
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.event import Event
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from tests.helpers import ADELE

MENU = b"mac and cheese today"  # the 20 bytes of the docs' menu.txt (the event-post-attachments example, beta)
PNG = bytes(range(256)) * 40


async def parent(client: Any, kind: str) -> Any:
    """A new draft or event of Adele's; returns its request builder under /users/{upn}."""
    user = client.users.by_user_id(ADELE)
    if kind == "message":
        created = await user.messages.post(Message(subject=f"attach {uuid.uuid4().hex[:6]}"))
        return user.messages.by_message_id(created.id)
    created = await user.events.post(
        Event(
            subject=f"attach {uuid.uuid4().hex[:6]}",
            start=DateTimeTimeZone(date_time="2031-07-01T09:00:00", time_zone="UTC"),
            end=DateTimeTimeZone(date_time="2031-07-01T09:30:00", time_zone="UTC"),
        )
    )
    return user.events.by_event_id(created.id)


async def value_bytes(client: Any, item_builder: Any) -> bytes:
    """``GET .../attachments/{id}/$value`` through the SDK's own adapter (the SDK has no builder for it)."""
    info = RequestInformation(
        Method.GET, item_builder.url_template.split("{?")[0] + "/$value", item_builder.path_parameters
    )
    info.headers.try_add("Accept", "application/octet-stream, application/json")
    content = await client.request_adapter.send_primitive_async(info, "bytes", {"XXX": ODataError})
    assert isinstance(content, bytes)
    return content


@pytest.fixture(params=["message", "event"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_msgraph_post_file_attachment_returns_a_typed_file_attachment(
    make_graph: Callable[..., Any], kind: str
) -> None:
    client = make_graph()
    item = await parent(client, kind)
    created = await item.attachments.post(
        FileAttachment(name="menu.txt", content_type="text/plain", content_bytes=MENU)
    )
    assert isinstance(created, FileAttachment)  # only with "@odata.type": "#microsoft.graph.fileAttachment"
    assert created.odata_type == "#microsoft.graph.fileAttachment"
    assert created.id
    assert created.name == "menu.txt" and created.content_type == "text/plain"
    assert created.content_bytes == MENU
    assert created.size == 178  # Exchange's stored size for these 20 bytes (the event-post-attachments example, beta)
    assert created.is_inline is False
    assert created.last_modified_date_time is not None and created.last_modified_date_time.tzinfo is not None
    assert set(created.additional_data) <= {"@odata.context"}


async def test_msgraph_get_with_and_without_select(make_graph: Callable[..., Any], kind: str) -> None:
    client = make_graph()
    item = await parent(client, kind)
    created = await item.attachments.post(FileAttachment(name="chart.png", content_type="image/png", content_bytes=PNG))
    one = item.attachments.by_attachment_id(created.id)

    full = await one.get()
    assert isinstance(full, FileAttachment)
    assert full.content_bytes == PNG and full.content_type == "image/png" and full.size == created.size

    query = one.AttachmentItemRequestBuilderGetQueryParameters(select=["name", "contentType", "size"])
    selected = await one.get(request_configuration=RequestConfiguration(query_parameters=query))
    assert isinstance(selected, FileAttachment)  # @odata.type sent although not selected (the walkthrough)
    assert selected.id == created.id
    assert (selected.name, selected.content_type, selected.size) == ("chart.png", "image/png", created.size)
    assert selected.content_bytes is None
    assert selected.last_modified_date_time is None and selected.is_inline is None


async def test_msgraph_list_includes_content_bytes(make_graph: Callable[..., Any], kind: str) -> None:
    client = make_graph()
    item = await parent(client, kind)
    first = await item.attachments.post(
        FileAttachment(name="a.txt", content_type="text/plain", content_bytes=b"A" * 10)
    )
    second = await item.attachments.post(FileAttachment(name="b.bin", content_bytes=PNG))
    listed = await item.attachments.get()
    by_id = {a.id: a for a in listed.value}
    assert set(by_id) == {first.id, second.id}
    assert all(isinstance(a, FileAttachment) for a in listed.value)
    assert by_id[first.id].content_bytes == b"A" * 10
    assert by_id[second.id].content_bytes == PNG
    parent_item = await item.get()
    assert parent_item.has_attachments is True


async def test_msgraph_value_through_the_request_adapter(make_graph: Callable[..., Any], kind: str) -> None:
    client = make_graph()
    item = await parent(client, kind)
    created = await item.attachments.post(FileAttachment(name="chart.png", content_type="image/png", content_bytes=PNG))
    assert await value_bytes(client, item.attachments.by_attachment_id(created.id)) == PNG


async def test_msgraph_delete_then_get_is_404(make_graph: Callable[..., Any], kind: str) -> None:
    client = make_graph()
    item = await parent(client, kind)
    created = await item.attachments.post(FileAttachment(name="menu.txt", content_bytes=MENU))
    one = item.attachments.by_attachment_id(created.id)
    await one.delete()
    with pytest.raises(ODataError) as info:
        await one.get()
    assert info.value.response_status_code == 404
    assert info.value.error.code == "ErrorItemNotFound"
    listed = await item.attachments.get()
    assert listed.value == []
    assert (await item.get()).has_attachments is False


async def test_msgraph_post_without_odata_type_is_422(make_graph: Callable[..., Any]) -> None:
    """The base ``Attachment`` serialises no ``@odata.type``: Graph cannot build an abstract type."""
    client = make_graph()
    item = await parent(client, "message")
    with pytest.raises(ODataError) as info:
        await item.attachments.post(Attachment(name="menu.txt"))
    assert info.value.response_status_code == 422
    assert info.value.error.code == "UnprocessableType"
