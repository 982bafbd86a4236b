"""graphattach as the benchmark sees it: start ``graphattach serve`` like a user does, and speak Graph.

Only the documented protocol is used (https://learn.microsoft.com/graph/outlook-large-attachments):
a draft message (``POST /me/messages``), ``createUploadSession`` → ``uploadUrl``, ``PUT``s with
``Content-Range`` to the upload URL (200 in between, 201 + ``Location`` at the end), ``$value``,
``GET`` with ``contentBytes``, and ``POST .../attachments`` with base64 JSON.
"""

from __future__ import annotations

import base64
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from bench.httpc import Conn, HTTPError, Response, json_body, target_of
from bench.procs import Server, free_port

USER = "adele@contoso.onmicrosoft.com"
CHUNK = 4 * 1024 * 1024
_LOCATION_ID = re.compile(r"Attachments\('([^']+)'\)", re.IGNORECASE)


def graphattach_command() -> list[str]:
    """The ``graphattach`` console script next to this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "graphattach"
    if script.exists():
        return [str(script)]
    found = shutil.which("graphattach")
    return [found] if found else [sys.executable, "-m", "graphattach"]


class GraphServer(Server):
    """``graphattach serve --data-dir DIR --port PORT`` (embedded storage, default profile)."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        port: int | None = None,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
    ):
        self.port = port or free_port()
        self.data_dir = data_dir
        cmd = [*graphattach_command(), "serve", "--data-dir", str(data_dir), "--port", str(self.port), *(extra or [])]
        super().__init__("graphattach", cmd, log_path, env=env)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_and_wait(self, timeout: float = 60.0) -> GraphServer:
        self.start()

        def ready() -> bool:
            with Conn("127.0.0.1", self.port, timeout=2) as c:
                return c.request("GET", "/_graphattach/health").status == 200

        self.wait_ready(ready, timeout)
        return self

    def worker_pid(self) -> int:
        """The process that serves requests: the deepest one of the tree (granian's worker)."""
        pids = self.procs.pids()
        return pids[-1]


def expect(response: Response, what: str, *statuses: int) -> Response:
    if response.status not in statuses:
        raise HTTPError(what, response)
    return response


def seg(value: str) -> str:
    """An id as one percent-encoded path segment."""
    return quote(value, safe="")


@dataclass
class Upload:
    upload_url: str
    message_id: str


class Graph:
    """Graph calls over one keep-alive connection, as ``USER`` (delegated token from the admin API)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.conn = Conn("127.0.0.1", port)
        self.token = token or self.mint_token()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def mint_token(self, user: str = USER) -> str:
        r = self.conn.request(
            "POST", "/_graphattach/token", {"Content-Type": "application/json"}, json_body({"user": user})
        )
        return str(expect(r, "mint a token", 200).json()["access_token"])

    def headers(self, json_content: bool = False) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if json_content:
            h["Content-Type"] = "application/json"
        return h

    def call(self, method: str, path: str, body: bytes | None = None, **kwargs: bool) -> Response:
        return self.conn.request(method, f"/v1.0{path}", self.headers(body is not None), body, **kwargs)

    def admin(self, method: str, path: str, obj: object = None) -> Response:
        body = None if obj is None else json_body(obj)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return self.conn.request(method, f"/_graphattach{path}", headers, body)

    # -- messages and attachments -------------------------------------------------------------------

    def create_draft(self, subject: str = "graphattach bench") -> str:
        r = self.call(
            "POST", "/me/messages", json_body({"subject": subject, "body": {"contentType": "text", "content": "bench"}})
        )
        return str(expect(r, "create a draft message (POST /me/messages)", 201).json()["id"])

    def delete_message(self, message_id: str) -> None:
        """Delete a draft and its attachments' bytes (clean-up between runs, untimed).

        Where the build cannot delete messages yet, delete its attachments one by one instead.
        """
        r = self.call("DELETE", f"/me/messages/{seg(message_id)}")
        if r.status in (400, 405, 501):
            for attachment_id in self.list_attachment_ids(message_id):
                self.delete_attachment(message_id, attachment_id)
            return
        expect(r, "delete a message", 204, 404)

    def create_session(self, message_id: str, size: int, name: str = "bench.bin") -> Upload:
        item = {"AttachmentItem": {"attachmentType": "file", "name": name, "size": size}}
        r = self.call("POST", f"/me/messages/{seg(message_id)}/attachments/createUploadSession", json_body(item))
        body = expect(r, "createUploadSession", 201).json()
        return Upload(str(body["uploadUrl"]), message_id)

    def attachment_path(self, message_id: str, attachment_id: str) -> str:
        return f"/me/messages/{seg(message_id)}/attachments/{seg(attachment_id)}"

    def post_attachment(self, message_id: str, body: bytes) -> str:
        r = self.call("POST", f"/me/messages/{seg(message_id)}/attachments", body)
        return str(expect(r, "POST an attachment", 201).json()["id"])

    def delete_attachment(self, message_id: str, attachment_id: str) -> None:
        r = self.call("DELETE", self.attachment_path(message_id, attachment_id))
        expect(r, "delete an attachment", 204, 404)

    def list_attachment_ids(self, message_id: str) -> list[str]:
        r = self.call("GET", f"/me/messages/{seg(message_id)}/attachments?$select=id,name,size")
        return [str(a["id"]) for a in expect(r, "list attachments", 200).json()["value"]]


def file_attachment_json(name: str, raw: bytes) -> bytes:
    """The POST body of a file attachment: ``{"@odata.type": ..., "contentBytes": base64}``."""
    head = json_body(
        {"@odata.type": "#microsoft.graph.fileAttachment", "name": name, "contentType": "application/octet-stream"}
    )
    return head[:-1] + b',"contentBytes":"' + base64.b64encode(raw) + b'"}'


def attachment_id_from_location(location: str) -> str:
    m = _LOCATION_ID.search(unquote(location))
    if not m:
        raise ValueError(f"no attachment id in Location {location!r}")
    return m.group(1)


def put_range(conn: Conn, upload_url: str, data: memoryview, start: int, total: int) -> Response:
    """One upload PUT of ``data`` at ``start`` (no Authorization: the URL carries its own token)."""
    end = start + len(data) - 1
    headers = {"Content-Range": f"bytes {start}-{end}/{total}", "Content-Type": "application/octet-stream"}
    return conn.request("PUT", target_of(upload_url), headers, data)


def upload(conn: Conn, upload_url: str, data: memoryview, chunk: int = CHUNK, start: int = 0) -> str:
    """PUT ``data[start:]`` in ``chunk``-byte ranges; returns the attachment id from the final 201."""
    total = len(data)
    offset = start
    while offset < total:
        piece = data[offset : offset + chunk]
        r = put_range(conn, upload_url, piece, offset, total)
        offset += len(piece)
        if offset < total:
            expect(r, f"upload PUT at {offset - len(piece)}", 200)
        else:
            expect(r, "final upload PUT", 201)
            return attachment_id_from_location(r.headers.get("location", ""))
    raise ValueError("nothing to upload")


def next_expected(body: dict[str, object]) -> int | None:
    """The start of ``nextExpectedRanges`` (either casing; ``"N"`` or ``"N-M"``), or None."""
    ranges = body.get("nextExpectedRanges", body.get("NextExpectedRanges"))
    if not isinstance(ranges, list) or not ranges:
        return None
    return int(str(ranges[0]).split("-", 1)[0])
