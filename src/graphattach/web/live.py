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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
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
#: Seconds a looked-up user name or attachment link is reused: the feed polls a few times a
#: second, and re-reading them every time cost a watched upload measurably (bench/README.md);
#: a deleted attachment's link lingers this long at most.
LOOKUP_TTL = 5.0


@dataclass(slots=True)
class Seen:
    received: int
    at: float
    rate: float = 0.0


@dataclass(slots=True)
class Watch:
    """What this process remembers between two looks: the last bytes seen per active session
    (for the rate), and recent look-ups (``LOOKUP_TTL``)."""

    seen: dict[str, Seen] = field(default_factory=dict)
    looked_up: dict[tuple[str, str], tuple[float, str | None]] = field(default_factory=dict)

    async def lookup(self, key: tuple[str, str], fetch: Callable[[], Awaitable[str | None]]) -> str | None:
        now = time.monotonic()
        hit = self.looked_up.get(key)
        if hit is not None and now - hit[0] < LOOKUP_TTL:
            return hit[1]
        value = await fetch()
        self.looked_up[key] = (now, value)
        if len(self.looked_up) > 4 * LIMIT:
            for stale in [k for k, (at, _) in self.looked_up.items() if now - at >= LOOKUP_TTL]:
                del self.looked_up[stale]
        return value

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

    async def upn(user_id: str) -> str:
        async def fetch() -> str:
            user = await ctx.metadata.get_user(user_id)
            return user.user_principal_name if user is not None else user_id

        return await watch.lookup(("user", user_id), fetch) or user_id

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
        user = await upn(session.user_id)
        link = None
        if state == "completed":
            link = await watch.lookup(("attachment", session.id), partial(_attachment_url, ctx, session, user))
        rows.append(_row(ctx, session, state, user, rate, link, now))
    for gone in watch.seen.keys() - active:
        del watch.seen[gone]
    return rows


async def _attachment_url(ctx: Context, session: UploadSession, upn: str) -> str | None:
    """The page of the attachment a completed session made, if it is still there."""
    attachment = await browse.attachment_of(ctx, session)
    if attachment is None:
        return None
    return f"/attachments/{quote(upn, safe='@')}/{session.item_id}/{attachment.id}"


def _row(
    ctx: Context, session: UploadSession, state: str, upn: str, rate: float, attachment_url: str | None, now: Any
) -> dict[str, Any]:
    section = "mail" if session.item_kind == "message" else "calendar"
    kind = "messages" if session.item_kind == "message" else "events"
    user_part = quote(upn, safe="@")
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
