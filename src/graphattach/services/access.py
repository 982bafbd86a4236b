"""Resolving a parsed path to the user, container and item it names, and checking the caller may.

Fidelity notes (docs/fidelity.md):
- ``/me`` with an app token → 400 "/me request is only valid with delegated authentication flow."
- an unknown user in a mailbox path → 404 ``ErrorInvalidUser``;
- a delegated token on another user's mailbox → 403 ``ErrorAccessDenied`` (no delegation model);
- an id that we could never have minted → 400 ``ErrorInvalidIdMalformed``; a well-formed unknown
  id → 404 ``ErrorItemNotFound``;
- an item addressed through a folder or calendar it is not in → 404.
"""

from __future__ import annotations

from graphattach.auth.principal import Principal
from graphattach.domain import ids
from graphattach.domain.errors import GraphError
from graphattach.domain.models import Folder, Item, User
from graphattach.protocol.errors import AccessDenied, BadRequest, InvalidIdMalformed, InvalidUser, ItemNotFound
from graphattach.protocol.paths import GraphPath, Step
from graphattach.services import journal
from graphattach.services.context import Context
from graphattach.services.users import ROOT_FOLDER, WELL_KNOWN_MAIL_FOLDERS, find_user

WELL_KNOWN_MAIL = frozenset(WELL_KNOWN_MAIL_FOLDERS) | {ROOT_FOLDER}


def me_not_allowed() -> GraphError:
    return BadRequest("/me request is only valid with delegated authentication flow.")


async def resolve_user(ctx: Context, principal: Principal, path: GraphPath) -> User:
    """The mailbox owner the path names (``/me`` or ``/users/{id|upn}``)."""
    if path.is_me:
        if not principal.is_delegated or principal.user_id is None:
            raise me_not_allowed()
        user = await ctx.metadata.get_user(principal.user_id)
        if user is None:
            raise InvalidUser(user=principal.upn)
        return user
    assert path.user is not None
    user = await find_user(ctx, path.user)
    if user is None:
        raise InvalidUser(user=path.user)
    return user


def authorize(principal: Principal, user: User, permissions: tuple[str, ...]) -> None:
    """403 unless the caller holds one of ``permissions`` and (delegated) owns the mailbox."""
    journal.note_permission(permissions)
    if not principal.has_any(permissions):
        raise AccessDenied()
    if principal.is_delegated and principal.user_id != user.id:
        raise AccessDenied()


def check_id(value: str) -> str:
    if not ids.looks_like_id(value):
        raise InvalidIdMalformed()
    return value


async def mail_folder(ctx: Context, user: User, key: str) -> Folder:
    """A mail folder by id or well-known name (``inbox``, ``deleteditems``...) of ``user``."""
    if key.lower() in WELL_KNOWN_MAIL:
        folder = await ctx.metadata.get_well_known_folder(user.id, "mail", key.lower())
    else:
        folder = await ctx.metadata.get_folder(user.id, check_id(key))
    if folder is None or folder.kind != "mail":
        raise ItemNotFound()
    return folder


async def resolve_containers(ctx: Context, user: User, containers: tuple[Step, ...]) -> Folder | None:
    """The innermost folder, calendar or calendar group the steps walk to (None when no steps)."""
    current: Folder | None = None
    for step in containers:
        if step.name == "mailFolders":
            assert step.key is not None
            current = await mail_folder(ctx, user, step.key)
        elif step.name == "childFolders":
            assert step.key is not None and current is not None
            child = await mail_folder(ctx, user, step.key)
            if child.parent_id != current.id:
                raise ItemNotFound()
            current = child
        elif step.name == "calendar":
            current = await ctx.metadata.get_well_known_folder(user.id, "calendar", "calendar")
            if current is None:
                raise ItemNotFound()
        elif step.name == "calendarGroups":
            assert step.key is not None
            group = await ctx.metadata.get_folder(user.id, check_id(step.key))
            if group is None or group.kind != "calendarGroup":
                raise ItemNotFound()
            current = group
        elif step.name == "calendars":
            assert step.key is not None
            calendar = await ctx.metadata.get_folder(user.id, check_id(step.key))
            if calendar is None or calendar.kind != "calendar":
                raise ItemNotFound()
            if current is not None and current.kind == "calendarGroup" and calendar.parent_id != current.id:
                raise ItemNotFound()
            current = calendar
        else:  # pragma: no cover - the parser only produces the names above
            raise ItemNotFound()
    return current


async def resolve_item(ctx: Context, user: User, path: GraphPath) -> Item:
    """The message or event the path goes through, checked against its folder or calendar."""
    assert path.item is not None
    kind, key = path.item
    item = await ctx.metadata.get_item(user.id, check_id(key))
    if item is None or item.kind != kind:
        raise ItemNotFound()
    container = await resolve_containers(ctx, user, path.containers)
    if container is not None and container.kind != "calendarGroup" and item.folder_id != container.id:
        raise ItemNotFound()
    return item
