"""Events, calendars and calendar groups; attendee copies."""

from __future__ import annotations

import pytest

from tests.api.test_messages import unique
from tests.helpers import ADELE, ALEX, MEGAN, Graph, assert_graph_error

EVENT = {
    "subject": "Planning",
    "body": {"contentType": "HTML", "content": "<p>Agenda</p>"},
    "start": {"dateTime": "2030-04-15T12:00:00", "timeZone": "Pacific Standard Time"},
    "end": {"dateTime": "2030-04-15T14:00:00", "timeZone": "Pacific Standard Time"},
    "location": {"displayName": "Harry's Bar"},
}

EVENT_KEYS = [
    "@odata.context",
    "@odata.etag",
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "transactionId",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "iCalUId",
    "reminderMinutesBeforeStart",
    "isReminderOn",
    "hasAttachments",
    "subject",
    "bodyPreview",
    "importance",
    "sensitivity",
    "isAllDay",
    "isCancelled",
    "isOrganizer",
    "responseRequested",
    "seriesMasterId",
    "showAs",
    "type",
    "webLink",
    "onlineMeetingUrl",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "allowNewTimeProposals",
    "occurrenceId",
    "isDraft",
    "hideAttendees",
    "responseStatus",
    "body",
    "start",
    "end",
    "location",
    "locations",
    "recurrence",
    "attendees",
    "organizer",
    "onlineMeeting",
]


def utc(day: str, start: str, end: str) -> dict:
    return {
        "start": {"dateTime": f"{day}T{start}", "timeZone": "UTC"},
        "end": {"dateTime": f"{day}T{end}", "timeZone": "UTC"},
    }


def attendee(address: str, kind: str = "required") -> dict:
    return {"emailAddress": {"address": address}, "type": kind}


async def find_event(graph: Graph, user: str, ical_uid: str) -> list[dict]:
    """Every event in ``user``'s default calendar with this iCalUId (following nextLinks)."""
    found: list[dict] = []
    link: str | None = "/me/events?$top=100"
    while link:
        page = (await graph.get(link, user=user)).json()
        found += [e for e in page["value"] if e["iCalUId"] == ical_uid]
        link = page.get("@odata.nextLink")
    return found


async def test_create_event_shape_and_utc_times(graph: Graph) -> None:
    response = await graph.post("/me/events", json=EVENT)
    assert response.status_code == 201, response.text
    event = response.json()
    assert list(event) == EVENT_KEYS
    me = (await graph.get("/me")).json()
    assert event["@odata.context"] == f"{graph.v1}/$metadata#users('{me['id']}')/events/$entity"
    assert event["@odata.etag"] == f'W/"{event["changeKey"]}"'
    assert event["subject"] == "Planning"
    assert event["bodyPreview"] == "Agenda"
    assert event["start"] == {"dateTime": "2030-04-15T19:00:00.0000000", "timeZone": "UTC"}
    assert event["end"] == {"dateTime": "2030-04-15T21:00:00.0000000", "timeZone": "UTC"}
    assert event["originalStartTimeZone"] == event["originalEndTimeZone"] == "Pacific Standard Time"
    assert event["isOrganizer"] is True
    assert event["organizer"] == {"emailAddress": {"name": me["displayName"], "address": ADELE}}
    assert event["responseStatus"] == {"response": "organizer", "time": "0001-01-01T00:00:00Z"}
    assert event["type"] == "singleInstance" and event["seriesMasterId"] is None
    assert event["iCalUId"].startswith("040000008200E00074C5B7101A82E008")
    assert event["location"]["displayName"] == "Harry's Bar"
    assert event["location"]["uniqueIdType"] == "private"
    assert event["locations"] == [event["location"]]
    assert event["hasAttachments"] is False and event["isCancelled"] is False
    assert event["createdDateTime"].endswith("Z") and len(event["createdDateTime"]) == 28
    calendar = (await graph.get("/me/calendar")).json()
    listed = (await graph.get(f"/me/calendars/{calendar['id']}/events/{event['id']}")).json()
    assert listed["id"] == event["id"]


async def test_prefer_outlook_timezone(graph: Graph) -> None:
    prefer = {"Prefer": 'outlook.timezone="Pacific Standard Time"'}
    event = (await graph.post("/me/events", json=EVENT, headers=prefer)).json()
    assert event["start"] == {"dateTime": "2030-04-15T12:00:00.0000000", "timeZone": "Pacific Standard Time"}
    tokyo = await graph.get(f"/me/events/{event['id']}", headers={"Prefer": 'outlook.timezone="Asia/Tokyo"'})
    assert tokyo.json()["start"] == {"dateTime": "2030-04-16T04:00:00.0000000", "timeZone": "Asia/Tokyo"}
    plain = (await graph.get(f"/me/events/{event['id']}")).json()
    assert plain["start"]["timeZone"] == "UTC"
    bad = await graph.get(f"/me/events/{event['id']}", headers={"Prefer": 'outlook.timezone="Mars/Olympus"'})
    assert_graph_error(bad, 400, "TimeZoneNotSupportedException")


async def test_time_zone_spellings(graph: Graph) -> None:
    body = {
        "start": {"dateTime": "2030-07-01T09:30:00.5", "timeZone": "europe/berlin"},
        "end": {"dateTime": "2030-07-01T10:00:00Z", "timeZone": "W. Europe Standard Time"},
    }
    event = (await graph.post("/me/events", json=body)).json()
    assert event["originalStartTimeZone"] == "Europe/Berlin"
    assert event["start"]["dateTime"] == "2030-07-01T07:30:00.5000000"
    assert event["end"]["dateTime"] == "2030-07-01T10:00:00.0000000"


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        (
            {**EVENT, "start": {"dateTime": "2030-04-15T12:00:00", "timeZone": "Greenwich Mean Time"}},
            "TimeZoneNotSupportedException",
            "Greenwich Mean Time",
        ),
        ({**EVENT, "start": {"dateTime": "2030-04-15T12:00:00"}}, "TimeZoneNotSupportedException", "TimeZone"),
        ({**EVENT, "start": {"dateTime": "tomorrow", "timeZone": "UTC"}}, "ErrorInvalidRequest", "tomorrow"),
        ({**EVENT, "start": {"timeZone": "UTC"}}, "RequestBodyRead", "dateTime"),
        ({**EVENT, "start": "2030-04-15"}, "RequestBodyRead", "start"),
        (
            {**EVENT, "end": {"dateTime": "2030-04-15T11:00:00", "timeZone": "Pacific Standard Time"}},
            "ErrorCalendarEndDateIsEarlierThanStartDate",
            "end date",
        ),
        ({"subject": "no times"}, "ErrorPropertyValidationFailure", "start"),
        ({**EVENT, "isAllDay": True}, "ErrorPropertyValidationFailure", "midnight"),
        ({**EVENT, "priority": 1}, "RequestBodyRead", "priority"),
        ({**EVENT, "subject": ["x"]}, "RequestBodyRead", "subject"),
        ({**EVENT, "attendees": [{"emailAddress": {"address": ALEX}, "type": "vip"}]}, "RequestBodyRead", "vip"),
        ({**EVENT, "attendees": {"emailAddress": {"address": ALEX}}}, "RequestBodyRead", "attendees"),
        ({**EVENT, "showAs": "away"}, "RequestBodyRead", "away"),
        ({**EVENT, "reminderMinutesBeforeStart": "15"}, "RequestBodyRead", "reminderMinutesBeforeStart"),
        ({**EVENT, "iCalUId": "x"}, "ErrorInvalidPropertySet", "iCalUId"),
        ({**EVENT, "isOrganizer": False}, "ErrorInvalidPropertySet", "isOrganizer"),
        ({**EVENT, "recurrence": {"pattern": {"type": "daily", "interval": 1}}}, "ErrorInvalidRequest", "recurrence"),
    ],
)
async def test_create_event_validation_stores_nothing(graph: Graph, body: dict, code: str, named: str) -> None:
    before = (await graph.get("/me/events/$count")).text
    error = assert_graph_error(await graph.post("/me/events", json=body), 400, code)
    assert named in error["message"]
    assert (await graph.get("/me/events/$count")).text == before


async def test_all_day_event(graph: Graph) -> None:
    body = {
        "subject": "Holiday",
        "isAllDay": True,
        "start": {"dateTime": "2030-12-24T00:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-12-26T00:00:00", "timeZone": "UTC"},
    }
    event = await graph.post("/me/events", json=body)
    assert event.status_code == 201
    assert event.json()["isAllDay"] is True


async def test_event_paths(graph: Graph) -> None:
    group = (await graph.post("/me/calendarGroups", json={"name": unique("Group")})).json()
    cal = (await graph.post(f"/me/calendarGroups/{group['id']}/calendars", json={"name": unique("Cal")})).json()
    base = f"/me/calendarGroups/{group['id']}/calendars/{cal['id']}/events"
    created = await graph.post(base, json={"subject": "grouped", **utc("2030-05-01", "09:00:00", "10:00:00")})
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["@odata.context"].endswith(
        f"/calendarGroups('{group['id'].replace('=', '%3D')}')/calendars('{cal['id'].replace('=', '%3D')}')/events/$entity"
    )
    for path in (
        f"{base}/{event['id']}",
        f"/me/calendars/{cal['id']}/events/{event['id']}",
        f"/me/events/{event['id']}",
    ):
        response = await graph.get(path)
        assert response.status_code == 200, path
    # not in the default calendar
    assert_graph_error(await graph.get(f"/me/calendar/events/{event['id']}"), 404, "ErrorItemNotFound")
    listed = (await graph.get(base)).json()
    assert [e["id"] for e in listed["value"]] == [event["id"]]
    default_ids = [e["id"] for e in (await graph.get("/me/calendar/events?$top=1000")).json()["value"]]
    assert event["id"] not in default_ids
    in_default = (
        await graph.post(
            "/me/calendar/events", json={"subject": "default", **utc("2030-05-02", "09:00:00", "10:00:00")}
        )
    ).json()
    calendar = (await graph.get("/me/calendar")).json()
    again = (await graph.get(f"/me/calendars/{calendar['id']}/events/{in_default['id']}")).json()
    assert again["subject"] == "default"
    # a calendar under the wrong group
    other = (await graph.post("/me/calendarGroups", json={"name": unique("Other")})).json()
    assert_graph_error(
        await graph.get(f"/me/calendarGroups/{other['id']}/calendars/{cal['id']}/events"), 404, "ErrorItemNotFound"
    )


async def test_list_events_pages_and_counts(graph: Graph) -> None:
    cal = (await graph.post("/me/calendars", json={"name": unique("Paging")})).json()
    base = f"/me/calendars/{cal['id']}/events"
    ids = [
        (await graph.post(base, json={"subject": f"e{i}", **utc("2030-06-01", "09:00:00", "10:00:00")})).json()["id"]
        for i in range(3)
    ]
    first = (await graph.get(f"{base}?$top=2&$count=true&$select=subject")).json()
    assert first["@odata.count"] == 3
    assert set(first["value"][0]) == {"@odata.etag", "id", "subject"}
    second = (await graph.get(first["@odata.nextLink"])).json()
    assert [e["id"] for e in first["value"] + second["value"]] == list(reversed(ids))
    assert (await graph.get(f"{base}/$count")).text == "3"


async def test_patch_event(graph: Graph) -> None:
    event = (await graph.post("/me/events", json=EVENT)).json()
    path = f"/me/events/{event['id']}"
    response = await graph.patch(
        path,
        json={
            "subject": "Moved",
            "end": {"dateTime": "2030-04-15T15:00:00", "timeZone": "Pacific Standard Time"},
            "showAs": "Free",
        },
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["subject"] == "Moved" and updated["showAs"] == "free"
    assert updated["end"]["dateTime"] == "2030-04-15T22:00:00.0000000"
    assert updated["changeKey"] != event["changeKey"]
    assert (await graph.get(path)).json()["subject"] == "Moved"
    error = assert_graph_error(
        await graph.patch(
            path, json={"start": {"dateTime": "2030-04-16T12:00:00", "timeZone": "Pacific Standard Time"}}
        ),
        400,
        "ErrorCalendarEndDateIsEarlierThanStartDate",
    )
    assert "end date" in error["message"]
    assert_graph_error(await graph.patch(path, json={"changeKey": "x"}), 400, "ErrorInvalidPropertySet")
    assert_graph_error(await graph.patch(path, json={"colour": "x"}), 400, "RequestBodyRead")
    assert (await graph.get(path)).json()["subject"] == "Moved"


async def test_patch_event_with_attachments_array_is_accepted_and_adds_nothing(graph: Graph) -> None:
    """O365's Event.save() PATCHes the attachments it has just uploaded (python-o365 2.1.10, seen on the wire)."""
    event = (await graph.post("/me/events", json=EVENT)).json()
    body = {
        "attachments": [
            {"@odata.type": "#microsoft.graph.fileAttachment", "name": "big.bin", "contentBytes": "AAAA" * 100}
        ]
    }
    response = await graph.patch(f"/users/{ADELE}/events/{event['id']}", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["hasAttachments"] is False
    assert (await graph.patch(f"/users/{ADELE}/events/{event['id']}", json={})).status_code == 200
    expanded = (await graph.get(f"/me/events/{event['id']}?$expand=attachments")).json()
    assert expanded["attachments"] == []


async def test_delete_event(graph: Graph) -> None:
    event = (await graph.post("/me/events", json=EVENT)).json()
    assert (await graph.delete(f"/me/events/{event['id']}")).status_code == 204
    assert_graph_error(await graph.get(f"/me/events/{event['id']}"), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.delete(f"/me/events/{event['id']}"), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.get("/me/events/bad*id"), 400, "ErrorInvalidIdMalformed")
    message = (await graph.post("/me/messages", json={})).json()
    assert_graph_error(await graph.get(f"/me/events/{message['id']}"), 404, "ErrorItemNotFound")


# ---- attendees ------------------------------------------------------------------------------------------------


async def test_attendees_get_copies_that_follow_updates(graph: Graph) -> None:
    subject = unique("Sync")
    body = {
        **EVENT,
        "subject": subject,
        "attendees": [attendee(ALEX.upper()), attendee("guest@example.com", "optional")],
    }
    event = (await graph.post("/me/events", json=body)).json()
    assert event["attendees"][0] == {
        "type": "required",
        "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
        "emailAddress": {"name": ALEX.upper(), "address": ALEX.upper()},
    }
    copies = await find_event(graph, ALEX, event["iCalUId"])
    assert len(copies) == 1
    copy = copies[0]
    alex_calendar = (await graph.get("/me/calendar", user=ALEX)).json()
    assert (await graph.get(f"/me/calendars/{alex_calendar['id']}/events/{copy['id']}", user=ALEX)).status_code == 200
    assert copy["id"] != event["id"]
    assert copy["subject"] == subject
    assert copy["isOrganizer"] is False
    assert copy["responseStatus"] == {"response": "notResponded", "time": "0001-01-01T00:00:00Z"}
    assert copy["organizer"]["emailAddress"]["address"] == ADELE
    assert copy["start"] == event["start"] and copy["end"] == event["end"]
    assert "_organizerEvent" not in copy
    # the organizer's update reaches the same copy
    updated = await graph.patch(
        f"/me/events/{event['id']}", json={"subject": subject + " (moved)", "location": {"displayName": "Room 2"}}
    )
    assert updated.status_code == 200
    copies = await find_event(graph, ALEX, event["iCalUId"])
    assert [c["id"] for c in copies] == [copy["id"]]
    assert copies[0]["subject"] == subject + " (moved)"
    assert copies[0]["location"]["displayName"] == "Room 2"
    # adding an attendee creates their copy; removing one cancels theirs
    await graph.patch(f"/me/events/{event['id']}", json={"attendees": [attendee(MEGAN)]})
    megan = await find_event(graph, MEGAN, event["iCalUId"])
    assert len(megan) == 1 and megan[0]["isCancelled"] is False
    alex = (await find_event(graph, ALEX, event["iCalUId"]))[0]
    assert alex["isCancelled"] is True and alex["subject"].startswith("Canceled: ")
    # the organizer deleting the event cancels the remaining copies
    assert (await graph.delete(f"/me/events/{event['id']}")).status_code == 204
    megan = await find_event(graph, MEGAN, event["iCalUId"])
    assert megan[0]["isCancelled"] is True


async def test_attendee_updates_stay_in_their_mailbox(graph: Graph) -> None:
    event = (await graph.post("/me/events", json={**EVENT, "attendees": [attendee(ALEX)]})).json()
    copy = (await find_event(graph, ALEX, event["iCalUId"]))[0]
    response = await graph.patch(f"/me/events/{copy['id']}", json={"categories": ["Mine"]}, user=ALEX)
    assert response.status_code == 200
    assert (await graph.get(f"/me/events/{event['id']}")).json()["categories"] == []
    # the organizer's next update keeps the attendee's own categories
    await graph.patch(f"/me/events/{event['id']}", json={"subject": "again"})
    copy = (await find_event(graph, ALEX, event["iCalUId"]))[0]
    assert copy["subject"] == "again" and copy["categories"] == ["Mine"]
    # an attendee deleting their copy leaves the organizer's event alone
    assert (await graph.delete(f"/me/events/{copy['id']}", user=ALEX)).status_code == 204
    assert (await graph.get(f"/me/events/{event['id']}")).status_code == 200


async def test_organizer_listed_as_attendee_gets_no_copy(graph: Graph) -> None:
    event = (await graph.post("/me/events", json={**EVENT, "attendees": [attendee(ADELE)]})).json()
    assert [e["id"] for e in await find_event(graph, ADELE, event["iCalUId"])] == [event["id"]]


# ---- calendars and groups ---------------------------------------------------------------------------------------


async def test_default_calendar(graph: Graph) -> None:
    response = await graph.get("/me/calendar")
    assert response.status_code == 200
    calendar = response.json()
    assert calendar["name"] == "Calendar" and calendar["isDefaultCalendar"] is True
    assert calendar["isRemovable"] is False
    assert calendar["owner"] == {"name": "Adele Vance", "address": ADELE}
    assert calendar["@odata.context"].endswith("/calendar/$entity")
    listed = (await graph.get("/me/calendars?$top=100")).json()
    assert calendar["id"] in [c["id"] for c in listed["value"]]
    error = assert_graph_error(
        await graph.delete(f"/me/calendars/{calendar['id']}"), 403, "ErrorDeleteDistinguishedFolder"
    )
    assert "default calendar" in error["message"]


async def test_calendars_create_get_update_delete(graph: Graph) -> None:
    name = unique("Team")
    response = await graph.post("/me/calendars", json={"name": name, "color": "lightBlue"})
    assert response.status_code == 201, response.text
    calendar = response.json()
    assert calendar["name"] == name and calendar["color"] == "lightBlue"
    assert calendar["isDefaultCalendar"] is False and calendar["canEdit"] is True
    assert calendar["@odata.context"].endswith("/calendars/$entity")
    assert_graph_error(await graph.post("/me/calendars", json={"name": name.lower()}), 409, "ErrorFolderExists")
    got = (await graph.get(f"/me/calendars/{calendar['id']}")).json()
    assert got["changeKey"] == calendar["changeKey"]
    patched = (await graph.patch(f"/me/calendars/{calendar['id']}", json={"name": name + "!"})).json()
    assert patched["name"] == name + "!" and patched["changeKey"] != calendar["changeKey"]
    group = (await graph.get("/me/calendarGroups")).json()["value"][0]
    in_group = (await graph.get(f"/me/calendarGroups/{group['id']}/calendars?$top=100")).json()
    assert calendar["id"] in [c["id"] for c in in_group["value"]]
    event = (await graph.post(f"/me/calendars/{calendar['id']}/events", json=EVENT)).json()
    assert (await graph.delete(f"/me/calendars/{calendar['id']}")).status_code == 204
    assert_graph_error(await graph.get(f"/me/calendars/{calendar['id']}"), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.get(f"/me/events/{event['id']}"), 404, "ErrorItemNotFound")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "ErrorInvalidRequest"),
        ({"name": ""}, "ErrorInvalidFolderName"),
        ({"name": 1}, "RequestBodyRead"),
        ({"name": "x", "owner": {}}, "ErrorInvalidPropertySet"),
        ({"name": "x", "colour": "red"}, "RequestBodyRead"),
        ({"name": "x", "color": "plaid"}, "RequestBodyRead"),
    ],
)
async def test_calendar_validation(graph: Graph, body: dict, code: str) -> None:
    assert_graph_error(await graph.post("/me/calendars", json=body), 400, code)


async def test_calendar_groups(graph: Graph) -> None:
    listed = (await graph.get("/me/calendarGroups")).json()
    assert "My Calendars" in [g["name"] for g in listed["value"]]
    name = unique("Projects")
    response = await graph.post("/me/calendarGroups", json={"name": name})
    assert response.status_code == 201
    group = response.json()
    assert set(group) == {"@odata.context", "id", "name", "changeKey", "classId"}
    assert (await graph.get(f"/me/calendarGroups/{group['id']}")).json()["name"] == name
    assert_graph_error(await graph.post("/me/calendarGroups", json={"name": name}), 409, "ErrorFolderExists")
    cal = await graph.post(f"/me/calendarGroups/{group['id']}/calendars", json={"name": unique("In group")})
    assert cal.status_code == 201
    listing = (await graph.get(f"/me/calendarGroups/{group['id']}/calendars")).json()
    assert [c["id"] for c in listing["value"]] == [cal.json()["id"]]
    assert (await graph.get(f"/me/calendarGroups/{group['id']}/calendars/$count")).text == "1"
    assert_graph_error(await graph.get("/me/calendarGroups/AAMkAGI2TAAA="), 404, "ErrorItemNotFound")
    calendar = (await graph.get("/me/calendar")).json()
    assert_graph_error(await graph.get(f"/me/calendarGroups/{calendar['id']}"), 404, "ErrorItemNotFound")


async def test_calendar_permissions(graph: Graph) -> None:
    event = (await graph.post("/me/events", json=EVENT)).json()
    read = {"scopes": "Calendars.Read"}
    assert (await graph.get(f"/me/events/{event['id']}", **read)).status_code == 200
    assert (await graph.get("/me/calendars", **read)).status_code == 200
    assert_graph_error(await graph.post("/me/events", json=EVENT, **read), 403, "ErrorAccessDenied")
    assert_graph_error(await graph.patch(f"/me/events/{event['id']}", json={}, **read), 403, "ErrorAccessDenied")
    assert_graph_error(await graph.post("/me/calendars", json={"name": "x"}, **read), 403, "ErrorAccessDenied")
    assert_graph_error(await graph.get("/me/events", scopes="Mail.ReadWrite"), 403, "ErrorAccessDenied")
    assert_graph_error(await graph.get(f"/users/{ALEX}/events"), 403, "ErrorAccessDenied")
    assert_graph_error(await graph.get(f"/users/{ALEX}/calendar"), 403, "ErrorAccessDenied")
    app = await graph.post(f"/users/{ALEX}/calendar/events", json=EVENT, app=True)
    assert app.status_code == 201
    assert app.json()["organizer"]["emailAddress"]["address"] == ALEX
    assert_graph_error(await graph.get(f"/users/{ALEX}/events", app=True, roles="Mail.Read"), 403, "ErrorAccessDenied")


O365_EVENT = {
    "transactionId": None,
    "subject": "O365 meeting",
    "body": {"contentType": "HTML", "content": ""},
    "start": {"dateTime": "2030-09-01T10:00:00", "timeZone": "Romance Standard Time"},
    "end": {"dateTime": "2030-09-01T11:00:00", "timeZone": "Romance Standard Time"},
    "attendees": [{"emailAddress": {"address": ALEX, "name": "Alex Wilber"}, "type": "required"}],
    "location": {"displayName": ""},
    "categories": [],
    "isAllDay": False,
    "importance": "normal",
    "isReminderOn": True,
    "reminderMinutesBeforeStart": 15,
    "responseRequested": True,
    "sensitivity": "normal",
    "showAs": "busy",
    "isOnlineMeeting": "false",
    "onlineMeetingProvider": "teamsForBusiness",
    "singleValueExtendedProperties": [
        {"id": "Boolean {00020329-0000-0000-C000-000000000046} Name DoNotForward", "value": "false"}
    ],
}


async def test_o365_event_body_is_accepted(graph: Graph) -> None:
    """The exact body O365's Event.save() POSTs (O365 calendar.py ``to_api_data``)."""
    response = await graph.post(
        f"/users/{ADELE}/calendars/{(await graph.get('/me/calendar')).json()['id']}/events", json=O365_EVENT
    )
    assert response.status_code == 201, response.text
    event = response.json()
    assert event["isOnlineMeeting"] is False
    assert event["location"]["displayName"] == "" and event["locations"] == []
    assert event["start"]["dateTime"] == "2030-09-01T08:00:00.0000000"
    assert "singleValueExtendedProperties" not in event
    prop = O365_EVENT["singleValueExtendedProperties"][0]["id"]
    expanded = await graph.get(
        f"/me/events/{event['id']}?$expand=singleValueExtendedProperties($filter=id eq '{prop}')"
    )
    assert expanded.status_code == 200
    assert expanded.json()["singleValueExtendedProperties"] == [{"id": prop, "value": "false"}]
    # PATCH upserts extended properties by id
    await graph.patch(
        f"/me/events/{event['id']}",
        json={
            "singleValueExtendedProperties": [
                {"id": prop.upper(), "value": "true"},
                {"id": "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Color", "value": "Green"},
            ]
        },
    )
    every = (await graph.get(f"/me/events/{event['id']}?$expand=singleValueExtendedProperties")).json()
    assert sorted(p["value"] for p in every["singleValueExtendedProperties"]) == ["Green", "true"]
    assert_graph_error(
        await graph.get(f"/me/events/{event['id']}?$expand=singleValueExtendedProperties($top=1)"), 400, "BadRequest"
    )


async def test_filter_events_and_calendars(graph: Graph) -> None:
    cal = (await graph.post("/me/calendars", json={"name": unique("Filtered")})).json()
    base = f"/me/calendars/{cal['id']}/events"
    for subject, day in (("early", "2030-01-01"), ("late", "2030-12-01")):
        await graph.post(base, json={"subject": subject, **utc(day, "09:00:00", "10:00:00")})
    late = (await graph.get(f"{base}?$filter=start/dateTime ge '2030-06-01T00:00:00'")).json()
    assert [e["subject"] for e in late["value"]] == ["late"]
    ordered = (await graph.get(f"{base}?$orderby=start/dateTime")).json()
    assert [e["subject"] for e in ordered["value"]] == ["early", "late"]
    named = (await graph.get(f"/me/calendars?$filter=name eq '{cal['name']}'")).json()
    assert [c["id"] for c in named["value"]] == [cal["id"]]
    groups = (await graph.get("/me/calendarGroups?$filter=name eq 'My Calendars'")).json()
    assert [g["name"] for g in groups["value"]] == ["My Calendars"]
