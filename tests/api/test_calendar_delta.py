"""calendarView delta on the primary calendar (https://learn.microsoft.com/graph/api/event-delta)."""

from __future__ import annotations

from typing import Any

from graphattach.settings import Settings
from tests.api import test_delta
from tests.conftest import inprocess
from tests.helpers import ALEX, Graph, assert_graph_error

WINDOW = "startDateTime=2032-03-01T00:00:00Z&endDateTime=2032-03-08T00:00:00Z"


async def drain(graph: Graph, link: str, **kwargs: Any) -> tuple[list[dict], str, int]:
    return await test_delta.drain(graph, link, kind="event", **kwargs)


def event(subject: str, day: int, zone: str = "UTC") -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": f"2032-03-{day:02d}T10:00:00", "timeZone": zone},
        "end": {"dateTime": f"2032-03-{day:02d}T11:00:00", "timeZone": zone},
    }


async def test_calendar_view_delta_rounds(graph: Graph) -> None:
    # Alex's calendar: this test's events are the only ones in March 2032
    inside = (await graph.post("/me/events", json=event("inside", 2), user=ALEX)).json()
    later = (await graph.post("/me/events", json=event("later", 20), user=ALEX)).json()
    values, link, _ = await drain(graph, f"/me/calendarView/delta?{WINDOW}", prefer="odata.maxpagesize=1", user=ALEX)
    ids = {v["id"] for v in values}
    assert inside["id"] in ids and later["id"] not in ids
    got = next(v for v in values if v["id"] == inside["id"])
    assert got["@odata.type"] == "#microsoft.graph.event" and got["subject"] == "inside"
    assert got["start"] == {"dateTime": "2032-03-02T10:00:00.0000000", "timeZone": "UTC"}

    added = (await graph.post("/me/events", json=event("added", 3), user=ALEX)).json()
    assert (await graph.patch(f"/me/events/{inside['id']}", json=event("moved out", 25), user=ALEX)).status_code == 200
    assert (await graph.delete(f"/me/events/{later['id']}", user=ALEX)).status_code == 204
    changes, link, _ = await drain(graph, link, user=ALEX)
    by_id = {c["id"]: c for c in changes}
    assert by_id[added["id"]]["subject"] == "added"
    # out of the window, or deleted: @removed (event-delta.md: clients filter)
    assert by_id[inside["id"]]["@removed"] == {"reason": "deleted"}
    assert by_id[later["id"]]["@removed"] == {"reason": "deleted"}
    nothing, _, _ = await drain(graph, link, user=ALEX)
    assert nothing == []


async def test_calendar_view_delta_errors(graph: Graph) -> None:
    error = assert_graph_error(await graph.get("/me/calendarView/delta"), 400, "ErrorInvalidParameter")
    assert error["message"].startswith("This request requires a time window")
    assert_graph_error(await graph.get(f"/me/calendarView/delta?{WINDOW}&$select=subject"), 400, "ErrorInvalidUrlQuery")
    assert_graph_error(await graph.get("/me/calendarView/delta?startDateTime=x&endDateTime=y"), 400)
    assert_graph_error(await graph.get("/me/calendarView/delta?$deltatoken=forged"), 400, "ErrorInvalidSyncStateData")
    assert_graph_error(await graph.get("/me/calendarView"), 400)
    assert_graph_error(await graph.get(f"/me/calendarView/delta?{WINDOW}", scopes="Mail.Read"), 403)
    # a token of Adele's calendar is not Alex's
    _, link, _ = await drain(graph, f"/me/calendarView/delta?{WINDOW}")
    token = link.split("$deltatoken=", 1)[1]
    assert_graph_error(
        await graph.get(f"/me/calendarView/delta?$deltatoken={token}", user=ALEX), 400, "ErrorInvalidSyncStateData"
    )
    app = await graph.get(f"/users/{ALEX}/calendarView/delta?{WINDOW}", app=True)
    assert app.status_code == 200


async def test_a_calendar_view_token_from_before_a_reset_is_gone(settings: Settings) -> None:
    async with inprocess(settings) as graph:
        _, link, _ = await drain(graph, f"/me/calendarView/delta?{WINDOW}")
        assert (await graph.admin("POST", "/reset")).status_code == 204
        made = (await graph.post("/me/events", json=event("after the reset", 4))).json()
        response = await graph.get(link)
        assert_graph_error(response, 410, "SyncStateNotFound")
        # the Location carries the window: following it starts a new round of the same view
        location = response.headers["Location"]
        assert location == (
            f"{graph.v1}/me/calendarView/delta?startDateTime=2032-03-01T00:00:00%2B00:00"
            "&endDateTime=2032-03-08T00:00:00%2B00:00&$deltatoken="
        )
        values, _, _ = await drain(graph, location)
        assert [v["id"] for v in values] == [made["id"]]
