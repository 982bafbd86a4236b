"""Subscriptions to change notifications on Outlook messages and events: create (with the
validation handshake), read, renew, delete, reauthorize.

Rules and their sources (docs/fidelity.md lists the choices):
- resources: a mailbox's messages (``me/messages``, ``users/{id}/messages``), a mail folder's
  messages (``me/mailFolders('inbox')/messages``), events (``me/events``, ``me/calendar/events``,
  ``me/calendars/{id}/events``), https://learn.microsoft.com/graph/outlook-change-notifications-overview;
- permissions: Mail.ReadBasic/Mail.Read for messages, Calendars.Read for events, delegated only
  on the signed-in user's own mailbox (same page);
- expiration: at most ``MAX_OUTLOOK_MINUTES`` ahead, on create and on renewal
  (https://learn.microsoft.com/graph/api/resources/subscription#subscription-lifetime);
- list scope: delegated → this app's subscriptions for the signed-in user; application → this
  app's subscriptions (https://learn.microsoft.com/graph/api/subscription-list).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from graphattach.auth.permissions import CALENDARS_READ, MAIL_READ
from graphattach.auth.principal import Principal
from graphattach.domain import ids
from graphattach.domain.errors import GraphError
from graphattach.domain.models import replace
from graphattach.domain.subscriptions import MAX_OUTLOOK_MINUTES, MAX_PER_MAILBOX, Subscription
from graphattach.protocol.errors import SubscriptionExpirationInvalid, SubscriptionForbidden, SubscriptionNotFound
from graphattach.protocol.paths import parse_graph_path
from graphattach.protocol.subscriptions import CreateRequest, UpdateRequest, invalid_request
from graphattach.services.access import me_not_allowed, resolve_containers, resolve_user
from graphattach.services.context import Context
from graphattach.services.receivers import check_receiver, validate_endpoint
from graphattach.storage.interfaces import LimitExceeded, RecordNotFound

#: Permissions that let a caller subscribe to a mailbox's messages or events (delegated scopes and
#: application roles alike; a higher one implies the lower).
MESSAGE_PERMISSIONS = ("Mail.ReadBasic", "Mail.ReadBasic.All", *MAIL_READ)
EVENT_PERMISSIONS = CALENDARS_READ


def not_found() -> GraphError:
    # github.com/microsoftgraph/msgraph-sdk-php/issues/221 quotes code and message
    return SubscriptionNotFound()


def forbidden(operation: str) -> GraphError:
    return SubscriptionForbidden(operation=operation)


def unsupported_resource(resource: str) -> GraphError:
    return invalid_request(
        f"Resource '{resource}' is not supported: subscribe to a mailbox's messages (me/messages, "
        "users/{id}/messages), a mail folder's messages (me/mailFolders('inbox')/messages) or events (me/events)."
    )


def check_expiration(ctx: Context, expires: datetime) -> None:
    now = ctx.clock.now()
    if expires <= now:
        raise SubscriptionExpirationInvalid()
    if expires > now + timedelta(minutes=MAX_OUTLOOK_MINUTES):
        # github.com/microsoftgraph/microsoft-graph-docs/issues/2988 quotes the live error
        raise SubscriptionExpirationInvalid(
            f"Subscription expiration can only be {MAX_OUTLOOK_MINUTES} minutes in the future."
        )


async def _resolve_resource(ctx: Context, principal: Principal, resource: str) -> tuple[str, str, str | None]:
    """(mailbox user id, item kind, folder id or None) of a subscription ``resource``."""
    if "?" in resource:
        raise invalid_request(f"Resource '{resource}': query options ($filter, $select) are not supported here.")
    text = resource.strip()
    if text.lower().startswith("https://graph.microsoft.com/"):
        raise invalid_request("The resource must be relative to the service root, without a base URL.")
    try:
        path = parse_graph_path("v1.0", "/" + text.lstrip("/"))
    except GraphError:
        raise unsupported_resource(resource) from None
    if path.endpoint not in ("messages", "events") or path.item is not None:
        raise unsupported_resource(resource)
    if path.is_me and not principal.is_delegated:
        raise me_not_allowed()
    try:
        user = await resolve_user(ctx, principal, path)
    except GraphError:
        raise unsupported_resource(resource) from None
    kind = "message" if path.endpoint == "messages" else "event"
    needed = MESSAGE_PERMISSIONS if kind == "message" else EVENT_PERMISSIONS
    if not principal.has_any(needed):
        raise forbidden("Create")
    if principal.is_delegated and principal.user_id != user.id:
        raise forbidden("Create")
    folder_id = None
    if path.containers:
        folder = await resolve_containers(ctx, user, path.containers)
        if folder is None or folder.kind == "calendarGroup":
            raise unsupported_resource(resource)
        folder_id = folder.id
    return user.id, kind, folder_id


def visible_to(principal: Principal, sub: Subscription) -> bool:
    if sub.state != "active" or sub.application_id != principal.app_id:
        return False
    return not principal.is_delegated or sub.user_id == principal.user_id


async def create(
    ctx: Context, principal: Principal, request: CreateRequest, *, token_expires: datetime | None
) -> Subscription:
    """Check, validate both receiver URLs (the handshake), store."""
    user_id, kind, folder_id = await _resolve_resource(ctx, principal, request.resource)
    check_expiration(ctx, request.expires)
    check_receiver(ctx.settings, request.notification_url)
    if request.lifecycle_url is not None:
        check_receiver(ctx.settings, request.lifecycle_url, what="LifecycleNotificationUrl")
    await validate_endpoint(ctx.settings, request.notification_url)
    if request.lifecycle_url is not None and request.lifecycle_url != request.notification_url:
        await validate_endpoint(ctx.settings, request.lifecycle_url)
    now = ctx.clock.now()
    sub = Subscription(
        id=ids.new_guid(),
        user_id=user_id,
        item_kind=kind,  # type: ignore[arg-type]
        folder_id=folder_id,
        change_types=request.change_types,
        notification_url=request.notification_url,
        expires=request.expires,
        application_id=principal.app_id,
        creator_id=principal.user_id if principal.is_delegated and principal.user_id else principal.app_id,
        delegated=principal.is_delegated,
        client_state=request.client_state,
        lifecycle_url=request.lifecycle_url,
        created=now,
        token_expires=token_expires,
        data={"resource": request.resource, "latestSupportedTlsVersion": request.latest_tls},
    )
    try:
        await ctx.metadata.add_subscription(sub, max_per_user=MAX_PER_MAILBOX)
    except LimitExceeded:
        raise SubscriptionForbidden(
            f"The mailbox already has the maximum number of subscriptions ({MAX_PER_MAILBOX})."
        ) from None
    return sub


async def get(ctx: Context, principal: Principal, subscription_id: str) -> Subscription:
    sub = await ctx.metadata.get_subscription(subscription_id)
    if sub is None or not visible_to(principal, sub) or sub.expires <= ctx.clock.now():
        raise not_found()
    return sub


async def list_for(ctx: Context, principal: Principal) -> list[Subscription]:
    user_id = principal.user_id if principal.is_delegated else None
    now = ctx.clock.now()
    return [s for s in await ctx.metadata.list_subscriptions(user_id) if visible_to(principal, s) and s.expires > now]


async def update(
    ctx: Context, principal: Principal, subscription_id: str, request: UpdateRequest, *, token_expires: datetime | None
) -> Subscription:
    """Renew (``expirationDateTime``) and/or move (``notificationUrl``, validated again)."""
    sub = await get(ctx, principal, subscription_id)
    changes: dict[str, object] = {}
    if request.expires is not None:
        check_expiration(ctx, request.expires)
        changes["expires"] = request.expires
    if request.notification_url is not None and request.notification_url != sub.notification_url:
        check_receiver(ctx.settings, request.notification_url)
        await validate_endpoint(ctx.settings, request.notification_url)
        changes["notification_url"] = request.notification_url
    data = {k: v for k, v in sub.data.items() if k != "reauthorizeSentFor"}
    updated: Subscription = replace(sub, data=data, token_expires=token_expires or sub.token_expires, **changes)
    try:
        await ctx.metadata.update_subscription(updated)
    except RecordNotFound:
        raise not_found() from None
    return updated


async def reauthorize(
    ctx: Context, principal: Principal, subscription_id: str, *, token_expires: datetime | None
) -> None:
    """``POST /subscriptions/{id}/reauthorize``: the caller's token now stands behind it."""
    sub = await get(ctx, principal, subscription_id)
    data = {k: v for k, v in sub.data.items() if k != "reauthorizeSentFor"}
    try:
        await ctx.metadata.update_subscription(replace(sub, data=data, token_expires=token_expires))
    except RecordNotFound:
        raise not_found() from None


async def delete(ctx: Context, principal: Principal, subscription_id: str) -> None:
    await get(ctx, principal, subscription_id)
    if not await ctx.metadata.delete_subscription(subscription_id):
        raise not_found()
