"""Fixtures of the compatibility suite (run it with ``scripts/test-compat``).

The suite needs the third-party clients pinned in ``tests/compat/requirements.txt``, which live in
``.venv-compat/`` only. In the project's main venv this directory collects nothing; under
``scripts/test-compat`` (``GRAPHATTACH_COMPAT=1``) a missing client is an error.

Servers: ``outlook_server`` is the session's default-profile server (tests/conftest.py
``server_process``); ``lenient_server`` runs ``--profile lenient``. Every response any client
receives goes through ``conformance`` (autouse): a JSON body that departs from Graph's metadata
fails the test that received it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

CLIENT_MODULES = ("msgraph", "msgraph_core", "kiota_abstractions", "O365", "schemathesis")
MISSING = [name for name in CLIENT_MODULES if importlib.util.find_spec(name) is None]

if MISSING and os.environ.get("GRAPHATTACH_COMPAT"):
    raise RuntimeError(f"the compatibility suite needs {MISSING}: run it with scripts/test-compat")
if MISSING:
    # The main venv: nothing here can run; scripts/test-compat runs this directory in .venv-compat.
    collect_ignore_glob = ["test_*.py"]

from tests.helpers import ADELE, ServerProcess  # noqa: E402
from tests.schema import ERROR_TYPE, ConformanceLog  # noqa: E402

#: Path prefix of the upload origin (Outlook's REST root), whose answers are Outlook's, not Graph's.
UPLOAD_PREFIX = "/api/"


def classify(response: Any) -> str | None:
    """The metadata type of a response the default rules cannot infer (see ``ConformanceLog``)."""
    path = urlsplit(str(response.request.url)).path
    if path.startswith("/_graphattach") or path == "/openapi.json":
        return ""  # not Graph
    if path.startswith("/beta/"):
        return ""  # tests/data holds the v1.0 metadata only
    if path.endswith("/$batch") and response.status_code == 200:
        return ""  # a batch envelope: its items' bodies are answers of their own requests
    if path.rstrip("()").endswith("/delta") and response.status_code == 200:
        # delta pages name their context "$metadata#Collection(message)" (delta-query-messages)
        kind = "event" if "/calendarView/" in path else "message"
        return f"Collection(microsoft.graph.{kind})"
    if path.startswith(UPLOAD_PREFIX):
        if response.status_code >= 400:
            return ERROR_TYPE
        body = response.content if hasattr(response, "content") else b""
        if b'"ExpirationDateTime"' in body:
            return "outlook.attachmentSessionProgress"
        return "microsoft.graph.uploadSession"
    return None


@pytest.fixture(scope="session")
def outlook_server(server_process: ServerProcess) -> ServerProcess:
    """The default (``outlook``) profile: exactly the real service."""
    return server_process


@pytest.fixture(scope="session")
def lenient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``--profile lenient``: bends where well-known clients need it (docs/fidelity.md, "nextExpectedRanges in lenient" and "PUT after completion")."""
    server = ServerProcess(tmp_path_factory.mktemp("lenient") / "data", "--profile", "lenient").start()
    yield server
    server.stop()


@pytest.fixture
def conformance() -> Iterator[ConformanceLog]:
    log = ConformanceLog(classify=classify)
    yield log
    log.assert_clean()


@pytest.fixture
def tokens() -> Callable[..., str]:
    """``tokens(server, user=ADELE, scopes=None)`` → a delegated bearer token (cached per test)."""
    from tests.compat.clients import mint_token

    cache: dict[Any, str] = {}

    def get(server: ServerProcess, user: str = ADELE, scopes: list[str] | None = None) -> str:
        key = (server.root, user, tuple(scopes or ()))
        if key not in cache:
            cache[key] = mint_token(server.root, user, scopes)
        return cache[key]

    return get


@pytest.fixture
def make_graph(
    outlook_server: ServerProcess, tokens: Callable[..., str], conformance: ConformanceLog
) -> Callable[..., Any]:
    """``make_graph(server=outlook_server, user=ADELE)`` → msgraph-sdk ``GraphServiceClient``."""
    from tests.compat.clients import graph_client

    def make(server: ServerProcess | None = None, user: str = ADELE) -> Any:
        server = server or outlook_server
        return graph_client(server.root, tokens(server, user), conformance)

    return make


@pytest.fixture
def make_o365(
    outlook_server: ServerProcess, tokens: Callable[..., str], conformance: ConformanceLog
) -> Callable[..., Any]:
    """``make_o365(server=outlook_server, user=ADELE)`` → O365 ``Account`` on ``users/{user}``."""
    from tests.compat.clients import o365_account

    def make(server: ServerProcess | None = None, user: str = ADELE) -> Any:
        server = server or outlook_server
        return o365_account(server.root, tokens(server, user), user, conformance)

    return make


@pytest.fixture
def raw(conformance: ConformanceLog) -> Iterator[Any]:
    """A plain ``httpx.Client`` whose responses are checked like the clients'."""
    import httpx

    with httpx.Client(timeout=120, event_hooks={"response": [conformance.sync_hook]}) as client:
        yield client
