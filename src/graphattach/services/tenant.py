"""The seeded state of the tenant, and the reset that brings a server back to it.

The seeded state is what a fresh store gets on first start: the demo tenant's users (unless
``--no-demo``) with their mailboxes, and what a seed data file (``--seed-data``) adds. It is minted from a generator seeded per store (or with
``--seed``), so the demo users, their folders and calendars get the same ids after every reset
and every restart: a test may hold on to Adele's id or her Inbox's id.
"""

from __future__ import annotations

import inspect
from typing import cast

from graphattach.domain import ids
from graphattach.domain.errors import GraphError
from graphattach.services.context import Context
from graphattach.services.users import DEMO_DOMAIN, DEMO_USERS, create_user, ensure_team_users
from graphattach.storage.interfaces import Checkpointable

#: Store setting: present once the store has been seeded (the name predates seed files).
SEEDED_SETTING = "demo_tenant_done"
#: Store setting: the random seed of a store's seeded state, kept so that every process and every
#: reset mints the same ids (a server started with ``--seed N`` uses N instead).
SEED_SALT_SETTING = "seed_salt"


async def seed_source(ctx: Context) -> ids.IdSource:
    """The generator the seeded state is minted from, at the start of its sequence."""
    if ctx.settings.seed is not None:
        return ids.IdSource(f"seed-state:{ctx.settings.seed}")
    salt = await ctx.metadata.set_setting_if_absent(SEED_SALT_SETTING, ids.IdSource().token_bytes(16).hex())
    return ids.IdSource(f"seed-state:{salt}")


async def seed(ctx: Context) -> None:
    """Create the seeded state in empty stores."""
    plan = ctx.seed_plan
    with ids.minting_from(await seed_source(ctx)):
        if ctx.settings.demo_tenant and (plan is None or plan.demo):
            for local, name in DEMO_USERS:
                upn = f"{local}@{DEMO_DOMAIN}"
                if await ctx.metadata.get_user_by_upn(upn) is None:
                    try:
                        await create_user(ctx, upn, name)
                    except GraphError:
                        pass  # another process created it meanwhile
        if plan is not None:
            from graphattach.services.seed_data import apply

            await apply(ctx, plan)
    await ensure_team_users(ctx)  # the team config's users (--config) come back after a reset too


async def ensure_seeded(ctx: Context) -> None:
    """Seed the store the first time it is opened (idempotent across processes)."""
    if await ctx.metadata.get_setting(SEEDED_SETTING):
        return
    await seed(ctx)
    await ctx.metadata.set_setting_if_absent(SEEDED_SETTING, "1")
    _checkpoint(ctx)


def _seed_files(ctx: Context) -> tuple[tuple[str, int, int], ...]:
    """Path, size and modification time of every file the seed data names: a checkpoint is only
    good while they are unchanged (a reset reads an edited file again)."""
    if ctx.seed_plan is None:
        return ()
    from graphattach.services.seed_data import seed_files

    found = []
    for path in seed_files(ctx.seed_plan):
        stat = path.stat()
        found.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def _checkpoint(ctx: Context) -> None:
    """Copy the freshly seeded stores, when both can (the in-memory ones)."""
    ctx.seeded_checkpoint = None
    if isinstance(ctx.metadata, Checkpointable) and isinstance(ctx.blobs, Checkpointable):
        try:
            ctx.seeded_checkpoint = (_seed_files(ctx), ctx.metadata.checkpoint(), ctx.blobs.checkpoint())
        except ValueError:  # a store that cannot copy its state now (blobs past --memory-limit)
            pass


def _restore(ctx: Context) -> bool:
    """Back to the seeded state from the checkpoint, if there is a current one."""
    saved = ctx.seeded_checkpoint
    if saved is None or saved[0] != _seed_files(ctx):
        return False
    # There is a checkpoint, so both stores are Checkpointable (``isinstance`` on a runtime
    # protocol costs about a millisecond: not on every reset).
    cast(Checkpointable, ctx.metadata).restore(saved[1])
    cast(Checkpointable, ctx.blobs).restore(saved[2])
    return True


async def reset(ctx: Context) -> None:
    """Every mailbox, upload session, fault rule and journal entry back to the seeded state.

    The tenant id and the signing key stay (tokens minted before a reset stay valid for users that
    the seeded state has again); the clock goes back to the wall clock (or to where ``--frozen-clock``
    started it); a seeded id generator (``--seed``) starts its sequence again, so every test that
    begins with a reset sees the same ids whatever ran before it.

    In-memory stores go back to a copy taken right after seeding (one unpickling, tens of
    microseconds, instead of seeding the demo tenant again); the others are emptied and seeded.
    """
    async with ctx.reset_lock:
        if ctx.seed_plan is not None:
            from graphattach.services.seed_data import check_files

            check_files(ctx.seed_plan)  # before anything is deleted
        restored = _restore(ctx)
        if not restored:
            await ctx.metadata.reset()
            await ctx.blobs.reset()
            # The stores keep their settings; these only matter for a store that lost them.
            await ctx.metadata.set_setting_if_absent("tenant_id", ctx.tenant_id)
            await ctx.metadata.set_setting_if_absent("signing_key", ctx.tokens.private_key_pem)
        ctx.clock.reset()
        ctx.ids.restart()
        ctx.admin_ids.restart()
        ctx.journal.clear()
        for hook in ctx.reset_hooks:
            result = hook()
            if inspect.isawaitable(result):
                await result
        if not restored:
            await seed(ctx)
            await ctx.metadata.set_setting_if_absent(SEEDED_SETTING, "1")
            _checkpoint(ctx)
