"""The composition root: picks the metadata and blob stores from settings and opens a Context."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlparse, urlsplit, urlunsplit

from graphattach.auth.team import load_team_config
from graphattach.auth.tokens import TokenService, generate_private_key_pem
from graphattach.domain import ids
from graphattach.services.clock import Clock
from graphattach.services.context import Context
from graphattach.services.users import ensure_demo_tenant, ensure_team_users
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


def make_blob_store(url: str) -> BlobStore:
    parsed = urlparse(url)
    if parsed.scheme == "memory":
        from graphattach.storage.memory import MemoryBlobStore

        return MemoryBlobStore()
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


async def open_context(settings: Settings) -> Context:
    """Open the stores, load or create the tenant and its signing key, seed the demo tenant."""
    if not settings.in_memory:
        Path(settings.data_dir).expanduser().mkdir(parents=True, exist_ok=True)
    store_url, blob_url = store_urls(settings)
    metadata = make_metadata_store(store_url)
    blobs = make_blob_store(blob_url)
    await metadata.open()
    await blobs.open()
    tenant_id = await metadata.set_setting_if_absent("tenant_id", settings.tenant_id or ids.new_guid())
    pem = await metadata.get_setting("signing_key")
    if pem is None:
        pem = await metadata.set_setting_if_absent("signing_key", await asyncio.to_thread(generate_private_key_pem))
    tokens = TokenService(pem, tenant_id, settings.root_url)
    ctx = Context(
        settings=settings,
        metadata=metadata,
        blobs=blobs,
        clock=Clock(),
        tokens=tokens,
        tenant_id=tenant_id,
        team=load_team_config(settings.config_file),
    )
    if settings.demo_tenant:
        await ensure_demo_tenant(ctx)
    await ensure_team_users(ctx)
    return ctx


async def close_context(ctx: Context) -> None:
    await ctx.blobs.close()
    await ctx.metadata.close()


@asynccontextmanager
async def context_for(settings: Settings) -> AsyncIterator[Context]:
    ctx = await open_context(settings)
    try:
        yield ctx
    finally:
        await close_context(ctx)
