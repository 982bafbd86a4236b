"""The admin API under ``/_graphattach``: users, tokens, reset, clock, sweep. Not part of Graph.

When the server runs with ``--admin-key``, every call needs ``X-Graphattach-Admin-Key``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from graphattach import __version__
from graphattach.api.call import read_body
from graphattach.api.responses import empty, graph_json
from graphattach.auth.permissions import DEFAULT_APP_ROLES, DEFAULT_DELEGATED_SCOPES
from graphattach.auth.secrets import same_secret
from graphattach.auth.tokens import ADMIN_APP_ID, CLI_APP_ID
from graphattach.composition import redact_url, store_urls
from graphattach.protocol.errors import AccessDenied, BadRequest, InvalidUser, SubscriptionNotFound
from graphattach.protocol.jsonio import loads_object
from graphattach.protocol.seed_data import SeedDataError
from graphattach.protocol.subscriptions import subscription_json
from graphattach.protocol.users import user_json
from graphattach.services import notifications, sweeper, tenant
from graphattach.services import users as user_service
from graphattach.services.context import Context

ADMIN_PREFIX = "/_graphattach"


def require_admin_key(request: Request) -> Context:
    """The context, once the request carries the admin key (when one is set): else 403."""
    ctx: Context = request.app.state.ctx
    key = ctx.settings.admin_key
    if key and not same_secret(request.headers.get("x-graphattach-admin-key", ""), key):
        raise AccessDenied("The admin API needs the X-Graphattach-Admin-Key header.")
    return ctx


async def _json(request: Request) -> dict[str, Any]:
    body = await read_body(request, 1024 * 1024)
    return loads_object(body) if body.strip() else {}


#: The largest maxMessageSize the admin API takes: any larger is no limit at all, and it must fit
#: a 64-bit column of every store.
MAX_MESSAGE_SIZE_LIMIT = 2**53
#: How far the clock may be moved ahead of real time, in all: a thousand years keeps every
#: date the server computes (expiries, token lifetimes) representable.
MAX_CLOCK_OFFSET = 1000 * 366 * 86400.0
#: The longest lifetime of a token minted by the admin API (one year).
MAX_TOKEN_LIFETIME = 366 * 86400


def _int_property(body: dict[str, Any], name: str, maximum: int) -> int | None:
    """``body[name]`` as a positive integer up to ``maximum`` (None when absent); booleans are
    not numbers here, though JSON parsers make them ints."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
        raise BadRequest(f"{name} must be a positive integer of at most {maximum}.")
    return value


def _str_property(body: dict[str, Any], name: str, *, max_length: int = 256) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise BadRequest(f"{name} must be a non-empty string of at most {max_length} characters.")
    return value


def _admin_user(user: Any) -> dict[str, Any]:
    return {**user_json(user), "maxMessageSize": user.max_message_size}


async def health(request: Request) -> Response:
    return graph_json({"status": "ok", "version": __version__})


async def info(request: Request) -> Response:
    ctx = require_admin_key(request)
    store, blobs = store_urls(ctx.settings)
    return graph_json(
        {
            "version": __version__,
            "tenantId": ctx.tenant_id,
            "graphUrl": ctx.settings.service_root("v1.0"),
            "betaUrl": ctx.settings.service_root("beta"),
            "uploadOrigin": ctx.settings.upload_root,
            "profile": ctx.settings.profile,
            "seed": ctx.settings.seed,
            "strict": ctx.settings.strict,
            "store": redact_url(store),
            "blobs": redact_url(blobs),
            "tokenEndpoint": f"{ctx.settings.root_url}/{ctx.tenant_id}/oauth2/v2.0/token",
            "now": ctx.clock.now().isoformat(),
        }
    )


async def list_users(request: Request) -> Response:
    ctx = require_admin_key(request)
    return graph_json({"value": [_admin_user(u) for u in await ctx.metadata.list_users()]})


async def add_user(request: Request) -> Response:
    ctx = require_admin_key(request)
    body = await _json(request)
    upn = _str_property(body, "userPrincipalName", max_length=113)
    if upn is None:
        raise BadRequest("userPrincipalName is required.")
    size = _int_property(body, "maxMessageSize", MAX_MESSAGE_SIZE_LIMIT)
    user = await user_service.create_user(
        ctx,
        upn,
        _str_property(body, "displayName"),
        user_id=_str_property(body, "id", max_length=36),
        # without the demo tenant (a team deployment) nobody gets the published demo password
        password=_str_property(body, "password") or (user_service.DEMO_PASSWORD if ctx.settings.demo_tenant else None),
        max_message_size=size,
    )
    return graph_json(_admin_user(user), status=201)


async def update_user(request: Request) -> Response:
    ctx = require_admin_key(request)
    user = await user_service.find_user(ctx, request.path_params["user"])
    if user is None:
        raise InvalidUser("No such user.")
    body = await _json(request)
    size = _int_property(body, "maxMessageSize", MAX_MESSAGE_SIZE_LIMIT)
    if size is not None:
        user.max_message_size = size
    elif "maxMessageSize" in body:
        raise BadRequest("maxMessageSize must be a positive integer.")
    display_name = _str_property(body, "displayName")
    if display_name is not None:
        user.display_name = display_name
    elif "displayName" in body:
        raise BadRequest("displayName must be a non-empty string.")
    await ctx.metadata.update_user(user)
    return graph_json(_admin_user(user))


async def mint_token(request: Request) -> Response:
    """``{"user": upn|id, "scopes": [...]}`` or ``{"app": true, "roles": [...]}`` → a bearer token
    (``appId`` names the app it is issued to; the journal and the permissions report group by it)."""
    ctx = require_admin_key(request)
    body = await _json(request)
    lifetime = _int_property(body, "lifetime", MAX_TOKEN_LIFETIME) or 3600
    now = ctx.clock.now().timestamp()
    if body.get("app"):
        roles = _names(body.get("roles"), DEFAULT_APP_ROLES)
        app_id = str(body.get("appId") or ADMIN_APP_ID)
        token = ctx.tokens.mint_app(roles=roles, app_id=app_id, lifetime=lifetime, now=now)
        return graph_json({"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "roles": roles})
    key = body.get("user")
    if not isinstance(key, str):
        raise BadRequest("Give 'user' (a userPrincipalName or id) or 'app': true.")
    user = await user_service.find_user(ctx, key)
    if user is None:
        raise InvalidUser(f"The user '{key}' does not exist.")
    scopes = _names(body.get("scopes"), DEFAULT_DELEGATED_SCOPES)
    token = ctx.tokens.mint_delegated(
        user_id=user.id,
        upn=user.user_principal_name,
        name=user.display_name,
        scopes=scopes,
        lifetime=lifetime,
        app_id=str(body.get("appId") or CLI_APP_ID),
        now=now,
    )
    return graph_json(
        {"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "scope": " ".join(scopes)}
    )


def _names(value: Any, default: tuple[str, ...]) -> list[str]:
    if value is None:
        return list(default)
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise BadRequest("scopes/roles must be a list of strings or a space-separated string.")


async def reset(request: Request) -> Response:
    """Back to the seeded state: mailboxes, sessions, rules, journal, clock (services/tenant.py)."""
    try:
        await tenant.reset(require_admin_key(request))
    except SeedDataError as exc:
        raise BadRequest(f"The seed data cannot be seeded again, nothing was reset: {exc}") from None
    return empty(204)


async def clock(request: Request) -> Response:
    """``GET`` the server time; ``POST`` moves it (tests): ``{"advanceSeconds": n}`` forward,
    ``{"set": "2026-01-01T00:00:00Z"}`` to an instant, ``{"frozen": true|false}`` stops or restarts
    it (with ``set``: frozen there); ``DELETE`` puts it back (wall clock, or ``--frozen-clock``)."""
    ctx = require_admin_key(request)
    if request.method == "POST":
        body = await _json(request)
        unknown = set(body) - {"advanceSeconds", "set", "frozen"}
        if unknown or not body:
            raise BadRequest("Give advanceSeconds, set (an ISO 8601 date and time) and/or frozen (true/false).")
        frozen = body.get("frozen")
        if frozen is not None and not isinstance(frozen, bool):
            raise BadRequest("frozen must be true or false.")
        seconds = body.get("advanceSeconds", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= MAX_CLOCK_OFFSET:
            raise BadRequest(f"advanceSeconds must be a number of seconds from 0 to {MAX_CLOCK_OFFSET:.0f}.")
        instant: datetime | None = None
        if "set" in body:
            try:
                instant = datetime.fromisoformat(body["set"]) if isinstance(body["set"], str) else None
            except ValueError:
                instant = None
            if instant is None:
                raise BadRequest("set must be an ISO 8601 date and time, e.g. 2026-01-01T09:00:00Z.")
        if instant is not None:
            ctx.clock.set(instant, frozen=frozen)
        elif frozen is not None:
            ctx.clock.freeze() if frozen else ctx.clock.unfreeze()
        if seconds:
            if ctx.clock.offset.total_seconds() + seconds > MAX_CLOCK_OFFSET:
                raise BadRequest(f"The clock may run at most {MAX_CLOCK_OFFSET:.0f} seconds ahead of real time.")
            ctx.clock.advance(float(seconds))
        notifications.dispatcher_of(ctx).wake(housekeeping=True)  # retries and expiries may be due now
    elif request.method == "DELETE":
        ctx.clock.reset()
    return graph_json(
        {
            "now": ctx.clock.now().isoformat(),
            "offsetSeconds": ctx.clock.offset.total_seconds(),
            "frozen": ctx.clock.frozen,
        }
    )


async def list_subscriptions(request: Request) -> Response:
    """Every subscription of every app and mailbox, with its real ``clientState`` and state."""
    ctx = require_admin_key(request)
    values = [
        {**subscription_json(s), "userId": s.user_id, "state": s.state}
        for s in await ctx.metadata.list_subscriptions(request.query_params.get("userId"))
    ]
    return graph_json({"value": values})


async def remove_subscription(request: Request) -> Response:
    """The service removes a subscription (``subscriptionRemoved`` goes to its lifecycle URL)."""
    ctx = require_admin_key(request)
    if not await notifications.remove(ctx, request.path_params["id"]):
        raise SubscriptionNotFound()
    return empty(204)


async def deliveries(request: Request) -> Response:
    """The delivery log, newest first: every POST to a receiver (``?subscriptionId=``, ``?top=``)."""
    ctx = require_admin_key(request)
    try:
        top = int(request.query_params.get("top", "100"))
    except ValueError:
        raise BadRequest("top must be a number.") from None
    found = await ctx.metadata.list_delivery_records(request.query_params.get("subscriptionId"), max(1, min(top, 1000)))
    return graph_json({"value": [notifications.summary(r) for r in found]})


async def dispatch(request: Request) -> Response:
    """Run the notification dispatcher now (housekeeping, then what is due) until nothing is due."""
    ctx = require_admin_key(request)
    dispatcher = notifications.dispatcher_of(ctx)
    await dispatcher.housekeeping()
    rounds = 0
    while rounds < 100 and await dispatcher.round():
        rounds += 1
    return graph_json({"rounds": rounds})


async def sweep_now(request: Request) -> Response:
    """``POST /_graphattach/sweep``: run the sweeper once and say what it freed."""
    ctx = require_admin_key(request)
    report = await sweeper.sweep(ctx)
    return graph_json(
        {
            "expiredSessions": report.expired_sessions,
            "orphanedBlobs": report.orphaned_blobs,
            "busySessions": report.busy_sessions,
        }
    )


ROUTES = [
    Route(f"{ADMIN_PREFIX}/health", health, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/info", info, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/users", list_users, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/users", add_user, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/users/{{user}}", update_user, methods=["PATCH"]),
    Route(f"{ADMIN_PREFIX}/token", mint_token, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/reset", reset, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/clock", clock, methods=["GET", "POST", "DELETE"]),
    Route(f"{ADMIN_PREFIX}/subscriptions", list_subscriptions, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/subscriptions/{{id}}/remove", remove_subscription, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/deliveries", deliveries, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/notifications/dispatch", dispatch, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/sweep", sweep_now, methods=["POST"]),
]
