"""Encoding subscriptions, notifications and delivery records for the persistent stores.

A subscription is one JSON document (``encode_subscription``) next to the few columns the stores
query by (user, state) and its delivery state (next attempt, lease, failures in a row).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from graphattach.domain.subscriptions import DeliveryRecord, Notification, Subscription
from graphattach.storage._common import as_utc, from_micros, to_micros

#: The outbox rows a claim hands out per subscription at most (one POST carries them).
MAX_BATCH = 100


def _dt(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def _from(value: int | None) -> datetime | None:
    return None if value is None else from_micros(value)


def encode_subscription(sub: Subscription) -> str:
    doc: dict[str, Any] = {
        "id": sub.id,
        "user_id": sub.user_id,
        "item_kind": sub.item_kind,
        "folder_id": sub.folder_id,
        "change_types": list(sub.change_types),
        "notification_url": sub.notification_url,
        "expires": _dt(sub.expires),
        "application_id": sub.application_id,
        "creator_id": sub.creator_id,
        "delegated": sub.delegated,
        "client_state": sub.client_state,
        "lifecycle_url": sub.lifecycle_url,
        "created": _dt(sub.created),
        "state": sub.state,
        "token_expires": _dt(sub.token_expires),
        "data": sub.data,
    }
    return orjson.dumps(doc).decode("utf-8")


def decode_subscription(text: str | bytes) -> Subscription:
    doc = orjson.loads(text)
    expires = _from(doc["expires"])
    created = _from(doc["created"])
    assert expires is not None and created is not None
    return Subscription(
        id=doc["id"],
        user_id=doc["user_id"],
        item_kind=doc["item_kind"],
        folder_id=doc["folder_id"],
        change_types=tuple(doc["change_types"]),
        notification_url=doc["notification_url"],
        expires=expires,
        application_id=doc["application_id"],
        creator_id=doc["creator_id"],
        delegated=doc["delegated"],
        client_state=doc["client_state"],
        lifecycle_url=doc["lifecycle_url"],
        created=created,
        state=doc["state"],
        token_expires=_from(doc["token_expires"]),
        data=doc["data"],
    )


def encode_body(body: dict[str, Any]) -> str:
    return orjson.dumps(body).decode("utf-8")


def notification_from(
    seq: int, subscription_id: str, url: str, kind: str, body: str | bytes, created: int
) -> Notification:
    return Notification(
        subscription_id=subscription_id,
        url=url,
        kind=kind,  # type: ignore[arg-type]
        body=orjson.loads(body),
        created=from_micros(created),
        seq=seq,
    )


def record_from(row: Any) -> DeliveryRecord:
    return DeliveryRecord(
        subscription_id=row["subscription_id"],
        url=row["url"],
        at=from_micros(row["at"]),
        kind=row["kind"],
        count=row["count"],
        attempt=row["attempt"],
        status=row["status"],
        latency_ms=row["latency_ms"],
        error=row["error"],
        seq=row["seq"],
    )


def utc(value: datetime) -> datetime:
    return as_utc(value)
