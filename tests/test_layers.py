"""What each layer may import (docs/architecture.md, "Layers"): checked on the source, so a new
import across a layer boundary fails here before it becomes a habit."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "graphattach"

#: layer → the other layers it may import (``_httpx`` is the client's lazy httpx import).
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "protocol": {"domain"},
    "storage": {"domain"},
    "settings": {"domain"},
    "auth": {"domain", "protocol"},
    "services": {"domain", "protocol", "auth", "storage", "settings", "_httpx"},
    "composition": {"domain", "auth", "services", "settings", "storage"},
    "api": {"domain", "protocol", "auth", "services", "storage", "settings", "composition"},
    "client": {"domain", "_httpx"},
    "cli": {
        "domain",
        "protocol",
        "auth",
        "client",
        "composition",
        "settings",
        "storage",
        "_httpx",
        "api",
        "services",
        "testing",
    },
    "web": {"domain", "protocol", "auth", "services", "storage", "settings", "api"},
    # the test kit runs the real server in-process, as `graphattach serve` does
    "testing": {
        "domain",
        "protocol",
        "client",
        "settings",
        "storage",
        "_httpx",
        "api",
        "auth",
        "composition",
        "services",
        "cli",
    },
}

#: The ASGI application puts the Graph routes and the web UI's pages on one port: the one api
#: module that may import ``web`` (which imports ``api``'s helpers; nothing else of api does).
ASSEMBLY: dict[str, set[str]] = {"api/app.py": {"web"}}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "graphattach" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_layer_imports_only_what_it_may() -> None:
    seen: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        layer = parts[0].removesuffix(".py")
        if layer in ("__init__", "__main__", "_httpx"):
            continue
        seen.add(layer)
        assert layer in ALLOWED, f"new layer {layer}: add it to ALLOWED and docs/architecture.md"
        wrong = _imports(path) - ALLOWED[layer] - {layer} - ASSEMBLY.get(path.relative_to(PACKAGE).as_posix(), set())
        assert not wrong, f"{path.relative_to(PACKAGE)} imports {sorted(wrong)}"
    assert {"domain", "protocol", "services", "api", "storage"} <= seen
