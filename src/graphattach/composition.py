"""The composition root: picks the metadata and blob stores from settings and opens a Context."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse, urlsplit, urlunsplit

from graphattach.auth.team import load_team_config
from graphattach.auth.tokens import TokenService, generate_private_key_pem, test_private_key_pem
from graphattach.domain import ids
from graphattach.services.clock import Clock
from graphattach.services.context import Context
from graphattach.services.journal import Journal
from graphattach.services.tenant import ensure_seeded
from graphattach.services.users import ensure_team_users
from graphattach.settings import Settings
from graphattach.storage.interfaces import BlobStore, MetadataStore


def store_urls(settings: Settings) -> tuple[str, str]:
    """The metadata and blob store URLs that ``settings`` select."""
    if settings.in_memory:
        return settings.store or "memory:", settings.blobs or "memory:"
    data = Path(settings.data_dir).expanduser().resolve()
    return (
        settings.store or f"sqlite:///{data / 'metadata.sqlite3'}",
        settings.blobs or f"file:///{data / 'blobs'}".replace("file:////", "file:///"),
    )


_SCALE_EXTRA = "{scheme} stores need {missing}, which is not installed: pip install 'graphattach[scale]'"


def redact_url(url: str) -> str:
    """A store URL fit to show: without its password (``postgresql://user:***@host/db``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit((parts.scheme, f"{user.split(':', 1)[0]}:***@{host}", parts.path, parts.query, parts.fragment))


def make_metadata_store(url: str) -> MetadataStore:
    parsed = urlparse(url)
    if parsed.scheme == "memory":
        from graphattach.storage.memory import MemoryMetadataStore

        return MemoryMetadataStore()
    if parsed.scheme == "sqlite":
        from graphattach.storage.sqlite import SqliteMetadataStore

        return SqliteMetadataStore(Path(parsed.path))
    if parsed.scheme in ("postgresql", "postgres"):
        try:
            from graphattach.storage.postgres import PostgresMetadataStore
        except ImportError as exc:
            raise RuntimeError(_SCALE_EXTRA.format(scheme="postgresql://", missing=exc.name or "asyncpg")) from exc
        return PostgresMetadataStore(url)
    raise ValueError(f"unsupported metadata store URL: {url!r} (use memory:, sqlite:///path or postgresql://...)")


def make_blob_store(url: str, *, memory_limit: int | None = None) -> BlobStore:
    """The blob store ``url`` names; ``memory_limit`` caps the bytes a ``memory:`` store keeps in memory."""
    parsed = urlparse(url)
    if parsed.scheme == "memory":
        from graphattach.storage.memory import MemoryBlobStore

        return MemoryBlobStore(memory_limit)
    if parsed.scheme == "file":
        from graphattach.storage.files import FileBlobStore

        return FileBlobStore(Path(parsed.path))
    if parsed.scheme == "s3":
        try:
            import aiobotocore  # noqa: F401  (imported by the store when it opens)

            from graphattach.storage.s3 import S3BlobStore
        except ImportError as exc:
            raise RuntimeError(_SCALE_EXTRA.format(scheme="s3://", missing=exc.name or "aiobotocore")) from exc
        return S3BlobStore(url)
    raise ValueError(f"unsupported blob store URL: {url!r} (use memory:, file:///dir or s3://bucket/prefix)")


_memory_signing_key: str | None = None


async def _new_signing_key(store_url: str, seed: int | None) -> str:
    """A new RSA key; the published test key under ``--seed`` (the same tokens on every run); in-memory
    stores (tests) share one per process: generating one takes 0.1-0.3 s and they keep nothing, so
    nothing outlives the process that could be mixed up."""
    global _memory_signing_key
    if seed is not None:
        return test_private_key_pem()
    if not store_url.startswith("memory:"):
        return await asyncio.to_thread(generate_private_key_pem)
    if _memory_signing_key is None:
        _memory_signing_key = await asyncio.to_thread(generate_private_key_pem)
    return _memory_signing_key


def new_tenant_id(settings: Settings) -> str:
    """The tenant id of a new store: the one set, else a GUID (the same one for the same ``--seed``)."""
    if settings.tenant_id:
        return settings.tenant_id
    with ids.minting_from(ids.IdSource(f"tenant:{settings.seed}" if settings.seed is not None else None)):
        return ids.new_guid()


async def open_context(settings: Settings) -> Context:
    """Open the stores, load or create the tenant and its signing key, seed a new store."""
    if not settings.in_memory:
        Path(settings.data_dir).expanduser().mkdir(parents=True, exist_ok=True)
    store_url, blob_url = store_urls(settings)
    metadata = make_metadata_store(store_url)
    blobs = make_blob_store(blob_url, memory_limit=settings.memory_limit)
    await metadata.open()
    await blobs.open()
    tenant_id = await metadata.set_setting_if_absent("tenant_id", new_tenant_id(settings))
    pem = await metadata.get_setting("signing_key")
    if pem is None:
        pem = await metadata.set_setting_if_absent("signing_key", await _new_signing_key(store_url, settings.seed))
    tokens = TokenService(pem, tenant_id, settings.root_url)
    frozen = datetime.fromisoformat(settings.frozen_clock) if settings.frozen_clock else None
    ctx = Context(
        settings=settings,
        metadata=metadata,
        blobs=blobs,
        clock=Clock(frozen),
        tokens=tokens,
        tenant_id=tenant_id,
        ids=ids.IdSource(settings.seed),
        admin_ids=ids.IdSource(f"admin:{settings.seed}" if settings.seed is not None else None),
        journal=Journal(settings.journal_size),
        team=load_team_config(settings.config_file),
    )
    if settings.seed_data:
        from graphattach.services.seed_data import read_plan

        ctx.seed_plan = await asyncio.to_thread(read_plan, settings.seed_data)
    await ensure_seeded(ctx)
    await ensure_team_users(ctx)  # a config's users, also on a store seeded before the config named them
    return ctx


async def close_context(ctx: Context) -> None:
    dispatcher = ctx.extensions.pop("notifications", None)
    if dispatcher is not None:
        await dispatcher.stop()
    await ctx.blobs.close()
    await ctx.metadata.close()


@asynccontextmanager
async def context_for(settings: Settings) -> AsyncIterator[Context]:
    ctx = await open_context(settings)
    try:
        yield ctx
    finally:
        await close_context(ctx)
