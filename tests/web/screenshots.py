"""Screenshots of the web UI's main views for docs/ui.md: ``python -m tests.web.screenshots docs/ui``.

Starts a throwaway server, fills it with the tests' demo data plus a finished, a half-done and a
cancelled upload session, and saves a PNG of each view with headless Chromium.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import httpx

from graphattach.client import Client, GraphattachTokenProvider, Message
from tests.helpers import ServerProcess
from tests.web.cdp import Browser, find_chromium
from tests.web.seed import ADELE, ALEX, GraphSession, seed

MiB = 1024 * 1024


def partial_upload(root: str, subject: str, name: str, size: int, sent: int) -> str:
    """An upload session of ``size`` bytes with its first ``sent`` acknowledged; its upload URL."""
    adele = GraphSession(root, ADELE)
    try:
        draft = adele.post("/me/messages", {"subject": subject})
        session = adele.post(
            f"/me/messages/{draft['id']}/attachments/createUploadSession",
            {"AttachmentItem": {"attachmentType": "file", "name": name, "size": size}},
        )
    finally:
        adele.close()
    chunk = os.urandom(2 * MiB)
    for start in range(0, sent, 2 * MiB):
        end = start + len(chunk) - 1
        answer = httpx.put(
            session["uploadUrl"], content=chunk, headers={"Content-Range": f"bytes {start}-{end}/{size}"}
        )
        assert answer.status_code == 200, answer.text
    return str(session["uploadUrl"])


def cancelled_upload(root: str) -> None:
    """An upload cancelled after 4 MiB (the page keeps listing it)."""
    url = partial_upload(root, "Old backup", "mailbox-backup.zip", 16 * MiB, 4 * MiB)
    assert httpx.delete(url).status_code == 204


def last_request(root: str, operation: str) -> int:
    """The journal's number of the latest request of ``operation``."""
    answer = httpx.get(f"{root}/_graphattach/requests", params={"operation": operation})
    answer.raise_for_status()
    return int(answer.json()["value"][-1]["seq"])


INBOX = (
    ("Megan", "Re: Supplier contract – signed copy", "contract-signed.pdf"),
    ("Alex", "Photos from the offsite", "offsite-01.png"),
    ("Megan", "Lunch on Friday?", None),
    ("Alex", "Build 2026.12.1 release notes", "release-notes.txt"),
    ("Megan", "Expense report November", "expenses.csv"),
    ("Alex", "Re: Q4 review agenda", None),
)


def inbox_mail(root: str) -> None:
    """A few messages delivered to Adele's Inbox by Megan and Alex (sendMail)."""
    from tests.web.seed import MEGAN, file_attachment, png, recipient

    senders = {"Megan": GraphSession(root, MEGAN), "Alex": GraphSession(root, ALEX)}
    try:
        for who, subject, name in INBOX:
            message: dict[str, object] = {
                "subject": subject,
                "body": {"contentType": "text", "content": f"{subject}\n\n– {who}"},
                "toRecipients": [recipient(ADELE)],
            }
            if name:
                data = png() if name.endswith(".png") else f"{subject}\n".encode() * 20
                kind = "image/png" if name.endswith(".png") else "application/octet-stream"
                message["attachments"] = [file_attachment(name, data, kind)]
            response = senders[who].http.post("/me/sendMail", json={"message": message})
            assert response.status_code == 202, response.text
    finally:
        for session in senders.values():
            session.close()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    executable = find_chromium()
    if executable is None:
        raise SystemExit("needs chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "data").start()
        try:
            seeded = seed(server.root)
            with Client(f"{server.root}/v1.0", GraphattachTokenProvider(server.root, ADELE)) as client:
                draft = client.create_draft(subject="Drone footage", to=[ALEX])
                big = Path(tmp) / "drone-footage.mov"
                big.write_bytes(os.urandom(12 * MiB))
                client.attach(Message(draft.id), big)
            cancelled_upload(server.root)
            partial_upload(server.root, "Site survey", "site-survey.mp4", 24 * MiB, 10 * MiB)
            inbox_mail(server.root)
            report = seeded.ids["report"]
            views = {
                "tenant": "/",
                "mailbox": f"/mail/{ADELE}",
                "message": f"/mail/{ADELE}/messages/{report}",
                "attachment-image": f"/attachments/{ADELE}/{report}/{seeded.attachments['chart']}",
                "attachment-item": f"/attachments/{ADELE}/{report}/{seeded.attachments['forwarded']}",
                "event": f"/calendar/{ADELE}/events/{seeded.ids['event']}",
                "uploads": "/uploads",
                "requests": "/requests",
                "request": f"/requests/{last_request(server.root, 'attachments.createUploadSession')}",
                "hostile": f"/mail/{ADELE}/messages/{seeded.ids['hostile']}",
            }
            browser = Browser(executable, width=1280, height=800)
            try:
                page = browser.new_page()
                for name, url in views.items():
                    page.goto(server.root + url, settle=1.0)
                    # the request tail grows with every request: its first screenful says it all
                    page.screenshot(out / f"{name}.png", full_page=name != "requests")
                    print(out / f"{name}.png")
            finally:
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/ui"))
