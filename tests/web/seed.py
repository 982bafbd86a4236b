"""Demo data for the web UI's tests and screenshots, created through Graph over HTTP as an app would."""

from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import httpx

DOMAIN = "contoso.onmicrosoft.com"
ADELE = f"adele@{DOMAIN}"
ALEX = f"alex@{DOMAIN}"
MEGAN = f"megan@{DOMAIN}"

HOSTILE_SUBJECT = "<script>alert(1)</script>"
HOSTILE_NAME = "<img src=x onerror=alert(1)>.txt"
HOSTILE_BODY = (
    "<html><body><h1>Hello</h1><script>alert('body script'); parent.document.title = 'pwned';</script>"
    "<img src=x onerror=\"alert('onerror')\"><p>After the script.</p></body></html>"
)


def png(width: int = 320, height: int = 180) -> bytes:
    """A small bar chart as a PNG (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    bars = (0.35, 0.55, 0.45, 0.8, 0.95)
    slot = width // len(bars)

    def pixel(x: int, y: int) -> bytes:
        index, offset = divmod(x, slot)
        if index < len(bars) and slot * 0.2 < offset < slot * 0.8 and y > height * (1 - bars[index]) - 1:
            return bytes((15 + index * 30, 108, 189 - index * 10))
        return b"\xf4\xf6\xf9" if y % 30 else b"\xdd\xe2\xe8"

    rows = b"".join(b"\x00" + b"".join(pixel(x, y) for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def pdf() -> bytes:
    """A one-page PDF saying hello."""
    stream = b"BT /F1 24 Tf 72 720 Td (Quarterly report, page 1) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def file_attachment(name: str, data: bytes, content_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": name,
        "contentType": content_type,
        "contentBytes": b64(data),
        **extra,
    }


def recipient(address: str) -> dict[str, Any]:
    return {"emailAddress": {"address": address}}


@dataclass
class Seeded:
    """Ids of what ``seed`` made."""

    ids: dict[str, str] = field(default_factory=dict)
    attachments: dict[str, str] = field(default_factory=dict)
    text_bytes: bytes = b""


class GraphSession:
    def __init__(self, root: str, upn: str, admin_key: str | None = None) -> None:
        headers = {"X-Graphattach-Admin-Key": admin_key} if admin_key else {}
        token = httpx.post(f"{root}/_graphattach/token", json={"user": upn}, headers=headers, timeout=30)
        token.raise_for_status()
        self.http = httpx.Client(
            base_url=f"{root}/v1.0",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=60,
        )
        self.beta = httpx.Client(base_url=f"{root}/beta", headers=self.http.headers, timeout=60)

    def post(self, path: str, body: dict[str, Any], *, beta: bool = False) -> dict[str, Any]:
        response = (self.beta if beta else self.http).post(path, json=body)
        assert response.status_code in (200, 201, 202), response.text
        return response.json() if response.content else {}

    def close(self) -> None:
        self.http.close()
        self.beta.close()


def seed(root: str, admin_key: str | None = None) -> Seeded:
    """A mailbox worth looking at: a sent message with every kind of attachment (delivered to
    Alex), a hostile message, nested folders, a meeting with attendees and an attachment."""
    out = Seeded()
    adele = GraphSession(root, ADELE, admin_key)
    try:
        text = ("Line %d of the menu: mac and cheese, soup, salad.\n" * 40) % tuple(range(40))
        out.text_bytes = text.encode()
        draft = adele.post(
            "/me/messages",
            {
                "subject": "Quarterly report",
                "importance": "high",
                "body": {
                    "contentType": "html",
                    "content": "<p>Hi Alex,</p><p>the <b>Q4 report</b> is attached, with the chart and the menu.</p>",
                },
                "toRecipients": [recipient(ALEX)],
                "ccRecipients": [recipient(MEGAN)],
            },
        )
        mid = draft["id"]
        out.ids["report"] = mid
        for key, body in (
            ("menu", file_attachment("menu.txt", out.text_bytes, "text/plain")),
            ("chart", file_attachment("chart.png", png(), "image/png")),
            ("pdf", file_attachment("report.pdf", pdf(), "application/pdf")),
            (
                "forwarded",
                {
                    "@odata.type": "#microsoft.graph.itemAttachment",
                    "name": "Budget approval",
                    "item": {
                        "@odata.type": "#microsoft.graph.message",
                        "subject": "Budget approved",
                        "body": {"contentType": "html", "content": "<p>Approved. <i>— Megan</i></p>"},
                        "from": recipient(MEGAN),
                        "toRecipients": [recipient(ADELE)],
                    },
                },
            ),
        ):
            out.attachments[key] = adele.post(f"/me/messages/{mid}/attachments", body)["id"]
        out.attachments["link"] = adele.post(
            f"/me/messages/{mid}/attachments",
            {
                "@odata.type": "#microsoft.graph.referenceAttachment",
                "name": "Team folder",
                "sourceUrl": "https://contoso.sharepoint.com/sites/finance/Shared%20Documents/Q4",
                "providerType": "oneDriveBusiness",
                "permission": "view",
                "isFolder": True,
            },
            beta=True,
        )["id"]
        response = adele.http.post(f"/me/messages/{mid}/send")
        assert response.status_code == 202, response.text

        hostile = adele.post(
            "/me/messages",
            {
                "subject": HOSTILE_SUBJECT,
                "body": {"contentType": "html", "content": HOSTILE_BODY},
                "toRecipients": [{"emailAddress": {"address": ALEX, "name": "<b>Alex</b> <script>alert(2)</script>"}}],
            },
        )
        out.ids["hostile"] = hostile["id"]
        out.attachments["hostile"] = adele.post(
            f"/me/messages/{hostile['id']}/attachments",
            file_attachment(HOSTILE_NAME, b"<script>alert(3)</script>\n", "text/html"),
        )["id"]

        for index in range(1, 8):
            adele.post(
                "/me/messages",
                {
                    "subject": f"Draft {index}: notes on the supplier meeting",
                    "body": {"contentType": "text", "content": f"Note {index}."},
                    "toRecipients": [recipient(MEGAN)],
                },
            )

        projects = adele.post("/me/mailFolders", {"displayName": "Projects"})
        year = adele.post(f"/me/mailFolders/{projects['id']}/childFolders", {"displayName": "2026"})
        quarter = adele.post(f"/me/mailFolders/{year['id']}/childFolders", {"displayName": "Q4 launch"})
        out.ids["q4"] = quarter["id"]
        adele.post(
            f"/me/mailFolders/{quarter['id']}/messages",
            {"subject": "Launch checklist", "body": {"contentType": "text", "content": "1. Ship it."}},
        )

        event = adele.post(
            "/me/events",
            {
                "subject": "Q4 review",
                "body": {"contentType": "html", "content": "<p>Agenda: numbers, then cake.</p>"},
                "start": {"dateTime": "2026-12-03T10:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2026-12-03T11:00:00", "timeZone": "UTC"},
                "location": {"displayName": "Room 4"},
                "attendees": [
                    {"emailAddress": {"address": ALEX, "name": "Alex Wilber"}, "type": "required"},
                    {"emailAddress": {"address": MEGAN, "name": "Megan Bowen"}, "type": "optional"},
                    {"emailAddress": {"address": "guest@fabrikam.com", "name": "A guest"}, "type": "required"},
                ],
            },
        )
        out.ids["event"] = event["id"]
        out.attachments["agenda"] = adele.post(
            f"/me/events/{event['id']}/attachments",
            file_attachment("agenda.txt", b"1. numbers\n2. cake\n", "text/plain"),
        )["id"]
    finally:
        adele.close()
    return out
