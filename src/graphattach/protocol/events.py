"""JSON shape of ``microsoft.graph.event``: request validation and the response entity.

Sources: the event resource, user-post-events.md and event-update.md (DC api-reference/v1.0).

Times: ``start``/``end`` are stored as the client gave them (wall clock + zone name). Responses
give them in the zone of the ``Prefer: outlook.timezone="..."`` header, else in UTC, as Graph does;
``originalStartTimeZone``/``originalEndTimeZone`` keep the zones the event was created in.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from graphattach.domain import timezones
from graphattach.domain.errors import GraphError
from graphattach.domain.models import Item
from graphattach.protocol import outlook as o
from graphattach.protocol.errors import (
    CalendarEndDateIsEarlierThanStartDate,
    InvalidRequest,
    PropertyValidationFailure,
    TimeZoneNotSupported,
)
from graphattach.protocol.jsonio import graph_datetime_7

TYPE_NAME = "Microsoft.OutlookServices.Event"
ODATA_TYPE = "#microsoft.graph.event"

#: ``0001-01-01T00:00:00Z``: the time Graph reports for a response that was never made.
NO_TIME = "0001-01-01T00:00:00Z"


def time_zone_error(name: Any) -> GraphError:
    return TimeZoneNotSupported(name=name)


def _date_time_time_zone(value: Any, name: str) -> dict[str, str]:
    data = o.DATE_TIME_TIME_ZONE.validate(value, strict=True, where=name)
    raw = data.get("dateTime")
    if raw is None:
        raise o.body_read_error(f"Invalid value for property '{name}': a 'dateTime' is required.")
    zone_name = data.get("timeZone")
    if zone_name is None or not zone_name.strip():
        raise time_zone_error(zone_name or "")
    try:
        zone_name = timezones.canonical_name(zone_name)
    except timezones.UnknownTimeZone:
        raise time_zone_error(zone_name) from None
    wall = parse_wall_clock(raw, zone_name, name)
    return {"dateTime": format_wall_clock(wall), "timeZone": zone_name}


_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?)?(Z|[+-]\d{2}:\d{2})?$")


def parse_wall_clock(raw: str, zone_name: str, name: str) -> datetime:
    """A naive wall-clock time; an explicit offset or ``Z`` is converted into ``zone_name``."""
    if not _DATE_TIME.match(raw.strip()):
        raise InvalidRequest(f"The value '{raw}' of property '{name}.dateTime' is not a valid date and time.")
    text = raw.strip().replace("Z", "+00:00")
    fraction = re.search(r"\.(\d{1,7})", text)
    if fraction:  # Python parses at most 6 fractional digits
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6].ljust(6, "0"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"The value '{raw}' of property '{name}.dateTime' is not a valid date and time.") from None
    if parsed.tzinfo is not None:
        return timezones.to_zone(parsed, zone_name)
    return parsed


def format_wall_clock(value: datetime) -> str:
    """``2017-04-15T12:00:00.0000000``: seven fractional digits and no zone, as Graph writes it."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0"


def _location(value: Any, name: str) -> dict[str, Any]:
    data = LOCATION.validate(value, strict=True, where=name)
    display = data.get("displayName") or ""
    out: dict[str, Any] = {"displayName": display, "locationType": data.get("locationType", "default")}
    if "locationUri" in data:
        out["locationUri"] = data["locationUri"]
    if "locationEmailAddress" in data:
        out["locationEmailAddress"] = data["locationEmailAddress"]
    if data.get("uniqueId") is not None or display:
        out["uniqueId"] = data.get("uniqueId") or display
        out["uniqueIdType"] = data.get("uniqueIdType", "private")
    else:
        out["uniqueIdType"] = data.get("uniqueIdType", "unknown")
    out["address"] = data.get("address") or {}
    out["coordinates"] = data.get("coordinates") or {}
    return out


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise o.wrong_type(name, value, "an object")
    return value


LOCATION = o.Schema(
    "Microsoft.OutlookServices.Location",
    odata_type="#microsoft.graph.location",
    writable={
        "displayName": o.nullable_string,
        "locationEmailAddress": o.nullable_string,
        "locationUri": o.nullable_string,
        "locationType": o.enum(
            "locationType",
            "default",
            "conferenceRoom",
            "homeAddress",
            "businessAddress",
            "geoCoordinates",
            "streetAddress",
            "hotel",
            "restaurant",
            "localBusiness",
            "postalAddress",
        ),
        "uniqueId": o.nullable_string,
        "uniqueIdType": o.enum("locationUniqueIdType", "unknown", "locationStore", "directory", "private", "bing"),
        "address": o.nullable(_object),
        "coordinates": o.nullable(_object),
    },
)

ATTENDEE_TYPE = o.enum("attendeeType", "required", "optional", "resource")
RESPONSE_TYPE = o.enum(
    "responseType", "none", "organizer", "tentativelyAccepted", "accepted", "declined", "notResponded"
)
RESPONSE_STATUS = o.Schema(
    "Microsoft.OutlookServices.ResponseStatus",
    writable={"response": RESPONSE_TYPE, "time": o.nullable_string},
)
ATTENDEE = o.Schema(
    "Microsoft.OutlookServices.Attendee",
    odata_type="#microsoft.graph.attendee",
    writable={
        "emailAddress": o.email_address,
        "type": ATTENDEE_TYPE,
        "status": o.sub_schema(RESPONSE_STATUS),
        "proposedNewTime": o.nullable(_object),
    },
)


def _attendee(value: Any, name: str) -> dict[str, Any]:
    data = ATTENDEE.validate(value, strict=True, where=name)
    if "emailAddress" not in data:
        raise o.body_read_error(f"Invalid value for property '{name}': an 'emailAddress' is required.")
    # The organizer's copy reports every attendee's response as "none" until they answer.
    return {
        "type": data.get("type", "required"),
        "status": {"response": "none", "time": NO_TIME},
        "emailAddress": data["emailAddress"],
    }


def _recurrence(value: Any, name: str) -> None:
    if value is not None:
        raise InvalidRequest("Recurring events are not supported by this server: 'recurrence' must be null.")
    return None


WRITABLE: dict[str, o.Validator] = {
    "subject": o.nullable_string,
    "body": o.item_body,
    "start": _date_time_time_zone,
    "end": _date_time_time_zone,
    "location": o.nullable(_location),
    "locations": o.list_of(_location, "microsoft.graph.location"),
    "attendees": o.list_of(_attendee, "microsoft.graph.attendee"),
    "organizer": o.nullable_recipient,
    "categories": o.string_list,
    "importance": o.IMPORTANCE,
    "sensitivity": o.enum("sensitivity", "normal", "personal", "private", "confidential"),
    "showAs": o.enum("freeBusyStatus", "unknown", "free", "tentative", "busy", "oof", "workingElsewhere"),
    "isAllDay": o.boolean,
    "isReminderOn": o.boolean,
    "reminderMinutesBeforeStart": o.int32,
    "responseRequested": o.boolean,
    "allowNewTimeProposals": o.boolean,
    "hideAttendees": o.boolean,
    "isOnlineMeeting": o.boolean,
    "onlineMeetingProvider": o.enum(
        "onlineMeetingProviderType", "unknown", "skypeForBusiness", "skypeForConsumer", "teamsForBusiness"
    ),
    "onlineMeetingUrl": o.nullable_string,
    "transactionId": o.nullable_string,
    "recurrence": _recurrence,
    **o.EXTENDED_PROPERTIES,
}

READ_ONLY = frozenset(
    {
        "id",
        "createdDateTime",
        "lastModifiedDateTime",
        "changeKey",
        "originalStartTimeZone",
        "originalEndTimeZone",
        "iCalUId",
        "uid",
        "hasAttachments",
        "bodyPreview",
        "isCancelled",
        "isOrganizer",
        "seriesMasterId",
        "type",
        "webLink",
        "occurrenceId",
        "isDraft",
        "responseStatus",
        "onlineMeeting",
        "originalStart",
    }
)

CREATE = o.Schema(TYPE_NAME, ODATA_TYPE, {**WRITABLE, "attachments": lambda v, n: v}, READ_ONLY)
UPDATE = CREATE

PROPERTIES = frozenset(WRITABLE) | READ_ONLY | {"attachments"}


def _check_times(data: dict[str, Any]) -> None:
    start, end = data["start"], data["end"]
    start_utc = timezones.from_wall_clock(
        parse_wall_clock(start["dateTime"], start["timeZone"], "start"), start["timeZone"]
    )
    end_utc = timezones.from_wall_clock(parse_wall_clock(end["dateTime"], end["timeZone"], "end"), end["timeZone"])
    if end_utc < start_utc:
        raise CalendarEndDateIsEarlierThanStartDate()
    if data.get("isAllDay"):
        for value in (start, end):
            if not value["dateTime"].endswith("T00:00:00.0000000"):
                raise PropertyValidationFailure(
                    "At least one property failed validation: an all-day event starts and ends at midnight."
                )
        if start["timeZone"] != end["timeZone"]:
            raise PropertyValidationFailure(
                "At least one property failed validation: an all-day event starts and ends in one time zone."
            )


def _locations(data: dict[str, Any]) -> None:
    """``location`` and ``locations`` describe the same places (Graph keeps them in step)."""
    if "location" in data and "locations" not in data:
        location = data["location"]
        data["locations"] = [location] if location and location.get("displayName") else []
    elif "locations" in data and "location" not in data:
        places = data["locations"]
        data["location"] = places[0] if len(places) == 1 else _joined(places)


def _joined(places: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not places:
        return None
    display = "; ".join(p.get("displayName") or "" for p in places)
    return {
        "displayName": display,
        "locationType": "default",
        "uniqueIdType": "unknown",
        "address": {},
        "coordinates": {},
    }


def parse_create(payload: Any, *, strict: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The event properties and its ``attachments`` array (each still to be validated)."""
    data = CREATE.validate(payload, strict=strict)
    attachments = data.pop("attachments", None) or []
    if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
        raise o.wrong_type("attachments", attachments, "'Collection(microsoft.graph.attachment)'")
    for required in ("start", "end"):
        if required not in data:
            raise PropertyValidationFailure(
                f"At least one property failed validation: '{required}' is required to create an event."
            )
    _check_times(data)
    _locations(data)
    return data, attachments


def parse_update(payload: Any, *, strict: bool, current: dict[str, Any]) -> dict[str, Any]:
    """The properties of a PATCH body. An ``attachments`` array is accepted and dropped: O365's
    ``Event.save()`` sends one after uploading them (python-o365; docs/fidelity.md)."""
    data = UPDATE.validate(payload, strict=strict)
    data.pop("attachments", None)
    merged = {**current, **data}
    if "start" in data or "end" in data or "isAllDay" in data:
        _check_times(merged)
    _locations(data)
    return data


def ical_uid(seed: str) -> str:
    """An iCalendar UID in Exchange's format (the fixed Outlook GUID prefix, then hex)."""
    return "040000008200E00074C5B7101A82E00800000000" + seed


def web_link(root_url: str, item_id: str) -> str:
    return f"{root_url}/owa/?itemid={quote(item_id, safe='')}&exvsurl=1&path=/calendar/item"


def event_interval(data: dict[str, Any]) -> tuple[datetime, datetime]:
    """The event's start and end as aware UTC instants."""
    start, end = data["start"], data["end"]
    return (
        timezones.from_wall_clock(parse_wall_clock(start["dateTime"], start["timeZone"], "start"), start["timeZone"]),
        timezones.from_wall_clock(parse_wall_clock(end["dateTime"], end["timeZone"], "end"), end["timeZone"]),
    )


def _in_zone(value: dict[str, str], zone_name: str | None) -> dict[str, str]:
    target = zone_name or "UTC"
    instant = timezones.from_wall_clock(parse_wall_clock(value["dateTime"], value["timeZone"], ""), value["timeZone"])
    return {"dateTime": format_wall_clock(timezones.to_zone(instant, target)), "timeZone": target}


def event_json(item: Item, *, owner: dict[str, Any], root_url: str, zone_name: str | None = None) -> dict[str, Any]:
    """The full event entity (without ``@odata.context``) in Graph's property order.

    ``owner`` is the mailbox owner as a recipient (the organizer unless the event says otherwise);
    ``zone_name`` is the zone of the ``Prefer: outlook.timezone`` header (None: UTC). Created and
    modified times have seven fractional digits on events (``...T19:58:06.6463437Z``)."""
    d = item.data
    body = d.get("body") or {"contentType": "text", "content": ""}
    organizer = d.get("organizer")
    is_organizer = d.get("isOrganizer", True)
    empty_location = {
        "displayName": "",
        "locationType": "default",
        "uniqueIdType": "unknown",
        "address": {},
        "coordinates": {},
    }
    return {
        "@odata.etag": f'W/"{item.change_key}"',
        "id": item.id,
        "createdDateTime": graph_datetime_7(item.created),
        "lastModifiedDateTime": graph_datetime_7(item.last_modified),
        "changeKey": item.change_key,
        "categories": list(d.get("categories") or []),
        "transactionId": d.get("transactionId"),
        "originalStartTimeZone": d.get("originalStartTimeZone") or d["start"]["timeZone"],
        "originalEndTimeZone": d.get("originalEndTimeZone") or d["end"]["timeZone"],
        "iCalUId": d.get("iCalUId"),
        "reminderMinutesBeforeStart": d.get("reminderMinutesBeforeStart", 15),
        "isReminderOn": d.get("isReminderOn", True),
        "hasAttachments": item.has_attachments,
        "subject": d.get("subject"),
        "bodyPreview": o.body_preview(body),
        "importance": d.get("importance", "normal"),
        "sensitivity": d.get("sensitivity", "normal"),
        "isAllDay": d.get("isAllDay", False),
        "isCancelled": d.get("isCancelled", False),
        "isOrganizer": is_organizer,
        "responseRequested": d.get("responseRequested", True),
        "seriesMasterId": None,
        "showAs": d.get("showAs", "busy" if is_organizer else "tentative"),
        "type": "singleInstance",
        "webLink": web_link(root_url, item.id),
        "onlineMeetingUrl": d.get("onlineMeetingUrl"),
        "isOnlineMeeting": d.get("isOnlineMeeting", False),
        "onlineMeetingProvider": d.get("onlineMeetingProvider", "unknown"),
        "allowNewTimeProposals": d.get("allowNewTimeProposals", True),
        "occurrenceId": None,
        "isDraft": False,
        "hideAttendees": d.get("hideAttendees", False),
        "responseStatus": d.get("responseStatus") or {"response": "organizer", "time": NO_TIME},
        "body": body,
        "start": _in_zone(d["start"], zone_name),
        "end": _in_zone(d["end"], zone_name),
        "location": d.get("location") or empty_location,
        "locations": list(d.get("locations") or []),
        "recurrence": None,
        "attendees": list(d.get("attendees") or []),
        "organizer": organizer or owner,
        "onlineMeeting": None,
    }
