"""JSON shape of ``microsoft.graph.message``: request validation and the response entity.

Sources: the message resource and message-update.md (DC api-reference/v1.0/resources/message.md,
api/message-update.md). Stored data is camelCase Graph properties; ``message_json`` fills in
what Graph always returns, in the order the docs' examples show.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from graphattach.domain.errors import GraphError
from graphattach.domain.models import Item
from graphattach.protocol import outlook as o
from graphattach.protocol.errors import InvalidPropertySet, InvalidPropertyUpdateSentMessage
from graphattach.protocol.jsonio import graph_datetime

TYPE_NAME = "Microsoft.OutlookServices.Message"
ODATA_TYPE = "#microsoft.graph.message"

INTERNET_MESSAGE_HEADER = o.Schema(
    "Microsoft.OutlookServices.InternetMessageHeader",
    writable={"name": o.string, "value": o.nullable_string},
)

#: Properties a client may set (message-update.md "writable/updatable properties").
WRITABLE: dict[str, o.Validator] = {
    "subject": o.nullable_string,
    "body": o.item_body,
    "toRecipients": o.recipient_list,
    "ccRecipients": o.recipient_list,
    "bccRecipients": o.recipient_list,
    "replyTo": o.recipient_list,
    "from": o.nullable_recipient,
    "sender": o.nullable_recipient,
    "importance": o.IMPORTANCE,
    "categories": o.string_list,
    "isRead": o.boolean,
    "isDeliveryReceiptRequested": o.boolean,
    "isReadReceiptRequested": o.boolean,
    "flag": o.followup_flag,
    "inferenceClassification": o.enum("inferenceClassificationType", "focused", "other"),
    "internetMessageId": o.nullable_string,
    "internetMessageHeaders": o.list_of(o.sub_schema(INTERNET_MESSAGE_HEADER), "microsoft.graph.internetMessageHeader"),
    **o.EXTENDED_PROPERTIES,
}

#: Properties Graph computes; setting one is ``ErrorInvalidPropertySet``.
READ_ONLY = frozenset(
    {
        "id",
        "createdDateTime",
        "lastModifiedDateTime",
        "changeKey",
        "receivedDateTime",
        "sentDateTime",
        "hasAttachments",
        "bodyPreview",
        "parentFolderId",
        "conversationId",
        "conversationIndex",
        "isDraft",
        "webLink",
        "uniqueBody",
    }
)

#: "Updatable only if isDraft = true" (message-update.md; ``from`` per microsoft-graph-docs#17008).
DRAFT_ONLY = frozenset(
    {
        "subject",
        "body",
        "toRecipients",
        "ccRecipients",
        "bccRecipients",
        "replyTo",
        "from",
        "sender",
        "internetMessageId",
    }
)

CREATE = o.Schema(TYPE_NAME, ODATA_TYPE, {**WRITABLE, "attachments": lambda v, n: v}, READ_ONLY)
UPDATE = o.Schema(TYPE_NAME, ODATA_TYPE, WRITABLE, READ_ONLY | {"attachments"})

#: Every property ``$select`` may name.
PROPERTIES = frozenset(WRITABLE) | READ_ONLY | {"attachments"}


def parse_create(payload: Any, *, strict: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The message properties and the ``attachments`` array (each still to be validated)."""
    data = CREATE.validate(payload, strict=strict)
    attachments = data.pop("attachments", None)
    if attachments is None:
        attachments = []
    if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
        raise o.wrong_type("attachments", attachments, "'Collection(microsoft.graph.attachment)'")
    return data, attachments


def parse_update(payload: Any, *, strict: bool, is_draft: bool) -> dict[str, Any]:
    """The properties of a PATCH body; draft-only ones are refused on a sent or received message."""
    if isinstance(payload, dict) and any(isinstance(k, str) and k.lower() == "attachments" for k in payload):
        # Graph rejects deep updates of the attachments navigation property (docs/fidelity.md):
        # attachments are POSTed to .../attachments or uploaded through a session.
        raise InvalidPropertySet(
            "The 'attachments' navigation property cannot be set in an update. Add attachments with "
            "POST .../messages/{id}/attachments or an upload session."
        )
    data = UPDATE.validate(payload, strict=strict)
    if not is_draft:
        for name in data:
            if name in DRAFT_ONLY:
                raise not_draft_error(name)
    return data


def not_draft_error(name: str) -> GraphError:
    if name in ("from", "sender"):
        return InvalidPropertySet("Message is not draft.")
    return InvalidPropertyUpdateSentMessage(name=name)


def web_link(root_url: str, item_id: str) -> str:
    """OWA's deep link shape, on this server's host."""
    return f"{root_url}/owa/?ItemID={quote(item_id, safe='')}&exvsurl=1&viewmodel=ReadMessageItem"


def etag(item: Item) -> str:
    return f'W/"{item.change_key}"'


def message_json(item: Item, *, root_url: str) -> dict[str, Any]:
    """The full message entity (without ``@odata.context``), in Graph's property order."""
    d = item.data
    body = d.get("body") or {"contentType": "text", "content": ""}
    created = graph_datetime(item.created)
    return {
        "@odata.etag": etag(item),
        "id": item.id,
        "createdDateTime": created,
        "lastModifiedDateTime": graph_datetime(item.last_modified),
        "changeKey": item.change_key,
        "categories": list(d.get("categories") or []),
        "receivedDateTime": d.get("receivedDateTime") or created,
        "sentDateTime": d.get("sentDateTime") or created,
        "hasAttachments": item.has_attachments,
        "internetMessageId": d.get("internetMessageId"),
        "subject": d.get("subject"),
        "bodyPreview": o.body_preview(body),
        "importance": d.get("importance", "normal"),
        "parentFolderId": item.folder_id,
        "conversationId": d.get("conversationId"),
        "conversationIndex": d.get("conversationIndex"),
        "isDeliveryReceiptRequested": d.get("isDeliveryReceiptRequested", False),
        "isReadReceiptRequested": d.get("isReadReceiptRequested", False),
        "isRead": d.get("isRead", True),
        "isDraft": d.get("isDraft", True),
        "webLink": web_link(root_url, item.id),
        "inferenceClassification": d.get("inferenceClassification", "focused"),
        "body": body,
        "sender": d.get("sender"),
        "from": d.get("from"),
        "toRecipients": list(d.get("toRecipients") or []),
        "ccRecipients": list(d.get("ccRecipients") or []),
        "bccRecipients": list(d.get("bccRecipients") or []),
        "replyTo": list(d.get("replyTo") or []),
        "flag": d.get("flag") or {"flagStatus": "notFlagged"},
    }


#: Returned only when ``$select``-ed, as on Graph.
ON_SELECT = {"uniqueBody", "internetMessageHeaders"}


def selected_extras(item: Item, select: list[str] | None) -> dict[str, Any]:
    if not select:
        return {}
    wanted = {s.lower() for s in select}
    extra: dict[str, Any] = {}
    if "uniquebody" in wanted:
        extra["uniqueBody"] = item.data.get("body") or {"contentType": "text", "content": ""}
    if "internetmessageheaders" in wanted:
        extra["internetMessageHeaders"] = list(item.data.get("internetMessageHeaders") or [])
    return extra
