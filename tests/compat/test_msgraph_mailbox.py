"""The foundation's mailbox flow through msgraph-sdk's GraphServiceClient: users, drafts, folders, events."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.event import Event
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.mail_folder import MailFolder
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.users.item.messages.messages_request_builder import MessagesRequestBuilder
from tests.helpers import ADELE, ALEX, MEGAN


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def draft(subject: str) -> Message:
    return Message(
        subject=subject,
        body=ItemBody(content_type=BodyType.Html, content="<p>Numbers attached.</p>"),
        to_recipients=[Recipient(email_address=EmailAddress(address=ALEX, name="Alex Wilber"))],
    )


def event(subject: str) -> Event:
    return Event(
        subject=subject,
        body=ItemBody(content_type=BodyType.Text, content="Agenda attached."),
        start=DateTimeTimeZone(date_time="2031-06-02T10:00:00", time_zone="UTC"),
        end=DateTimeTimeZone(date_time="2031-06-02T11:00:00", time_zone="UTC"),
    )


async def test_msgraph_me_is_the_token_user(make_graph: Callable[..., Any]) -> None:
    client = make_graph()
    me = await client.me.get()
    assert me.user_principal_name == ADELE
    assert me.id and me.display_name
    assert set(me.additional_data) == {"@odata.context"}  # every other key is a known property


async def test_msgraph_user_by_upn_and_by_id(make_graph: Callable[..., Any]) -> None:
    client = make_graph()
    me = await client.me.get()
    by_upn = await client.users.by_user_id(ADELE).get()
    by_id = await client.users.by_user_id(me.id).get()
    assert by_upn.id == by_id.id == me.id
    assert by_upn.user_principal_name == ADELE


async def test_msgraph_other_users_entry_is_forbidden_with_default_scopes(make_graph: Callable[..., Any]) -> None:
    client = make_graph()
    with pytest.raises(ODataError) as info:
        await client.users.by_user_id(MEGAN).get()
    assert info.value.response_status_code == 403
    assert info.value.error.code == "Authorization_RequestDenied"


async def test_msgraph_unknown_user_is_an_odata_error(make_graph: Callable[..., Any]) -> None:
    client = make_graph()
    with pytest.raises(ODataError) as info:
        await client.users.by_user_id("nobody@contoso.onmicrosoft.com").get()
    assert info.value.response_status_code == 404
    assert info.value.error.code == "Request_ResourceNotFound"
    assert info.value.error.inner_error.request_id


async def test_msgraph_create_and_read_a_draft(make_graph: Callable[..., Any]) -> None:
    client = make_graph()
    subject = unique("Quarterly numbers")
    created = await client.me.messages.post(draft(subject))
    assert created.id and created.is_draft is True
    assert created.subject == subject
    assert created.to_recipients[0].email_address.address == ALEX
    assert created.body.content_type == BodyType.Html
    fetched = await client.me.messages.by_message_id(created.id).get()
    assert fetched.id == created.id and fetched.subject == subject
    same = await client.users.by_user_id(ADELE).messages.by_message_id(created.id).get()
    assert same.id == created.id
    drafts = await client.me.mail_folders.by_mail_folder_id("drafts").messages.get()
    assert created.id in [m.id for m in drafts.value]


async def test_msgraph_select_top_and_next_link(make_graph: Callable[..., Any]) -> None:
    client = make_graph()
    for i in range(3):
        await client.me.messages.post(draft(unique(f"page {i}")))
    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(select=["subject", "isDraft"], top=2)
    page = await client.me.messages.get(request_configuration=RequestConfiguration(query_parameters=query))
    assert len(page.value) == 2
    assert all(m.subject and m.id for m in page.value)
    assert all(m.body is None for m in page.value)
    assert page.odata_next_link
    following = await client.me.messages.with_url(page.odata_next_link).get()
    assert following.value
    assert not {m.id for m in page.value} & {m.id for m in following.value}


async def test_msgraph_update_and_delete_a_draft(make_graph: Callable[..., Any]) -> None:
    client = make_graph()
    created = await client.me.messages.post(draft(unique("to edit")))
    updated = await client.me.messages.by_message_id(created.id).patch(Message(subject="edited"))
    assert updated.subject == "edited"
    await client.me.messages.by_message_id(created.id).delete()
    with pytest.raises(ODataError) as info:
        await client.me.messages.by_message_id(created.id).get()
    assert info.value.response_status_code == 404
    assert info.value.error.code == "ErrorItemNotFound"


async def test_msgraph_well_known_and_custom_folders(make_graph: Callable[..., Any]) -> None:
    client = make_graph()
    folders = await client.me.mail_folders.get()
    names = {f.display_name for f in folders.value}
    assert {"Inbox", "Drafts", "Sent Items", "Deleted Items"} <= names
    inbox = await client.me.mail_folders.by_mail_folder_id("inbox").get()
    assert inbox.display_name == "Inbox"
    parent = await client.me.mail_folders.post(MailFolder(display_name=unique("Projects")))
    child = await client.me.mail_folders.by_mail_folder_id(parent.id).child_folders.post(
        MailFolder(display_name="2031")
    )
    assert child.parent_folder_id == parent.id
    children = await client.me.mail_folders.by_mail_folder_id(parent.id).child_folders.get()
    assert [f.id for f in children.value] == [child.id]
    filed = await client.me.mail_folders.by_mail_folder_id(child.id).messages.post(draft(unique("filed")))
    listed = await client.me.mail_folders.by_mail_folder_id(child.id).messages.get()
    assert [m.id for m in listed.value] == [filed.id]


async def test_msgraph_create_and_read_an_event(make_graph: Callable[..., Any]) -> None:
    client = make_graph()
    subject = unique("Planning")
    created = await client.me.events.post(event(subject))
    assert created.id and created.subject == subject
    assert created.start.date_time.startswith("2031-06-02T10:00:00")
    assert created.start.time_zone == "UTC"
    fetched = await client.me.events.by_event_id(created.id).get()
    assert fetched.subject == subject
    via_calendar = await client.me.calendar.events.by_event_id(created.id).get()
    assert via_calendar.id == created.id
    listed = await client.me.calendar.events.get()
    assert created.id in [e.id for e in listed.value]
    await client.me.events.by_event_id(created.id).delete()
    with pytest.raises(ODataError) as info:
        await client.me.events.by_event_id(created.id).get()
    assert info.value.response_status_code == 404


async def test_msgraph_traffic_is_checked_against_the_metadata(
    make_graph: Callable[..., Any], conformance: Any
) -> None:
    client = make_graph()
    await client.me.get()
    with pytest.raises(ODataError):
        await client.users.by_user_id("nobody@contoso.onmicrosoft.com").get()
    assert conformance.checked == 2
    assert conformance.failures == []
