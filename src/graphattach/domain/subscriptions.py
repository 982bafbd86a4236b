"""Change-notification subscriptions and the notifications waiting to be delivered.

Graph's properties of a subscription that the server does not reason about live in ``data``
(camelCase, as in the JSON); what matching and delivery need is a field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from graphattach.domain.models import ItemKind

ChangeType = Literal["created", "updated", "deleted"]
CHANGE_TYPES: tuple[ChangeType, ...] = ("created", "updated", "deleted")
SubscriptionState = Literal["active", "removed"]

#: The longest an Outlook message/event subscription may live. Sources disagree (4,230 minutes in
#: the 2022 docs, 10,080 in newer ones, 10,070 enforced by the live service per third-party
#: reports); docs/fidelity.md records the choice.
#: https://learn.microsoft.com/graph/api/resources/subscription#subscription-lifetime
MAX_OUTLOOK_MINUTES = 10_070
#: ``clientState`` longer than this is refused (subscription resource type).
MAX_CLIENT_STATE = 128
#: Graph calls the validation endpoint and waits this long for the echoed token.
#: https://learn.microsoft.com/graph/change-notifications-delivery-webhooks#notificationurl-validation
VALIDATION_TIMEOUT = 10.0
#: A notification endpoint must answer 2xx within this long, else the delivery failed.
#: https://learn.microsoft.com/graph/change-notifications-delivery-webhooks#receive-notifications
DELIVERY_TIMEOUT = 3.0
#: Failed deliveries are retried for up to four hours, then dropped (same page).
RETRY_PERIOD = timedelta(hours=4)
#: Backoff between attempts (choice, docs/fidelity.md): 30 s doubling, at most 10 minutes.
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(minutes=10)
#: ``reauthorizationRequired`` goes out this long before a subscription expires (choice).
REAUTHORIZE_BEFORE = timedelta(minutes=15)
#: Most Outlook subscriptions per mailbox, all apps together (Outlook change notifications overview).
MAX_PER_MAILBOX = 1000


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt (1, 2, ...)."""
    wait: timedelta = min(FIRST_BACKOFF * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)
    return wait


@dataclass(slots=True)
class Subscription:
    id: str
    #: The mailbox whose items it watches.
    user_id: str
    #: ``message`` or ``event``.
    item_kind: ItemKind
    #: The watched mail folder; None for every folder (``me/messages``, ``me/events``).
    folder_id: str | None
    change_types: tuple[str, ...]
    notification_url: str
    expires: datetime
    application_id: str
    creator_id: str
    #: The subscriber's principal was delegated (``creatorId`` is the user) or an app.
    delegated: bool
    created: datetime
    client_state: str | None = None
    lifecycle_url: str | None = None
    state: SubscriptionState = "active"
    #: When the token that created or last renewed it expires (reauthorizationRequired).
    token_expires: datetime | None = None
    #: Graph properties returned as given (resource, latestSupportedTlsVersion...).
    data: dict[str, Any] = field(default_factory=dict)


NotificationKind = Literal["change", "lifecycle"]


@dataclass(slots=True)
class Notification:
    """One notification for one subscription, waiting in the outbox (``seq`` set by the store)."""

    subscription_id: str
    url: str
    kind: NotificationKind
    #: The ``changeNotification`` object, without ``subscriptionExpirationDateTime`` (filled at
    #: delivery, so a renewal in the meantime shows).
    body: dict[str, Any]
    created: datetime
    seq: int = 0
    #: A change of an item whose notification an earlier write of the same operation queued:
    #: the store replaces that notification's body by ``merged_body`` (one notification per item
    #: per request) if it is still waiting and not being delivered, else queues ``body``.
    merge_into: int = 0
    merged_body: dict[str, Any] | None = None
    #: With ``merge_into``: the two cancel out (an item created and deleted in one request): the
    #: store deletes the earlier one and queues nothing, under the same conditions.
    cancels: bool = False


#: ``decide(generation, subscriptions)``: see ``Outbox``.
Decide = Callable[[int, "list[Subscription] | None"], "list[Notification] | None"]


@dataclass(slots=True)
class Outbox:
    """The notifications one store write makes, decided and queued inside the write's own
    transaction: a committed change has its notifications, a failed one has none.

    The store reads its subscription generation in the transaction and calls ``decide(generation,
    None)``; the caller answers from its cache of the mailbox's subscriptions when the cache is of
    that generation (nothing read: the common case, a mailbox without subscriptions, costs one
    small read), else None, and the store calls ``decide(generation, subscriptions)`` again with
    those mailboxes' subscriptions (every state) read in the same transaction."""

    #: The mailboxes whose items the write changes (a send: the sender's and the recipients').
    user_ids: tuple[str, ...]
    #: The server's time: a subscription whose lease runs past it is being delivered (a
    #: notification of it is then not merged into but queued after).
    now: datetime
    decide: Decide
    #: Told of each notification queued (its number, and whether it was merged into an earlier
    #: one), inside the transaction.
    queued: Callable[[Notification, int, bool], None] | None = None
    #: Queue them held until then (server time; ``release_notifications`` ends the hold
    #: sooner): a request still running may merge later changes into them.
    hold_until: datetime | None = None


@dataclass(slots=True)
class DeliveryState:
    """Where a subscription's delivery stands: the next attempt, the current attempt's lease, the
    failures in a row and when they began."""

    next_attempt: datetime
    attempts: int = 0
    failing_since: datetime | None = None


@dataclass(slots=True)
class Claim:
    """A subscription leased to one dispatcher with the notifications waiting for it, in order."""

    subscription: Subscription
    delivery: DeliveryState
    notifications: list[Notification]


@dataclass(slots=True)
class DeliveryRecord:
    """One POST to a receiver, for the admin API's delivery log."""

    subscription_id: str
    url: str
    at: datetime
    #: ``change``, ``lifecycle`` or ``validation``.
    kind: str
    count: int
    attempt: int
    status: int | None
    latency_ms: float
    error: str | None = None
    seq: int = 0
