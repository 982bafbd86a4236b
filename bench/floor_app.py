"""The durable floor: the least a Python ASGI server on granian can do per request and still
acknowledge only what is on disk. The benchmark holds graphattach's small-request workloads
against it, because for them no anchor is comparable (nginx and @tus/server do not sync).

- ``PUT /tiny``: read the body, append it to one file and ``fdatasync`` it, commit the new length
  to SQLite (WAL, ``synchronous=FULL``), answer a small JSON status: the two syncs per
  acknowledged range an upload session needs (the bytes, then the session's progress).
- ``POST /post``: parse the JSON body with orjson, decode ``contentBytes`` with pybase64, write
  the bytes to a new file with ``fdatasync``, commit a row, and answer 201 echoing the JSON with
  ``contentBytes``, as Graph does. ``DELETE /post`` removes those files (between runs, untimed).

No routing, no middleware, no checks. A PUT runs inline on the event loop (its client waits for
each answer: a thread hop would only add latency); a POST writes its file and commits in threads
so that concurrent POSTs overlap their syncs.
Started by ``bench/cases.py`` as ``granian --interface asgi bench.floor_app:app`` with
``FLOOR_DIR`` naming its scratch directory.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pybase64

_DIR = Path(os.environ.get("FLOOR_DIR", "."))
_state: dict[str, Any] = {}
_names = itertools.count()


def _open() -> None:
    _DIR.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(_DIR / f"floor-{os.getpid()}.db", isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE IF NOT EXISTS progress (id INTEGER PRIMARY KEY, received INTEGER)")
    db.execute("CREATE TABLE IF NOT EXISTS files (id INTEGER PRIMARY KEY, name TEXT, size INTEGER)")
    db.execute("INSERT OR REPLACE INTO progress VALUES (1, 0)")
    _state["db"] = db
    _state["fd"] = os.open(_DIR / f"tiny-{os.getpid()}.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    _state["received"] = 0
    _state["db_thread"] = ThreadPoolExecutor(1)


async def _body(receive: Any) -> bytes:
    parts = []
    more = True
    while more:
        message = await receive()
        parts.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(parts)


async def _answer(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _tiny(body: bytes) -> bytes:
    fd = _state["fd"]
    os.write(fd, body)
    os.fdatasync(fd)
    _state["received"] += len(body)
    db = _state["db"]
    db.execute("BEGIN IMMEDIATE")
    db.execute("UPDATE progress SET received = ? WHERE id = 1", (_state["received"],))
    db.execute("COMMIT")
    return b'{"nextExpectedRanges":["%d"]}' % _state["received"]


def _write_file(name: str, content: bytes) -> None:
    fd = os.open(_DIR / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content)
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _insert(name: str, size: int) -> None:
    db = _state["db"]
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO files (name, size) VALUES (?, ?)", (name, size))
    db.execute("COMMIT")


async def _post(body: bytes) -> bytes:
    payload = orjson.loads(body)
    content = pybase64.b64decode(payload["contentBytes"], validate=True)
    name = f"post-{os.getpid()}-{next(_names)}.bin"
    loop = asyncio.get_running_loop()
    # Concurrent requests overlap their syncs: the file in any thread, the commit in the one
    # thread that owns the SQLite connection.
    await loop.run_in_executor(None, _write_file, name, content)
    await loop.run_in_executor(_state["db_thread"], _insert, name, len(content))
    return orjson.dumps({"id": name, "size": len(content), "contentBytes": payload["contentBytes"]})


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
    body = await _body(receive)
    if scope["method"] == "PUT":
        await _answer(send, 200, _tiny(body))
    elif scope["method"] == "POST":
        await _answer(send, 201, await _post(body))
    else:
        for entry in os.scandir(_DIR):
            if entry.name.startswith("post-"):
                os.unlink(entry.path)
        await _answer(send, 200, b"{}")
