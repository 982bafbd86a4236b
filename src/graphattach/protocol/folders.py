"""JSON shapes of ``microsoft.graph.mailFolder``, ``calendar`` and ``calendarGroup``, and the
validation of their POST and PATCH bodies (DC api-reference/v1.0/resources/mailfolder.md,
calendar.md, calendargroup.md)."""

from __future__ import annotations

import uuid
from typing import Any

from graphattach.domain.models import Folder
from graphattach.protocol import outlook as o
from graphattach.protocol.errors import InvalidFolderName, InvalidRequest

# ---- mail folders -----------------------------------------------------------------------------------

MAIL_FOLDER_READ_ONLY = frozenset(
    {"id", "parentFolderId", "childFolderCount", "unreadItemCount", "totalItemCount", "sizeInBytes", "wellKnownName"}
)
MAIL_FOLDER_CREATE = o.Schema(
    "Microsoft.OutlookServices.MailFolder",
    "#microsoft.graph.mailFolder",
    {"displayName": o.string, "isHidden": o.boolean},
    MAIL_FOLDER_READ_ONLY,
)
MAIL_FOLDER_UPDATE = o.Schema(
    "Microsoft.OutlookServices.MailFolder",
    "#microsoft.graph.mailFolder",
    {"displayName": o.string},
    MAIL_FOLDER_READ_ONLY | {"isHidden"},
)
MAIL_FOLDER_PROPERTIES = frozenset(
    {"id", "displayName", "parentFolderId", "childFolderCount", "unreadItemCount", "totalItemCount", "isHidden"}
)


def _display_name(data: dict[str, Any], *, required: bool) -> str | None:
    name = data.get("displayName")
    if name is None:
        if required:
            raise InvalidRequest("The 'displayName' property is required to create a folder.")
        return None
    if not name.strip():
        raise InvalidFolderName("The folder name cannot be empty.")
    text: str = name
    return text


def parse_mail_folder_create(payload: Any, *, strict: bool) -> tuple[str, bool]:
    data = MAIL_FOLDER_CREATE.validate(payload, strict=strict)
    name = _display_name(data, required=True)
    assert name is not None
    return name, bool(data.get("isHidden", False))


def parse_mail_folder_update(payload: Any, *, strict: bool) -> str | None:
    data = MAIL_FOLDER_UPDATE.validate(payload, strict=strict)
    return _display_name(data, required=False)


def mail_folder_json(folder: Folder, *, child_count: int, total: int, unread: int) -> dict[str, Any]:
    return {
        "id": folder.id,
        "displayName": folder.display_name,
        "parentFolderId": folder.parent_id,
        "childFolderCount": child_count,
        "unreadItemCount": unread,
        "totalItemCount": total,
        "isHidden": bool(folder.data.get("isHidden", False)),
    }


# ---- calendars --------------------------------------------------------------------------------------

CALENDAR_COLORS = (
    "auto",
    "lightBlue",
    "lightGreen",
    "lightOrange",
    "lightGray",
    "lightYellow",
    "lightTeal",
    "lightPink",
    "lightBrown",
    "lightRed",
    "maxColor",
)
CALENDAR_READ_ONLY = frozenset(
    {
        "id",
        "changeKey",
        "canShare",
        "canViewPrivateItems",
        "canEdit",
        "owner",
        "isDefaultCalendar",
        "isRemovable",
        "isTallyingResponses",
        "allowedOnlineMeetingProviders",
        "hexColor",
    }
)
CALENDAR_WRITABLE: dict[str, o.Validator] = {
    "name": o.string,
    "color": o.enum("calendarColor", *CALENDAR_COLORS),
    "defaultOnlineMeetingProvider": o.enum(
        "onlineMeetingProviderType", "unknown", "skypeForBusiness", "skypeForConsumer", "teamsForBusiness"
    ),
}
CALENDAR_SCHEMA = o.Schema(
    "Microsoft.OutlookServices.Calendar", "#microsoft.graph.calendar", CALENDAR_WRITABLE, CALENDAR_READ_ONLY
)
CALENDAR_PROPERTIES = frozenset(CALENDAR_WRITABLE) | CALENDAR_READ_ONLY


def _name(data: dict[str, Any], *, required: bool, what: str) -> str | None:
    name = data.get("name")
    if name is None:
        if required:
            raise InvalidRequest(f"The 'name' property is required to create a {what}.")
        return None
    if not name.strip():
        raise InvalidFolderName(f"The {what} name cannot be empty.")
    text: str = name
    return text


def parse_calendar(payload: Any, *, strict: bool, create: bool) -> dict[str, Any]:
    data = CALENDAR_SCHEMA.validate(payload, strict=strict)
    _name(data, required=create, what="calendar")
    return data


def calendar_json(folder: Folder, *, owner: dict[str, Any], change_key: str) -> dict[str, Any]:
    is_default = bool(folder.data.get("isDefaultCalendar", False))
    return {
        "id": folder.id,
        "name": folder.display_name,
        "color": folder.data.get("color", "auto"),
        "hexColor": "",
        "isDefaultCalendar": is_default,
        "changeKey": change_key,
        "canShare": True,
        "canViewPrivateItems": True,
        "canEdit": True,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": folder.data.get("defaultOnlineMeetingProvider", "teamsForBusiness"),
        "isTallyingResponses": True,
        "isRemovable": not is_default,
        "owner": {"name": owner["name"], "address": owner["address"]},
    }


# ---- calendar groups ----------------------------------------------------------------------------------

GROUP_READ_ONLY = frozenset({"id", "changeKey", "classId"})
GROUP_SCHEMA = o.Schema(
    "Microsoft.OutlookServices.CalendarGroup", "#microsoft.graph.calendarGroup", {"name": o.string}, GROUP_READ_ONLY
)
GROUP_PROPERTIES = frozenset({"name"}) | GROUP_READ_ONLY


def parse_calendar_group(payload: Any, *, strict: bool, create: bool) -> str | None:
    data = GROUP_SCHEMA.validate(payload, strict=strict)
    return _name(data, required=create, what="calendar group")


def calendar_group_json(folder: Folder, *, change_key: str) -> dict[str, Any]:
    class_id = folder.data.get("classId") or str(uuid.uuid5(uuid.NAMESPACE_OID, folder.id))
    return {"id": folder.id, "name": folder.display_name, "changeKey": change_key, "classId": class_id}
