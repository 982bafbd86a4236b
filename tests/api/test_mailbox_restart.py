"""Drafts, folders, events and calendars survive a restart of ``graphattach serve`` on the same data dir."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.helpers import ALEX, Graph, ServerProcess


async def test_mailbox_survives_a_restart(data_dir: Path) -> None:
    server = ServerProcess(data_dir).start()
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            graph = Graph(http, server.root, "server")
            folder = (await graph.post("/me/mailFolders", json={"displayName": "Kept"})).json()
            child = (
                await graph.post(f"/me/mailFolders/{folder['id']}/childFolders", json={"displayName": "Sub"})
            ).json()
            draft = (
                await graph.post(
                    f"/me/mailFolders/{child['id']}/messages",
                    json={"subject": "persisted", "toRecipients": [{"emailAddress": {"address": ALEX}}]},
                )
            ).json()
            plain = (await graph.post("/me/messages", json={"subject": "in drafts"})).json()
            calendar = (await graph.post("/me/calendars", json={"name": "Kept calendar"})).json()
            event = (
                await graph.post(
                    f"/me/calendars/{calendar['id']}/events",
                    json={
                        "subject": "persisted event",
                        "start": {"dateTime": "2031-01-01T10:00:00", "timeZone": "Eastern Standard Time"},
                        "end": {"dateTime": "2031-01-01T11:00:00", "timeZone": "Eastern Standard Time"},
                        "attendees": [{"emailAddress": {"address": ALEX}}],
                    },
                )
            ).json()
            sent = await graph.post(
                "/me/sendMail",
                json={"message": {"subject": "delivered", "toRecipients": [{"emailAddress": {"address": ALEX}}]}},
            )
            assert sent.status_code == 202
        server.stop()
        server.start()
        async with httpx.AsyncClient(timeout=60) as http:
            graph = Graph(http, server.root, "server")
            path = f"/me/mailFolders/{folder['id']}/childFolders/{child['id']}/messages/{draft['id']}"
            again = (await graph.get(path)).json()
            assert {k: v for k, v in again.items() if k != "@odata.context"} == {
                k: v for k, v in draft.items() if k != "@odata.context"
            }
            assert (await graph.get(f"/me/messages/{plain['id']}")).json() == plain
            got_folder = (await graph.get(f"/me/mailFolders/{folder['id']}")).json()
            assert got_folder["displayName"] == "Kept" and got_folder["childFolderCount"] == 1
            got_child = (await graph.get(f"/me/mailFolders/{child['id']}")).json()
            assert got_child["totalItemCount"] == 1
            assert (await graph.get(f"/me/calendars/{calendar['id']}")).json()["name"] == "Kept calendar"
            got_event = (await graph.get(f"/me/calendars/{calendar['id']}/events/{event['id']}")).json()
            assert got_event == event
            alex_events = (await graph.get("/me/events?$top=100", user=ALEX)).json()["value"]
            assert [e["iCalUId"] for e in alex_events].count(event["iCalUId"]) == 1
            inbox = (await graph.get("/me/mailFolders/inbox/messages?$top=100&$select=subject", user=ALEX)).json()
            assert "delivered" in [m["subject"] for m in inbox["value"]]
            # and it keeps working: a PATCH reaches the same attendee copy
            await graph.patch(f"/me/events/{event['id']}", json={"subject": "after restart"})
            alex_events = (await graph.get("/me/events?$top=100", user=ALEX)).json()["value"]
            copies = [e for e in alex_events if e["iCalUId"] == event["iCalUId"]]
            assert len(copies) == 1 and copies[0]["subject"] == "after restart"
    finally:
        server.stop()
