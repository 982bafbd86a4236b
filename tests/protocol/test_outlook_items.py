"""Sans-IO validation and shaping of messages, events and folders (protocol/outlook.py,
messages.py, events.py, folders.py) and Outlook time zones (domain/timezones.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphattach.domain import timezones
from graphattach.domain.errors import GraphError
from graphattach.domain.models import Folder, Item
from graphattach.protocol import events, folders, messages
from graphattach.protocol import outlook as o


def error_of(fn, *args, **kwargs) -> GraphError:  # type: ignore[no-untyped-def]
    with pytest.raises(GraphError) as info:
        fn(*args, **kwargs)
    return info.value


# ---- outlook.Schema ------------------------------------------------------------------------------------


def test_unknown_property_is_named_in_strict_mode_and_dropped_in_loose_mode() -> None:
    err = error_of(messages.parse_create, {"subject": "x", "Colour": 1}, strict=True)
    assert (err.status, err.code) == (400, "RequestBodyRead")
    assert "'Colour'" in err.message and "Microsoft.OutlookServices.Message" in err.message
    data, attachments = messages.parse_create({"subject": "x", "Colour": 1}, strict=False)
    assert data == {"subject": "x"} and attachments == []


def test_read_only_property_is_invalid_property_set_even_in_loose_mode() -> None:
    err = error_of(messages.parse_create, {"hasAttachments": True}, strict=False)
    assert (err.status, err.code) == (400, "ErrorInvalidPropertySet")


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), ("true", True), ("FALSE", False)])
def test_boolean_accepts_json_booleans_and_their_strings(value: object, expected: bool) -> None:
    assert o.boolean(value, "isRead") is expected


@pytest.mark.parametrize("value", ["yes", 1, 0, None, [], {}])
def test_boolean_rejects_everything_else(value: object) -> None:
    assert error_of(o.boolean, value, "isRead").code == "RequestBodyRead"


def test_int32_bounds() -> None:
    assert o.int32(2**31 - 1, "n") == 2**31 - 1
    for bad in (2**31, True, 1.5, "3"):
        assert error_of(o.int32, bad, "n").code == "RequestBodyRead"


def test_enum_is_case_insensitive_and_canonical() -> None:
    assert o.IMPORTANCE("HIGH", "importance") == "high"
    assert "urgent" in error_of(o.IMPORTANCE, "urgent", "importance").message


def test_recipient_name_defaults_to_address_and_shape_is_checked() -> None:
    assert o.recipient({"emailAddress": {"address": "a@b.c"}}, "to") == {
        "emailAddress": {"name": "a@b.c", "address": "a@b.c"}
    }
    assert error_of(o.recipient, {"emailAddress": {}}, "to").code == "RequestBodyRead"
    assert error_of(o.recipient, {"emailAddress": {"address": "a@b.c", "phone": "1"}}, "to").code == "RequestBodyRead"
    assert error_of(o.recipient, {}, "to").code == "RequestBodyRead"


def test_odata_type_must_match_the_entity() -> None:
    assert messages.parse_create({"@odata.type": "microsoft.graph.message"}, strict=True)[0] == {}
    assert (
        error_of(messages.parse_create, {"@odata.type": "#microsoft.graph.event"}, strict=True).code
        == "RequestBodyRead"
    )


def test_body_preview_strips_html_and_cuts_at_255() -> None:
    html = {
        "contentType": "html",
        "content": "<html><head><style>p{}</style></head><body><p>a&lt;b</p>\n<p>c</p></body></html>",
    }
    assert o.body_preview(html) == "a<b c"
    assert len(o.body_preview({"contentType": "text", "content": "x" * 400})) == 255


# ---- messages -------------------------------------------------------------------------------------------


def test_update_refuses_attachments_and_draft_only_fields_on_non_drafts() -> None:
    err = error_of(messages.parse_update, {"Attachments": []}, strict=True, is_draft=True)
    assert err.code == "ErrorInvalidPropertySet" and "attachments" in err.message
    assert error_of(messages.parse_update, {"subject": "x"}, strict=True, is_draft=False).code == (
        "ErrorInvalidPropertyUpdateSentMessage"
    )
    assert (
        error_of(messages.parse_update, {"sender": None}, strict=True, is_draft=False).message
        == "Message is not draft."
    )
    assert messages.parse_update({"isRead": False, "categories": []}, strict=True, is_draft=False) == {
        "isRead": False,
        "categories": [],
    }


def test_message_json_defaults() -> None:
    now = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    item = Item(
        id="AAMkID=", user_id="u", kind="message", folder_id="F", created=now, last_modified=now, change_key="CK"
    )
    entity = messages.message_json(item, root_url="http://h:1")
    assert entity["createdDateTime"] == "2024-01-02T03:04:05Z"
    assert entity["receivedDateTime"] == entity["sentDateTime"] == entity["createdDateTime"]
    assert entity["@odata.etag"] == 'W/"CK"'
    assert entity["webLink"] == "http://h:1/owa/?ItemID=AAMkID%3D&exvsurl=1&viewmodel=ReadMessageItem"
    assert entity["body"] == {"contentType": "text", "content": ""}
    assert entity["from"] is None and entity["isDraft"] is True


# ---- events ---------------------------------------------------------------------------------------------------


def _event(**extra: object) -> dict:
    return {
        "start": {"dateTime": "2030-03-10T01:30:00", "timeZone": "Eastern Standard Time"},
        "end": {"dateTime": "2030-03-10T03:30:00", "timeZone": "Eastern Standard Time"},
        **extra,
    }


def test_event_times_are_normalised_and_converted_across_dst() -> None:
    data, _ = events.parse_create(_event(), strict=True)
    assert data["start"] == {"dateTime": "2030-03-10T01:30:00.0000000", "timeZone": "Eastern Standard Time"}
    now = datetime(2024, 1, 1, tzinfo=UTC)
    item = Item(
        id="E=", user_id="u", kind="event", folder_id="C", created=now, last_modified=now, change_key="k", data=data
    )
    owner = {"emailAddress": {"name": "O", "address": "o@x.y"}}
    entity = events.event_json(item, owner=owner, root_url="http://h")
    # 01:30 EST is 06:30 UTC; 03:30 is after the 2030-03-10 spring-forward, EDT: 07:30 UTC
    assert entity["start"] == {"dateTime": "2030-03-10T06:30:00.0000000", "timeZone": "UTC"}
    assert entity["end"] == {"dateTime": "2030-03-10T07:30:00.0000000", "timeZone": "UTC"}
    assert entity["organizer"] == owner and entity["createdDateTime"] == "2024-01-01T00:00:00.0000000Z"


def test_event_validation_errors() -> None:
    assert error_of(events.parse_create, {}, strict=True).code == "ErrorPropertyValidationFailure"
    bad_zone = _event(start={"dateTime": "2030-03-10T01:30:00", "timeZone": "Nowhere"})
    err = error_of(events.parse_create, bad_zone, strict=True)
    assert err.code == "TimeZoneNotSupportedException" and "'Nowhere'" in err.message
    assert error_of(
        events.parse_create, _event(start={"dateTime": "2030-13-10T01:30:00", "timeZone": "UTC"}), strict=True
    ).code == ("ErrorInvalidRequest")
    backwards = _event(end={"dateTime": "2030-03-09T01:30:00", "timeZone": "Eastern Standard Time"})
    assert error_of(events.parse_create, backwards, strict=True).code == "ErrorCalendarEndDateIsEarlierThanStartDate"


def test_event_update_drops_attachments_and_checks_times_against_current() -> None:
    current, _ = events.parse_create(_event(), strict=True)
    assert events.parse_update({"attachments": [{"name": "x"}], "subject": "s"}, strict=True, current=current) == {
        "subject": "s"
    }
    late = {"start": {"dateTime": "2030-03-11T00:00:00", "timeZone": "UTC"}}
    assert (
        error_of(events.parse_update, late, strict=True, current=current).code
        == "ErrorCalendarEndDateIsEarlierThanStartDate"
    )


def test_attendees_default_to_required_with_no_response() -> None:
    data, _ = events.parse_create(_event(attendees=[{"emailAddress": {"address": "a@b.c"}}]), strict=True)
    assert data["attendees"] == [
        {
            "type": "required",
            "status": {"response": "none", "time": events.NO_TIME},
            "emailAddress": {"name": "a@b.c", "address": "a@b.c"},
        }
    ]


def test_locations_follow_location() -> None:
    data, _ = events.parse_create(_event(location={"displayName": "Room"}), strict=True)
    assert data["locations"] == [data["location"]] and data["location"]["uniqueId"] == "Room"
    data, _ = events.parse_create(_event(locations=[{"displayName": "A"}, {"displayName": "B"}]), strict=True)
    assert data["location"]["displayName"] == "A; B"


# ---- folders -------------------------------------------------------------------------------------------------------


def test_mail_folder_bodies() -> None:
    assert folders.parse_mail_folder_create({"displayName": "X", "isHidden": True}, strict=True) == ("X", True)
    assert (
        error_of(folders.parse_mail_folder_create, {"displayName": "  "}, strict=True).code == "ErrorInvalidFolderName"
    )
    assert folders.parse_mail_folder_update({}, strict=True) is None
    folder = Folder(
        id="F=", user_id="u", kind="mail", display_name="X", parent_id="P", created=datetime(2024, 1, 1, tzinfo=UTC)
    )
    assert folders.mail_folder_json(folder, child_count=1, total=2, unread=3) == {
        "id": "F=",
        "displayName": "X",
        "parentFolderId": "P",
        "childFolderCount": 1,
        "unreadItemCount": 3,
        "totalItemCount": 2,
        "isHidden": False,
    }


def test_calendar_group_class_id_is_stable() -> None:
    group = Folder(
        id="G=",
        user_id="u",
        kind="calendarGroup",
        display_name="My Calendars",
        created=datetime(2024, 1, 1, tzinfo=UTC),
    )
    assert folders.calendar_group_json(group, change_key="k") == folders.calendar_group_json(group, change_key="k")


# ---- time zones ----------------------------------------------------------------------------------------------------


def test_time_zone_names() -> None:
    assert timezones.canonical_name("pacific standard time") == "Pacific Standard Time"
    assert timezones.canonical_name("america/new_york") == "America/New_York"
    assert timezones.canonical_name("utc") == "UTC"
    with pytest.raises(timezones.UnknownTimeZone):
        timezones.canonical_name("Greenwich Mean Time")


@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)),
    st.sampled_from(sorted(timezones.WINDOWS_TO_IANA)),
)
def test_utc_round_trip_through_any_windows_zone(instant: datetime, name: str) -> None:
    aware = instant.replace(tzinfo=UTC)
    wall = timezones.to_zone(aware, name)
    back = timezones.from_wall_clock(wall, name)
    # the same instant, or (for a wall time that occurs twice at a DST fold) one showing the same wall time
    assert back == aware or timezones.to_zone(back, name) == wall
    text = events.format_wall_clock(wall)
    assert events.parse_wall_clock(text, name, "start") == wall
