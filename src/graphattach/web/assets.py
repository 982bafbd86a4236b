"""The UI's static files (CSS, script, icons), read from the package once and served from memory.

They are a few kilobytes; serving them from memory needs no thread (Starlette's ``StaticFiles``
stats files in a worker thread) and answers ``If-None-Match`` with 304.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

from graphattach.protocol.operations import OPERATION_KEY, WEB_OPERATION_PREFIX

TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}


def _load() -> dict[str, tuple[bytes, str, str]]:
    found: dict[str, tuple[bytes, str, str]] = {}
    for entry in resources.files("graphattach.web").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in TYPES:
            data = entry.read_bytes()
            found[entry.name] = (data, TYPES[suffix], '"' + hashlib.sha256(data).hexdigest()[:20] + '"')
    return found


ASSETS = _load()


async def static(request: Request) -> Response:
    request.scope["state"][OPERATION_KEY] = WEB_OPERATION_PREFIX + "static"
    found = ASSETS.get(request.path_params["name"])
    if found is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    data, content_type, etag = found
    headers = {"etag": etag, "cache-control": "no-cache", "x-content-type-options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=content_type, headers=headers)
