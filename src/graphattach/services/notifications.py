"""Change notifications: what changed (recorded by the services where items change), which
subscriptions it concerns, and the dispatcher that POSTs the outbox to receivers.

Recording. Every store write that changes items takes an ``outbox(ctx, change...)``: the store
decides the notifications (matching the mailbox's subscriptions, cached per process by the
store's subscription generation) and queues them in the write's own transaction, so a committed
change always has its notifications, a failed one has none, and the outbox survives a restart.
Inside ``changes(ctx)`` (a request: a message created with its attachments, a send, a batch) a
later change of an item merges into the notification an earlier write queued while it still
waits, so that a new message with three attachments is one ``created``, not one ``created`` and
three ``updated``.

Matching. A subscription on a mailbox's messages (or events) sees every change of that kind; one
on a folder sees items that enter it as ``created``, leave it as ``deleted`` and change in it as
``updated`` (a message moved from Drafts to Sent Items), as Graph describes for folder
subscriptions (https://learn.microsoft.com/graph/outlook-change-notifications-overview).

Delivery (https://learn.microsoft.com/graph/change-notifications-delivery-webhooks). Every
process runs a dispatcher; the store leases each subscription with waiting notifications to one
of them at a time (``claim_notifications``), which keeps a subscription's notifications in order
and delivers each once. One POST carries the waiting notifications of every subscription claimed
in the round that shares its URL (Graph mixes subscriptions in one ``value`` array), at most
``MAX_POST`` of them, each subscription's in order; a failed POST counts against each of them.
A receiver must answer 2xx within 3 seconds; otherwise the attempt failed and the subscription's
queue waits (``backoff``) and is tried again, for up to four hours, after which its waiting
notifications are dropped and a ``missed`` lifecycle notification goes to the
``lifecycleNotificationUrl``, if any. Times come from the server's clock, so tests move it
forward instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from graphattach.domain.models import Item, replace
from graphattach.domain.subscriptions import (
    DELIVERY_TIMEOUT,
    REAUTHORIZE_BEFORE,
    RETRY_PERIOD,
    Claim,
    DeliveryRecord,
    DeliveryState,
    Notification,
    Outbox,
    Subscription,
    backoff,
)
from graphattach.protocol.jsonio import dumps, graph_datetime_7
from graphattach.protocol.subscriptions import (
    change_notification,
    delivered,
    lifecycle_notification,
    notification_collection,
)
from graphattach.storage.coordination import try_exclusive

if TYPE_CHECKING:
    from graphattach._httpx import httpx
    from graphattach.services.context import Context

log = logging.getLogger("graphattach.notifications")

#: How long a dispatcher holds a subscription it claimed (a dead holder's lease runs out).
LEASE = timedelta(seconds=60)
#: How long a request's notifications are held at most if it never ends (its process died).
HOLD = timedelta(seconds=60)
#: Subscriptions one dispatcher round claims at most (delivered concurrently).
CLAIM_LIMIT = 32
#: Notifications one POST carries at most (several subscriptions' runs for the same URL share a
#: POST up to this; a subscription's run, at most ``MAX_BATCH`` of the store, is never split).
MAX_POST = 100
#: Seconds (real time) between housekeeping rounds: expiry, reauthorizationRequired.
HOUSEKEEPING_INTERVAL = 5.0
HOUSEKEEPING_LOCK = "graphattach:notifications"


# ---- recording ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Change:
    user_id: str
    item_id: str
    item_kind: str
    #: The folder (or calendar) before and after; None: the item did not exist / no longer does.
    before: str | None
    after: str | None
    change_key: str


def created(item: Item) -> Change:
    return Change(item.user_id, item.id, item.kind, None, item.folder_id, item.change_key)


def updated(item: Item, *, previous_folder: str | None = None) -> Change:
    """The item changed (an attachment added or removed too), or moved from ``previous_folder``."""
    return Change(item.user_id, item.id, item.kind, previous_folder or item.folder_id, item.folder_id, item.change_key)


def deleted(item: Item) -> Change:
    return Change(item.user_id, item.id, item.kind, item.folder_id, None, item.change_key)


@dataclass(slots=True)
class _Operation:
    """What one operation (a request, ``changes``) queued so far: (subscription id, item id) →
    (number, body) of the latest notification, which a later change of the item merges into."""

    queued: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    #: Every notification it queued (held until it ends).
    held: set[int] = field(default_factory=set)


_operation: ContextVar[_Operation | None] = ContextVar("graphattach_notifying_operation", default=None)


@asynccontextmanager
async def changes(ctx: Context) -> AsyncIterator[None]:
    """One operation made of several store writes (a message created with its attachments, a
    send, a batch): a later change of an item merges into the notification an earlier write
    queued, so a new message with three attachments is one ``created``; the dispatcher is woken
    at the end."""
    if _operation.get() is not None:
        yield
        return
    operation = _Operation()
    token = _operation.set(operation)
    try:
        yield
    finally:
        _operation.reset(token)
        if operation.held:
            # held while the request ran (a dispatcher would otherwise claim a ``created`` the
            # request's next write merges an ``updated`` into); a dead process's hold runs out
            with contextlib.suppress(Exception):
                await ctx.metadata.release_notifications(sorted(operation.held))
            dispatcher_of(ctx).wake()


def outbox(ctx: Context, *found: Change) -> Outbox:
    """The ``Outbox`` a store write takes for the changes ``found``: the notifications are
    decided and queued in the write's transaction (a committed change always has them)."""
    cache = _cache(ctx)
    operation = _operation.get()
    now = ctx.clock.now()
    tenant_id = ctx.tenant_id
    user_ids = tuple(dict.fromkeys(c.user_id for c in found))

    def decide(generation: int, subscriptions: list[Subscription] | None) -> list[Notification] | None:
        if subscriptions is None:
            if generation != cache.generation or any(u not in cache.by_user for u in user_ids):
                return None
        else:
            if generation > cache.generation:
                cache.generation, cache.by_user = generation, {}
            if generation == cache.generation:
                mine = _active_by_user(subscriptions)
                for user_id in user_ids:
                    cache.by_user[user_id] = mine.get(user_id, {})
        by_user = cache.by_user if subscriptions is None else _active_by_user(subscriptions)
        return _notifications(found, by_user, now, tenant_id, operation)

    loop, wake = asyncio.get_running_loop(), dispatcher_of(ctx).wake

    def queued(notification: Notification, seq: int, merged: bool) -> None:
        if operation is None:
            # outside a request (the store may call from its thread): wake the dispatcher soon
            loop.call_soon_threadsafe(wake)
            return
        key = (notification.subscription_id, notification.body["resourceData"]["id"])
        if merged and notification.cancels:
            operation.queued.pop(key, None)
            return
        body = notification.merged_body if merged and notification.merged_body is not None else notification.body
        operation.queued[key] = (seq, body)
        operation.held.add(seq)

    return Outbox(user_ids, now, decide, queued, hold_until=None if operation is None else now + HOLD)


def _active_by_user(subscriptions: list[Subscription]) -> dict[str, dict[str, list[Subscription]]]:
    """The active ones by mailbox and item kind (a message change never looks at the mailbox's
    event subscriptions)."""
    found: dict[str, dict[str, list[Subscription]]] = {}
    for sub in subscriptions:
        if sub.state == "active":
            found.setdefault(sub.user_id, {}).setdefault(sub.item_kind, []).append(sub)
    return found


def _notifications(
    found: tuple[Change, ...],
    by_user: dict[str, dict[str, list[Subscription]]],
    now: datetime,
    tenant_id: str,
    operation: _Operation | None,
) -> list[Notification]:
    outbox: list[Notification] = []
    for change in found:
        for sub in by_user.get(change.user_id, {}).get(change.item_kind, ()):
            if sub.expires <= now:
                continue
            change_type = change_type_for(sub, change)
            if change_type is None or change_type not in sub.change_types:
                continue
            body = change_notification(
                change_type=change_type,
                user_id=change.user_id,
                item_kind=change.item_kind,
                item_id=change.item_id,
                change_key=change.change_key,
                tenant_id=tenant_id,
            )
            notification = Notification(sub.id, sub.notification_url, "change", body, created=now)
            earlier = None if operation is None else operation.queued.get((sub.id, change.item_id))
            if earlier is not None and change_type == "updated" and earlier[1]["changeType"] != "deleted":
                # created (or updated) then updated in one operation: one notification, the
                # earlier change type with the item's latest etag
                notification.merge_into = earlier[0]
                notification.merged_body = {**earlier[1], "resourceData": body["resourceData"]}
            elif earlier is not None and change_type == "deleted" and earlier[1]["changeType"] == "created":
                # created and deleted in one operation (a create that failed part-way): nothing
                notification.merge_into, notification.cancels = earlier[0], True
            outbox.append(notification)
    return outbox


def change_type_for(sub: Subscription, change: Change) -> str | None:
    """What ``change`` is to ``sub`` (None: nothing it watches)."""
    if sub.item_kind != change.item_kind:
        return None
    if sub.folder_id is None:
        before, after = change.before is not None, change.after is not None
    else:
        before, after = change.before == sub.folder_id, change.after == sub.folder_id
    if before and after:
        return "updated"
    if after:
        return "created"
    if before:
        return "deleted"
    return None


@dataclass(slots=True)
class _Cache:
    """Each mailbox's active subscriptions by item kind as of ``generation`` (the store's counter of
    subscription changes, read in each write's transaction): a change is matched without reading
    and decoding every subscription of its mailbox each time (1,000 on one mailbox made
    attachment POSTs 60 % slower), and a mailbox without subscriptions costs no read at all."""

    generation: int = -1
    by_user: dict[str, dict[str, list[Subscription]]] = field(default_factory=dict)


def _cache(ctx: Context) -> _Cache:
    cache = ctx.extensions.get("subscription_cache")
    if cache is None:
        cache = ctx.extensions["subscription_cache"] = _Cache()
    assert isinstance(cache, _Cache)
    return cache


async def lifecycle(ctx: Context, sub: Subscription, event: str) -> bool:
    """Queue a lifecycle notification (only where ``lifecycleNotificationUrl`` was set at
    creation, https://learn.microsoft.com/graph/change-notifications-lifecycle-events)."""
    if sub.lifecycle_url is None:
        return False
    body = lifecycle_notification(event=event, tenant_id=ctx.tenant_id)
    await ctx.metadata.enqueue_notifications(
        [Notification(sub.id, sub.lifecycle_url, "lifecycle", body, created=ctx.clock.now())]
    )
    dispatcher_of(ctx).wake()
    return True


async def remove(ctx: Context, subscription_id: str) -> bool:
    """The service removes a subscription (as when a user's password is reset): it stops at
    once, and ``subscriptionRemoved`` goes out if it asked for lifecycle notifications."""
    sub = await ctx.metadata.get_subscription(subscription_id)
    if sub is None or sub.state != "active":
        return False
    await ctx.metadata.update_subscription(replace(sub, state="removed"))
    if not await lifecycle(ctx, sub, "subscriptionRemoved"):
        await ctx.metadata.delete_subscription(sub.id)
    return True


# ---- delivery ---------------------------------------------------------------------------------------


def dispatcher_of(ctx: Context) -> Dispatcher:
    dispatcher = ctx.extensions.get("notifications")
    if dispatcher is None:
        dispatcher = ctx.extensions["notifications"] = Dispatcher(ctx)
    assert isinstance(dispatcher, Dispatcher)
    return dispatcher


class Dispatcher:
    """Delivers the outbox; one per process, started on first use or with the app."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._event: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._last_housekeeping = 0.0
        self._housekeeping_due = True
        #: Deliveries in flight (a test waits for them to settle).
        self.in_flight = 0

    def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._event = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="graphattach-notifications")

    def wake(self, *, housekeeping: bool = False) -> None:
        """Look at the outbox now (a change was queued); ``housekeeping``: expiries and
        reauthorizations too (the clock moved)."""
        if housekeeping:
            self._housekeeping_due = True
        try:
            self.start()
        except RuntimeError:  # no running loop (a synchronous caller): the next start looks
            return
        assert self._event is not None
        self._event.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            from graphattach.services.receivers import http_client

            self._client = http_client(self.ctx.settings, DELIVERY_TIMEOUT)
        return self._client

    async def _run(self) -> None:
        assert self._event is not None
        while True:
            self._event.clear()
            try:
                busy = await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:  # a store hiccup must not end delivery for good
                log.exception("notification dispatcher round failed")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.ctx.settings.notification_poll_interval):
                        await self._event.wait()

    async def round(self) -> bool:
        """Housekeeping when due, then one claim and its deliveries; True if it delivered any."""
        if self._housekeeping_due or time.monotonic() - self._last_housekeeping >= HOUSEKEEPING_INTERVAL:
            self._housekeeping_due = False
            self._last_housekeeping = time.monotonic()
            await self.housekeeping()
        now = self.ctx.clock.now()
        claims = await self.ctx.metadata.claim_notifications(now, now + LEASE, CLAIM_LIMIT)
        if not claims:
            return False
        self.in_flight += len(claims)
        try:
            await self._deliver(claims)
        finally:
            self.in_flight -= len(claims)
        return True

    async def housekeeping(self) -> None:
        """Expired subscriptions go; ``reauthorizationRequired`` before a subscription or the
        token behind it expires. One process at a time."""
        async with try_exclusive(self.ctx.metadata, HOUSEKEEPING_LOCK, wait=0.05) as leader:
            if not leader:
                return
            now = self.ctx.clock.now()
            for sub in await self.ctx.metadata.list_subscriptions():
                if sub.state != "active":
                    continue
                if sub.expires <= now:
                    await self.ctx.metadata.delete_subscription(sub.id)
                    continue
                deadline = min(sub.expires, sub.token_expires or sub.expires)
                marker = graph_datetime_7(deadline)
                if deadline - now <= REAUTHORIZE_BEFORE and sub.data.get("reauthorizeSentFor") != marker:
                    if sub.lifecycle_url is not None:
                        await self.ctx.metadata.update_subscription(
                            replace(sub, data={**sub.data, "reauthorizeSentFor": marker})
                        )
                        await lifecycle(self.ctx, sub, "reauthorizationRequired")

    async def _deliver(self, claims: list[Claim]) -> None:
        """POST the claimed notifications: each subscription's in order, one run of the same URL
        at a time; the runs of several subscriptions due at the same URL share one POST."""
        queues = [_Queue(claim) for claim in claims]
        waiting = [q for q in queues if q.runs]
        while waiting:
            by_url: dict[str, list[_Queue]] = {}
            for queue in waiting:
                by_url.setdefault(queue.head[0].url, []).append(queue)
            posts: list[tuple[str, list[_Queue]]] = []
            for url, sharing in by_url.items():
                batch: list[_Queue] = []
                size = 0
                for queue in sharing:
                    if batch and size + len(queue.head) > MAX_POST:
                        posts.append((url, batch))
                        batch, size = [], 0
                    batch.append(queue)
                    size += len(queue.head)
                posts.append((url, batch))
            await asyncio.gather(*(self._post(url, batch) for url, batch in posts))
            waiting = [q for q in waiting if q.failed is None and q.runs]
        await asyncio.gather(*(self._finish(queue) for queue in queues))

    async def _finish(self, queue: _Queue) -> None:
        """Record how far the subscription's queue got: delivered, or failed (retry or drop)."""
        sub, state, failed = queue.claim.subscription, queue.claim.delivery, queue.failed
        now = self.ctx.clock.now()
        if failed is None:
            await self.ctx.metadata.finish_delivery(sub.id, queue.delivered_through, DeliveryState(now))
            if sub.state == "removed":
                await self.ctx.metadata.delete_subscription(sub.id)
            return
        attempts = state.attempts + 1
        failing_since = state.failing_since or failed[0].created
        if now - failing_since >= RETRY_PERIOD:
            # Graph retries for up to four hours, then drops; the app learns of it by ``missed``.
            dropped = queue.claim.notifications
            await self.ctx.metadata.finish_delivery(sub.id, dropped[-1].seq, DeliveryState(now))
            log.warning("dropped %d notifications of subscription %s", len(dropped), sub.id)
            if failed[0].kind == "change" and sub.state == "active":
                await lifecycle(self.ctx, sub, "missed")
            elif sub.state == "removed":
                await self.ctx.metadata.delete_subscription(sub.id)
            return
        retry = DeliveryState(now + backoff(attempts), attempts, failing_since)
        await self.ctx.metadata.finish_delivery(sub.id, queue.delivered_through, retry)

    async def _post(self, url: str, batch: list[_Queue]) -> None:
        """One POST of the head runs of ``batch`` (subscriptions sharing ``url``); each queue
        advances on a 2xx and fails otherwise. Each subscription's delivery log gets the attempt."""
        values = [delivered(n.body, q.claim.subscription) for q in batch for n in q.head]
        body = dumps(notification_collection(values))
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            response = await self._http().post(
                url, content=body, headers={"Content-Type": "application/json; charset=utf-8"}
            )
            status = response.status_code
        except Exception as exc:  # timeouts, refused connections, TLS failures: a failed attempt
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        latency = (time.perf_counter() - started) * 1000
        ok = status is not None and 200 <= status < 300
        if not ok and error is None:
            error = f"HTTP {status}"
        at = self.ctx.clock.now()
        for queue in batch:
            head = queue.head
            with contextlib.suppress(Exception):  # the log must never fail a delivery
                await self.ctx.metadata.add_delivery_record(
                    DeliveryRecord(
                        subscription_id=queue.claim.subscription.id,
                        url=url,
                        at=at,
                        kind=head[0].kind,
                        count=len(head),
                        attempt=queue.claim.delivery.attempts + 1,
                        status=status,
                        latency_ms=round(latency, 3),
                        error=error,
                    )
                )
            if ok:
                queue.delivered_through = head[-1].seq
                queue.runs.pop(0)
            else:
                queue.failed = head


class _Queue:
    """A claimed subscription's notifications as runs of the same URL, delivered one at a time."""

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.runs: list[list[Notification]] = []
        for n in claim.notifications:
            if self.runs and self.runs[-1][0].url == n.url:
                self.runs[-1].append(n)
            else:
                self.runs.append([n])
        #: The last delivered notification's number (0: none yet).
        self.delivered_through = 0
        #: The run whose POST failed.
        self.failed: list[Notification] | None = None

    @property
    def head(self) -> list[Notification]:
        return self.runs[0]


def summary(record: DeliveryRecord) -> dict[str, Any]:
    """A delivery record as the admin API shows it."""
    return {
        "subscriptionId": record.subscription_id,
        "url": record.url,
        "at": graph_datetime_7(record.at),
        "kind": record.kind,
        "count": record.count,
        "attempt": record.attempt,
        "status": record.status,
        "latencyMs": record.latency_ms,
        "error": record.error,
    }
