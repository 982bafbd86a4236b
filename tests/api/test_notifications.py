"""Change notifications delivered to a real receiver: shapes, which changes notify whom, order,
batching, and Graph's delivery rules (retries with backoff, drop and ``missed``, lifecycle events).

https://learn.microsoft.com/graph/change-notifications-delivery-webhooks,
https://learn.microsoft.com/graph/outlook-change-notifications-overview,
https://learn.microsoft.com/graph/change-notifications-lifecycle-events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from graphattach.testing.receiver import Receiver
from tests.api.notification_support import about, file_attachment, lifecycle_event, subscribe, wait_for
from tests.api.test_messages import unique
from tests.helpers import ADELE, ALEX, Graph


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def to(*addresses: str) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": a}} for a in addresses]


async def user_id(graph: Graph, user: str) -> str:
    return str((await graph.get("/me", user=user)).json()["id"])


async def find_in_inbox(graph: Graph, user: str, subject: str) -> dict[str, Any]:
    page = (await graph.get("/me/mailFolders/inbox/messages?$top=50&$select=subject", user=user)).json()
    return next(m for m in page["value"] if m["subject"] == subject)


async def deliveries(graph: Graph, subscription_id: str) -> list[dict[str, Any]]:
    body = (await graph.admin("GET", f"/deliveries?subscriptionId={subscription_id}")).json()
    return list(reversed(body["value"]))  # oldest first


async def wait_deliveries(graph: Graph, subscription_id: str, count: int) -> list[dict[str, Any]]:
    """Poll the delivery log until it holds ``count`` attempts (a bound, not a timing assertion)."""
    for _ in range(300):
        found = await deliveries(graph, subscription_id)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"only {len(found)} deliveries: {found}")


async def advance(graph: Graph, seconds: float) -> None:
    response = await graph.admin("POST", "/clock", json={"advanceSeconds": seconds})
    assert response.status_code == 200
    graph.forget_tokens()  # tokens are checked against the server's clock


async def test_a_message_arrives_with_attachments(graph: Graph, receiver: Receiver) -> None:
    """The whole flow: subscribe, another user sends mail with attachments, the receiver is told,
    fetches the message and its attachments byte for byte, renews, deletes."""
    sub = await subscribe(graph, receiver, resource="me/mailFolders('inbox')/messages", change_type="created")
    adele_id = await user_id(graph, ADELE)
    tenant = (await graph.admin("GET", "/info")).json()["tenantId"]
    subject = unique("report")
    payloads = {"report.pdf": b"%PDF-1.4 " + bytes(range(256)) * 40, "notes.txt": "größe ✓".encode()}
    sent = await graph.post(
        "/me/sendMail",
        user=ALEX,
        json={
            "message": {
                "subject": subject,
                "toRecipients": to(ADELE),
                "attachments": [file_attachment(name, data) for name, data in payloads.items()],
            }
        },
    )
    assert sent.status_code == 202, sent.text
    message = await find_in_inbox(graph, ADELE, subject)
    notification = await wait_for(receiver, about(message["id"]))
    assert list(notification) == [
        "subscriptionId",
        "subscriptionExpirationDateTime",
        "changeType",
        "resource",
        "resourceData",
        "clientState",
        "tenantId",
    ]
    assert notification["subscriptionId"] == sub["id"]
    assert notification["subscriptionExpirationDateTime"] == sub["expirationDateTime"]
    assert notification["changeType"] == "created"
    assert notification["clientState"] == "secret-state"
    assert notification["tenantId"] == tenant
    assert notification["resource"] == f"Users/{adele_id}/Messages/{message['id']}"
    data = notification["resourceData"]
    assert data["@odata.type"] == "#Microsoft.Graph.Message"
    assert data["@odata.id"] == notification["resource"]
    assert data["id"] == message["id"]
    fetched = (await graph.get(f"/{notification['resource']}?$select=subject,hasAttachments")).json()
    assert fetched["subject"] == subject and fetched["hasAttachments"] is True
    assert data["@odata.etag"] == (await graph.get(f"/me/messages/{message['id']}")).json()["@odata.etag"]
    attachments = (await graph.get(f"/{notification['resource']}/attachments?$select=name")).json()["value"]
    assert sorted(a["name"] for a in attachments) == sorted(payloads)
    for attachment in attachments:
        raw = await graph.get(f"/{notification['resource']}/attachments/{attachment['id']}/$value")
        assert raw.content == payloads[attachment["name"]]
    # only one notification for the new message, even though its attachments were added one by one
    assert len([n for n in receiver.notifications() if about(message["id"])(n)]) == 1

    renewed = await graph.patch(
        f"/subscriptions/{sub['id']}", json={"expirationDateTime": sub["expirationDateTime"][:-8] + "9999999Z"}
    )
    assert renewed.status_code == 200, renewed.text
    assert (await graph.delete(f"/subscriptions/{sub['id']}")).status_code == 204


async def test_every_change_of_a_message_in_order(graph: Graph, receiver: Receiver) -> None:
    sub = await subscribe(graph, receiver, resource="me/messages")
    try:
        draft = (
            await graph.post(
                "/me/messages",
                json={"subject": unique("draft"), "attachments": [file_attachment("a.txt", b"one")]},
            )
        ).json()
        await graph.patch(f"/me/messages/{draft['id']}", json={"subject": unique("renamed")})
        added = await graph.post(f"/me/messages/{draft['id']}/attachments", json=file_attachment("b.txt", b"two"))
        assert added.status_code == 201
        removed = await graph.delete(f"/me/messages/{draft['id']}/attachments/{added.json()['id']}")
        assert removed.status_code == 204
        assert (await graph.delete(f"/me/messages/{draft['id']}")).status_code == 204
        await wait_for(receiver, about(draft["id"], "deleted"))
        mine = [n for n in receiver.notifications() if about(draft["id"])(n)]
        assert [n["changeType"] for n in mine] == ["created", "updated", "updated", "updated", "deleted"]
        etags = [n["resourceData"]["@odata.etag"] for n in mine]
        assert etags[0] != etags[1]  # the PATCH gave the message a new change key
    finally:
        await graph.delete(f"/subscriptions/{sub['id']}")


async def test_folder_subscriptions_see_moves(graph: Graph, receiver: Receiver) -> None:
    with Receiver() as sent_receiver:
        drafts = await subscribe(graph, receiver, resource="me/mailFolders('drafts')/messages")
        sent = await subscribe(graph, sent_receiver, resource="me/mailFolders('sentitems')/messages")
        try:
            draft = (
                await graph.post("/me/messages", json={"subject": unique("move"), "toRecipients": to(ALEX)})
            ).json()
            assert (await graph.post(f"/me/messages/{draft['id']}/send")).status_code == 202
            await wait_for(receiver, about(draft["id"], "deleted"))
            created_in_sent = await wait_for(sent_receiver, about(draft["id"]))
            assert created_in_sent["changeType"] == "created"
            in_drafts = [n["changeType"] for n in receiver.notifications() if about(draft["id"])(n)]
            assert in_drafts == ["created", "deleted"]
        finally:
            await graph.delete(f"/subscriptions/{drafts['id']}")
            await graph.delete(f"/subscriptions/{sent['id']}")


async def test_change_types_filter_and_mailboxes_stay_apart(graph: Graph, receiver: Receiver) -> None:
    only_deleted = await subscribe(graph, receiver, resource="me/messages", change_type="deleted")
    try:
        first = (await graph.post("/me/messages", json={"subject": unique("kept")})).json()
        await graph.patch(f"/me/messages/{first['id']}", json={"subject": unique("kept2")})
        # Alex's mailbox is not Adele's
        alex = (await graph.post("/me/messages", json={"subject": unique("alex")}, user=ALEX)).json()
        await graph.delete(f"/me/messages/{alex['id']}", user=ALEX)
        second = (await graph.post("/me/messages", json={"subject": unique("gone")})).json()
        await graph.delete(f"/me/messages/{second['id']}")
        await wait_for(receiver, about(second["id"], "deleted"))
        seen = {n["resourceData"]["id"] for n in receiver.notifications() if n["subscriptionId"] == only_deleted["id"]}
        assert seen == {second["id"]}
        await graph.delete(f"/me/messages/{first['id']}")
    finally:
        await graph.delete(f"/subscriptions/{only_deleted['id']}")


async def test_events(graph: Graph, receiver: Receiver) -> None:
    sub = await subscribe(graph, receiver, resource="me/events", change_type="created,updated")
    try:
        event = (
            await graph.post(
                "/me/events",
                json={
                    "subject": unique("review"),
                    "start": {"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"},
                    "end": {"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"},
                },
            )
        ).json()
        notification = await wait_for(receiver, about(event["id"], "created"))
        assert notification["resourceData"]["@odata.type"] == "#Microsoft.Graph.Event"
        assert "/Events/" in notification["resource"]
        await graph.post(f"/me/events/{event['id']}/attachments", json=file_attachment("agenda.txt", b"1. hi"))
        await wait_for(receiver, about(event["id"], "updated"))
        await graph.delete(f"/me/events/{event['id']}")
    finally:
        await graph.delete(f"/subscriptions/{sub['id']}")


async def test_delivery_log(graph: Graph, receiver: Receiver) -> None:
    sub = await subscribe(graph, receiver)
    try:
        draft = (await graph.post("/me/messages", json={"subject": unique("logged")})).json()
        await wait_for(receiver, about(draft["id"]))
        log = await wait_deliveries(graph, sub["id"], 1)
        assert log[0]["status"] == 202 and log[0]["kind"] == "change" and log[0]["attempt"] == 1
        assert log[0]["url"] == receiver.url and log[0]["latencyMs"] >= 0 and log[0]["error"] is None
        await graph.delete(f"/me/messages/{draft['id']}")
    finally:
        await graph.delete(f"/subscriptions/{sub['id']}")


# ---- delivery rules, on a clock of the test's own (in-process) --------------------------------------


async def test_failing_receiver_is_retried_with_backoff(inprocess_graph: Graph, receiver: Receiver) -> None:
    graph = inprocess_graph
    receiver.behaviour.status = 500
    sub = await subscribe(graph, receiver)
    first = (await graph.post("/me/messages", json={"subject": unique("retry")})).json()
    second = (await graph.post("/me/messages", json={"subject": unique("retry2")})).json()
    log = await wait_deliveries(graph, sub["id"], 1)
    assert log[0]["status"] == 500 and log[0]["error"] == "HTTP 500"
    # nothing is tried again before the backoff has passed
    await graph.admin("POST", "/notifications/dispatch")
    assert len(await deliveries(graph, sub["id"])) == len(log)
    await advance(graph, 31)
    log = await wait_deliveries(graph, sub["id"], 2)
    assert log[1]["attempt"] == 2 and log[1]["status"] == 500
    receiver.behaviour.status = 202
    await advance(graph, 61)
    await wait_for(receiver, about(second["id"]))
    # in order, in one POST with the first
    ids = [n["resourceData"]["id"] for n in receiver.notifications()]
    assert ids.index(first["id"]) < ids.index(second["id"])
    delivered = receiver.received[-1].body["value"]
    assert [n["resourceData"]["id"] for n in delivered][-2:] == [first["id"], second["id"]]
    log = await wait_deliveries(graph, sub["id"], 3)
    assert log[-1]["status"] == 202 and log[-1]["attempt"] == 3 and log[-1]["count"] >= 2


async def test_receiver_down_for_hours_drops_and_sends_missed(inprocess_graph: Graph, receiver: Receiver) -> None:
    graph = inprocess_graph
    with Receiver() as lifecycle_receiver:
        sub = await subscribe(graph, receiver, minutes=600)
        # the lifecycle URL is set at creation only: a second subscription carries one
        lifecycle_sub = (
            await graph.post(
                "/subscriptions",
                json={
                    "changeType": "created",
                    "notificationUrl": receiver.url,
                    "lifecycleNotificationUrl": lifecycle_receiver.url,
                    "resource": "me/messages",
                    "expirationDateTime": sub["expirationDateTime"],
                    "clientState": "lc",
                },
            )
        ).json()
        receiver.behaviour.status = 503
        lost = (await graph.post("/me/messages", json={"subject": unique("lost")})).json()
        await wait_deliveries(graph, lifecycle_sub["id"], 1)
        for _ in range(25):  # four hours and more, in steps of the longest backoff
            await advance(graph, 600)
            await graph.admin("POST", "/notifications/dispatch")
        missed = await wait_for(lifecycle_receiver, lifecycle_event(lifecycle_sub["id"], "missed"))
        assert list(missed) == [
            "subscriptionId",
            "subscriptionExpirationDateTime",
            "lifecycleEvent",
            "clientState",
            "tenantId",
        ]
        assert missed["clientState"] == "lc"
        # dropped: the receiver, back, gets later notifications but not the lost one
        receiver.behaviour.status = 202
        later = (await graph.post("/me/messages", json={"subject": unique("later")})).json()
        await wait_for(receiver, about(later["id"]))
        assert not [n for n in receiver.notifications() if about(lost["id"])(n)]
        attempts = await deliveries(graph, sub["id"])
        assert len(attempts) > 10 and all(a["status"] == 503 for a in attempts[:-1])
        # the subscription without a lifecycle URL just lost them
        assert not [n for n in lifecycle_receiver.notifications() if n["subscriptionId"] == sub["id"]]


async def test_slow_receiver_counts_as_failed(inprocess_graph: Graph, receiver: Receiver) -> None:
    graph = inprocess_graph
    sub = await subscribe(graph, receiver)
    receiver.behaviour.delay = 3.5  # Graph waits 3 seconds
    draft = (await graph.post("/me/messages", json={"subject": unique("slow")})).json()
    log = await wait_deliveries(graph, sub["id"], 1)
    assert log[0]["status"] is None and "Timeout" in log[0]["error"]
    receiver.behaviour.delay = 0
    await advance(graph, 31)
    log = await wait_deliveries(graph, sub["id"], 2)
    assert log[1]["status"] == 202
    assert about(draft["id"])(receiver.notifications()[-1])


async def test_receiver_down_then_back(inprocess_graph: Graph) -> None:
    graph = inprocess_graph
    first = Receiver().start()
    port = first.port
    sub = await subscribe(graph, first)
    first.stop()
    draft = (await graph.post("/me/messages", json={"subject": unique("down")})).json()
    log = await wait_deliveries(graph, sub["id"], 1)
    assert log[0]["status"] is None and log[0]["error"]
    with Receiver(port=port) as back:
        await advance(graph, 31)
        notification = await wait_for(back, about(draft["id"]))
        assert notification["changeType"] == "created"


async def test_lifecycle_reauthorization_removal_and_expiry(inprocess_graph: Graph, receiver: Receiver) -> None:
    graph = inprocess_graph
    sub = await subscribe(graph, receiver, lifecycle=True, minutes=30)
    await advance(graph, 16 * 60)  # 14 minutes left
    await graph.admin("POST", "/notifications/dispatch")
    await wait_for(receiver, lifecycle_event(sub["id"], "reauthorizationRequired"))
    # renewing settles it; removal by the service tells the app
    renewed = await graph.patch(
        f"/subscriptions/{sub['id']}", json={"expirationDateTime": sub["expirationDateTime"][:-8] + "0000000Z"}
    )
    assert renewed.status_code == 200, renewed.text
    assert (await graph.admin("POST", f"/subscriptions/{sub['id']}/remove")).status_code == 204
    await wait_for(receiver, lifecycle_event(sub["id"], "subscriptionRemoved"))
    assert (await graph.get(f"/subscriptions/{sub['id']}")).status_code == 404

    # an expired subscription is gone and tells nobody anything
    short = await subscribe(graph, receiver, minutes=5)
    await advance(graph, 6 * 60)
    await graph.admin("POST", "/notifications/dispatch")
    assert (await graph.get(f"/subscriptions/{short['id']}")).status_code == 404
    listed = (await graph.admin("GET", "/subscriptions")).json()["value"]
    assert short["id"] not in {s["id"] for s in listed}


async def test_batches_to_one_receiver_keep_order(inprocess_graph: Graph, receiver: Receiver) -> None:
    graph = inprocess_graph
    sub = await subscribe(graph, receiver, change_type="created")
    created = [(await graph.post("/me/messages", json={"subject": unique(f"n{n}")})).json()["id"] for n in range(20)]
    await wait_for(receiver, about(created[-1]))
    ids = [n["resourceData"]["id"] for n in receiver.notifications() if n["subscriptionId"] == sub["id"]]
    assert ids == created


async def test_reauthorization_follows_the_token(inprocess_graph: Graph, receiver: Receiver) -> None:
    """``reauthorizationRequired`` also comes before the token behind the subscription expires;
    ``/reauthorize`` with a fresh token puts a new token behind it."""
    graph = inprocess_graph
    short = await graph.token(ADELE, lifetime=20 * 60)
    sub = await subscribe(graph, receiver, lifecycle=True, minutes=600, token=short, user=None)
    await advance(graph, 6 * 60)  # the token has 14 minutes left, the subscription hours
    await graph.admin("POST", "/notifications/dispatch")
    await wait_for(receiver, lifecycle_event(sub["id"], "reauthorizationRequired"))
    assert (await graph.post(f"/subscriptions/{sub['id']}/reauthorize")).status_code == 204
    await graph.admin("POST", "/notifications/dispatch")
    # a new, hour-long token stands behind it: nothing more is due; a change still arrives
    draft = (await graph.post("/me/messages", json={"subject": unique("after")})).json()
    await wait_for(receiver, about(draft["id"]))
    asked = [n for n in receiver.notifications() if lifecycle_event(sub["id"], "reauthorizationRequired")(n)]
    assert len(asked) == 1


async def test_move_and_copy(graph: Graph, receiver: Receiver) -> None:
    """A move gives the message a new id (message-move.md): ``created`` for the new, ``deleted``
    for the old; a copy is ``created``."""
    sub = await subscribe(graph, receiver, resource="me/messages")
    try:
        draft = (await graph.post("/me/messages", json={"subject": unique("mv")})).json()
        copied = await graph.post(f"/me/messages/{draft['id']}/copy", json={"destinationId": "inbox"})
        assert copied.status_code == 201, copied.text
        moved = await graph.post(f"/me/messages/{draft['id']}/move", json={"destinationId": "deleteditems"})
        assert moved.status_code == 201, moved.text
        await wait_for(receiver, about(copied.json()["id"], "created"))
        await wait_for(receiver, about(moved.json()["id"], "created"))
        await wait_for(receiver, about(draft["id"], "deleted"))
        await graph.delete(f"/me/messages/{copied.json()['id']}")
        await graph.delete(f"/me/messages/{moved.json()['id']}")
    finally:
        await graph.delete(f"/subscriptions/{sub['id']}")


async def test_subscriptions_sharing_a_url_share_a_post(
    inprocess_graph: Graph, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Graph's ``value`` array mixes subscriptions that share a notificationUrl
    (https://learn.microsoft.com/graph/change-notifications-delivery-webhooks): the runs of every
    subscription due at one URL go in one POST (bounded), each subscription's in order, and a
    failed POST is retried per subscription."""
    graph = inprocess_graph
    first = await subscribe(graph, receiver, change_type="created")
    second = await subscribe(graph, receiver, change_type="created,updated")
    mine = {first["id"], second["id"]}
    # one change, one transaction: both subscriptions' notifications are due together
    draft = (await graph.post("/me/messages", json={"subject": unique("shared")})).json()
    await wait_for(receiver, about(draft["id"]))
    posts = [p.body["value"] for p in receiver.received if isinstance(p.body, dict)]
    assert [sorted(n["subscriptionId"] for n in values) for values in posts] == [sorted(mine)]
    for n in posts[0]:
        assert n["clientState"] == "secret-state" and n["resourceData"]["id"] == draft["id"]

    # a failed POST counts against each subscription in it; each is retried, in its own order
    receiver.behaviour.status = 500
    made = [(await graph.post("/me/messages", json={"subject": unique(f"r{n}")})).json()["id"] for n in range(3)]
    for sub in mine:
        log = await wait_deliveries(graph, sub, 2)
        assert log[-1]["status"] == 500 and log[-1]["attempt"] == 1
    receiver.behaviour.status = 202
    await advance(graph, 31)
    await wait_for(receiver, lambda n: n["resourceData"]["id"] == made[-1] and n["subscriptionId"] == first["id"])
    await wait_for(receiver, lambda n: n["resourceData"]["id"] == made[-1] and n["subscriptionId"] == second["id"])
    for sub in mine:
        ids = [n["resourceData"]["id"] for n in receiver.notifications() if n["subscriptionId"] == sub]
        assert ids == [draft["id"], *made]
        log = await wait_deliveries(graph, sub, 3)  # the log is written after the receiver answered
        assert log[2]["status"] == 202 and log[2]["attempt"] == 2 and log[2]["count"] == 3

    # bounded: with room for two notifications per POST, three subscriptions take two POSTs
    from graphattach.services import notifications

    third = await subscribe(graph, receiver, change_type="created")
    monkeypatch.setattr(notifications, "MAX_POST", 2)
    before = len(receiver.received)
    last = (await graph.post("/me/messages", json={"subject": unique("bounded")})).json()
    for sub in (*mine, third["id"]):
        await wait_for(
            receiver, lambda n, sub=sub: n["resourceData"]["id"] == last["id"] and n["subscriptionId"] == sub
        )
    sizes = sorted(len(p.body["value"]) for p in receiver.received[before:] if isinstance(p.body, dict))
    assert sizes == [1, 2]


async def test_a_create_that_fails_part_way_notifies_nothing(graph: Graph, receiver: Receiver) -> None:
    """A message whose second attachment is refused is not created (the request is all or
    nothing): its ``created`` and ``deleted`` cancel out in the outbox."""
    sub = await subscribe(graph, receiver, change_type="created,updated,deleted")
    try:
        bad = {"@odata.type": "#microsoft.graph.fileAttachment", "name": "b.txt", "contentBytes": "%%% not base64"}
        failed = await graph.post(
            "/me/messages",
            json={"subject": unique("doomed"), "attachments": [file_attachment("a.txt", b"one"), bad]},
        )
        assert failed.status_code == 400, failed.text
        fine = (await graph.post("/me/messages", json={"subject": unique("fine")})).json()
        await wait_for(receiver, about(fine["id"]))
        mine = [n for n in receiver.notifications() if n["subscriptionId"] == sub["id"]]
        assert [(n["changeType"], n["resourceData"]["id"]) for n in mine] == [("created", fine["id"])]
    finally:
        await graph.delete(f"/subscriptions/{sub['id']}")
