"""The ``graphattach`` entry point loads a command's module only to run it; ``serve`` keeps its parent lean."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from graphattach.cli.main import COMMANDS, cli
from tests.helpers import loaded_after, running_server

LISTING = """\
import io, json, sys
from contextlib import redirect_stdout
from graphattach.cli.main import COMMANDS, cli
def help_text():
    out = io.StringIO()
    with redirect_stdout(out):
        try:
            cli.main(["--help"], prog_name="graphattach")
        except SystemExit:
            pass
    return out.getvalue()
lazy = help_text()
loaded = sorted(m for m in sys.modules if m.startswith("graphattach.cli."))
ctx = cli.make_context("graphattach", ["--help"], resilient_parsing=True)
for name in COMMANDS:
    cli.get_command(ctx, name)
print(json.dumps({"lazy": lazy, "eager": help_text(), "loaded": loaded}))
"""


def test_entry_point_import_loads_no_command() -> None:
    loaded = loaded_after("import graphattach.cli.main")
    commands = {f"graphattach.cli.{module}" for module, _ in COMMANDS.values()}
    assert not loaded & (commands | {"httpx", "graphattach.client", "graphattach.composition", "graphattach.api"})


def test_help_lists_the_commands_without_loading_them() -> None:
    done = subprocess.run([sys.executable, "-c", LISTING], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    assert result["loaded"] == ["graphattach.cli.main"]
    assert result["lazy"] == result["eager"]
    assert "serve" in result["lazy"] and "attachments" in result["lazy"]


def test_summaries_are_the_commands_docstrings() -> None:
    ctx = click.Context(cli)
    for name, (_, summary) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.help is not None
        assert command.help.split("\n\n")[0].replace("\n", " ") == summary


def test_serve_only_loads_the_server_command() -> None:
    loaded = loaded_after(
        "from graphattach.cli.main import cli\nimport click\ncli.get_command(click.Context(cli), 'serve')"
    )
    assert "graphattach.cli.server" in loaded
    assert not loaded & {"graphattach.cli.client", "graphattach.composition", "httpx"}


def _shared_objects(pid: int) -> set[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {line.rsplit("/", 1)[-1] for line in maps.splitlines() if ".so" in line}


@pytest.mark.server
@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/<pid>/maps")
def test_serve_parent_never_opens_the_store(tmp_path: Path) -> None:
    """The store is prepared in a child that exits: the parent only runs granian (one worker)."""
    with running_server(tmp_path / "data") as server:
        assert server.proc is not None
        parent = server.proc.pid
        children: list[str] = []
        for _ in range(50):  # the worker answered the health check; its pid is there by now
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            if children:
                break
            time.sleep(0.1)
        assert len(children) == 1
        in_parent = _shared_objects(parent)
        in_worker = _shared_objects(int(children[0]))
    assert any(name.startswith("_sqlite3") for name in in_worker)
    assert not any(name.startswith(("_sqlite3", "_rust", "orjson", "_cffi_backend")) for name in in_parent)


def test_serve_reports_a_bad_store_as_before(tmp_path: Path) -> None:
    """The preparation fails in the child: its traceback, exit status 1, no "serving" lines."""
    cmd = [sys.executable, "-m", "graphattach", "serve", "--store", "bogus://x", "--data-dir", str(tmp_path / "d")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert done.stderr.rstrip().splitlines()[-1] == (
        "ValueError: unsupported metadata store URL: 'bogus://x' (use memory:, sqlite:///path or postgresql://...)"
    )


def test_serve_refuses_a_memory_limit_that_is_not_a_size(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "graphattach", "serve", "--in-memory", "--memory-limit", "lots"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "'lots' is not a size (e.g. 512MB), or 'unlimited'" in done.stderr
