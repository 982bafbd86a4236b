"""Helpers the mail and calendar handlers share: the mailbox a path names, ``@odata.context``,
``$expand=attachments`` and the ``Prefer: outlook.timezone`` header."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from graphattach.api.call import GraphCall
from graphattach.domain import limits, timezones
from graphattach.domain.errors import BadRequest
from graphattach.domain.models import Item, User
from graphattach.protocol.odata import context_path, context_url, next_link
from graphattach.protocol.paths import Step
from graphattach.protocol.shape import collection
from graphattach.services.access import authorize, resolve_user


async def mailbox(call: GraphCall, permissions: tuple[str, ...]) -> User:
    """The mailbox owner of the path, after checking the caller holds one of ``permissions``."""
    user = await resolve_user(call.ctx, call.principal, call.path)
    authorize(call.principal, user, permissions)
    return user


def user_key(call: GraphCall, user: User) -> str:
    """``/me`` is written ``users('{id}')``; ``/users/{key}`` keeps the key as the client gave it."""
    return user.id if call.path.is_me or call.path.user is None else call.path.user


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

            try:
                extra["attachments"] = await expand_attachments(call, item)
            except NotImplementedError:
                # TODO(attachments): api.attachments.expand_attachments is implemented on the
                # attachments branch; until it is merged the expansion is empty.
                extra["attachments"] = []
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
                raise BadRequest(
                    f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'.",
                    code="TimeZoneNotSupportedException",
                ) from None
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
    """``$filter``, ``$orderby`` and ``$search`` are not evaluated here: a 400 in strict mode
    rather than an answer that silently ignores them (``--loose`` ignores them)."""
    if not call.strict:
        return
    for name, value in (
        ("$filter", call.query.filter),
        ("$orderby", call.query.orderby),
        ("$search", call.query.search),
    ):
        if value is not None:
            raise BadRequest(
                f"Query option '{name}' is not supported on this collection by this server. Start the server "
                f"with --loose to ignore it."
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
