"""Helpers for change-notification tests: a receiver per test and subscription shortcuts."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from graphattach.testing.receiver import Receiver
from tests.helpers import ADELE, Graph


async def server_now(graph: Graph) -> datetime:
    body = (await graph.admin("GET", "/clock")).json()
    return datetime.fromisoformat(body["now"])


async def subscribe(
    graph: Graph,
    receiver: Receiver,
    *,
    resource: str = "me/messages",
    change_type: str = "created,updated,deleted",
    user: str | None = ADELE,
    lifecycle: bool = False,
    minutes: float = 60,
    **kwargs: Any,
) -> dict[str, Any]:
    now = await server_now(graph)
    body = {
        "changeType": change_type,
        "notificationUrl": receiver.url,
        "resource": resource,
        "expirationDateTime": (now + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "clientState": "secret-state",
    }
    if lifecycle:
        body["lifecycleNotificationUrl"] = receiver.url
    response = await graph.post("/subscriptions", json=body, user=user, **kwargs)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def wait_for(
    receiver: Receiver, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> dict[str, Any]:
    """The first notification ``predicate`` accepts (waits in a thread: the in-process server's
    dispatcher runs on this event loop)."""
    return await asyncio.to_thread(receiver.wait_for, predicate, timeout)


def about(item_id: str, change_type: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def match(n: dict[str, Any]) -> bool:
        data = n.get("resourceData") or {}
        return data.get("id") == item_id and (change_type is None or n.get("changeType") == change_type)

    return match


def lifecycle_event(subscription_id: str, event: str) -> Callable[[dict[str, Any]], bool]:
    return lambda n: n.get("subscriptionId") == subscription_id and n.get("lifecycleEvent") == event


def file_attachment(name: str, data: bytes) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": name,
        "contentBytes": base64.b64encode(data).decode(),
    }
