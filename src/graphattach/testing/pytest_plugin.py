"""The pytest plugin graphattach registers (entry point ``pytest11``): installing graphattach is enough.

Fixtures:

- ``graph``: a ``GraphServer`` reset to its seeded state before the test (function scope);
- ``graph_server``: the session's server, not reset (session scope).

Choose the server with options (``--graphattach-profile``, ``--graphattach-seed``, or the ini keys
``graphattach_profile`` / ``graphattach_seed``) or per test with a marker:
``@pytest.mark.graphattach(profile="lenient", seed=1, frozen_clock="2026-01-01T09:00:00Z")`` (any
keyword of ``GraphServer``; one server per distinct set, started on first use, kept for the session).

``--graphattach-url URL`` (or ``$GRAPHATTACH_URL``; ``$GRAPHATTACH_ADMIN_KEY`` for its key) runs the
same tests against a server started elsewhere, through its admin API.

Failures on demand (docs/faults.md): ``--graphattach-faults FILE`` / ``graphattach_faults`` (rules
every test starts with) and ``--graphattach-throttling outlook|SPEC`` / ``graphattach_throttling``
(Outlook's limits for every test); per test, ``@pytest.mark.graphattach(faults=[...],
throttling="outlook")`` installs rules (a rule, a list, or a rules file next to the test module)
and limits on the same server for that test only: they are removed after it.

Nothing heavy is imported until a fixture is used: a test run that does not ask for ``graph`` pays nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from graphattach.testing.server import GraphServer

MARKER = "graphattach"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("graphattach", "graphattach (a Microsoft Graph server for tests)")
    group.addoption(
        "--graphattach-url",
        default=None,
        help="Use the graphattach server at this URL instead of one in this process (default: $GRAPHATTACH_URL).",
    )
    group.addoption(
        "--graphattach-admin-key",
        default=None,
        help="Admin key of the server given by --graphattach-url (default: $GRAPHATTACH_ADMIN_KEY).",
    )
    group.addoption(
        "--graphattach-profile",
        choices=("outlook", "lenient"),
        default=None,
        help="Profile of the in-process server: outlook (exactly the real service, default) or lenient.",
    )
    group.addoption(
        "--graphattach-seed",
        type=int,
        default=None,
        help="Seed of the in-process server: ids, request ids and upload URLs repeat from run to run.",
    )
    group.addoption(
        "--graphattach-faults",
        metavar="FILE",
        default=None,
        help="Fault rules (JSON or YAML, as `graphattach serve --faults`) every test starts with.",
    )
    group.addoption(
        "--graphattach-throttling",
        metavar="SPEC",
        default=None,
        help="Outlook throttling for every test: outlook, off, or e.g. concurrency=2,requests=100/60,upload=20MB/60.",
    )
    parser.addini("graphattach_profile", "Default profile of the graphattach server (outlook or lenient).")
    parser.addini("graphattach_seed", "Default seed of the graphattach server.")
    parser.addini("graphattach_faults", "Fault rules file every test starts with (relative to the ini file).")
    parser.addini("graphattach_throttling", "Outlook throttling for every test: outlook, off or a spec.")


DEFAULTS = pytest.StashKey[dict[str, Any]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[DEFAULTS] = _defaults(config)  # a wrong option stops the run before any test
    config.addinivalue_line(
        "markers",
        "graphattach(profile=None, seed=None, faults=None, throttling=None, **options): the graphattach server "
        "the `graph` fixture of this test uses (keywords of graphattach.testing.GraphServer); faults and "
        "throttling apply to this test only",
    )


def _defaults(config: pytest.Config) -> dict[str, Any]:
    options: dict[str, Any] = {}
    profile = config.getoption("graphattach_profile") or config.getini("graphattach_profile")
    if profile:
        if profile not in ("outlook", "lenient"):
            raise pytest.UsageError(f"graphattach_profile must be outlook or lenient, not {profile!r}")
        options["profile"] = profile
    seed = config.getoption("graphattach_seed")
    if seed is None and (raw := config.getini("graphattach_seed")):
        try:
            seed = int(str(raw))
        except ValueError:
            raise pytest.UsageError(f"graphattach_seed must be an integer, not {raw!r}") from None
    if seed is not None:
        options["seed"] = seed
    faults = config.getoption("graphattach_faults")
    if faults is None and (raw := config.getini("graphattach_faults")):
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        faults = str(base / str(raw))
    if faults:
        path = Path(faults).expanduser().resolve()
        if not path.is_file():
            raise pytest.UsageError(f"graphattach faults: no such file: {path}")
        options["faults"] = str(path)
    throttling = config.getoption("graphattach_throttling") or config.getini("graphattach_throttling")
    if throttling and str(throttling).strip().lower() not in ("off", "none"):
        from graphattach.domain.throttling import ThrottlingSpecError, parse_throttling

        try:
            parse_throttling(str(throttling))
        except ThrottlingSpecError as exc:
            raise pytest.UsageError(f"graphattach throttling {throttling!r}: '{exc.field}' {exc.message}") from None
        options["throttling"] = str(throttling)
    return options


def _external(config: pytest.Config) -> tuple[str, str | None] | None:
    url = config.getoption("graphattach_url") or os.environ.get("GRAPHATTACH_URL")
    if not url:
        return None
    key = config.getoption("graphattach_admin_key") or os.environ.get("GRAPHATTACH_ADMIN_KEY")
    return url, key


class ServerPool:
    """The session's servers: one per distinct set of options, started on first use."""

    def __init__(self, config: pytest.Config) -> None:
        self.defaults = config.stash[DEFAULTS]
        self.external = _external(config)
        self._servers: dict[tuple[tuple[str, str], ...], GraphServer] = {}
        self._connected: GraphServer | None = None
        self._throttling_before: dict[str, Any] | None = None

    def get(self, overrides: dict[str, Any]) -> GraphServer:
        from graphattach.testing.server import GraphServer, fault_rules

        options = {**self.defaults, **overrides}
        if self.external is not None:
            if self._connected is None:
                url, admin_key = self.external
                self._connected = GraphServer.connect(url, admin_key=admin_key)
                if "faults" in self.defaults:  # installed again by every reset, as in-process
                    self._connected._start_faults = fault_rules(self.defaults["faults"])
                if "throttling" in self.defaults:
                    # the shared server's limits for this session (set again by every reset), given
                    # back at the end
                    self._throttling_before = self._connected.throttling.limits
                    self._connected._start_throttling = self.defaults["throttling"]
                    self._connected.throttling.set(self.defaults["throttling"])
            server = self._connected
            info = server._require()  # as read at connect(): profile and seed do not change while it runs
            for name, wanted in options.items():
                have = info.get(name)
                if name in ("faults", "throttling"):
                    continue
                if name in ("profile", "seed") and have != wanted:
                    pytest.skip(
                        f"needs a graphattach server with {name}={wanted!r}; the one at {server.root_url} has {have!r}"
                    )
                if name not in ("profile", "seed"):
                    pytest.skip(f"graphattach option {name}= needs an in-process server (--graphattach-url is set)")
            return server
        key = tuple(sorted((name, repr(value)) for name, value in options.items()))
        started = self._servers.get(key)
        if started is None:
            started = self._servers[key] = GraphServer(**options).start()
        return started

    def close(self) -> None:
        for server in self._servers.values():
            server.stop()
        self._servers.clear()
        if self._connected is not None:
            if "throttling" in self.defaults:
                connected = self._connected.throttling
                connected.set(self._throttling_before) if self._throttling_before else connected.off()
            self._connected.stop()
            self._connected = None


@pytest.fixture(scope="session")
def _graphattach_pool(pytestconfig: pytest.Config) -> Iterator[ServerPool]:
    pool = ServerPool(pytestconfig)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def graph_server(_graphattach_pool: ServerPool) -> GraphServer:
    """The session's graphattach server (options and ini keys apply; markers do not). Not reset."""
    return _graphattach_pool.get({})


#: Marker keywords that change the server for one test instead of choosing another server.
PER_TEST = ("faults", "throttling")


@pytest.fixture
def graph(request: pytest.FixtureRequest, _graphattach_pool: ServerPool) -> Iterator[GraphServer]:
    """A graphattach server in its seeded state (the demo tenant: adele@, alex@, megan@contoso.onmicrosoft.com):
    every mailbox, upload session, rule and journal entry of earlier tests is gone and the clock is back.
    The marker's ``faults`` and ``throttling`` are in force during the test and removed after it."""
    overrides: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):  # the closest marker wins
        if marker.args:
            raise pytest.UsageError("@pytest.mark.graphattach takes keywords only, e.g. profile='lenient'")
        overrides.update(marker.kwargs)
    per_test = {name: overrides.pop(name) for name in PER_TEST if name in overrides}
    server = _graphattach_pool.get(overrides)
    server.reset()
    if not per_test:
        yield server
        return
    added: list[str] = []
    throttling_before: Any = None
    if "throttling" in per_test:
        throttling_before = server.throttling.limits
        wanted = per_test["throttling"]
        server.throttling.set("off" if wanted is None or wanted is False else wanted)
    try:
        if per_test.get("faults") is not None:
            faults = per_test["faults"]
            if isinstance(faults, (str, Path)) and not Path(faults).expanduser().is_absolute():
                faults = request.path.parent / faults  # a rules file next to the test module
            added = [rule["id"] for rule in server.faults.add(faults)]
        yield server
    finally:
        if server.running:
            for rule_id in added:
                _remove_rule(server, rule_id)
            if "throttling" in per_test:
                server.throttling.set(throttling_before) if throttling_before else server.throttling.off()


def _remove_rule(server: GraphServer, rule_id: str) -> None:
    from graphattach.testing.server import GraphServerError

    try:
        server.faults.remove(rule_id)
    except GraphServerError as exc:
        if exc.status != 404:  # the test removed it itself
            raise
