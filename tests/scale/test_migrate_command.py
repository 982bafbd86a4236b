"""``graphattach migrate``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphattach.cli.main import cli
from graphattach.composition import make_blob_store, make_metadata_store
from graphattach.composition import redact_url as redact
from graphattach.storage import postgres, sqlite


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["migrate", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_postgres_check_then_migrate(pg_url: str) -> None:
    latest = len(postgres.load_migrations())
    code, output = _run("--store", pg_url, "--check")
    assert code == 1
    assert "schema version 0" in output and "0001_initial.sql" in output
    code, output = _run("--store", pg_url)
    assert code == 0, output
    assert f"schema version {latest} (0001_initial.sql" in output
    code, output = _run("--store", pg_url)
    assert code == 0 and "nothing to apply" in output
    code, output = _run("--store", pg_url, "--check")
    assert code == 0 and "pending: none" in output


def test_sqlite_store_from_the_data_dir(tmp_path: Path) -> None:
    latest = len(sqlite.load_migrations())
    code, output = _run("--data-dir", str(tmp_path), "--check")
    assert code == 1 and "schema version 0" in output
    code, output = _run("--data-dir", str(tmp_path))
    assert code == 0, output
    assert (tmp_path / "metadata.sqlite3").exists()
    assert f"schema version {latest}" in output
    code, _ = _run("--store", f"sqlite:///{tmp_path / 'metadata.sqlite3'}", "--check")
    assert code == 0


def test_store_from_the_environment_and_errors(pg_url: str) -> None:
    result = CliRunner().invoke(cli, ["migrate"], env={"GRAPHATTACH_STORE": pg_url}, catch_exceptions=False)
    assert result.exit_code == 0 and "schema version" in result.output
    code, output = _run("--store", "memory:")
    assert code == 2 and "migrations apply to" in output
    unreachable = "postgresql://nobody:secret@127.0.0.1:1/none"
    code, output = _run("--store", unreachable)
    assert code == 2
    assert "secret" not in output and "nobody:***@127.0.0.1:1" in output


def test_redact() -> None:
    assert redact("postgresql://u:pw@h:5432/db?x=1") == "postgresql://u:***@h:5432/db?x=1"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact("sqlite:///tmp/x") == "sqlite:///tmp/x"


def test_a_missing_scale_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    monkeypatch.delitem(sys.modules, "graphattach.storage.postgres", raising=False)
    with pytest.raises(RuntimeError, match=r"postgresql:// stores need asyncpg.*graphattach\[scale\]"):
        make_metadata_store("postgresql://u@h/db")
    monkeypatch.setitem(sys.modules, "aiobotocore", None)
    with pytest.raises(RuntimeError, match=r"s3:// stores need aiobotocore"):
        make_blob_store("s3://bucket/prefix")
