"""graphattach for test suites: ``GraphServer`` (in-process or connected) and a pytest plugin.

    from graphattach.testing import GraphServer

    def test_it():
        with GraphServer() as graph:
            ...

With graphattach installed, pytest has the fixtures ``graph`` (reset before each test) and
``graph_server`` (one per session) without any import: see docs/testing.md.
"""

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
