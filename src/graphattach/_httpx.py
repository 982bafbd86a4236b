"""``httpx``, imported without its command-line tool: ``from graphattach._httpx import httpx``.

``httpx/__init__.py`` (0.28) ends with ``from ._main import main``: its CLI, which imports click,
rich and pygments. That is a third of httpx's import time and about 6 MiB that a library never
uses (upstream: encode/httpx#3547). httpx already copes with that import failing (its ``cli``
extra missing): it binds a stub ``main`` instead. So while httpx itself is imported, a ``None``
entry in ``sys.modules`` makes ``import httpx._main`` fail (the import system's documented meaning
of ``None`` there); the entry is removed right after, and ``httpx.main`` forwards to the real CLI,
loaded when it is called. Nothing changes when httpx was imported before this module.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["httpx"]

_CLI = "httpx._main"
_block_cli = "httpx" not in sys.modules and _CLI not in sys.modules
if _block_cli:
    sys.modules[_CLI] = None  # type: ignore[assignment]
try:
    import httpx
finally:
    if _block_cli and _CLI in sys.modules and sys.modules[_CLI] is None:
        del sys.modules[_CLI]


def _cli_main(*args: Any, **kwargs: Any) -> Any:
    """httpx's command-line tool (``httpx.main``), imported on first use."""
    from httpx._main import main

    return main(*args, **kwargs)


if _block_cli:
    httpx.main = _cli_main  # type: ignore[assignment]
