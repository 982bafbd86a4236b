"""Helpers the mail and calendar handlers share: the mailbox a path names, ``@odata.context``,
``$expand=attachments`` and the ``Prefer: outlook.timezone`` header."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.responses import Response

from graphattach.api.call import GraphCall, user_key
from graphattach.domain import limits, timezones
from graphattach.domain.models import Item, User
from graphattach.protocol.errors import BadRequest, TimeZoneNotSupported
from graphattach.protocol.filtering import compile_filter, compile_orderby
from graphattach.protocol.odata import context_path, context_url, next_link
from graphattach.protocol.paths import Step
from graphattach.protocol.shape import collection
from graphattach.services.access import authorize, resolve_user

T = TypeVar("T")


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
        name = raw.split("(", 1)[0].strip()
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


EXTENDED = {
    "singlevalueextendedproperties": "singleValueExtendedProperties",
    "multivalueextendedproperties": "multiValueExtendedProperties",
}
_ID_FILTER = re.compile(r"^\s*id\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)


def extended_properties(item: Item, key: str, raw: str) -> list[dict[str, Any]]:
    """``$expand=singleValueExtendedProperties($filter=id eq '...')``: the stored properties,
    narrowed to the id of the filter (the form the Graph docs use)."""
    stored = list(item.data.get(key) or [])
    options = raw[raw.index("(") + 1 : raw.rindex(")")] if "(" in raw and raw.endswith(")") else ""
    if not options:
        return stored
    name, _, value = options.partition("=")
    match = _ID_FILTER.match(value) if name.strip().lower() == "$filter" else None
    if match is None:
        raise BadRequest(f"Only $filter=id eq '...' is supported inside $expand of {key}.")
    wanted = match.group(1).replace("''", "'").lower()
    return [p for p in stored if p["id"].lower() == wanted]


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
    """``$skip`` and ``$top`` of a collection request (10 by default, 1000 at most, as Graph)."""
    top = call.query.top if call.query.top is not None else limits.DEFAULT_PAGE_SIZE
    if top > limits.MAX_PAGE_SIZE:
        raise BadRequest(
            f"The limit of '{limits.MAX_PAGE_SIZE}' for Top query has been exceeded. "
            f"The value from the incoming request is '{top}'."
        )
    return call.query.skip or 0, top


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
    """``records`` narrowed by ``$filter`` and sorted by ``$orderby`` (both evaluated on the
    entity JSON ``full`` gives, before ``$select``)."""
    if not wants_query(call):
        return records
    keep = (
        compile_filter(call.query.filter, known=known, type_name=type_name) if call.query.filter is not None else None
    )
    pairs = [(record, full(record)) for record in records]
    if keep is not None:
        pairs = [(r, e) for r, e in pairs if keep(e)]
    if call.query.orderby is not None:
        order = compile_orderby(call.query.orderby, known=known, type_name=type_name)
        position = {id(e): r for r, e in pairs}
        return [position[id(e)] for e in order([e for _, e in pairs])]
    return [r for r, _ in pairs]


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
