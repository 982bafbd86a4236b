"""``$search`` on messages: the KQL subset apps send (https://learn.microsoft.com/graph/search-query-parameter).

- ``$search="pizza"``: free text, matched against the sender, the subject and the body;
- ``property:value`` for ``attachment`` (attachment names), ``bcc``, ``body``, ``cc``, ``from``,
  ``hasAttachment``/``hasAttachments`` (true|false), ``importance`` (low|normal|medium|high),
  ``kind`` (email), ``participants`` (from, to, cc, bcc), ``received`` and ``sent`` (a date, or
  ``date1..date2``), ``recipients`` (to, cc, bcc), ``subject``, ``to``; a value may be a phrase in
  ``"..."`` or ``'...'``; address properties match the address, the display name or the alias;
- terms are combined with ``AND`` (also implied by a space), ``OR``, ``NOT`` and parentheses.

Words match by prefix, case-insensitively, as Exchange's content index does ("pizz" finds
"pizza"); a phrase must match word for word, the last word by prefix. Another property, or a
syntax error, is a Graph-shaped 400 naming it. Nothing here does I/O: ``evaluate`` runs on a
``SearchDocument`` the caller builds from a message.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import date, datetime

from graphattach.domain.errors import GraphError
from graphattach.protocol.errors import BadRequest

_WORD = re.compile(r"\w+", re.UNICODE)
_TAG = re.compile(r"<[^>]*>")

ADDRESS_PROPERTIES = ("from", "to", "cc", "bcc", "participants", "recipients")
TEXT_PROPERTIES = ("subject", "body", "attachment")
PROPERTIES = frozenset(
    {*ADDRESS_PROPERTIES, *TEXT_PROPERTIES, "hasattachment", "hasattachments", "importance", "kind", "received", "sent"}
)


def search_error(message: str) -> GraphError:
    return BadRequest(message)


@dataclass(frozen=True, slots=True)
class Term:
    #: Lower-case property name, None for free text.
    prop: str | None
    value: str


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node = Term | Not | And | Or


@dataclass(slots=True)
class SearchDocument:
    """What a message offers to ``$search``: texts per property (addresses as ``name address``)."""

    from_: list[str]
    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str
    body: str
    has_attachments: bool
    importance: str
    received: str | None
    sent: str | None
    #: Attachment names (the caller fetches them only when ``uses_attachments``).
    attachment_names: list[str]


# ---- parsing -------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\()|(?P<rparen>\))|
        (?P<prop>[A-Za-z]+):(?:"(?P<pdq>[^"]*)"|'(?P<psq>[^']*)'|(?P<pword>[^\s()]+))|
        "(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|
        (?P<word>[^\s()"']+)
    )""",
    re.VERBOSE,
)


def _unquote_outer(raw: str) -> str:
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        inner = text[1:-1]
        return inner.replace('\\"', '"')
    return text


def _tokens(text: str) -> list[tuple[str, str | None, str]]:
    """(kind, prop, value): kinds ``(``, ``)``, ``op`` (AND/OR/NOT) and ``term``."""
    out: list[tuple[str, str | None, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise search_error(
                f"Syntax error: character '{text[pos:].strip()[:1]}' is not valid at position {pos} in '{text}'."
            )
        pos = match.end()
        if match.group("lparen"):
            out.append(("(", None, "("))
        elif match.group("rparen"):
            out.append((")", None, ")"))
        elif match.group("prop") is not None:
            prop = match.group("prop").lower()
            if prop not in PROPERTIES:
                raise search_error(f"The property '{match.group('prop')}' is not supported in $search on messages.")
            value = next(v for v in (match.group("pdq"), match.group("psq"), match.group("pword")) if v is not None)
            out.append(("term", prop, value))
        else:
            value = next(v for v in (match.group("dq"), match.group("sq"), match.group("word")) if v is not None)
            if value in ("AND", "OR", "NOT"):
                out.append(("op", None, value))
            else:
                out.append(("term", None, value))
    return out


def parse_search(raw: str) -> Node:
    """The query tree of a ``$search`` value (outer double quotes optional)."""
    text = _unquote_outer(raw)
    tokens = _tokens(text)
    if not tokens:
        raise search_error("The $search query is empty.")
    position = 0

    def peek() -> tuple[str, str | None, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, str | None, str]:
        nonlocal position
        token = tokens[position]
        position += 1
        return token

    def parse_or() -> Node:
        operands = [parse_and()]
        while (token := peek()) is not None and token[0] == "op" and token[2] == "OR":
            take()
            operands.append(parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and() -> Node:
        operands = [parse_unary()]
        while (token := peek()) is not None and token[0] != ")" and not (token[0] == "op" and token[2] == "OR"):
            if token[0] == "op" and token[2] == "AND":
                take()
            operands.append(parse_unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_unary() -> Node:
        token = peek()
        if token is None:
            raise search_error(f"Syntax error: the $search query '{text}' ends too early.")
        if token[0] == "op" and token[2] == "NOT":
            take()
            return Not(parse_unary())
        if token[0] == "(":
            take()
            inner = parse_or()
            closing = peek()
            if closing is None or closing[0] != ")":
                raise search_error(f"Syntax error: a ')' is missing in '{text}'.")
            take()
            return inner
        if token[0] == "term":
            take()
            _check_value(token[1], token[2])
            return Term(token[1], token[2])
        raise search_error(f"Syntax error: '{token[2]}' is not valid here in '{text}'.")

    tree = parse_or()
    if position != len(tokens):
        raise search_error(f"Syntax error: '{tokens[position][2]}' is not valid here in '{text}'.")
    return tree


def _check_value(prop: str | None, value: str) -> None:
    if prop in ("hasattachment", "hasattachments") and value.lower() not in ("true", "false"):
        raise search_error(f"The value '{value}' of '{prop}' must be true or false.")
    if prop in ("received", "sent"):
        for part in value.split(".."):
            _date(part, prop)


def _date(value: str, prop: str) -> date:
    for fmt in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise search_error(f"The value '{value}' of '{prop}' is not a date (MM/DD/YYYY or YYYY-MM-DD).")


#: Properties whose text a message full-text index holds (storage ``MessageTextSearcher``).
_INDEXED = frozenset({None, "subject", "body", *ADDRESS_PROPERTIES})


def required_prefixes(node: Node) -> list[str]:
    """Word prefixes every match must contain in its indexed text (subject, body, addresses): the
    ASCII letter-and-digit pieces of the words of the terms the query requires (ANDed, not under
    NOT or OR). An index lookup on them narrows the candidates; each candidate is still checked
    with ``evaluate``. Empty when nothing can be required."""
    if isinstance(node, Term):
        if node.prop not in _INDEXED:
            return []
        # only ASCII words: an index may fold diacritics ("naïve" → "naive") or split on them
        return [p for word in words(node.value) if word.isascii() for p in word.split("_") if p]
    if isinstance(node, And):
        out: list[str] = []
        for operand in node.operands:
            out += [p for p in required_prefixes(operand) if p not in out]
        return out
    return []


def uses_attachments(node: Node) -> bool:
    if isinstance(node, Term):
        return node.prop == "attachment"
    if isinstance(node, Not):
        return uses_attachments(node.operand)
    return any(uses_attachments(n) for n in node.operands)


# ---- matching ------------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def text_matches(value: str, text: str) -> bool:
    """Every word of ``value`` in order, the last one by prefix (one word: any word by prefix)."""
    wanted = words(value)
    if not wanted:
        return False
    have = words(text)
    span = len(wanted)
    for start in range(len(have) - span + 1):
        if all(have[start + j] == wanted[j] for j in range(span - 1)) and have[start + span - 1].startswith(wanted[-1]):
            return True
    return False


def plain_body(content: str, content_type: str) -> str:
    return _TAG.sub(" ", content) if content_type.lower() == "html" else content


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _date_matches(value: str, when: str | None, prop: str) -> bool:
    day = _day(when)
    if day is None:
        return False
    if ".." in value:
        low, high = value.split("..", 1)
        return _date(low, prop) <= day <= _date(high, prop)
    return day == _date(value, prop)


def evaluate(node: Node, doc: SearchDocument) -> bool:
    if isinstance(node, And):
        return all(evaluate(n, doc) for n in node.operands)
    if isinstance(node, Or):
        return any(evaluate(n, doc) for n in node.operands)
    if isinstance(node, Not):
        return not evaluate(node.operand, doc)
    prop, value = node.prop, node.value
    if prop is None:
        return any(text_matches(value, t) for t in (*doc.from_, doc.subject, doc.body))
    if prop in ADDRESS_PROPERTIES:
        fields = {
            "from": doc.from_,
            "to": doc.to,
            "cc": doc.cc,
            "bcc": doc.bcc,
            "participants": [*doc.from_, *doc.to, *doc.cc, *doc.bcc],
            "recipients": [*doc.to, *doc.cc, *doc.bcc],
        }[prop]
        return any(text_matches(value, t) for t in fields)
    if prop == "subject":
        return text_matches(value, doc.subject)
    if prop == "body":
        return text_matches(value, doc.body)
    if prop == "attachment":
        return any(text_matches(value, name) for name in doc.attachment_names)
    if prop in ("hasattachment", "hasattachments"):
        return doc.has_attachments == (value.lower() == "true")
    if prop == "importance":
        wanted = "normal" if value.lower() == "medium" else value.lower()
        return doc.importance.lower() == wanted
    if prop == "kind":
        return value.lower() in ("email", "emails")
    if prop == "received":
        return _date_matches(value, doc.received, prop)
    return _date_matches(value, doc.sent, prop)  # sent


# ---- paging ----------------------------------------------------------------------------------------


def encode_skiptoken(offset: int) -> str:
    """The ``$skiptoken`` of a search page (search results page by skip token, not ``$skip``)."""
    return base64.urlsafe_b64encode(f"search:{offset}".encode()).decode("ascii").rstrip("=")


def decode_skiptoken(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        kind, _, number = text.partition(":")
        offset = int(number)
    except (ValueError, UnicodeDecodeError):
        raise search_error("The $skiptoken is not valid.") from None
    if kind != "search" or offset < 0:
        raise search_error("The $skiptoken is not valid.")
    return offset
