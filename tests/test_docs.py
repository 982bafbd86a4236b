"""Every ``sh`` block of README.md and docs/*.md runs, as pasted after the README's first command.

The README's first command (``./scripts/serve``) starts a server on 127.0.0.1:8765; here a real
``graphattach serve`` on a free port stands in for it, and the blocks' ``8765`` is that port.
Each document is one shell session (its blocks in order, sharing variables, as a reader pastes
them), run by bash with ``set -euo pipefail`` in a scratch directory that has the repository's
``.venv`` and ``scripts``. A block that cannot run here says why, on the line before it:
``<!-- docs-test: skip (reason) -->``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
SKIP = re.compile(r"<!-- docs-test: skip \((?P<reason>.+)\) -->\s*$")

pytestmark = pytest.mark.server


def sh_blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, skip reason or None)`` of each ``sh`` block."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        if match.group("info").strip() not in ("sh", "bash", "shell"):
            continue
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        indent = match.group("indent")
        code = "\n".join(row.removeprefix(indent) for row in match.group("body").splitlines())
        blocks.append((line, code, skip.group("reason") if skip else None))
    return blocks


def test_the_blocks_are_found_and_every_skip_says_why() -> None:
    readme = sh_blocks(ROOT / "README.md")
    assert readme[0][2] is not None and "./scripts/serve" in readme[0][1]  # the first command
    assert sum(1 for _, _, skip in readme if skip is None) >= 4
    for path in DOCS:
        for line, _, skip in sh_blocks(path):
            assert skip is None or len(skip) > 20, f"{path.name}:{line}: say why the block cannot run here"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    server = ServerProcess(tmp_path_factory.mktemp("docs") / "data").start()
    yield server  # type: ignore[misc]
    server.stop()


def _venv() -> Path:
    """The venv running these tests: the repository's .venv under scripts/test."""
    return Path(sys.executable).parent.parent


@pytest.mark.parametrize(
    "path", [p for p in DOCS if any(skip is None for _, _, skip in sh_blocks(p))], ids=lambda p: p.name
)
def test_the_commands_run_as_written(path: Path, server: ServerProcess, tmp_path: Path) -> None:
    port = str(server.port)
    script = ["set -euo pipefail"]
    for line, code, skip in sh_blocks(path):
        if skip is None:
            script += [f"echo '--- {path.name}:{line}' >&2", code.replace(":8765", f":{port}")]
    (tmp_path / ".venv").symlink_to(_venv())
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHATTACH_")}
    env["HOME"] = str(tmp_path)  # nothing lands in the real home
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != _venv() / "bin")
    # the README's first command serves on 8765; this test's server is on `port`, which a command
    # that relies on the default (graphattach token without --graph-url) must find too
    env["GRAPHATTACH_GRAPH_URL"] = f"http://127.0.0.1:{port}/v1.0"
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{path.name}: exit {done.returncode}\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}"
