"""The durable floor: the least a Python ASGI server on granian can do per request and still
acknowledge only what is on disk. The benchmark holds graphattach's small-request workloads
against it, because for them no anchor is comparable (nginx and @tus/server do not sync).

- ``PUT /{name}``: append the body to the file of that path as it arrives (one ``os.write`` per
  chunk granian hands over), ``fdatasync`` it, commit the new length to SQLite (WAL,
  ``synchronous=NORMAL``: not synced), answer a small JSON status: the one sync per acknowledged
  range of an upload session whose blob is its journal (the bytes; the session's row follows
  unsynced). ``PUT /{name}?two-syncs`` commits with ``synchronous=FULL`` instead: the two syncs
  per range of the earlier design (the bytes, then the session's progress). ``PUT
  /{name}?threaded`` syncs in a thread and commits in the connection's thread, so that the PUTs
  of uploads at once overlap their syncs (the ceiling of graphattach's concurrent uploads).
  With ``?no-sync`` (a PUT or a POST) nothing is synced and nothing committed: the floor of
  ``--in-memory``.
- ``POST /post``: parse the JSON body with orjson, its ``contentBytes`` taken out first and decoded
  straight from the body with pybase64 (as graphattach does since 2026-12-04; before, the floor
  parsed the whole body into strings, about 0.5 ms more per 1 MiB POST), write
  the bytes to a new file with ``fdatasync``, ``fsync`` its directory (a new file's name is on
  disk only once its directory is synced: https://man7.org/linux/man-pages/man2/fsync.2.html),
  commit a row, and answer 201 echoing the JSON with ``contentBytes``, as Graph does. With
  ``?no-sync`` the bytes are kept in memory up to graphattach's default ``--memory-limit`` and
  written to files unsynced past it, as the in-memory store spills them. ``DELETE /`` removes
  all files (between runs, untimed).
- ``GET /download/{size}``: send ``size`` random bytes from memory, in pieces of graphattach's
  stream chunk (1.5 MiB, ``STREAM_CHUNK`` in src/graphattach/protocol/attachments.py): the most
  granian takes from a Python app, with no file read at all. ``$value`` is held against it.

No routing, no middleware, no checks. Beside it, ``framework``: the same PUT through Starlette
(below), to tell what the framework costs from what graphattach's own work does. A PUT runs
inline on the event loop (its client waits for each answer: a thread hop would only add latency,
and the writes land in the page cache); a POST writes its file and commits in threads so that
concurrent POSTs overlap their syncs.
Started by ``bench/cases.py`` as ``granian --interface asgi bench.floor_app:app`` with
``FLOOR_DIR`` naming its scratch directory.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pybase64
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from graphattach.settings import DEFAULT_MEMORY_LIMIT

_DIR = Path(os.environ.get("FLOOR_DIR", "."))
#: What the no-sync floor keeps in memory of POSTed bytes before it writes them to files:
#: graphattach's default ``--memory-limit``.
MEMORY_LIMIT = DEFAULT_MEMORY_LIMIT
_state: dict[str, Any] = {}
_names = itertools.count()
#: graphattach's ``STREAM_CHUNK``: the size of each piece ``$value`` hands to granian.
_SEND_CHUNK = 3 * 512 * 1024


def _open() -> None:
    _DIR.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(_DIR / f"floor-{os.getpid()}.db", isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE IF NOT EXISTS progress (id INTEGER PRIMARY KEY, received INTEGER)")
    db.execute("CREATE TABLE IF NOT EXISTS files (id INTEGER PRIMARY KEY, name TEXT, size INTEGER)")
    db.execute("INSERT OR REPLACE INTO progress VALUES (1, 0)")
    _state["db"] = db
    lazy = sqlite3.connect(_DIR / f"floor-{os.getpid()}.db", isolation_level=None, check_same_thread=False)
    lazy.execute("PRAGMA synchronous = NORMAL")
    _state["lazy_db"] = lazy
    _state["fds"] = {}
    _state["db_thread"] = ThreadPoolExecutor(1)


def _length(scope: dict[str, Any]) -> int | None:
    """The request's ``Content-Length`` (None: absent)."""
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            return int(value)
    return None


async def _body(receive: Any, length: int | None) -> bytes:
    """The body, read until its declared length has arrived (as graphattach does: granian's
    empty last message would cost another round trip to its I/O thread)."""
    parts = []
    received = 0
    more = True
    while more and (length is None or received < length):
        message = await receive()
        parts.append(message.get("body", b""))
        received += len(parts[-1])
        more = message.get("more_body", False)
    return b"".join(parts)


async def _answer(send: Any, status: int, body: bytes | list[bytes]) -> None:
    pieces = body if isinstance(body, list) else [body]
    length = sum(len(piece) for piece in pieces)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(length).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    for index, piece in enumerate(pieces):
        await send({"type": "http.response.body", "body": piece, "more_body": index < len(pieces) - 1})


def _put_file(path: str) -> int:
    """The open file of the PUT path ``path``."""
    fds = _state["fds"]
    fd = fds.get(path)
    if fd is None:
        name = f"put-{os.getpid()}-{len(fds)}.bin"
        fd = fds[path] = os.open(_DIR / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return fd


async def _put(receive: Any, path: str, mode: bytes, length: int | None) -> bytes:
    """Append the body to the file as it arrives, fdatasync, commit the new length (synced only
    in mode ``two-syncs``; in mode ``no-sync`` neither the sync nor the commit)."""
    fd = _put_file(path)
    more = True
    arrived = 0
    while more and (length is None or arrived < length):
        message = await receive()
        arrived += os.write(fd, message.get("body", b""))
        more = message.get("more_body", False)
    if mode == b"threaded":
        # The sync in any thread, the commit in the one that owns the connection: PUTs of
        # concurrent uploads overlap their syncs, as graphattach's do.
        received = os.lseek(fd, 0, os.SEEK_CUR)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, os.fdatasync, fd)
        await loop.run_in_executor(_state["db_thread"], _commit, _state["lazy_db"], received)
        return b'{"nextExpectedRanges":["%d"]}' % received
    return _settle(fd, mode)


def _commit(db: sqlite3.Connection, received: int) -> None:
    db.execute("BEGIN IMMEDIATE")
    db.execute("UPDATE progress SET received = ? WHERE id = 1", (received,))
    db.execute("COMMIT")


def _settle(fd: int, mode: bytes) -> bytes:
    """What a PUT does once its body is in the file: the sync and the commit (as ``mode`` says)."""
    received = os.lseek(fd, 0, os.SEEK_CUR)
    if mode == b"no-sync":
        return b'{"nextExpectedRanges":["%d"]}' % received
    os.fdatasync(fd)
    _commit(_state["db"] if mode == b"two-syncs" else _state["lazy_db"], received)
    return b'{"nextExpectedRanges":["%d"]}' % received


def _write_file(name: str, content: bytes, sync: bool = True) -> None:
    fd = os.open(_DIR / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content)
        if sync:
            os.fdatasync(fd)
    finally:
        os.close(fd)
    if not sync:
        return
    directory = os.open(_DIR, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _insert(name: str, size: int) -> None:
    db = _state["db"]
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO files (name, size) VALUES (?, ?)", (name, size))
    db.execute("COMMIT")


def _lift(body: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    """The JSON body parsed with its ``contentBytes`` taken out first, as graphattach does
    (``lift_content_bytes``): the rest parsed, the base64 decoded straight from the body, and the
    base64 as sent (one copy, to echo it). Unchecked: the bench sends it plain."""
    start = body.index(b'"contentBytes":"') + len(b'"contentBytes":"')
    end = body.index(b'"', start)
    encoded = body[start:end]
    return orjson.loads(body[:start] + body[end:]), pybase64.b64decode(encoded, validate=True), encoded


async def _post(body: bytes, sync: bool = True) -> list[bytes]:
    payload, content, encoded = _lift(body)
    name = f"post-{os.getpid()}-{next(_names)}.bin"
    loop = asyncio.get_running_loop()
    # Concurrent requests overlap their syncs: the file in any thread, the commit in the one
    # thread that owns the SQLite connection.
    if not sync:  # the floor of --in-memory: nothing is synced
        # Kept in memory while less than the in-memory store's default cap is kept, as graphattach
        # keeps them; past it written to a file, unsynced, as graphattach spills them.
        kept: dict[str, bytes] = _state.setdefault("kept", {})
        if _state.get("kept_bytes", 0) < MEMORY_LIMIT:
            kept[name] = content
            _state["kept_bytes"] = _state.get("kept_bytes", 0) + len(content)
        else:
            await loop.run_in_executor(None, _write_file, name, content, False)
    else:
        await loop.run_in_executor(None, _write_file, name, content)
        await loop.run_in_executor(_state["db_thread"], _insert, name, len(content))
    head = orjson.dumps({"id": name, "name": payload.get("name"), "size": len(content)})
    # Sent as its pieces, one ASGI message each, as graphattach sends it (no copy into one body).
    return [head[:-1] + b',"contentBytes":"', encoded, b'"}']


def _pieces(size: int) -> list[bytes]:
    """``size`` random bytes as a list of ``_SEND_CHUNK`` pieces, made once per size."""
    pieces: dict[int, list[bytes]] = _state.setdefault("pieces", {})
    if size not in pieces:
        data = os.urandom(size)
        pieces[size] = [data[i : i + _SEND_CHUNK] for i in range(0, size, _SEND_CHUNK)]
    return pieces[size]


async def _download(send: Any, size: int) -> None:
    pieces = _pieces(size)
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", str(size).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    last = len(pieces) - 1
    for i, piece in enumerate(pieces):
        await send({"type": "http.response.body", "body": piece, "more_body": i < last})
    if not pieces:
        await send({"type": "http.response.body", "body": b""})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _open()
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["method"] == "PUT":
        await _answer(send, 200, await _put(receive, scope["path"], scope.get("query_string", b""), _length(scope)))
        return
    body = await _body(receive, _length(scope))
    if scope["method"] == "GET" and scope["path"].startswith("/download/"):
        await _download(send, int(scope["path"].rsplit("/", 1)[1]))
    elif scope["method"] == "POST":
        await _answer(send, 201, await _post(body, scope.get("query_string", b"") != b"no-sync"))
    elif scope["method"] == "DELETE":  # clean up between runs
        for fd in _state["fds"].values():
            os.close(fd)
        _state["fds"].clear()
        _state.pop("kept", None)
        _state.pop("kept_bytes", None)
        for entry in os.scandir(_DIR):
            if entry.name.startswith(("post-", "put-")):
                os.unlink(entry.path)
        await _answer(send, 200, b"{}")
    else:
        await _answer(send, 200, b"{}")


# The framework floor ------------------------------------------------------------------------------


class _BodyEndsAtLength:
    """A body ends once its ``Content-Length`` bytes have arrived, as graphattach's middleware
    ends it (granian's empty last message would cost another round trip to its I/O thread)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        length = _length(scope) if scope["type"] == "http" else None
        if length is None:
            await self.app(scope, receive, send)
            return
        arrived = 0

        async def until_length() -> Any:
            nonlocal arrived
            message = await receive()
            arrived += len(message.get("body", b""))
            if message.get("more_body", False) and arrived >= length:
                message = {**message, "more_body": False}
            return message

        await self.app(scope, until_length, send)


async def _framework_put(request: Request) -> Response:
    fd = _put_file(request.url.path)
    async for chunk in request.stream():
        os.write(fd, chunk)
    return Response(_settle(fd, request.scope.get("query_string", b"")), media_type="application/json")


async def _framework_get(request: Request) -> Response:
    return Response(b"{}", media_type="application/json")


@asynccontextmanager
async def _framework_lifespan(app: Starlette) -> AsyncIterator[None]:
    _open()
    yield


#: The floor's PUT through Starlette (what graphattach's API layer is built on): a router, a
#: ``Request`` whose body is read with ``request.stream()``, a ``Response``, and a middleware
#: that ends the body at its declared length. Served as ``bench.floor_app:framework``; the
#: ``framework`` rung of ``bench.tiny_ladder`` is what Starlette itself adds to the floor's PUT.
framework = Starlette(
    routes=[Route("/{name}", _framework_put, methods=["PUT"]), Route("/", _framework_get)],
    middleware=[Middleware(_BodyEndsAtLength)],
    lifespan=_framework_lifespan,
)
