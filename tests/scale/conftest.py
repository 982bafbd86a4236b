"""Fixtures for scale-out tests: several ``graphattach serve`` processes on one PostgreSQL and one S3.

The engines themselves (``postgres``, ``s3``: a throwaway cluster and a moto server, session
scoped; ``pg_url``, ``s3_url``: a fresh database and bucket prefix per test) come from
``tests/engines.py``, which ``tests/conftest.py`` loads for every test directory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.engines import MotoServer, PostgresCluster
from tests.helpers import ServerProcess

#: The URLs every process of a cluster mints (what a load balancer in front of them would serve).
PUBLIC_URL = "http://graph.scale.test:8765"
UPLOAD_ORIGIN = "http://uploads.scale.test:8765"


@dataclass
class Cluster:
    """Server processes sharing one metadata store and one blob store."""

    root: Path
    store: str
    blobs: str
    env: dict[str, str]
    processes: list[ServerProcess] = field(default_factory=list)

    def start(self, *args: str) -> ServerProcess:
        """One more process (any number may run at once); ``args`` add to or override the flags."""
        data_dir = self.root / f"process-{len(self.processes)}" / "data"
        data_dir.parent.mkdir(parents=True)
        process = ServerProcess(
            data_dir,
            "--store",
            self.store,
            "--blobs",
            self.blobs,
            "--public-url",
            PUBLIC_URL,
            "--upload-origin",
            UPLOAD_ORIGIN,
            "--sweep-interval",
            "0",
            *args,
            env=self.env,
        ).start(timeout=60)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture
def cluster(tmp_path: Path, postgres: PostgresCluster, s3: MotoServer) -> Iterator[Cluster]:
    """An empty cluster on a fresh database and bucket prefix; ``cluster.start()`` adds processes."""
    store = postgres.create_database("cluster")
    cluster = Cluster(
        root=tmp_path,
        store=store,
        blobs=s3.url(f"cluster-{uuid.uuid4().hex[:12]}"),
        # Small parts, so that an interrupted PUT leaves part objects past the acknowledged offset.
        env={**s3.env(), "GRAPHATTACH_S3_PART_SIZE": str(1024 * 1024)},
    )
    try:
        yield cluster
    finally:
        cluster.stop()
        postgres.drop_database(store)
