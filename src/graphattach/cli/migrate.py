"""``graphattach migrate``: bring a metadata store's schema up to date (or report what is pending).

``graphattach serve`` migrates at start too (under a lock, so several processes may start at once);
this command lets a deployment migrate first, as one step, before it starts or upgrades servers.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click

from graphattach.composition import redact_url as redact
from graphattach.settings import default_data_dir


def _status(url: str) -> tuple[int, list[str]]:
    scheme = urlsplit(url).scheme
    if scheme in ("postgresql", "postgres"):
        from graphattach.storage.postgres import schema_status

        return asyncio.run(schema_status(url))
    if scheme == "sqlite":
        from graphattach.storage.sqlite import load_migrations

        path = Path(urlsplit(url).path)
        current = 0
        if path.exists():
            conn = sqlite3.connect(path)
            try:
                current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            finally:
                conn.close()
        return current, [name for version, name, _ in load_migrations() if version > current]
    raise click.UsageError(f"{url!r}: migrations apply to sqlite:///path and postgresql://... stores")


def _migrate(url: str) -> None:
    from graphattach.composition import make_metadata_store

    async def run() -> None:
        store = make_metadata_store(url)
        await store.open()  # applies the pending migrations under the store's lock
        await store.close()

    asyncio.run(run())


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option(
        "--store",
        envvar="GRAPHATTACH_STORE",
        default=None,
        help="Metadata store URL (postgresql://..., sqlite:///path). [default: the SQLite file under --data-dir]",
    )
    @click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="As for serve.")
    @click.option("--check", is_flag=True, help="Apply nothing: report, and exit 1 if migrations are pending.")
    def migrate(store: str | None, data_dir: Path | None, check: bool) -> None:
        """Apply pending schema migrations to a metadata store."""
        if store is None:
            data = (data_dir or default_data_dir()).expanduser().resolve()
            store = f"sqlite:///{data / 'metadata.sqlite3'}"
        try:
            current, pending = _status(store)
            if check:
                click.echo(f"{redact(store)}: schema version {current}; pending: {', '.join(pending) or 'none'}")
                sys.exit(1 if pending else 0)
            _migrate(store)
            version, left = _status(store)
        except (OSError, RuntimeError, ValueError) as exc:
            click.echo(f"graphattach: {redact(store)}: {exc}", err=True)
            sys.exit(2)
        if left:  # pragma: no cover - open() applies everything or raises
            click.echo(f"graphattach: migrations still pending: {', '.join(left)}", err=True)
            sys.exit(2)
        applied = ", ".join(pending) if pending else "nothing to apply"
        click.echo(f"{redact(store)}: schema version {version} ({applied})")
