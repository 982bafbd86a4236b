"""Fixtures for the client tests: a scripted fake Graph, clients bound to it, test files."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from graphattach.client import Client, RetryPolicy
from tests.client.fakegraph import GRAPH, TOKEN, FakeGraph

MiB = 1024 * 1024


class Sleeps(list[float]):
    """Records the pauses a client asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake() -> FakeGraph:
    return FakeGraph()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def retry() -> RetryPolicy:
    return RetryPolicy(attempts=4, backoff=0.5, max_backoff=8, jitter=0.5)


@pytest.fixture
def client(fake: FakeGraph, sleeps: Sleeps, retry: RetryPolicy) -> Iterator[Client]:
    with Client(GRAPH, TOKEN, transport=fake.transport, sleep=sleeps, retry=retry) as client:
        yield client


def file_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[..., Path]:
    def make(size: int, name: str | None = None, seed: int = 0) -> Path:
        path = tmp_path / (name or f"file-{size}.bin")
        path.write_bytes(file_bytes(size, seed))
        return path

    return make


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
