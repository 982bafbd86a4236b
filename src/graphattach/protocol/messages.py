"""JSON shape of ``microsoft.graph.message``: request validation and the response entity.

Sources: the message resource and message-update.md (DC api-reference/v1.0/resources/message.md,
api/message-update.md). Stored data is camelCase Graph properties; ``message_json`` fills in
what Graph always returns, in the order the docs' examples show.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from graphattach.domain.errors import GraphError
from graphattach.domain.models import Item
from graphattach.protocol import outlook as o
from graphattach.protocol.errors import (
    InvalidParameter,
    InvalidPropertySet,
    InvalidPropertyUpdateSentMessage,
)
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


# ---- actions: move, copy ------------------------------------------------------------------------------

#: ``POST .../move`` and ``.../copy`` (message-move.md, message-copy.md). Parameter names match
#: case-insensitively: msgraph-sdk-python sends ``DestinationId``.
MOVE = o.Schema("Microsoft.OutlookServices.MoveParameters", writable={"destinationId": o.nullable_string})


def parse_move(payload: Any, *, strict: bool) -> str:
    """The ``destinationId`` of a move or copy body (a folder id or a well-known folder name)."""
    destination = MOVE.validate(payload, strict=strict).get("destinationId")
    if not destination:
        # Graph's own words for a missing or empty destination (microsoftgraph/microsoft-graph-docs#58).
        raise InvalidParameter("The value of the parameter 'DestinationId' is empty.")
    return str(destination)


# ---- actions: createReply, createReplyAll, createForward, reply, replyAll, forward ----------------------


@dataclass(frozen=True, slots=True)
class ReplyParameters:
    """The body of a reply or forward action (message-createreply.md, message-forward.md...)."""

    comment: str | None
    #: Writable message properties to set on the reply (validated like a create body).
    message: dict[str, Any]
    #: Attachments to add (``message.attachments``), each still to be validated.
    attachments: list[dict[str, Any]]
    #: ``toRecipients`` at the root (forward, createForward).
    to_recipients: list[dict[str, Any]] | None


def parse_reply(payload: dict[str, Any], *, strict: bool, forward: bool) -> ReplyParameters:
    """``comment``, ``message`` and (forward) ``toRecipients``, matched case-insensitively
    (msgraph-sdk-python sends ``Comment``/``Message``/``ToRecipients``). Other root properties are
    ignored as Graph ignores them (a root ``ccRecipients`` has no effect)."""
    by_name = {k.lower(): v for k, v in payload.items() if isinstance(k, str)}
    comment = by_name.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise o.wrong_type("comment", comment, "'Edm.String'")
    message: dict[str, Any] = {}
    attachments: list[dict[str, Any]] = []
    if by_name.get("message") is not None:
        message, attachments = parse_create(by_name["message"], strict=strict)
    to_recipients = None
    if forward and by_name.get("torecipients") is not None:
        to_recipients = o.recipient_list(by_name["torecipients"], "toRecipients")
    if comment is not None and "body" in message:
        # message-reply.md: "If you specify both comment and the body property of the message
        # parameter, you will get an HTTP 400 Bad Request error."
        raise InvalidParameter(
            "The 'comment' parameter and the 'body' property of the 'message' parameter cannot both be set."
        )
    if forward:
        # message-forward.md: "specify either a toRecipients or a message parameter. If you specify
        # both or specify neither, you get an HTTP 400 Bad Request error."
        in_message = message.get("toRecipients")
        if to_recipients is not None and in_message is not None:
            raise InvalidParameter(
                "Specify either the 'toRecipients' parameter or the 'toRecipients' property of the 'message' "
                "parameter, not both."
            )
        if to_recipients is None and in_message is None:
            raise InvalidParameter(
                "Specify the recipients of the forward in the 'toRecipients' parameter or in the "
                "'toRecipients' property of the 'message' parameter."
            )
    return ReplyParameters(comment, message, attachments, to_recipients)


def _address_html(recipients: list[dict[str, Any]] | None) -> str:
    parts = []
    for recipient in recipients or []:
        address = (recipient or {}).get("emailAddress") or {}
        name, mail = address.get("name"), address.get("address")
        parts.append(html.escape(f"{name} <{mail}>" if name and name != mail else str(mail or name or "")))
    return "; ".join(parts)


def _body_html(body: dict[str, Any] | None) -> str:
    """The inside of ``<body>`` of an itemBody (text is escaped, line breaks kept)."""
    if not body:
        return ""
    content = str(body.get("content") or "")
    if str(body.get("contentType", "text")).lower() == "html":
        match = re.search(r"<body[^>]*>(.*)</body>", content, re.DOTALL | re.IGNORECASE)
        return match.group(1) if match else content
    return html.escape(content).replace("\r\n", "<br>").replace("\n", "<br>")


def quoted_body(
    comment: str | None, original: dict[str, Any], sent: str, *, new_body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The HTML body of a reply or forward: the comment, then Outlook's header block and the
    original body (the quote's exact HTML is not documented; this is the shape Outlook on the web
    writes, with ``divRplyFwdMsg``). ``new_body`` (the ``message.body`` of the call) takes the
    comment's place, its HTML kept as it is."""
    header = (
        f"<b>From:</b> {_address_html([original['from']] if original.get('from') else [])}<br>"
        f"<b>Sent:</b> {html.escape(sent)}<br>"
        f"<b>To:</b> {_address_html(original.get('toRecipients'))}<br>"
    )
    if original.get("ccRecipients"):
        header += f"<b>Cc:</b> {_address_html(original.get('ccRecipients'))}<br>"
    header += f"<b>Subject:</b> {html.escape(str(original.get('subject') or ''))}"
    comment_html = _body_html(new_body) if new_body else html.escape(comment or "").replace("\n", "<br>")
    content = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head><body>'
        f"<div>{comment_html}</div>"
        '<hr style="display:inline-block;width:98%" tabindex="-1">'
        f'<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" '
        f'color="#000000">{header}</font><div>&nbsp;</div></div>'
        f"{_body_html(original.get('body'))}</body></html>"
    )
    return {"contentType": "html", "content": content}


def prefixed_subject(prefix: str, subject: str | None) -> str:
    """``RE: subject`` / ``FW: subject`` as Outlook writes them, without stacking a second prefix."""
    subject = subject or ""
    if subject.lower().startswith(f"{prefix.lower()}: "):
        return subject
    return f"{prefix}: {subject}"
