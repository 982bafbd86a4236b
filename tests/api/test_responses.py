from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from graphattach.api.responses import ChunkStream


async def _pieces(*pieces: Any) -> AsyncIterator[Any]:
    for piece in pieces:
        yield piece


async def _sent(response: ChunkStream) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await response.stream_response(send)
    return messages


async def test_chunk_stream_sends_bytes_and_bytearrays_as_they_are() -> None:
    chunk = bytearray(b"from the page cache")
    messages = await _sent(ChunkStream(_pieces(b"head ", chunk), headers={"Content-Length": "24"}))
    assert messages[0]["type"] == "http.response.start"
    bodies = [m["body"] for m in messages[1:]]
    assert bodies == [b"head ", chunk, b""]
    assert bodies[1] is chunk  # not copied, not converted
    assert [m["more_body"] for m in messages[1:]] == [True, True, False]


async def test_chunk_stream_refuses_a_memoryview() -> None:
    # granian sends a memoryview one element at a time: never hand it one
    with pytest.raises(TypeError, match="memoryview"):
        await _sent(ChunkStream(_pieces(memoryview(b"slow"))))
