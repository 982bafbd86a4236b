"""graphattach for test suites: ``GraphServer`` (in-process or connected) and a pytest plugin.

    from graphattach.testing import GraphServer

    def test_it():
        with GraphServer() as graph:
            ...

With graphattach installed, pytest has the fixtures ``graph`` (reset before each test) and
``graph_server`` (one per session) without any import: see docs/testing.md. The names below are
imported on first use, so that pytest loading the plugin (a submodule) costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphattach.testing.records import AttachmentInfo, ItemInfo, RequestRecord, UserInfo
    from graphattach.testing.server import (
        ADELE,
        ALEX,
        CLIENT_SECRET,
        DEMO_USERS,
        MEGAN,
        GraphServer,
        GraphServerError,
        ServerClock,
    )

_WHERE = {
    **dict.fromkeys(("AttachmentInfo", "ItemInfo", "RequestRecord", "UserInfo"), "records"),
    **dict.fromkeys(
        ("ADELE", "ALEX", "CLIENT_SECRET", "DEMO_USERS", "MEGAN", "GraphServer", "GraphServerError", "ServerClock"),
        "server",
    ),
}

__all__ = [
    "ADELE",
    "ALEX",
    "CLIENT_SECRET",
    "DEMO_USERS",
    "MEGAN",
    "AttachmentInfo",
    "GraphServer",
    "GraphServerError",
    "ItemInfo",
    "RequestRecord",
    "ServerClock",
    "UserInfo",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'graphattach.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(f"graphattach.testing.{_WHERE[name]}"), name)
