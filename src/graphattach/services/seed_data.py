"""Seeding a store from a seed data file (``protocol/seed_data.py`` describes the format)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from graphattach.domain.errors import GraphError
from graphattach.domain.models import Folder, User
from graphattach.protocol.jsonio import graph_datetime
from graphattach.protocol.seed_data import SeedDataError, SeedItem, SeedPlan, SeedUser, parse
from graphattach.services import attachments, calendar, mail
from graphattach.services.context import Context
from graphattach.services.users import DEMO_PASSWORD, create_user, find_user


def read_plan(path: str | Path) -> SeedPlan:
    """Read and check a seed data file; ``SeedDataError`` names the file, the place and the problem."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedDataError(str(path), "", f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SeedDataError(str(path), "", "is not UTF-8 text") from None
    return parse(text, str(path), file.resolve().parent)


def seed_files(plan: SeedPlan) -> list[Path]:
    """The files whose bytes seeding reads (attachments given by ``path``)."""
    return [
        spec.path for user in plan.users for item in user.items for spec in item.attachments if spec.path is not None
    ]


def check_files(plan: SeedPlan) -> None:
    """``SeedDataError`` if a file an attachment names has gone since the plan was read."""
    for user in plan.users:
        for item in user.items:
            for a, spec in enumerate(item.attachments):
                if spec.path is not None and not spec.path.is_file():
                    raise SeedDataError(
                        plan.source, f"{item.place}.attachments[{a}].path", f"no such file: {spec.path}"
                    )


async def apply(ctx: Context, plan: SeedPlan) -> None:
    """Create what the plan describes in the stores (after the demo tenant, when kept)."""
    for seed_user in plan.users:
        try:
            await _user(ctx, seed_user)
        except GraphError as exc:
            raise SeedDataError(plan.source, f"users[{plan.users.index(seed_user)}]", str(exc)) from None


async def _user(ctx: Context, seed: SeedUser) -> None:
    user = await find_user(ctx, seed.upn)
    if user is None:
        user = await create_user(
            ctx,
            seed.upn,
            seed.display_name,
            user_id=seed.id,
            password=seed.password or DEMO_PASSWORD,
            max_message_size=seed.max_message_size,
        )
    folders: dict[str, Folder] = {}
    for name in seed.folders:
        folders[name.lower()] = await mail.create_folder(ctx, user, None, name, is_hidden=False)
    for item in seed.items:
        await _item(ctx, user, item, folders)


async def _item(ctx: Context, user: User, seed: SeedItem, folders: dict[str, Folder]) -> None:
    if seed.kind == "event":
        created = await calendar.create_event(ctx, user, None, dict(seed.data))
    else:
        key = (seed.folder or "drafts").lower()
        folder = folders.get(key) or await mail.well_known(ctx, user, key)
        created = await mail.create_message(ctx, user, folder, dict(seed.data))
        if not seed.is_draft:
            now = graph_datetime(ctx.clock.now())
            created.data.update(
                isDraft=False,
                sentDateTime=seed.data.get("sentDateTime", now),
                receivedDateTime=seed.data.get("receivedDateTime", now),
            )
            created.data["from"] = seed.data.get("from") or mail.owner_recipient(user)
            created.data["sender"] = seed.data.get("sender") or created.data["from"]
            await ctx.metadata.update_item(created)
    for spec in seed.attachments:
        content = spec.content
        if content is None:
            assert spec.path is not None
            content = await asyncio.to_thread(spec.path.read_bytes)
        await attachments.add_file(
            ctx,
            user,
            created,
            name=spec.name,
            content=content,
            content_type=spec.content_type,
            is_inline=spec.is_inline,
            content_id=spec.content_id,
        )
