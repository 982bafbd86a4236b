"""``$filter`` and ``$orderby`` over entity JSON (messages, events, folders, calendars).

The OData subset Outlook clients use: comparisons (``eq ne gt ge lt le``), ``and``/``or``/``not``,
parentheses, ``contains``/``startswith``/``endswith``/``tolower``/``toupper``, lambda
``any``/``all`` over collections (``toRecipients/any(r: r/emailAddress/address eq 'x')``,
``categories/any(c: c eq 'Red')``), property paths with ``/`` and literals: ``'strings'``,
numbers, ``true``/``false``/``null`` and unquoted date-times (``2024-01-01T00:00:00Z``).

Strings compare case-insensitively, as Exchange restrictions do. Date-time strings compare as
instants. Evaluation is over the JSON an endpoint would return, so every property a client can
read can be filtered on. See docs/fidelity.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cmp_to_key
from typing import Any, TypeVar

from graphattach.domain.errors import GraphError
from graphattach.protocol.errors import BadRequest

Entity = dict[str, Any]
Predicate = Callable[[Entity, dict[str, Any]], Any]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<name>[A-Za-z_@$][A-Za-z0-9_.@$]*(?:/[A-Za-z_@$][A-Za-z0-9_.@$]*)*)
    | (?P<punct>[(),:/])
    )""",
    re.VERBOSE,
)
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"contains", "startswith", "endswith", "tolower", "toupper"}
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")


#: Deepest nesting of parentheses, ``not`` and function calls a filter may have: the parser and
#: the predicates it builds recurse once per level, and no real query comes near it.
MAX_DEPTH = 100


def invalid(message: str) -> GraphError:
    return BadRequest(f"Invalid filter clause: {message}")


@dataclass(slots=True)
class _Token:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise invalid(f"syntax error at position {pos} in '{text}'.")
        kind = match.lastgroup
        assert kind is not None
        tokens.append(_Token(kind, match.group(kind)))
        pos = match.end()
    return tokens


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_TIME.match(value):
        text = value.replace("Z", "+00:00")
        fraction = re.search(r"\.(\d+)", text)
        if fraction:
            text = text.replace(fraction.group(0), "." + fraction.group(1)[:6].ljust(6, "0"))
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _compare(left: Any, right: Any) -> int | None:
    """-1/0/1, or None when the values cannot be ordered."""
    if left is None or right is None:
        return 0 if left is right else None
    a, b = _instant(left), _instant(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    if isinstance(left, bool) and isinstance(right, bool):
        return (left > right) - (left < right)
    if isinstance(left, bool) or isinstance(right, bool):
        return None
    if isinstance(left, int | float) and isinstance(right, int | float):
        return (left > right) - (left < right)
    if isinstance(left, str) and isinstance(right, str):
        x, y = left.casefold(), right.casefold()
        return (x > y) - (x < y)
    return None


def _lookup(entity: Any, path: list[str]) -> Any:
    value = entity
    for part in path:
        if not isinstance(value, dict):
            return None
        found = next((v for k, v in value.items() if k.lower() == part.lower()), None)
        value = found
    return value


class _Parser:
    def __init__(self, text: str, known: frozenset[str], type_name: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.known = {k.lower() for k in known}
        self.type_name = type_name
        self.variables: list[str] = []
        self.depth = 0

    def nested(self) -> None:
        """Enter one more level of nesting (undone by the caller's ``self.depth -= 1``)."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise invalid(f"the expression nests more than {MAX_DEPTH} levels deep.")

    def peek(self, offset: int = 0) -> _Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, kind: str | None = None, text: str | None = None) -> _Token:
        token = self.peek()
        if token is None or (kind and token.kind != kind) or (text and token.text.lower() != text):
            raise invalid(f"syntax error in '{self.text}'.")
        self.pos += 1
        return token

    def at_word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "name" and token.text.lower() in words

    def parse(self) -> Predicate:
        expr = self.or_expr()
        if self.peek() is not None:
            raise invalid(f"unexpected '{self.peek().text}' in '{self.text}'.")  # type: ignore[union-attr]
        return expr

    def or_expr(self) -> Predicate:
        # a flat list, not a chain of closures: 2,000 ``or`` clauses must not recurse 2,000 deep
        terms = [self.and_expr()]
        while self.at_word("or"):
            self.pos += 1
            terms.append(self.and_expr())
        if len(terms) == 1:
            return terms[0]
        return lambda e, v: any(bool(term(e, v)) for term in terms)

    def and_expr(self) -> Predicate:
        terms = [self.not_expr()]
        while self.at_word("and"):
            self.pos += 1
            terms.append(self.not_expr())
        if len(terms) == 1:
            return terms[0]
        return lambda e, v: all(bool(term(e, v)) for term in terms)

    def not_expr(self) -> Predicate:
        if self.at_word("not"):
            self.pos += 1
            self.nested()
            inner = self.not_expr()
            self.depth -= 1
            return lambda e, v: not inner(e, v)
        return self.comparison()

    def comparison(self) -> Predicate:
        left = self.operand()
        token = self.peek()
        if token is not None and token.kind == "name" and token.text.lower() in _COMPARISONS:
            self.pos += 1
            op = token.text.lower()
            right = self.operand()
            return _comparison(op, left, right)
        return left

    def operand(self) -> Predicate:
        token = self.peek()
        if token is None:
            raise invalid(f"the expression '{self.text}' ends too early.")
        if token.kind == "punct" and token.text == "(":
            self.pos += 1
            self.nested()
            inner = self.or_expr()
            self.take("punct", ")")
            self.depth -= 1
            return inner
        if token.kind == "string":
            self.pos += 1
            text = token.text[1:-1].replace("''", "'")
            return lambda e, v: text
        if token.kind == "datetime":
            self.pos += 1
            instant = _instant(token.text if "T" in token.text else token.text + "T00:00:00Z")
            if instant is None:
                raise invalid(f"'{token.text}' is not a valid date-time.")
            return lambda e, v: instant
        if token.kind == "number":
            self.pos += 1
            number = float(token.text) if "." in token.text else int(token.text)
            return lambda e, v: number
        if token.kind == "name":
            word = token.text.lower()
            if word in ("true", "false", "null"):
                self.pos += 1
                constant = {"true": True, "false": False, "null": None}[word]
                return lambda e, v: constant
            nxt = self.peek(1)
            if word in _FUNCTIONS and nxt is not None and nxt.text == "(":
                return self.function()
            return self.path()
        raise invalid(f"unexpected '{token.text}' in '{self.text}'.")

    def function(self) -> Predicate:
        name = self.take("name").text.lower()
        self.take("punct", "(")
        self.nested()
        args = [self.or_expr()]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.pos += 1
            args.append(self.or_expr())
        self.take("punct", ")")
        self.depth -= 1
        if name in ("tolower", "toupper"):
            if len(args) != 1:
                raise invalid(f"{name} takes one argument.")
            (arg,) = args
            if name == "tolower":
                return lambda e, v: s.lower() if isinstance(s := arg(e, v), str) else s
            return lambda e, v: s.upper() if isinstance(s := arg(e, v), str) else s
        if len(args) != 2:
            raise invalid(f"{name} takes two arguments.")
        haystack, needle = args

        def check(e: Entity, v: dict[str, Any]) -> bool:
            a, b = haystack(e, v), needle(e, v)
            if not isinstance(a, str) or not isinstance(b, str):
                return False
            a, b = a.casefold(), b.casefold()
            return b in a if name == "contains" else a.startswith(b) if name == "startswith" else a.endswith(b)

        return check

    def path(self) -> Predicate:
        token = self.take("name")
        parts = token.text.split("/")
        lambda_kind = parts[-1].lower() if parts[-1].lower() in ("any", "all") else None
        if lambda_kind and self.peek() is not None and self.peek().text == "(":  # type: ignore[union-attr]
            return self.lambda_(parts[:-1], lambda_kind)
        return self.reference(parts)

    def reference(self, parts: list[str]) -> Predicate:
        head = parts[0]
        if head in self.variables:
            rest = parts[1:]
            return lambda e, v: v.get(head) if not rest else _lookup(v.get(head), rest)
        if head.lower() not in self.known:
            raise BadRequest(f"Could not find a property named '{head}' on type '{self.type_name}'.")
        return lambda e, v: _lookup(e, parts)

    def lambda_(self, collection: list[str], kind: str) -> Predicate:
        source = self.reference(collection)
        self.take("punct", "(")
        if self.peek() is not None and self.peek().text == ")":  # type: ignore[union-attr]
            self.pos += 1  # ``any()``: the collection is not empty
            return lambda e, v: bool(source(e, v))
        variable = self.take("name").text
        self.take("punct", ":")
        self.variables.append(variable)
        self.nested()
        body = self.or_expr()
        self.depth -= 1
        self.variables.pop()
        self.take("punct", ")")

        def check(e: Entity, v: dict[str, Any]) -> bool:
            values = source(e, v)
            if not isinstance(values, list):
                return False
            results = (bool(body(e, {**v, variable: item})) for item in values)
            return any(results) if kind == "any" else all(results)

        return check


def _comparison(op: str, left: Predicate, right: Predicate) -> Predicate:
    def check(e: Entity, v: dict[str, Any]) -> bool:
        a, b = left(e, v), right(e, v)
        if op in ("eq", "ne"):
            order = _compare(a, b)
            equal = order == 0
            return equal if op == "eq" else not equal
        order = _compare(a, b)
        if order is None:
            return False
        return {"gt": order > 0, "ge": order >= 0, "lt": order < 0, "le": order <= 0}[op]

    return check


def compile_filter(text: str, *, known: frozenset[str], type_name: str) -> Callable[[Entity], bool]:
    """A predicate over entity JSON; 400 for a clause this subset cannot read."""
    predicate = _Parser(text, known, type_name).parse()
    return lambda entity: bool(predicate(entity, {}))


def compile_orderby(text: str, *, known: frozenset[str], type_name: str) -> Callable[[list[Entity]], list[Entity]]:
    """A stable sort by ``prop [asc|desc], ...``; nulls sort first ascending, as OData's do."""
    keys: list[tuple[list[str], bool]] = []
    lowered = {k.lower() for k in known}
    for clause in (c.strip() for c in text.split(",")):
        if not clause:
            raise BadRequest(f"Invalid $orderby clause: '{text}'.")
        words = clause.split()
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise BadRequest(f"Invalid $orderby clause: '{clause}'.")
        parts = words[0].split("/")
        if parts[0].lower() not in lowered:
            raise BadRequest(f"Could not find a property named '{parts[0]}' on type '{type_name}'.")
        keys.append((parts, len(words) == 2 and words[1].lower() == "desc"))

    def cmp(a: Entity, b: Entity) -> int:
        for parts, descending in keys:
            x, y = _lookup(a, parts), _lookup(b, parts)
            if x is None or y is None:
                order = (x is not None) - (y is not None)
            else:
                order = _compare(x, y) or 0
            if order:
                return -order if descending else order
        return 0

    return lambda entities: sorted(entities, key=cmp_to_key(cmp))


T = TypeVar("T")


def filter_and_order(
    records: list[T],
    full: Callable[[T], Entity],
    *,
    filter: str | None,
    orderby: str | None,
    known: frozenset[str],
    type_name: str,
) -> list[T]:
    """``records`` narrowed by ``$filter`` and sorted by ``$orderby``, both evaluated on the
    entity JSON ``full`` gives (before ``$select``)."""
    if filter is None and orderby is None:
        return records
    keep = compile_filter(filter, known=known, type_name=type_name) if filter is not None else None
    pairs = [(record, full(record)) for record in records]
    if keep is not None:
        pairs = [(r, e) for r, e in pairs if keep(e)]
    if orderby is not None:
        order = compile_orderby(orderby, known=known, type_name=type_name)
        position = {id(e): r for r, e in pairs}
        return [position[id(e)] for e in order([e for _, e in pairs])]
    return [r for r, _ in pairs]
