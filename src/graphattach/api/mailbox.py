"""Helpers the mail and calendar handlers share: the mailbox a path names, ``@odata.context``,
``$expand=attachments`` and the ``Prefer: outlook.timezone`` header."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.responses import Response

from graphattach.api.call import GraphCall, user_key
from graphattach.domain import timezones
from graphattach.domain.models import Item, User
from graphattach.protocol.delta import DeltaState, StaleSyncState, decode_token, fresh_round_query
from graphattach.protocol.errors import BadRequest, SyncStateNotFound, TimeZoneNotSupported
from graphattach.protocol.filtering import filter_and_order
from graphattach.protocol.odata import context_path, context_url, next_link
from graphattach.protocol.odata import page_bounds as odata_page_bounds
from graphattach.protocol.outlook import EXTENDED, expand_name, extended_properties
from graphattach.protocol.paths import Step
from graphattach.protocol.shape import collection
from graphattach.services import delta as delta_service
from graphattach.services.access import authorize, resolve_user

T = TypeVar("T")


async def delta_state(call: GraphCall, token: str, key: bytes, *, user_id: str, folder_id: str) -> DeltaState:
    """The state of a ``$skiptoken``/``$deltatoken``; one from before a reset is 410
    ``SyncStateNotFound`` with the ``Location`` of a new full round (delta-query-overview)."""
    generation = await delta_service.sync_generation(call.ctx)
    try:
        return decode_token(token, key, user_id=user_id, folder_id=folder_id, generation=generation)
    except StaleSyncState as stale:
        location = f"{call.url_without_query()}?{fresh_round_query(stale.state)}"
        raise SyncStateNotFound(generation=stale.state.generation, headers={"Location": location}) from None


async def mailbox(call: GraphCall, permissions: tuple[str, ...]) -> User:
    """The mailbox owner of the path, after checking the caller holds one of ``permissions``."""
    user = await resolve_user(call.ctx, call.principal, call.path)
    authorize(call.principal, user, permissions)
    return user


def collection_steps(call: GraphCall) -> tuple[Step, ...]:
    """The path's steps with the last one's key dropped (``messages('x')`` → ``messages``)."""
    steps = call.path.steps
    if steps and steps[-1].key is not None:
        return (*steps[:-1], Step(steps[-1].name))
    return steps


def collection_context(call: GraphCall, user: User, steps: tuple[Step, ...] | None = None) -> str:
    return context_url(call.service_root, context_path(user_key(call, user), steps or collection_steps(call)))


def entity_context(call: GraphCall, user: User, steps: tuple[Step, ...] | None = None) -> str:
    return collection_context(call, user, steps) + "/$entity"


async def expansions(call: GraphCall, item: Item, known: frozenset[str], type_name: str) -> dict[str, Any]:
    """``$expand=attachments`` on a message or event; any other navigation property is a 400."""
    extra: dict[str, Any] = {}
    for raw in call.query.expand or []:
        name = expand_name(raw)
        if name.lower() == "attachments":
            from graphattach.api.attachments import expand_attachments

            extra["attachments"] = await expand_attachments(call, item)
        elif name.lower() in EXTENDED:
            extra[EXTENDED[name.lower()]] = extended_properties(item, EXTENDED[name.lower()], raw)
        elif name.lower() in {k.lower() for k in known}:
            raise BadRequest(f"The navigation property '{name}' cannot be expanded on this server.")
        else:
            raise BadRequest(f"Could not find a property named '{name}' on type '{type_name}'.")
    return extra


_PREFER_TZ = re.compile(r'outlook\.timezone\s*=\s*"?([^";,]+)"?', re.IGNORECASE)


def preferred_time_zone(call: GraphCall) -> str | None:
    """The zone of ``Prefer: outlook.timezone="..."``; None when absent (responses use UTC)."""
    for header in call.request.headers.getlist("prefer"):
        match = _PREFER_TZ.search(header)
        if match:
            name = match.group(1).strip()
            try:
                return timezones.canonical_name(name)
            except timezones.UnknownTimeZone:
                raise TimeZoneNotSupported(name=name) from None
    return None


def page_bounds(call: GraphCall) -> tuple[int, int]:
    """``$skip`` and ``$top`` of a collection request (``protocol/odata.page_bounds``)."""
    return odata_page_bounds(call.query)


def refuse_unsupported_options(call: GraphCall) -> None:
    """``$search`` is not evaluated here: a 400 in strict mode rather than an answer that
    silently ignores it (``--loose`` ignores it)."""
    if call.strict and call.query.search is not None:
        raise BadRequest(
            "Query option '$search' is not supported on this collection by this server. Start the server "
            "with --loose to ignore it."
        )


def wants_query(call: GraphCall) -> bool:
    """True when ``$filter`` or ``$orderby`` must be evaluated over whole entities."""
    return call.query.filter is not None or call.query.orderby is not None


def apply_query(
    call: GraphCall, records: list[T], full: Callable[[T], dict[str, Any]], known: frozenset[str], type_name: str
) -> list[T]:
    """``$filter`` and ``$orderby`` of this request (``protocol/filtering.filter_and_order``)."""
    return filter_and_order(
        records, full, filter=call.query.filter, orderby=call.query.orderby, known=known, type_name=type_name
    )


def collection_page(
    call: GraphCall, user: User, values: list[dict[str, Any]], *, total: int, skip: int, top: int
) -> dict[str, Any]:
    """``{"@odata.context", ["@odata.count"], "value", ["@odata.nextLink"]}`` for one page."""
    link = None
    if top > 0 and skip + len(values) < total:
        link = next_link(call.url_without_query(), call.request.url.query, skip + len(values))
    return collection(collection_context(call, user), values, count=total if call.query.count else None, next_link=link)


def count_response(total: int) -> Response:
    """``GET .../$count``: the number as ``text/plain``."""
    return Response(str(total).encode(), media_type="text/plain", headers={"OData-Version": "4.0"})
