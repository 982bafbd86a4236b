"""Change notifications through msgraph-sdk: create, renew and delete a subscription; a receiver
gets the notification of a message another user sent and fetches the message's attachments with
the SDK, byte for byte. (msgraph-sdk has no model of the notification payload itself.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody
from tests.helpers import ADELE, ALEX

from graphattach.testing.receiver import Receiver

PAYLOADS = {"q3.csv": b"region,total\nnorth,12\n" * 200, "logo.bin": bytes(range(256)) * 64}


async def test_msgraph_subscription_flow(make_graph: Callable[..., Any]) -> None:
    adele = make_graph(user=ADELE)
    alex = make_graph(user=ALEX)
    with Receiver() as receiver:
        created = await adele.subscriptions.post(
            Subscription(
                change_type="created",
                notification_url=receiver.url,
                resource="me/mailFolders('inbox')/messages",
                expiration_date_time=datetime.now(UTC) + timedelta(hours=1),
                client_state="sdk-state",
            )
        )
        assert created is not None and created.id
        assert created.client_state == "sdk-state" and created.resource == "me/mailFolders('inbox')/messages"
        assert receiver.validations, "the handshake reached the receiver"

        subject = f"quarterly {uuid.uuid4().hex[:8]}"
        await alex.me.send_mail.post(
            SendMailPostRequestBody(
                message=Message(
                    subject=subject,
                    to_recipients=[Recipient(email_address=EmailAddress(address=ADELE))],
                    attachments=[FileAttachment(name=name, content_bytes=data) for name, data in PAYLOADS.items()],
                ),
                save_to_sent_items=False,
            )
        )
        post = await asyncio.to_thread(_wait_for_post, receiver, created.id)
        notification = post["value"][0]
        assert notification["subscriptionId"] == created.id
        assert notification["changeType"] == "created"
        assert notification["clientState"] == "sdk-state"
        message_id = notification["resourceData"]["id"]

        message = await adele.me.messages.by_message_id(message_id).get()
        assert message.subject == subject and message.has_attachments
        attachments = await adele.me.messages.by_message_id(message_id).attachments.get()
        got = {a.name: a.content_bytes for a in attachments.value}
        assert got == PAYLOADS

        renewed = await adele.subscriptions.by_subscription_id(created.id).patch(
            Subscription(expiration_date_time=datetime.now(UTC) + timedelta(hours=2))
        )
        assert renewed.expiration_date_time > created.expiration_date_time
        await adele.subscriptions.by_subscription_id(created.id).delete()
        with pytest.raises(ODataError) as info:
            await adele.subscriptions.by_subscription_id(created.id).get()
        assert info.value.response_status_code == 404


def _wait_for_post(receiver: Receiver, subscription_id: str) -> dict[str, Any]:
    """The first notification POST body for the subscription, as it arrived."""
    receiver.wait_for(lambda n: n.get("subscriptionId") == subscription_id)
    for post in receiver.received:
        if isinstance(post.body, dict) and any(n.get("subscriptionId") == subscription_id for n in post.body["value"]):
            return post.body
    raise AssertionError("no POST")
