"""The OpenAPI 3.1 description of what graphattach serves, at ``GET /openapi.json``.

It describes the Graph v1.0 paths (``/beta`` mirrors them), the upload origin and the admin API.
Property names and EDM types follow Microsoft's metadata (microsoftgraph/msgraph-metadata
``schemas/v1.0-Prod.csdl``; the compatibility suite checks every property named here against it).
Attachment, upload-session, recipient and error bodies are closed (no other property may appear);
messages, events, folders and calendars list their main properties and stay open, since their
complete shape is the metadata's.

The repository keeps a copy at ``docs/openapi.json``; regenerate it with
``python -m graphattach.api.openapi > docs/openapi.json`` (a test checks that they match).
"""

from __future__ import annotations

import json
import sys
from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from graphattach import __version__

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    out = dict(schema)
    out["type"] = [schema["type"], "null"]
    return out


STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}
INT32: Schema = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
INT64: Schema = {"type": "integer", "format": "int64"}
DATETIME: Schema = {"type": "string", "format": "date-time"}
BASE64: Schema = {"type": "string", "contentEncoding": "base64"}
STRINGS: Schema = {"type": "array", "items": STRING}


def closed(properties: dict[str, Schema], required: list[str] | None = None, description: str = "") -> Schema:
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


def open_entity(properties: dict[str, Schema], description: str) -> Schema:
    return {"type": "object", "properties": properties, "additionalProperties": True, "description": description}


def odata_type(name: str) -> Schema:
    return {"type": "string", "const": f"#microsoft.graph.{name}"}


CONTROL: dict[str, Schema] = {"@odata.context": STRING, "@odata.etag": STRING}

ATTACHMENT_BASE: dict[str, Schema] = {
    "@odata.context": STRING,
    "id": STRING,
    "lastModifiedDateTime": nullable(DATETIME),
    "name": nullable(STRING),
    "contentType": nullable(STRING),
    "size": INT32,
    "isInline": BOOLEAN,
}

SCHEMAS: dict[str, Schema] = {
    "ODataError": closed({"error": ref("MainError")}, ["error"], "Every non-2xx answer."),
    "MainError": closed(
        {
            "code": STRING,
            "message": STRING,
            "target": nullable(STRING),
            "details": {"type": "array", "items": closed({"code": STRING, "message": STRING, "target": STRING})},
            "innerError": {
                "type": "object",
                "properties": {"date": STRING, "request-id": STRING, "client-request-id": STRING},
                "additionalProperties": True,
            },
        },
        ["code", "message"],
    ),
    "emailAddress": closed({"address": nullable(STRING), "name": nullable(STRING)}),
    "recipient": closed({"emailAddress": ref("emailAddress")}),
    "itemBody": closed({"contentType": {"type": "string", "enum": ["text", "html"]}, "content": nullable(STRING)}),
    "dateTimeTimeZone": closed({"dateTime": STRING, "timeZone": nullable(STRING)}, ["dateTime"]),
    "fileAttachment": closed(
        {
            "@odata.type": odata_type("fileAttachment"),
            "@odata.mediaContentType": STRING,
            **ATTACHMENT_BASE,
            "contentId": nullable(STRING),
            "contentLocation": nullable(STRING),
            "contentBytes": nullable(BASE64),
        },
        ["@odata.type"],
    ),
    "itemAttachment": closed(
        {
            "@odata.type": odata_type("itemAttachment"),
            "@odata.id": STRING,
            **ATTACHMENT_BASE,
            "item@odata.context": STRING,
            "item": {"type": "object", "description": "The attached message, event or contact ($expand)."},
        },
        ["@odata.type"],
    ),
    "referenceAttachment": closed(
        {"@odata.type": odata_type("referenceAttachment"), **ATTACHMENT_BASE},
        ["@odata.type"],
        "v1.0 declares no properties of its own (sourceUrl & co. are beta-only).",
    ),
    "attachment": {
        "oneOf": [ref("fileAttachment"), ref("itemAttachment"), ref("referenceAttachment")],
        "discriminator": {
            "propertyName": "@odata.type",
            "mapping": {
                "#microsoft.graph.fileAttachment": "#/components/schemas/fileAttachment",
                "#microsoft.graph.itemAttachment": "#/components/schemas/itemAttachment",
                "#microsoft.graph.referenceAttachment": "#/components/schemas/referenceAttachment",
            },
        },
    },
    "attachmentItem": closed(
        {
            "@odata.type": STRING,
            "attachmentType": {"type": "string", "enum": ["file", "item", "reference"]},
            "name": STRING,
            "size": INT64,
            "contentType": nullable(STRING),
            "contentId": nullable(STRING),
            "isInline": nullable(BOOLEAN),
        },
        ["attachmentType", "name", "size"],
    ),
    "CreateUploadSessionRequest": {
        "type": "object",
        "description": "Graph's parameter is AttachmentItem; O365 sends attachmentItem (matched case-insensitively).",
        "properties": {"AttachmentItem": ref("attachmentItem"), "attachmentItem": ref("attachmentItem")},
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
    },
    "uploadSession": closed(
        {
            "@odata.context": STRING,
            "uploadUrl": STRING,
            "expirationDateTime": DATETIME,
            "nextExpectedRanges": STRINGS,
        },
        ["uploadUrl", "expirationDateTime", "nextExpectedRanges"],
    ),
    "AttachmentSessionProgress": closed(
        {"@odata.context": STRING, "ExpirationDateTime": DATETIME, "nextExpectedRanges": STRINGS},
        ["ExpirationDateTime", "nextExpectedRanges"],
        "Outlook's answer to an intermediate PUT (note the PascalCase ExpirationDateTime). In the lenient "
        "profile the ranges read '{next}-{size-1}'.",
    ),
    "user": closed(
        {
            "@odata.context": STRING,
            "id": STRING,
            "businessPhones": STRINGS,
            "displayName": nullable(STRING),
            "givenName": nullable(STRING),
            "jobTitle": nullable(STRING),
            "mail": nullable(STRING),
            "mobilePhone": nullable(STRING),
            "officeLocation": nullable(STRING),
            "preferredLanguage": nullable(STRING),
            "surname": nullable(STRING),
            "userPrincipalName": nullable(STRING),
        }
    ),
    "message": open_entity(
        {
            **CONTROL,
            "id": STRING,
            "subject": nullable(STRING),
            "body": nullable(ref("itemBody")),
            "toRecipients": {"type": "array", "items": ref("recipient")},
            "ccRecipients": {"type": "array", "items": ref("recipient")},
            "bccRecipients": {"type": "array", "items": ref("recipient")},
            "isDraft": nullable(BOOLEAN),
            "hasAttachments": nullable(BOOLEAN),
            "parentFolderId": nullable(STRING),
            "createdDateTime": nullable(DATETIME),
            "lastModifiedDateTime": nullable(DATETIME),
        },
        "microsoft.graph.message (main properties).",
    ),
    "event": open_entity(
        {
            **CONTROL,
            "id": STRING,
            "subject": nullable(STRING),
            "body": nullable(ref("itemBody")),
            "start": nullable(ref("dateTimeTimeZone")),
            "end": nullable(ref("dateTimeTimeZone")),
            "hasAttachments": nullable(BOOLEAN),
            "isAllDay": nullable(BOOLEAN),
            "createdDateTime": nullable(DATETIME),
            "lastModifiedDateTime": nullable(DATETIME),
        },
        "microsoft.graph.event (main properties).",
    ),
    "mailFolder": open_entity(
        {
            **CONTROL,
            "id": STRING,
            "displayName": nullable(STRING),
            "parentFolderId": nullable(STRING),
            "childFolderCount": nullable(INT32),
            "totalItemCount": nullable(INT32),
            "unreadItemCount": nullable(INT32),
        },
        "microsoft.graph.mailFolder (main properties).",
    ),
    "calendar": open_entity(
        {**CONTROL, "id": STRING, "name": nullable(STRING), "isDefaultCalendar": nullable(BOOLEAN)},
        "microsoft.graph.calendar (main properties).",
    ),
    "calendarGroup": open_entity(
        {**CONTROL, "id": STRING, "name": nullable(STRING), "classId": nullable(STRING)},
        "microsoft.graph.calendarGroup (main properties).",
    ),
    "MessageCreate": closed(
        {
            "subject": nullable(STRING),
            "body": ref("itemBody"),
            "toRecipients": {"type": "array", "items": ref("recipient")},
            "ccRecipients": {"type": "array", "items": ref("recipient")},
            "bccRecipients": {"type": "array", "items": ref("recipient")},
            "importance": {"type": "string", "enum": ["low", "normal", "high"]},
            "categories": STRINGS,
        },
        description="Writable properties of a draft (others exist; unknown ones are refused).",
    ),
    "EventCreate": closed(
        {
            "subject": nullable(STRING),
            "body": ref("itemBody"),
            "start": ref("dateTimeTimeZone"),
            "end": ref("dateTimeTimeZone"),
            "isAllDay": BOOLEAN,
            "categories": STRINGS,
        },
        description="Writable properties of an event (others exist; unknown ones are refused).",
    ),
    "FolderCreate": closed({"displayName": STRING}, ["displayName"]),
    "CalendarCreate": closed({"name": STRING}, ["name"]),
    "SendMailRequest": closed({"message": ref("MessageCreate"), "saveToSentItems": BOOLEAN}, ["message"]),
    "MoveRequest": closed(
        {"destinationId": STRING}, ["destinationId"], description="A folder id or a well-known name (deleteditems...)."
    ),
    "ReplyRequest": closed({"comment": STRING, "message": ref("MessageCreate")}),
    "ForwardRequest": closed(
        {
            "comment": STRING,
            "toRecipients": {"type": "array", "items": ref("recipient")},
            "message": ref("MessageCreate"),
        }
    ),
    "messageDelta": closed(
        {
            "@odata.context": STRING,
            "@odata.nextLink": STRING,
            "@odata.deltaLink": STRING,
            "value": {"type": "array", "items": {"type": "object"}},
        },
        ["value"],
        description="A page of changes: items, and {id, @removed} for those deleted or moved out.",
    ),
}


def collection_of(name: str) -> Schema:
    return closed(
        {
            "@odata.context": STRING,
            "@odata.nextLink": STRING,
            "@odata.count": {"type": "integer"},
            "value": {"type": "array", "items": ref(name)},
        },
        ["value"],
    )


for _name in ("attachment", "message", "event", "mailFolder", "calendar", "calendarGroup", "user"):
    SCHEMAS[f"{_name}Collection"] = collection_of(_name)

JSON = "application/json"
ERRORS = {"4XX": {"description": "A Graph error.", "content": {JSON: {"schema": ref("ODataError")}}}}


def ok(status: str, schema: Schema | None, description: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if schema is not None:
        response["content"] = {JSON: {"schema": schema}}
    return {status: response, **ERRORS}


def body(schema: Schema) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": schema}}}


def path_param(name: str, description: str, example: str | None = None) -> dict[str, Any]:
    param: dict[str, Any] = {
        "name": name,
        "in": "path",
        "required": True,
        "schema": STRING,
        "description": description,
    }
    if example is not None:
        param["example"] = example
    return param


def query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


SELECT = query("$select", STRING, "Comma-separated properties to return.")
EXPAND = query("$expand", STRING, "Navigation properties to expand.")
TOP = query("$top", {"type": "integer", "minimum": 0}, "Page size.")
SKIP = query("$skip", {"type": "integer", "minimum": 0}, "Items to skip.")
COUNT = query("$count", {"type": "boolean"}, "Include @odata.count.")
LIST_QUERY = [SELECT, TOP, SKIP, COUNT]

USERS = {
    "/me": [],
    "/users/{user-id}": [path_param("user-id", "Object id or userPrincipalName.", "adele@contoso.onmicrosoft.com")],
}
MESSAGE_CONTAINERS = {"": [], "/mailFolders/{mailFolder-id}": [path_param("mailFolder-id", "Id or well-known name.")]}
EVENT_CONTAINERS = {
    "": [],
    "/calendar": [],
    "/calendars/{calendar-id}": [path_param("calendar-id", "Calendar id.")],
    "/calendarGroups/{calendarGroup-id}/calendars/{calendar-id}": [
        path_param("calendarGroup-id", "Calendar group id."),
        path_param("calendar-id", "Calendar id."),
    ],
}


def operation(op_id: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"operationId": op_id, "summary": summary, "responses": responses, **extra}


def _op_id(*parts: str) -> str:
    cleaned = []
    for part in parts:
        for token in part.replace("{", "").replace("}", "").replace("$", "").replace("-", "/").split("/"):
            if token:
                cleaned.append(token[0].upper() + token[1:])
    return "".join(cleaned)


def count_path(collection: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        f"{collection}/$count": {
            "parameters": params,
            "get": operation(
                _op_id(collection, "count"),
                "The number of items, as text/plain.",
                {"200": {"description": "A count.", "content": {"text/plain": {"schema": STRING}}}, **ERRORS},
            ),
        }
    }


def attachment_paths(item_path: str, params: list[dict[str, Any]], label: str) -> dict[str, Any]:
    attachment_id = path_param("attachment-id", "Attachment id.")
    base = f"{item_path}/attachments"
    return {
        base: {
            "parameters": params,
            "get": operation(
                _op_id(base, "list"),
                f"List the attachments of {label} (contentBytes included unless $select leaves it out).",
                ok("200", ref("attachmentCollection"), "The attachments."),
                parameters=[*LIST_QUERY, EXPAND],
            ),
            "post": operation(
                _op_id(base, "create"),
                f"Add a file, item or reference attachment to {label} (whole request at most 4 MiB).",
                ok("201", ref("attachment"), "The new attachment."),
                requestBody=body(ref("attachment")),
            ),
        },
        f"{base}/createUploadSession": {
            "parameters": params,
            "post": operation(
                _op_id(base, "createUploadSession"),
                f"Open an upload session for a large file attachment of {label}.",
                ok("201", ref("uploadSession"), "The session."),
                requestBody=body(ref("CreateUploadSessionRequest")),
            ),
        },
        f"{base}/{{attachment-id}}": {
            "parameters": [*params, attachment_id],
            "get": operation(
                _op_id(base, "get"),
                f"Get one attachment of {label}.",
                ok("200", ref("attachment"), "The attachment."),
                parameters=[SELECT, EXPAND],
            ),
            "delete": operation(
                _op_id(base, "delete"), f"Delete an attachment of {label}.", ok("204", None, "Deleted.")
            ),
            "patch": operation(
                _op_id(base, "update"),
                "Refused: attachments are not updatable (UpdateRestrictions Updatable=false).",
                dict(ERRORS),
            ),
        },
        **count_path(base, params),
        f"{base}/{{attachment-id}}/$value": {
            "parameters": [*params, attachment_id],
            "get": operation(
                _op_id(base, "value"),
                "The raw bytes (file), or the MIME text of an attached item; 405 for a reference.",
                {
                    "200": {
                        "description": "The content, typed with the attachment's own contentType.",
                        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **ERRORS,
                },
            ),
        },
    }


def item_paths(collection: str, params: list[dict[str, Any]], name: str, create: str, id_param: str) -> dict[str, Any]:
    item_param = path_param(id_param, f"The {name} id.")
    item = f"{collection}/{{{id_param}}}"
    paths: dict[str, Any] = {
        collection: {
            "parameters": params,
            "get": operation(
                _op_id(collection, "list"),
                f"List {name}s.",
                ok("200", ref(f"{name}Collection"), "A page."),
                parameters=LIST_QUERY,
            ),
            "post": operation(
                _op_id(collection, "create"),
                f"Create a {name}.",
                ok("201", ref(name), "Created."),
                requestBody=body(ref(create)),
            ),
        },
        item: {
            "parameters": [*params, item_param],
            "get": operation(
                _op_id(collection, "get"), f"Get a {name}.", ok("200", ref(name), "Found."), parameters=[SELECT, EXPAND]
            ),
            "patch": operation(
                _op_id(collection, "update"),
                f"Update a {name}.",
                ok("200", ref(name), "Updated."),
                requestBody=body(ref(create)),
            ),
            "delete": operation(_op_id(collection, "delete"), f"Delete a {name}.", ok("204", None, "Deleted.")),
        },
    }
    paths.update(count_path(collection, params))
    paths.update(attachment_paths(item, [*params, item_param], f"a {name}"))
    return paths


def graph_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/v1.0/users": {
            "get": operation(
                "UsersList",
                "List users (needs User.Read.All or similar).",
                ok("200", ref("userCollection"), "A page."),
                parameters=LIST_QUERY,
            )
        }
    }
    for user_path, user_params in USERS.items():
        root = f"/v1.0{user_path}"
        paths[root] = {
            "parameters": user_params,
            "get": operation(
                _op_id(root, "get"), "Get the user.", ok("200", ref("user"), "The user."), parameters=[SELECT]
            ),
        }
        paths[f"{root}/sendMail"] = {
            "parameters": user_params,
            "post": operation(
                _op_id(root, "sendMail"),
                "Send a message on the fly.",
                ok("202", None, "Accepted."),
                requestBody=body(ref("SendMailRequest")),
            ),
        }
        folders = f"{root}/mailFolders"
        folder_param = path_param("mailFolder-id", "Id or well-known name (inbox, drafts, sentitems...).")
        paths[folders] = {
            "parameters": user_params,
            "get": operation(
                _op_id(folders, "list"),
                "List mail folders.",
                ok("200", ref("mailFolderCollection"), "A page."),
                parameters=LIST_QUERY,
            ),
            "post": operation(
                _op_id(folders, "create"),
                "Create a mail folder.",
                ok("201", ref("mailFolder"), "Created."),
                requestBody=body(ref("FolderCreate")),
            ),
        }
        paths.update(count_path(folders, user_params))
        paths[f"{folders}/{{mailFolder-id}}"] = {
            "parameters": [*user_params, folder_param],
            "get": operation(_op_id(folders, "get"), "Get a mail folder.", ok("200", ref("mailFolder"), "Found.")),
            "patch": operation(
                _op_id(folders, "update"),
                "Rename a mail folder.",
                ok("200", ref("mailFolder"), "Updated."),
                requestBody=body(ref("FolderCreate")),
            ),
            "delete": operation(_op_id(folders, "delete"), "Delete a mail folder.", ok("204", None, "Deleted.")),
        }
        paths[f"{folders}/{{mailFolder-id}}/childFolders"] = {
            "parameters": [*user_params, folder_param],
            "get": operation(
                _op_id(folders, "childFolders", "list"),
                "List child folders.",
                ok("200", ref("mailFolderCollection"), "A page."),
                parameters=LIST_QUERY,
            ),
            "post": operation(
                _op_id(folders, "childFolders", "create"),
                "Create a child folder.",
                ok("201", ref("mailFolder"), "Created."),
                requestBody=body(ref("FolderCreate")),
            ),
        }
        for container, container_params in MESSAGE_CONTAINERS.items():
            params = [*user_params, *container_params]
            paths.update(item_paths(f"{root}{container}/messages", params, "message", "MessageCreate", "message-id"))
        paths[f"{root}/messages/{{message-id}}/send"] = {
            "parameters": [*user_params, path_param("message-id", "The draft's id.")],
            "post": operation(_op_id(root, "messages", "send"), "Send a draft.", ok("202", None, "Accepted.")),
        }
        message_param = path_param("message-id", "The message's id.")
        for action, summary, status, request in (
            ("move", "Move to another folder (the message gets a new id).", "201", "MoveRequest"),
            ("copy", "Copy to a folder.", "201", "MoveRequest"),
            ("createReply", "Create a reply draft.", "201", "ReplyRequest"),
            ("createReplyAll", "Create a reply-all draft.", "201", "ReplyRequest"),
            ("createForward", "Create a forward draft (with the original's attachments).", "201", "ForwardRequest"),
            ("reply", "Reply now.", "202", "ReplyRequest"),
            ("replyAll", "Reply to all now.", "202", "ReplyRequest"),
            ("forward", "Forward now (with the original's attachments).", "202", "ForwardRequest"),
        ):
            paths[f"{root}/messages/{{message-id}}/{action}"] = {
                "parameters": [*user_params, message_param],
                "post": operation(
                    _op_id(root, "messages", action),
                    summary,
                    ok(status, ref("message") if status == "201" else None, "Done."),
                    requestBody=body(ref(request)),
                ),
            }
        paths[f"{root}/calendarView/delta"] = {
            "parameters": user_params,
            "get": operation(
                _op_id(root, "calendarView", "delta"),
                "Events of the primary calendar in a window, then what changed (follow the links).",
                ok("200", ref("messageDelta"), "A page of changes."),
                parameters=[
                    query("startDateTime", STRING, "Start of the window (first call)."),
                    query("endDateTime", STRING, "End of the window (first call)."),
                    query("$skiptoken", STRING, "From @odata.nextLink."),
                    query("$deltatoken", STRING, "From @odata.deltaLink."),
                ],
            ),
        }
        delta_path = f"{root}/mailFolders/{{mailFolder-id}}/messages/delta"
        paths[delta_path] = {
            "parameters": [*user_params, path_param("mailFolder-id", "Id or well-known name.")],
            "get": operation(
                _op_id(root, "mailFolders", "messages", "delta"),
                "Changes to the folder's messages (follow @odata.nextLink, keep @odata.deltaLink).",
                ok("200", ref("messageDelta"), "A page of changes."),
                parameters=[
                    SELECT,
                    query("$filter", STRING, "Only 'receivedDateTime ge {value}'."),
                    query("$skiptoken", STRING, "From @odata.nextLink."),
                    query("$deltatoken", STRING, "From @odata.deltaLink."),
                ],
            ),
        }
        for container, container_params in EVENT_CONTAINERS.items():
            params = [*user_params, *container_params]
            paths.update(item_paths(f"{root}{container}/events", params, "event", "EventCreate", "event-id"))
        paths[f"{root}/calendar"] = {
            "parameters": user_params,
            "get": operation(
                _op_id(root, "calendar", "get"), "The default calendar.", ok("200", ref("calendar"), "Found.")
            ),
        }
        paths[f"{root}/calendars"] = {
            "parameters": user_params,
            "get": operation(
                _op_id(root, "calendars", "list"),
                "List calendars.",
                ok("200", ref("calendarCollection"), "A page."),
                parameters=LIST_QUERY,
            ),
            "post": operation(
                _op_id(root, "calendars", "create"),
                "Create a calendar.",
                ok("201", ref("calendar"), "Created."),
                requestBody=body(ref("CalendarCreate")),
            ),
        }
        paths[f"{root}/calendars/{{calendar-id}}"] = {
            "parameters": [*user_params, path_param("calendar-id", "Calendar id.")],
            "get": operation(_op_id(root, "calendars", "get"), "Get a calendar.", ok("200", ref("calendar"), "Found.")),
            "patch": operation(
                _op_id(root, "calendars", "update"),
                "Rename a calendar.",
                ok("200", ref("calendar"), "Updated."),
                requestBody=body(ref("CalendarCreate")),
            ),
            "delete": operation(_op_id(root, "calendars", "delete"), "Delete a calendar.", ok("204", None, "Deleted.")),
        }
        paths.update(count_path(f"{root}/calendars", user_params))
        paths.update(count_path(f"{root}/calendarGroups", user_params))
        paths[f"{root}/calendarGroups/{{calendarGroup-id}}"] = {
            "parameters": [*user_params, path_param("calendarGroup-id", "Calendar group id.")],
            "get": operation(
                _op_id(root, "calendarGroups", "get"),
                "Get a calendar group.",
                ok("200", ref("calendarGroup"), "Found."),
            ),
        }
        paths[f"{root}/calendarGroups"] = {
            "parameters": user_params,
            "get": operation(
                _op_id(root, "calendarGroups", "list"),
                "List calendar groups.",
                ok("200", ref("calendarGroupCollection"), "A page."),
                parameters=LIST_QUERY,
            ),
            "post": operation(
                _op_id(root, "calendarGroups", "create"),
                "Create a calendar group.",
                ok("201", ref("calendarGroup"), "Created."),
                requestBody=body(ref("CalendarCreate")),
            ),
        }
    return paths


UPLOAD_PATH = "/api/gv1.0/users('{owner}')/{kind}('{item-id}')/AttachmentSessions('{session-id}')"


def upload_paths() -> dict[str, Any]:
    params = [
        path_param("owner", "'{user object id}@{tenant id}'."),
        {
            "name": "kind",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": ["messages", "events"]},
        },
        path_param("item-id", "The message or event id."),
        path_param("session-id", "The session id."),
        {
            "name": "authtoken",
            "in": "query",
            "required": True,
            "schema": STRING,
            "description": "The session's own token; no Authorization header is needed.",
        },
    ]
    progress = {"description": "Next range expected.", "content": {JSON: {"schema": ref("AttachmentSessionProgress")}}}
    return {
        UPLOAD_PATH: {
            "parameters": params,
            "put": {
                "operationId": "UploadRange",
                "summary": "Upload the next byte range (Content-Range: bytes {start}-{end}/{total}).",
                "security": [],
                "parameters": [
                    {"name": "Content-Range", "in": "header", "required": True, "schema": STRING},
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                },
                "responses": {
                    "200": progress,
                    "201": {
                        "description": "The last range: the attachment exists.",
                        "headers": {"Location": {"schema": STRING, "description": "…/Attachments('{id}')"}},
                    },
                    **ERRORS,
                },
            },
            "get": {
                "operationId": "UploadStatus",
                "summary": "The session's status.",
                "security": [],
                "responses": {"200": progress, **ERRORS},
            },
            "delete": {
                "operationId": "UploadCancel",
                "summary": "Cancel the session.",
                "security": [],
                "responses": {"204": {"description": "Cancelled."}, **ERRORS},
            },
        }
    }


def admin_paths() -> dict[str, Any]:
    token = closed(
        {
            "access_token": STRING,
            "token_type": STRING,
            "expires_in": {"type": "integer"},
            "scope": STRING,
            "roles": STRINGS,
        }
    )
    return {
        "/_graphattach/health": {
            "get": {
                "operationId": "AdminHealth",
                "summary": "Liveness.",
                "security": [],
                "responses": {"200": {"description": "Up.", "content": {JSON: {"schema": {"type": "object"}}}}},
            }
        },
        "/_graphattach/token": {
            "post": {
                "operationId": "AdminToken",
                "summary": "Mint a delegated ({user, scopes}) or application ({app: true, roles}) token.",
                "security": [],
                "requestBody": body(
                    closed(
                        {
                            "user": STRING,
                            "scopes": {"anyOf": [STRING, STRINGS]},
                            "app": BOOLEAN,
                            "roles": {"anyOf": [STRING, STRINGS]},
                            "appId": STRING,
                            "lifetime": {"type": "integer", "minimum": 1},
                        }
                    )
                ),
                "responses": {
                    "200": {"description": "A bearer token.", "content": {JSON: {"schema": token}}},
                    **ERRORS,
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "OpenApi",
                "summary": "This document.",
                "security": [],
                "responses": {
                    "200": {"description": "OpenAPI 3.1.", "content": {JSON: {"schema": {"type": "object"}}}}
                },
            }
        },
    }


@cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "graphattach",
            "version": __version__,
            "summary": "A self-hostable Microsoft Graph v1.0 mailbox server for Outlook attachments and upload sessions.",
            "description": "Every /v1.0 path is also served under /beta. /me is /users/{the token's user}.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {**graph_paths(), **upload_paths(), **admin_paths()},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def render() -> str:
    """The document as committed in docs/openapi.json."""
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


async def openapi_json(request: Request) -> Response:
    return Response(render(), media_type="application/json")


ROUTES = [Route("/openapi.json", openapi_json, methods=["GET"])]


if __name__ == "__main__":
    sys.stdout.write(render())
