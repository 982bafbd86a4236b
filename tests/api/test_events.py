"""Events: create, get, list, update, delete, attendee copies."""

from __future__ import annotations

from tests.helpers import ADELE, Graph

EVENT = {
    "subject": "Planning",
    "start": {"dateTime": "2030-04-15T12:00:00", "timeZone": "Pacific Standard Time"},
    "end": {"dateTime": "2030-04-15T14:00:00", "timeZone": "Pacific Standard Time"},
}


async def test_create_event_and_get_it(graph: Graph) -> None:
    response = await graph.post("/me/events", json=EVENT)
    assert response.status_code == 201, response.text
    event = response.json()
    assert event["subject"] == "Planning"
    assert event["start"] == {"dateTime": "2030-04-15T19:00:00.0000000", "timeZone": "UTC"}
    assert event["originalStartTimeZone"] == "Pacific Standard Time"
    assert event["isOrganizer"] is True
    assert event["organizer"]["emailAddress"]["address"] == ADELE
    assert event["type"] == "singleInstance" and event["seriesMasterId"] is None
    got = await graph.get(f"/users/{ADELE}/events/{event['id']}", app=True)
    assert got.status_code == 200
    assert got.json()["iCalUId"] == event["iCalUId"]
