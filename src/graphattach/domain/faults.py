"""Fault rules: which requests fail, and how (pure: no I/O, no clock, no randomness of its own).

A rule is a ``Match`` (what a request must look like, and which of the matching requests fire)
and an ``Action`` (what happens to a request the rule fires on). ``Rulebook.decide`` takes the
facts of one request (``RequestFacts``) and says which actions apply to it. The same rules and
the same sequence of requests always give the same decisions: ``probability`` draws from a
``random.Random`` seeded per rule, once per matching request.

Rules are tried in the order they were added; each counts the requests it matches. ``delay``,
``bandwidth`` and ``expireSession`` combine with anything; of the *terminal* actions (``status``,
``drop``, ``cut``, ``expireToken``) the first rule that fires applies, and the rules after it
that have a terminal action are not tried for that request (they neither count it nor draw).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal

ActionType = Literal["status", "delay", "drop", "cut", "bandwidth", "expireSession", "expireToken"]
ACTION_TYPES: tuple[ActionType, ...] = ("status", "delay", "drop", "cut", "bandwidth", "expireSession", "expireToken")
#: Actions that answer the request (or close its connection) instead of the server.
TERMINAL: frozenset[str] = frozenset({"status", "drop", "cut", "expireToken"})
BodyKind = Literal["json", "empty", "html"]


class FaultRuleError(ValueError):
    """An invalid rule; ``field`` is the dotted name of the offending field (``action.status``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Match:
    """What a request must look like (all given criteria hold) and which matching requests fire."""

    method: str | None = None
    #: A glob (``fnmatch``, case-sensitive) over the URL path, Graph and upload origin alike.
    path: str | None = None
    #: An operation name (``uploadSession.put``) or a glob over them (``attachments.*``).
    operation: str | None = None
    #: A user id or userPrincipalName (case-insensitive): the mailbox's owner or the caller.
    user: str | None = None
    #: Fire only on the nth matching request (1-based).
    nth: int | None = None
    #: Fire on every kth matching request.
    every: int | None = None
    #: Fire at most this many times.
    times: int | None = None
    #: Fire with this probability (0 < p <= 1), drawn from ``random.Random(seed)``.
    probability: float | None = None
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Action:
    type: ActionType
    status: int = 0
    #: Retry-After in whole seconds (>= 1); None: the status's default.
    retry_after: int | None = None
    body: BodyKind = "json"
    code: str | None = None
    message: str | None = None
    #: ``status`` only: do the work first, then answer the error.
    after: bool = False
    #: ``delay``: a fixed delay, or a uniform one in [min_ms, max_ms].
    ms: int | None = None
    min_ms: int | None = None
    max_ms: int | None = None
    #: ``cut``: how many bytes of the request body the server reads before it closes.
    after_bytes: int = 0
    #: ``bandwidth``: bytes per second, each way.
    bytes_per_second: int = 0

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL


@dataclass(frozen=True, slots=True)
class Rule:
    match: Match
    action: Action


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What a rule can match on, for one request."""

    method: str
    path: str
    operation: str
    #: Lower-cased ids and userPrincipalNames: the mailbox's owner and the caller, as known.
    users: frozenset[str] = frozenset()


def facts_match(match: Match, facts: RequestFacts) -> bool:
    """Whether ``facts`` meet every criterion ``match`` gives (the request-selection fields aside)."""
    if match.method is not None and match.method.upper() != facts.method.upper():
        return False
    if match.path is not None and not fnmatchcase(facts.path, match.path):
        return False
    if match.operation is not None and not fnmatchcase(facts.operation, match.operation):
        return False
    return match.user is None or match.user.lower() in facts.users


@dataclass(slots=True)
class RuleState:
    """A rule with its counters: requests matched, times fired, and its random sequence."""

    id: str
    rule: Rule
    matched: int = 0
    fired: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def consider(self, facts: RequestFacts) -> bool:
        """Count ``facts`` if they match, and say whether the rule fires on them."""
        match = self.rule.match
        if not facts_match(match, facts):
            return False
        self.matched += 1
        fire = True
        if match.nth is not None and self.matched != match.nth:
            fire = False
        if match.every is not None and self.matched % match.every != 0:
            fire = False
        if match.times is not None and self.fired >= match.times:
            fire = False
        if match.probability is not None:
            # Drawn on every matching request, fired or not, so the sequence depends only on
            # the requests the rule matched (the same run gives the same faults).
            if self.rng.random() >= match.probability:
                fire = False
        if fire:
            self.fired += 1
        return fire


@dataclass(frozen=True, slots=True)
class Decision:
    """The actions for one request: modifiers (delay, bandwidth, expireSession) and at most one
    terminal action, with the ids of the rules that fired."""

    modifiers: tuple[Action, ...] = ()
    terminal: Action | None = None
    rule_ids: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.modifiers) or self.terminal is not None

    def delay_ms(self, rng: random.Random) -> int:
        total = 0
        for action in self.modifiers:
            if action.type == "delay":
                if action.ms is not None:
                    total += action.ms
                else:
                    assert action.min_ms is not None and action.max_ms is not None
                    total += rng.randint(action.min_ms, action.max_ms)
        return total

    def bandwidth(self) -> int | None:
        rates = [a.bytes_per_second for a in self.modifiers if a.type == "bandwidth"]
        return min(rates) if rates else None

    @property
    def expire_session(self) -> bool:
        return any(a.type == "expireSession" for a in self.modifiers)


NO_DECISION = Decision()


class Rulebook:
    """The rules of one server process, in the order they were added."""

    def __init__(self) -> None:
        self.rules: list[RuleState] = []
        self._next_id = 1
        #: For ``delay`` ranges: seeded, so a run's delays repeat too.
        self.delay_rng = random.Random(0)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def add(self, rule: Rule) -> RuleState:
        state = RuleState(id=str(self._next_id), rule=rule, rng=random.Random(rule.match.seed))
        self._next_id += 1
        self.rules.append(state)
        return state

    def remove(self, rule_id: str) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def clear(self) -> None:
        self.rules.clear()
        self.delay_rng = random.Random(0)

    def decide(self, facts: RequestFacts) -> Decision:
        modifiers: list[Action] = []
        terminal: Action | None = None
        fired: list[str] = []
        for state in self.rules:
            action = state.rule.action
            if action.terminal and terminal is not None:
                continue
            if state.consider(facts):
                fired.append(state.id)
                if action.terminal:
                    terminal = action
                else:
                    modifiers.append(action)
        if not fired:
            return NO_DECISION
        return Decision(tuple(modifiers), terminal, tuple(fired))
