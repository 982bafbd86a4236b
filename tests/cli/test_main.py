"""The ``graphattach`` entry point loads a command's module only to run it (or show its own help)."""

from __future__ import annotations

import json
import subprocess
import sys

import click

from graphattach.cli.main import COMMANDS, cli
from tests.helpers import loaded_after

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
