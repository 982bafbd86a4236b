"""Users of the tenant and the mailbox every user gets (well-known folders, a default calendar)."""

from __future__ import annotations

import re

from graphattach.auth.team import hash_password
from graphattach.domain import ids, limits
from graphattach.domain.errors import GraphError
from graphattach.domain.models import Folder, User
from graphattach.protocol.errors import DirectoryBadRequest
from graphattach.services.context import Context
from graphattach.storage.interfaces import Conflict

#: Well-known mail folders and their display names (mailfolder.md).
WELL_KNOWN_MAIL_FOLDERS = {
    "inbox": "Inbox",
    "drafts": "Drafts",
    "sentitems": "Sent Items",
    "deleteditems": "Deleted Items",
    "junkemail": "Junk Email",
    "archive": "Archive",
    "outbox": "Outbox",
}
ROOT_FOLDER = "msgfolderroot"

#: The demo tenant a fresh server starts with (documented in the README).
DEMO_DOMAIN = "contoso.onmicrosoft.com"
DEMO_USERS = (
    ("adele", "Adele Vance"),
    ("alex", "Alex Wilber"),
    ("megan", "Megan Bowen"),
)
DEMO_PASSWORD = "graphattach"

_UPN_RE = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


async def create_user(
    ctx: Context,
    upn: str,
    display_name: str | None = None,
    *,
    user_id: str | None = None,
    password: str | None = DEMO_PASSWORD,
    max_message_size: int | None = None,
) -> User:
    """Create a user with a provisioned mailbox. ``Conflict`` → 400 if the UPN is taken."""
    if not _UPN_RE.match(upn):
        raise DirectoryBadRequest(
            f"Invalid value specified for property 'userPrincipalName' of resource 'User': '{upn}'."
        )
    if user_id is not None and not ids.is_guid(user_id):
        raise DirectoryBadRequest("Invalid object identifier: the id must be a GUID.")
    local = upn.split("@", 1)[0]
    user = User(
        id=user_id or ids.new_guid(),
        user_principal_name=upn,
        display_name=display_name or local.replace(".", " ").title(),
        mail=upn,
        max_message_size=max_message_size or limits.DEFAULT_MAX_MESSAGE_SIZE,
        created=ctx.clock.now(),
        data=_password_data(password),
    )
    try:
        await ctx.metadata.add_user(user)
    except Conflict:
        taken = (
            "id" if user_id is not None and await ctx.metadata.get_user(user_id) is not None else "userPrincipalName"
        )
        raise DirectoryBadRequest(
            f"Another object with the same value for property {taken} already exists.",
        ) from None
    await provision_mailbox(ctx, user)
    return user


def _password_data(password: str | None) -> dict[str, str]:
    """The demo password stays plain (it is published); any other is kept as a scrypt hash;
    None: the user cannot sign in with a password."""
    if password is None:
        return {}
    if password == DEMO_PASSWORD:
        return {"password": password}
    return {"passwordHash": hash_password(password)}


async def ensure_team_users(ctx: Context) -> None:
    """Create the users of the team config that do not exist yet (idempotent across processes)."""
    for member in ctx.team.users:
        if await ctx.metadata.get_user_by_upn(member.user_principal_name) is None:
            try:
                await create_user(
                    ctx,
                    member.user_principal_name,
                    member.display_name,
                    password=member.password,
                    max_message_size=member.max_message_size,
                )
            except GraphError:
                pass  # another process created it meanwhile


async def provision_mailbox(ctx: Context, user: User) -> None:
    """The folders and calendar Exchange creates with every mailbox."""
    now = ctx.clock.now()
    root = Folder(
        id=ids.new_id("folder"),
        user_id=user.id,
        kind="mail",
        display_name="Top of Information Store",
        well_known_name=ROOT_FOLDER,
        created=now,
    )
    await ctx.metadata.add_folder(root)
    for name, display in WELL_KNOWN_MAIL_FOLDERS.items():
        await ctx.metadata.add_folder(
            Folder(
                id=ids.new_id("folder"),
                user_id=user.id,
                kind="mail",
                display_name=display,
                parent_id=root.id,
                well_known_name=name,
                created=now,
            )
        )
    group = Folder(
        id=ids.new_id("calendarGroup"),
        user_id=user.id,
        kind="calendarGroup",
        display_name="My Calendars",
        well_known_name="mycalendars",
        created=now,
    )
    await ctx.metadata.add_folder(group)
    await ctx.metadata.add_folder(
        Folder(
            id=ids.new_id("calendar"),
            user_id=user.id,
            kind="calendar",
            display_name="Calendar",
            parent_id=group.id,
            well_known_name="calendar",
            created=now,
            data={"isDefaultCalendar": True},
        )
    )


async def find_user(ctx: Context, id_or_upn: str) -> User | None:
    """By object id (GUID), ``{object id}@{tenant id}`` (the form upload URLs and the large-attachments
    walkthrough use) or userPrincipalName (case-insensitive)."""
    local, _, domain = id_or_upn.partition("@")
    if domain and ids.is_guid(local) and domain.lower() == ctx.tenant_id.lower():
        return await ctx.metadata.get_user(local.lower())
    if "@" in id_or_upn:
        return await ctx.metadata.get_user_by_upn(id_or_upn)
    return await ctx.metadata.get_user(id_or_upn.lower() if ids.is_guid(id_or_upn) else id_or_upn)
