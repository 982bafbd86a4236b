"""The seed data file (``serve --seed-data FILE``, ``GraphServer(seed_data=...)``): JSON or YAML.

    version: 1                 # optional; a newer version is refused
    demo: true                 # keep the demo tenant's users (default true)
    users:
      - userPrincipalName: zoe@contoso.onmicrosoft.com   # a new user, or a demo user to fill
        displayName: Zoe Example                         # optional: password, maxMessageSize, id
        folders: [Projects, Receipts]                    # mail folders under the mailbox root
        messages:
          - folder: inbox                                # a well-known name or one of `folders`
            subject: Welcome                             # any property POST /messages accepts
            from: {emailAddress: {address: alex@contoso.onmicrosoft.com}}
            attachments:
              - name: hello.txt
                text: Hello!                             # or contentBytes (base64) or path (next to the file)
                contentType: text/plain
        events:
          - subject: Review                              # any property POST /events accepts
            start: {dateTime: "2026-12-01T10:00:00", timeZone: UTC}
            end: {dateTime: "2026-12-01T11:00:00", timeZone: UTC}
            attachments: [{name: agenda.pdf, path: files/agenda.pdf}]

Messages outside Drafts are received mail (``isDraft: false``, sent and received at the server
clock's time) unless they say ``isDraft: true``. Every error names the file, the place in it
(``users[0].messages[2].attachments[0].path``) and what is wrong; nothing is seeded from a file
with an error. Parsing is pure: ``services/seed_data.py`` reads the file and seeds the plan.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphattach.domain.errors import GraphError
from graphattach.protocol import events as event_proto
from graphattach.protocol import messages as message_proto

VERSION = 1
WELL_KNOWN = ("inbox", "drafts", "sentitems", "deleteditems", "junkemail", "archive", "outbox")


class SeedDataError(ValueError):
    """``FILE: PLACE: what is wrong``."""

    def __init__(self, source: str, place: str, problem: str) -> None:
        super().__init__(f"{source}: {place}: {problem}" if place else f"{source}: {problem}")
        self.source, self.place, self.problem = source, place, problem


@dataclass(frozen=True, slots=True)
class SeedAttachment:
    name: str
    content_type: str | None
    #: The bytes, or None when they are read from ``path`` when seeding.
    content: bytes | None
    path: Path | None
    is_inline: bool
    content_id: str | None


@dataclass(frozen=True, slots=True)
class SeedItem:
    kind: str
    place: str
    #: A well-known folder name or a folder of the user's ``folders`` (messages); None: the default.
    folder: str | None
    data: dict[str, Any]
    attachments: tuple[SeedAttachment, ...]
    is_draft: bool


@dataclass(frozen=True, slots=True)
class SeedUser:
    upn: str
    display_name: str | None
    password: str | None
    max_message_size: int | None
    id: str | None
    folders: tuple[str, ...]
    items: tuple[SeedItem, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SeedPlan:
    source: str
    demo: bool
    users: tuple[SeedUser, ...]


def _mapping(value: Any, source: str, place: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SeedDataError(source, place, f"expected a mapping, found {type(value).__name__}")
    unknown = sorted(set(value) - allowed) if allowed else []
    if unknown:
        raise SeedDataError(
            source, place, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    return value


def _list(value: Any, source: str, place: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SeedDataError(source, place, f"expected a list, found {type(value).__name__}")
    return value


def _string(value: Any, source: str, place: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise SeedDataError(source, place, "expected a non-empty string")
    return value


def load_document(text: str, source: str) -> Any:
    """JSON (``.json``) or YAML (anything else; YAML is a superset of JSON)."""
    if source.lower().endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SeedDataError(source, f"line {exc.lineno} column {exc.colno}", f"not valid JSON: {exc.msg}") from None
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with the test extra
        raise SeedDataError(
            source, "", "YAML seed data needs PyYAML: pip install pyyaml (or use a .json file)"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise SeedDataError(source, where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}") from None


def parse(text: str, source: str, base_dir: Path) -> SeedPlan:
    """The plan a seed data file describes; ``SeedDataError`` for the first thing wrong in it."""
    document = load_document(text, source)
    if document is None:
        document = {}
    top = _mapping(document, source, "", {"version", "demo", "users"})
    version = top.get("version", VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
        raise SeedDataError(source, "version", "expected an integer")
    if version > VERSION:
        raise SeedDataError(source, "version", f"version {version} is newer than this graphattach reads ({VERSION})")
    demo = top.get("demo", True)
    if not isinstance(demo, bool):
        raise SeedDataError(source, "demo", "expected true or false")
    users = []
    seen: set[str] = set()
    for u, raw_user in enumerate(_list(top.get("users"), source, "users")):
        place = f"users[{u}]"
        user = _mapping(
            raw_user,
            source,
            place,
            {"userPrincipalName", "displayName", "password", "maxMessageSize", "id", "folders", "messages", "events"},
        )
        upn = _string(user.get("userPrincipalName"), source, f"{place}.userPrincipalName")
        assert upn is not None
        if upn.lower() in seen:
            raise SeedDataError(source, f"{place}.userPrincipalName", f"{upn} is listed twice")
        seen.add(upn.lower())
        size = user.get("maxMessageSize")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
            raise SeedDataError(source, f"{place}.maxMessageSize", "expected a positive integer (bytes)")
        folders = tuple(
            str(_string(name, source, f"{place}.folders[{i}]"))
            for i, name in enumerate(_list(user.get("folders"), source, f"{place}.folders"))
        )
        known = {name.lower() for name in folders} | set(WELL_KNOWN)
        items = [
            _item("message", raw, source, f"{place}.messages[{i}]", base_dir, known)
            for i, raw in enumerate(_list(user.get("messages"), source, f"{place}.messages"))
        ]
        items += [
            _item("event", raw, source, f"{place}.events[{i}]", base_dir, known)
            for i, raw in enumerate(_list(user.get("events"), source, f"{place}.events"))
        ]
        users.append(
            SeedUser(
                upn=upn,
                display_name=_string(user.get("displayName"), source, f"{place}.displayName", optional=True),
                password=_string(user.get("password"), source, f"{place}.password", optional=True),
                max_message_size=size,
                id=_string(user.get("id"), source, f"{place}.id", optional=True),
                folders=folders,
                items=tuple(items),
            )
        )
    return SeedPlan(source=source, demo=demo, users=tuple(users))


def _item(kind: str, raw: Any, source: str, place: str, base_dir: Path, known_folders: set[str]) -> SeedItem:
    body = dict(_mapping(raw, source, place, set()))
    folder = body.pop("folder", None) if kind == "message" else None
    if folder is not None:
        folder = _string(folder, source, f"{place}.folder")
        assert folder is not None
        if folder.lower() not in known_folders:
            raise SeedDataError(
                source, f"{place}.folder", f"no folder {folder!r}: use a well-known name or one of the user's folders"
            )
    attachments = tuple(
        _attachment(a, source, f"{place}.attachments[{i}]", base_dir)
        for i, a in enumerate(_list(body.pop("attachments", None), source, f"{place}.attachments"))
    )
    draft_default = kind == "message" and (folder or "drafts").lower() == "drafts"
    is_draft = body.pop("isDraft", draft_default) if kind == "message" else False
    if not isinstance(is_draft, bool):
        raise SeedDataError(source, f"{place}.isDraft", "expected true or false")
    try:
        parse = message_proto.parse_create if kind == "message" else event_proto.parse_create
        data, _ = parse(body, strict=True)
    except GraphError as exc:
        raise SeedDataError(source, place, f"not a valid {kind}: {exc}") from None
    return SeedItem(kind, place, folder, data, attachments, is_draft)


def _attachment(raw: Any, source: str, place: str, base_dir: Path) -> SeedAttachment:
    spec = _mapping(
        raw, source, place, {"name", "contentType", "contentBytes", "text", "path", "isInline", "contentId"}
    )
    name = _string(spec.get("name"), source, f"{place}.name")
    assert name is not None
    given = [key for key in ("contentBytes", "text", "path") if key in spec]
    if len(given) != 1:
        raise SeedDataError(source, place, "give exactly one of contentBytes (base64), text or path")
    content: bytes | None = None
    path: Path | None = None
    if given[0] == "contentBytes":
        encoded = _string(spec["contentBytes"], source, f"{place}.contentBytes")
        try:
            content = base64.b64decode(str(encoded), validate=True)
        except (binascii.Error, ValueError):
            raise SeedDataError(source, f"{place}.contentBytes", "not valid base64") from None
    elif given[0] == "text":
        if not isinstance(spec["text"], str):
            raise SeedDataError(source, f"{place}.text", "expected a string")
        content = spec["text"].encode("utf-8")
    else:
        relative = _string(spec["path"], source, f"{place}.path")
        path = (base_dir / str(relative)).resolve()
        if not path.is_file():
            raise SeedDataError(source, f"{place}.path", f"no such file: {path}")
    inline = spec.get("isInline", False)
    if not isinstance(inline, bool):
        raise SeedDataError(source, f"{place}.isInline", "expected true or false")
    return SeedAttachment(
        name=name,
        content_type=_string(spec.get("contentType"), source, f"{place}.contentType", optional=True),
        content=content,
        path=path,
        is_inline=inline,
        content_id=_string(spec.get("contentId"), source, f"{place}.contentId", optional=True),
    )
