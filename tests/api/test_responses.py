from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from graphattach.api.responses import ChunkStream, PiecesResponse


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


async def _answered(response: PiecesResponse) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("a response does not read the request")

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await response({"type": "http"}, receive, send)
    return messages


async def test_pieces_response_sends_each_piece_uncopied_with_their_total_length() -> None:
    echo = b"QUJD" * 1000
    pieces = [b'{"id":"x","contentBytes":"', echo, b'"}']
    messages = await _answered(PiecesResponse(pieces, status_code=201, headers={"OData-Version": "4.0"}))
    start = messages[0]
    assert start["type"] == "http.response.start" and start["status"] == 201
    headers = dict(start["headers"])
    assert headers[b"content-length"] == str(sum(map(len, pieces))).encode()
    assert headers[b"odata-version"] == b"4.0"
    bodies = [m["body"] for m in messages[1:]]
    assert bodies == pieces and bodies[1] is echo
    assert [m["more_body"] for m in messages[1:]] == [True, True, False]


async def test_pieces_response_without_pieces_sends_an_empty_body() -> None:
    messages = await _answered(PiecesResponse([]))
    assert dict(messages[0]["headers"])[b"content-length"] == b"0"
    assert messages[1:] == [{"type": "http.response.body", "body": b""}]
