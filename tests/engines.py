"""Real storage engines for tests: a throwaway PostgreSQL cluster and a moto S3 server.

Both start on free loopback ports, once per test session, and stop at its end. PostgreSQL
refuses to run as root: as root the cluster belongs to an unprivileged user (``nobody``) and its
commands run as that user. ``GRAPHATTACH_TEST_POSTGRES_DSN`` (a superuser DSN) uses an existing
server instead; each test still gets a database of its own.

Loaded as a pytest plugin by ``tests/conftest.py`` so that every test directory can ask for
``postgres`` / ``s3`` (session) and ``pg_url`` / ``s3_url`` (a fresh database / bucket prefix).
``GRAPHATTACH_TEST_STACK=postgres-s3`` makes the API suite's stores PostgreSQL and S3 (see
``stack_store_urls``).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.helpers import free_port

STACK_ENV = "GRAPHATTACH_TEST_STACK"
DSN_ENV = "GRAPHATTACH_TEST_POSTGRES_DSN"
#: Credentials moto accepts (any); set for every boto client and server process of the tests.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
BUCKET = "graphattach-tests"


def stack() -> str:
    """``default`` or ``postgres-s3``."""
    value = os.environ.get(STACK_ENV, "default").strip() or "default"
    if value not in ("default", "postgres-s3"):
        raise pytest.UsageError(f"{STACK_ENV} must be 'default' or 'postgres-s3', not {value!r}")
    return value


# PostgreSQL ---------------------------------------------------------------------------------------


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    raise RuntimeError(f"PostgreSQL's {name} is not installed (Debian: apt-get install postgresql)")


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster in a temporary directory, or an existing server (``dsn``)."""

    dsn: str = ""
    directory: Path | None = None
    port: int = 0
    _user: pwd.struct_passwd | None = field(default=None, repr=False)

    @classmethod
    def start(cls) -> PostgresCluster:
        existing = os.environ.get(DSN_ENV)
        if existing:
            return cls(dsn=existing)
        directory = Path(tempfile.mkdtemp(prefix="graphattach-pg-"))
        user = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
        if user is not None:
            os.chown(directory, user.pw_uid, user.pw_gid)
        cluster = cls(directory=directory, port=free_port(), _user=user)
        try:
            cluster._init_and_start()
        except BaseException:
            cluster.stop()
            raise
        cluster.dsn = f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
        return cluster

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self._user is not None:
            kwargs.update(user=self._user.pw_uid, group=self._user.pw_gid, extra_groups=[])
        env = {**os.environ, "HOME": str(self.directory), "LC_ALL": "C", "LANG": "C"}
        return subprocess.run(
            list(args), env=env, capture_output=True, text=True, timeout=timeout, check=True, cwd="/", **kwargs
        )

    def _init_and_start(self) -> None:
        assert self.directory is not None
        data = self.directory / "data"
        self._run(
            _pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "-N"
        )
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.directory}",
                # a test cluster: speed over crash safety of the cluster itself
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=300",
                "-c shared_buffers=64MB",
            ]
        )
        try:
            self._run(
                _pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.directory / "log"), "-w", "start"
            )
        except subprocess.CalledProcessError as exc:
            log = (self.directory / "log").read_text() if (self.directory / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{log[-3000:]}") from exc

    def stop(self) -> None:
        if self.directory is None:
            return
        data = self.directory / "data"
        if (data / "postmaster.pid").exists():
            try:
                self._run(_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop", timeout=60)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def url_for(self, database: str) -> str:
        parts = urlsplit(self.dsn)
        return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:16]}"
        try:  # PostgreSQL 15+: a file copy is much faster than the default for tiny databases
            _run_sql(self.dsn, f'CREATE DATABASE "{name}" STRATEGY = FILE_COPY')
        except Exception as exc:
            if "strategy" not in str(exc).lower():
                raise
            _run_sql(self.dsn, f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        _run_sql(self.dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_sql(dsn: str, sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run()) if not _loop_running() else _in_thread(run)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _in_thread(fn: Any) -> None:
    """Run the coroutine function ``fn`` on a loop of its own in another thread (we are called
    from inside a running loop)."""
    import threading

    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(fn())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


# S3 (moto) ---------------------------------------------------------------------------------------


@dataclass
class MotoServer:
    """moto's standalone S3 server on a free loopback port."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, log_dir: Path) -> MotoServer:
        port = free_port()
        log_path = log_dir / f"moto-{port}.log"
        log = open(log_path, "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **S3_ENV},
        )
        log.close()
        server = cls(port, process, log_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"moto exited with {process.returncode}: {log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return server
            except OSError:
                time.sleep(0.1)
        server.stop()
        raise RuntimeError(f"moto did not start: {log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def env(self) -> dict[str, str]:
        """Environment for a process that uses this server as its S3."""
        return {**S3_ENV, "AWS_ENDPOINT_URL_S3": self.endpoint}

    def url(self, prefix: str | None = None) -> str:
        """An ``s3://`` URL under a fresh prefix of the test bucket."""
        return f"s3://{BUCKET}/{prefix or 'p-' + uuid.uuid4().hex[:16]}"


# fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer.start(tmp_path_factory.mktemp("moto"))
    saved = {name: os.environ.get(name) for name in server.env()}
    os.environ.update(server.env())  # for in-process stores and the server processes we start
    try:
        yield server
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


@pytest.fixture
def pg_url(postgres: PostgresCluster) -> Iterator[str]:
    """A fresh, empty database for one test."""
    url = postgres.create_database()
    try:
        yield url
    finally:
        postgres.drop_database(url)


@pytest.fixture
def s3_url(s3: MotoServer) -> str:
    """A fresh prefix of the test bucket for one test."""
    return s3.url()


def stack_store_urls(request: pytest.FixtureRequest) -> tuple[str, str] | None:
    """The (metadata, blobs) URLs of one test's stores under ``GRAPHATTACH_TEST_STACK``, or None
    for the default stack."""
    if stack() == "default":
        return None
    return request.getfixturevalue("pg_url"), request.getfixturevalue("s3_url")


def stack_server_args(request: pytest.FixtureRequest) -> tuple[list[str], dict[str, str]]:
    """Extra ``graphattach serve`` arguments and environment for the session's server process."""
    if stack() == "default":
        return [], {}
    postgres: PostgresCluster = request.getfixturevalue("postgres")
    s3: MotoServer = request.getfixturevalue("s3")
    return ["--store", postgres.create_database("server"), "--blobs", s3.url()], s3.env()
