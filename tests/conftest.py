"""Shared fixtures.

``graph`` is the workhorse: a ``tests.helpers.Graph`` client, parametrised to run every API test
twice, once in-process (httpx over ASGI, in-memory stores) and once against a real
``graphattach serve`` process over a real socket (SQLite + files). Tests must not assume a clean
mailbox: they create what they use (the server process is shared by the whole session).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from graphattach.api.app import build_app
from graphattach.composition import context_for
from graphattach.settings import Settings
from tests.helpers import Graph, ServerProcess

#: PostgreSQL and S3 engines for tests (``GRAPHATTACH_TEST_STACK=postgres-s3`` runs the API suite on them);
#: pytester runs the pytest plugin graphattach ships (tests/testing).
pytest_plugins = ("tests.engines", "pytester")


@pytest.fixture(scope="session")
def server_process(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server for the session (default profile, SQLite + files)."""
    data_dir = tmp_path_factory.mktemp("server") / "data"
    from tests.engines import stack_server_args

    args, env = stack_server_args(request)
    server = ServerProcess(data_dir, *args, env=env).start()
    yield server
    server.stop()


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    """Settings for the in-process app (tests may override with ``dataclasses.replace``)."""
    from tests.engines import stack_store_urls

    if urls := stack_store_urls(request):
        return Settings(in_memory=True, sweep_interval=0, store=urls[0], blobs=urls[1])
    return Settings(in_memory=True, sweep_interval=0)


@asynccontextmanager
async def inprocess(settings: Settings) -> AsyncIterator[Graph]:
    """A Graph client over ASGI (no socket) to an app on fresh stores of ``settings``."""
    async with context_for(settings) as context:
        app = build_app(context)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), timeout=30) as http:
            graph = Graph(http, context.settings.root_url, "inprocess")
            graph.ctx = context
            yield graph


@pytest.fixture
async def inprocess_graph(settings: Settings) -> AsyncIterator[Graph]:
    async with inprocess(settings) as graph:
        yield graph


@pytest.fixture(params=["inprocess", "server"])
async def graph(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Graph]:
    if request.param == "inprocess":
        async with inprocess(settings) as graph:
            yield graph
        return
    server: ServerProcess = request.getfixturevalue("server_process")
    async with httpx.AsyncClient(timeout=60) as http:
        yield Graph(http, server.root, "server")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
