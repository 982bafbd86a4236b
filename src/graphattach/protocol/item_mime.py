"""The raw contents of an item attachment (``GET .../attachments/{id}/$value``).

attachment-get.md Examples 6-8: a contact as vCard 3.0 (``PRODID:Microsoft Exchange``), an event
as iCalendar (``METHOD:PUBLISH``, ``PRODID:Microsoft Exchange Server 2010``), a message as RFC 822
MIME (built with the standard ``email`` package). Nested attachments of an embedded message become
MIME parts. The Content-Type headers are our choice (docs/fidelity.md): ``message/rfc822``,
``text/calendar; charset=utf-8`` and ``text/vcard; charset=utf-8``.
"""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

import pybase64

from graphattach.protocol.jsonio import parse_datetime

MESSAGE_CONTENT_TYPE = "message/rfc822"
CALENDAR_CONTENT_TYPE = "text/calendar; charset=utf-8"
VCARD_CONTENT_TYPE = "text/vcard; charset=utf-8"

CRLF = "\r\n"


def render_item(kind: str, item: dict[str, Any], *, stamp: datetime) -> tuple[bytes, str]:
    """``(body, content type)`` of an embedded message, event or contact."""
    if kind == "event":
        return render_event(item, stamp=stamp), CALENDAR_CONTENT_TYPE
    if kind == "contact":
        return render_contact(item, stamp=stamp), VCARD_CONTENT_TYPE
    return render_message(item, stamp=stamp), MESSAGE_CONTENT_TYPE


# ---------------------------------------------------------------------------------------------
# message


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _address(recipient: Any) -> Address | None:
    if not isinstance(recipient, dict):
        return None
    email_address = recipient.get("emailAddress")
    if not isinstance(email_address, dict):
        return None
    address = email_address.get("address")
    if not isinstance(address, str) or "@" not in address:
        return None
    name = email_address.get("name")
    local, _, domain = address.rpartition("@")
    try:
        return Address(display_name=name if isinstance(name, str) else "", username=local, domain=domain)
    except (ValueError, TypeError):
        return None


def _addresses(value: Any) -> list[Address]:
    if not isinstance(value, list):
        return []
    return [a for a in (_address(r) for r in value) if a is not None]


def _date(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except Exception:
            return fallback
    return fallback


def _clean_header(value: str) -> str:
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def _message(item: dict[str, Any], stamp: datetime) -> EmailMessage:
    msg = EmailMessage(policy=email.policy.SMTP)
    sender = _address(item.get("from")) or _address(item.get("sender"))
    if sender is not None:
        msg["From"] = sender
    for header, key in (("To", "toRecipients"), ("Cc", "ccRecipients")):
        addresses = _addresses(item.get(key))
        if addresses:
            msg[header] = addresses
    subject = item.get("subject")
    msg["Subject"] = _clean_header(subject) if isinstance(subject, str) else ""
    sent = _date(item.get("sentDateTime") or item.get("createdDateTime"), stamp)
    msg["Date"] = email.utils.format_datetime(sent.astimezone(UTC))
    message_id = item.get("internetMessageId")
    if not isinstance(message_id, str) or not message_id.strip():
        digest = hashlib.sha256(repr(sorted(item.items(), key=lambda kv: kv[0])).encode()).hexdigest()[:32]
        message_id = f"<{digest}@graphattach.local>"
    msg["Message-ID"] = _clean_header(message_id)
    msg["Content-Language"] = "en-US"
    msg["X-MS-Has-Attach"] = "yes" if any(not a.get("isInline") for a in item.get("attachments") or []) else ""
    body = _dict(item.get("body"))
    content = _str(body.get("content"))
    if str(body.get("contentType", "text")).lower() == "html":
        msg.set_content(content, subtype="html", charset="utf-8")
    else:
        msg.set_content(content, subtype="plain", charset="utf-8")
    for nested in item.get("attachments") or []:
        _attach(msg, nested, stamp)
    return msg


def _attach(msg: EmailMessage, nested: dict[str, Any], stamp: datetime) -> None:
    odata_type = str(nested.get("@odata.type", "")).lower()
    name = nested.get("name") if isinstance(nested.get("name"), str) else None
    if odata_type.endswith("fileattachment"):
        data = pybase64.b64decode(str(nested.get("contentBytes", "")))
        maintype, _, subtype = str(nested.get("contentType") or "application/octet-stream").partition("/")
        disposition = "inline" if nested.get("isInline") else "attachment"
        msg.add_attachment(
            data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=name,
            disposition=disposition,
            cid=f"<{nested['contentId']}>" if nested.get("contentId") else None,
        )
    elif odata_type.endswith("itemattachment"):
        item = _dict(nested.get("item"))
        kind = str(item.get("@odata.type", "")).lower().rsplit(".", 1)[-1]
        if kind == "message":
            msg.add_attachment(_message(item, stamp), filename=name)
        else:
            raw, content_type = render_item(kind, item, stamp=stamp)
            maintype, _, rest = content_type.partition("/")
            msg.add_attachment(raw, maintype=maintype, subtype=rest.split(";", 1)[0], filename=name)
    else:  # a reference attachment travels as a link
        url = nested.get("sourceUrl") or ""
        msg.add_attachment(f"[InternetShortcut]\r\nURL={url}\r\n", subtype="plain", filename=(name or "link") + ".url")


def render_message(item: dict[str, Any], *, stamp: datetime) -> bytes:
    return _message(item, stamp).as_bytes(policy=email.policy.SMTP)


# ---------------------------------------------------------------------------------------------
# iCalendar / vCard helpers


def _escape(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _fold(line: str) -> str:
    """RFC 5545 §3.1: lines longer than 75 octets continue on lines starting with a space."""
    encoded = line.encode("utf-8")
    if len(encoded) <= 75:
        return line
    parts: list[str] = []
    current = ""
    size = 0
    limit = 75
    for ch in line:
        width = len(ch.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size, limit = ch, width, 74
        else:
            current += ch
            size += width
    parts.append(current)
    return (CRLF + " ").join(parts)


def _lines(lines: list[str]) -> bytes:
    return (CRLF.join(_fold(line) for line in lines) + CRLF).encode("utf-8")


def _text(value: Any) -> str:
    return _escape(value) if isinstance(value, str) else ""


def _ical_time(value: Any) -> tuple[str, str] | None:
    """``(params, value)`` of a dateTimeTimeZone: ``;TZID=...`` + local time, or UTC with ``Z``."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        return None
    raw = value["dateTime"]
    zone = _str(value.get("timeZone")) or "UTC"
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        return "", parsed.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    if zone.upper() in ("UTC", "Z", "GMT", "COORDINATED UNIVERSAL TIME"):
        return "", parsed.strftime("%Y%m%dT%H%M%SZ")
    return f";TZID={_escape(zone)}", parsed.strftime("%Y%m%dT%H%M%S")


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def render_event(item: dict[str, Any], *, stamp: datetime) -> bytes:
    uid = item.get("iCalUId") if isinstance(item.get("iCalUId"), str) else None
    if not uid:
        uid = "040000008200E00074C5B7101A82E008" + hashlib.sha256(repr(sorted(item.items())).encode()).hexdigest()[:32]
    lines = [
        "BEGIN:VCALENDAR",
        "METHOD:PUBLISH",
        "PRODID:Microsoft Exchange Server 2010",
        "VERSION:2.0",
        "BEGIN:VEVENT",
    ]
    organizer = _address(item.get("organizer"))
    if organizer is not None:
        lines.append(
            f"ORGANIZER;CN={_escape(organizer.display_name or organizer.addr_spec)}:MAILTO:{organizer.addr_spec}"
        )
    for attendee in item.get("attendees") or []:
        address = _address(attendee)
        if address is None:
            continue
        role = "OPT-PARTICIPANT" if str(attendee.get("type", "")).lower() == "optional" else "REQ-PARTICIPANT"
        cn = _escape(address.display_name or address.addr_spec)
        lines.append(f"ATTENDEE;ROLE={role};PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN={cn}:MAILTO:{address.addr_spec}")
    body = _dict(item.get("body"))
    lines.append(f"DESCRIPTION;LANGUAGE=en-US:{_text(body.get('content'))}")
    lines.append(f"UID:{uid}")
    lines.append(f"SUMMARY;LANGUAGE=en-US:{_text(item.get('subject'))}")
    for name, key in (("DTSTART", "start"), ("DTEND", "end")):
        when = _ical_time(item.get(key))
        if when is not None:
            lines.append(f"{name}{when[0]}:{when[1]}")
    sensitivity = str(item.get("sensitivity") or "normal").lower()
    lines.append("CLASS:" + ("PRIVATE" if sensitivity in ("private", "confidential") else "PUBLIC"))
    importance = str(item.get("importance") or "normal").lower()
    lines.append("PRIORITY:" + {"high": "1", "low": "9"}.get(importance, "5"))
    lines.append(f"DTSTAMP:{_stamp(stamp)}")
    show_as = str(item.get("showAs") or "busy").lower()
    lines.append("TRANSP:" + ("TRANSPARENT" if show_as == "free" else "OPAQUE"))
    lines.append("STATUS:" + ("CANCELLED" if item.get("isCancelled") else "CONFIRMED"))
    lines.append("SEQUENCE:0")
    location = _dict(item.get("location"))
    lines.append(f"LOCATION;LANGUAGE=en-US:{_text(location.get('displayName'))}")
    lines.append("X-MICROSOFT-CDO-BUSYSTATUS:" + show_as.upper())
    lines.append("X-MICROSOFT-CDO-ALLDAYEVENT:" + ("TRUE" if item.get("isAllDay") else "FALSE"))
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return _lines(lines)


def render_contact(item: dict[str, Any], *, stamp: datetime) -> bytes:
    given = _str(item.get("givenName"))
    surname = _str(item.get("surname"))
    display = _str(item.get("displayName")) or f"{given} {surname}".strip()
    lines = [
        "BEGIN:VCARD",
        "PROFILE:VCARD",
        "VERSION:3.0",
        "MAILER:Microsoft Exchange",
        "PRODID:Microsoft Exchange",
        f"FN:{_escape(display)}",
        f"N:{_escape(surname)};{_escape(given)};;;",
    ]
    for entry in item.get("emailAddresses") or []:
        if isinstance(entry, dict) and isinstance(entry.get("address"), str):
            lines.append(f"EMAIL;TYPE=INTERNET:{_escape(entry['address'])}")
    if isinstance(item.get("companyName"), str):
        lines.append(f"ORG:{_escape(item['companyName'])};")
    for phone in item.get("businessPhones") or []:
        if isinstance(phone, str):
            lines.append(f"TEL;TYPE=WORK:{_escape(phone)}")
    for phone in item.get("homePhones") or []:
        if isinstance(phone, str):
            lines.append(f"TEL;TYPE=HOME:{_escape(phone)}")
    if isinstance(item.get("mobilePhone"), str):
        lines.append(f"TEL;TYPE=CELL:{_escape(item['mobilePhone'])}")
    lines.append(f"TITLE:{_text(item.get('jobTitle'))}")
    if isinstance(item.get("personalNotes"), str):
        lines.append(f"NOTE:{_escape(item['personalNotes'])}")
    lines.append("REV;VALUE=DATE-TIME:" + stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S,") + "000Z")
    lines.append("END:VCARD")
    return _lines(lines)
