"""Helpers the mail and calendar handlers share: the mailbox a path names, ``@odata.context``,
``$expand=attachments`` and the ``Prefer: outlook.timezone`` header."""

from __future__ import annotations

import re
from typing import Any

from graphattach.api.call import GraphCall
from graphattach.domain import timezones
from graphattach.domain.errors import BadRequest
from graphattach.domain.models import Item, User
from graphattach.protocol.odata import context_path, context_url
from graphattach.protocol.paths import Step
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
