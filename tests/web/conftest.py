"""Fixtures of the web UI's tests: a real ``graphattach serve`` process with demo data, a locked
one (``--admin-key``), and headless Chromium from the system's packages driven over CDP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.engines import stack_server_args
from tests.helpers import ServerProcess
from tests.web.cdp import Browser, Page, find_chromium
from tests.web.seed import Seeded, seed

ADMIN_KEY = "web-ui-test-key"


@dataclass
class UiServer:
    server: ServerProcess
    seeded: Seeded

    @property
    def root(self) -> str:
        return self.server.root


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        pytest.fail("the web UI's tests need Chromium: apt-get install chromium (scripts/test installs it)")
    instance = Browser(executable)
    yield instance
    instance.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = browser.new_page()
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def ui(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """A server with the demo data of ``tests.web.seed`` (stores as the test stack says)."""
    args, env = stack_server_args(request)
    server = ServerProcess(tmp_path_factory.mktemp("web") / "data", *args, env=env).start()
    try:
        yield UiServer(server, seed(server.root))
    finally:
        server.stop()


@pytest.fixture(scope="module")
def locked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args, env = stack_server_args(request)
    server = ServerProcess(tmp_path_factory.mktemp("locked") / "data", *args, "--admin-key", ADMIN_KEY, env=env)
    server.start()
    yield server
    server.stop()
