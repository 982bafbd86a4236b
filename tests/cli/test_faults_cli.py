"""``graphattach faults add|list|clear`` and ``graphattach throttling`` against a real server."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from graphattach.cli.main import cli
from tests.helpers import ServerProcess


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_faults_add_list_clear(server_process: ServerProcess, tmp_path: Path) -> None:
    base = ("--graph-url", f"{server_process.root}/v1.0")
    code, out = run(
        "faults", "add", '{"match":{"operation":"uploadSession.put","nth":2},"action":{"type":"drop"}}', *base
    )
    assert code == 0, out
    first = json.loads(out)
    assert first["action"] == {"type": "drop"} and first["fired"] == 0
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - match: {operation: messages.list}\n    action: {type: delay, ms: 5}\n")
    code, out = run("faults", "add", "--file", str(rules), *base)
    assert code == 0, out
    second = json.loads(out)
    code, out = run("faults", "list", *base)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == [first["id"], second["id"]]
    assert "matched 0  fired 0" in out
    code, out = run("faults", "clear", first["id"], *base)
    assert code == 0
    code, out = run("faults", "list", "--json", *base)
    assert [r["id"] for r in json.loads(out)] == [second["id"]]
    code, out = run("faults", "add", '{"action":{"type":"cut"}}', *base)
    assert code == 1 and "'action.afterBytes' is required" in out
    assert run("faults", "clear", *base)[0] == 0
    assert json.loads(run("faults", "list", "--json", *base)[1]) == []


def test_throttling_set_show_off(server_process: ServerProcess) -> None:
    base = ("--graph-url", f"{server_process.root}/v1.0")
    code, out = run("throttling", "concurrency=2,requests=100/60,upload=20MB/60", *base)
    assert code == 0, out
    assert out.startswith('limits: {"concurrency":2,"requests":"100/60"')
    code, out = run("throttling", "requests=lots", *base)
    assert code == 1 and "'requests'" in out
    code, out = run("throttling", "off", *base)
    assert code == 0 and out.strip() == "limits: off"
