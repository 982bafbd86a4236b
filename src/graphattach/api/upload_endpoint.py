"""The upload origin: ``/api/gv1.0/users('{uid}@{tid}')/{messages|events}('{id}')/AttachmentSessions('{sid}')``.

Filled in by the upload-sessions work; the app already mounts ``ROUTES`` and starts the
background sweeper returned by ``start_background``.
"""

from __future__ import annotations

from typing import Any

from graphattach.services.context import Context

ROUTES: list[Any] = []


def start_background(ctx: Context) -> Any:
    return None


async def stop_background(handle: Any) -> None:
    return None
