"""What the SQL stores (SQLite, PostgreSQL) share: packaged migrations, the JSON column, and
how an integrity violation becomes the store contract's exception."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any, Literal

import orjson

from graphattach.storage.errors import Conflict, RecordNotFound

_MIGRATION_NAME = re.compile(r"^(\d{4})_[A-Za-z0-9_]+\.sql$")
_DIALECT_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def load_migrations(dialect: Literal["sqlite", "postgres"]) -> list[tuple[int, str, str]]:
    """The packaged migrations of ``dialect`` as ``(version, name, sql)``, in order; versions are
    1, 2, 3... (``migrations/<dialect>/NNNN_name.sql``)."""
    folder = resources.files("graphattach.storage").joinpath("migrations", dialect)
    found: list[tuple[int, str, str]] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [version for version, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(
            f"{_DIALECT_NAMES[dialect]} migrations must be numbered 0001, 0002... without gaps: {versions}"
        )
    return found


def json_text(data: dict[str, Any]) -> str:
    """The ``data`` column: Graph properties that are not columns, as JSON text."""
    return orjson.dumps(data).decode("utf-8")


def integrity_error(exc: Exception, what: str, *, foreign_key: bool) -> Exception:
    """``RecordNotFound`` for a missing referenced record, ``Conflict`` for a taken id or name."""
    if foreign_key:
        return RecordNotFound(what)
    return Conflict(f"{what}: {exc}")
