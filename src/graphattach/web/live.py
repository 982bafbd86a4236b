"""Upload sessions as the UI shows them, and their live feed (server-sent events).

The feed polls the metadata store (a few times a second, only while a page listens), so it sees
the PUTs of every server process sharing the store and adds nothing to the upload path: a watched
upload runs the same code as an unwatched one. Sessions that ended (cancelled, or swept after
their expiry) are kept by the store as records of how they ended (``MetadataStore.end_session``),
so they are listed after a restart and by every process, whether or not a page was open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from graphattach.domain.models import UploadSession
from graphattach.domain.upload_session import observe
from graphattach.protocol.upload_sessions import next_range
from graphattach.services import browse
from graphattach.services.context import Context
from graphattach.web.pages import ctx_of, render, view

#: Seconds between two looks at the store while a page listens (≥ 2 updates a second).
POLL_INTERVAL = 0.25
#: Sessions listed (newest first).
LIMIT = 50
HEARTBEAT = 15.0


@dataclass(slots=True)
class Seen:
    received: int
    at: float
    rate: float = 0.0


@dataclass(slots=True)
class Watch:
    """What this process remembers between two looks: the last bytes seen per active session
    (for the rate)."""

    seen: dict[str, Seen] = field(default_factory=dict)

    def rate(self, session: UploadSession) -> float:
        now = time.monotonic()
        last = self.seen.get(session.id)
        if last is None:
            self.seen[session.id] = Seen(session.received, now)
            return 0.0
        elapsed = now - last.at
        if session.received != last.received and elapsed >= 0.2:
            last.rate = (session.received - last.received) / elapsed
            last.received, last.at = session.received, now
        elif session.received == last.received and elapsed >= 2.0:
            last.rate = 0.0
        return last.rate


async def snapshot(ctx: Context, watch: Watch) -> list[dict[str, Any]]:
    """The newest sessions, ended ones included, as rows for the page and the feed."""
    sessions = await browse.sessions(ctx, LIMIT)
    now = ctx.clock.now()
    users: dict[str, str] = {}

    async def upn(user_id: str) -> str:
        if user_id not in users:
            user = await ctx.metadata.get_user(user_id)
            users[user_id] = user.user_principal_name if user is not None else user_id
        return users[user_id]

    rows: list[dict[str, Any]] = []
    active: set[str] = set()
    for session in sessions:
        # how an ended or completed session ended; for the others, what a request would see
        # (a session past its expiry is expired before the sweeper comes by)
        ended = session.ended is not None or session.state == "completed"
        state = session.state if ended else observe(session, now).value
        rate = 0.0
        if state == "active":
            active.add(session.id)
            rate = watch.rate(session)
        rows.append(await _row(ctx, session, state, await upn(session.user_id), rate, now))
    for gone in watch.seen.keys() - active:
        del watch.seen[gone]
    return rows


async def _row(ctx: Context, session: UploadSession, state: str, upn: str, rate: float, now: Any) -> dict[str, Any]:
    section = "mail" if session.item_kind == "message" else "calendar"
    kind = "messages" if session.item_kind == "message" else "events"
    user_part = quote(upn, safe="@")
    attachment_url = None
    if state == "completed":
        attachment = await browse.attachment_of(ctx, session)
        if attachment is not None:
            attachment_url = f"/attachments/{user_part}/{session.item_id}/{attachment.id}"
    return {
        "id": session.id,
        "name": session.name,
        "user": upn,
        "item_url": f"/{section}/{user_part}/{kind}/{session.item_id}",
        "size": session.size,
        "received": session.size if state == "completed" else session.received,
        "state": state,
        "rate": round(rate),
        "expires_in": max(0, int((session.expires - now).total_seconds())),
        "next": next_range(session.received, session.size, ctx.settings.profile) if state == "active" else "",
        "attachment_url": attachment_url,
        "created": session.created.isoformat(),
        "ended": session.ended.isoformat() if session.ended is not None else None,
    }


async def stream(ctx: Context, watch: Watch) -> AsyncIterator[bytes]:
    """Server-sent events: ``data: {"sessions": [...]}`` whenever the rows change."""
    last = b""
    quiet_since = time.monotonic()
    yield b"retry: 1000\n\n"
    while True:  # ends when the client goes: the response is cancelled, or its send fails
        rows = await snapshot(ctx, watch)
        payload = orjson.dumps({"sessions": rows})
        if payload != last:
            last = payload
            quiet_since = time.monotonic()
            yield b"data: " + payload + b"\n\n"
        elif time.monotonic() - quiet_since > HEARTBEAT:
            quiet_since = time.monotonic()
            yield b": keep-alive\n\n"
        await asyncio.sleep(POLL_INTERVAL)


# ---- upload sessions -----------------------------------------------------------------------------------


@view("uploads")
async def uploads(request: Request) -> Response:
    ctx = ctx_of(request)
    rows = await snapshot(ctx, request.app.state.web_watch)
    return render(request, "uploads.html", rows=rows, section="uploads")


@view("uploads.live")
async def uploads_live(request: Request) -> Response:
    ctx = ctx_of(request)
    return StreamingResponse(
        stream(ctx, request.app.state.web_watch),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
