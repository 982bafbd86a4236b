"""``Client`` and ``AsyncClient`` expose the same operations with the same parameters."""

from __future__ import annotations

import inspect

from graphattach.client import AsyncClient, Client

#: The one pair that differs by design: closing an async client is awaited.
CLOSE = {Client: "close", AsyncClient: "aclose"}


def _public(cls: type) -> dict[str, object]:
    return {name: getattr(cls, name) for name in dir(cls) if not name.startswith("_") and name != CLOSE[cls]}


def test_the_two_clients_have_the_same_public_names() -> None:
    assert set(_public(Client)) == set(_public(AsyncClient))
    assert len(_public(Client)) > 10


def test_each_operation_takes_the_same_parameters() -> None:
    sync, asynchronous = _public(Client), _public(AsyncClient)
    for name, member in sync.items():
        other = asynchronous[name]
        if not callable(member):
            continue
        sig, other_sig = inspect.signature(member), inspect.signature(other)
        assert [(p.name, p.kind, p.default) for p in sig.parameters.values()] == [
            (p.name, p.kind, p.default) for p in other_sig.parameters.values()
        ], name
        assert inspect.iscoroutinefunction(other) or not inspect.iscoroutinefunction(member), name


def test_async_operations_are_awaitable() -> None:
    for name, member in _public(AsyncClient).items():
        if inspect.isfunction(member):
            assert inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member), name
