"""Upload sessions as the UI shows them, and their live feed (server-sent events).

The feed polls the metadata store (a few times a second, only while a page listens), so it sees
the PUTs of every server process sharing the store and adds nothing to the upload path: a watched
upload runs the same code as an unwatched one. The store keeps completed sessions until they
expire; cancelled and swept sessions are deleted, so ``Watch`` remembers the ones it saw vanish
(``cancelled`` before their expiry, ``expired`` after) in a bounded history of this process.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
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
#: Sessions listed (newest first) and vanished sessions remembered.
LIMIT = 50
HEARTBEAT = 15.0


@dataclass(slots=True)
class Seen:
    received: int
    at: float
    rate: float = 0.0


@dataclass(slots=True)
class Watch:
    """What this process remembers between two looks: the last bytes seen per session (for the
    rate) and the sessions that vanished from the store."""

    seen: dict[str, Seen] = field(default_factory=dict)
    active: dict[str, UploadSession] = field(default_factory=dict)
    ended: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)

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
    """The newest sessions (and those seen vanishing), as rows for the page and the feed."""
    sessions = await browse.sessions(ctx, LIMIT)
    now = ctx.clock.now()
    present = {s.id for s in sessions}
    users: dict[str, str] = {}

    async def upn(user_id: str) -> str:
        if user_id not in users:
            user = await ctx.metadata.get_user(user_id)
            users[user_id] = user.user_principal_name if user is not None else user_id
        return users[user_id]

    for gone_id, gone in list(watch.active.items()):
        if gone_id not in present:
            del watch.active[gone_id]
            watch.seen.pop(gone_id, None)
            state = "expired" if now >= gone.expires else "cancelled"
            watch.ended[gone_id] = await _row(ctx, gone, state, await upn(gone.user_id), 0.0, now)
            while len(watch.ended) > LIMIT:
                watch.ended.popitem(last=False)
    rows: list[dict[str, Any]] = []
    for session in sessions:
        state = observe(session, now).value
        if state == "active":
            watch.active[session.id] = session
            rate = watch.rate(session)
        else:
            watch.active.pop(session.id, None)
            watch.seen.pop(session.id, None)
            rate = 0.0
        rows.append(await _row(ctx, session, state, await upn(session.user_id), rate, now))
    rows.extend(r for k, r in reversed(watch.ended.items()) if k not in present)
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
