"""The fault rule engine and the throttler: pure, property-tested."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from graphattach.domain.faults import Action, Match, RequestFacts, Rule, Rulebook, facts_match
from graphattach.domain.throttling import ThrottleLimits, Throttler, ThrottlingSpecError, parse_throttling

FACTS = RequestFacts(method="PUT", path="/api/gv1.0/users('u@t')/messages('m')/AttachmentSessions('s')",
                     operation="uploadSession.put", users=frozenset({"u"}))  # fmt: skip
DROP = Action(type="drop")


def fired_pattern(match: Match, count: int, action: Action = DROP) -> list[bool]:
    book = Rulebook()
    book.add(Rule(match, action))
    return [book.decide(FACTS).terminal is not None for _ in range(count)]


@given(st.integers(1, 30), st.integers(1, 40))
def test_nth_fires_exactly_on_the_nth_match(nth: int, count: int) -> None:
    pattern = fired_pattern(Match(nth=nth), count)
    assert [i + 1 for i, fired in enumerate(pattern) if fired] == ([nth] if nth <= count else [])


@given(st.integers(1, 10), st.integers(1, 40), st.one_of(st.none(), st.integers(1, 5)))
def test_every_fires_on_multiples_up_to_times(every: int, count: int, times: int | None) -> None:
    pattern = fired_pattern(Match(every=every, times=times), count)
    expected = [k for k in range(1, count + 1) if k % every == 0]
    if times is not None:
        expected = expected[:times]
    assert [i + 1 for i, fired in enumerate(pattern) if fired] == expected


@given(st.floats(0.01, 1.0), st.integers(0, 2**32), st.integers(1, 60))
def test_probability_is_the_seeded_sequence(probability: float, seed: int, count: int) -> None:
    first = fired_pattern(Match(probability=probability, seed=seed), count)
    assert first == fired_pattern(Match(probability=probability, seed=seed), count)
    rng = random.Random(seed)
    assert first == [rng.random() < probability for _ in range(count)]


@given(st.lists(st.sampled_from(["status", "drop", "cut", "expireToken", "delay", "bandwidth", "expireSession"]),
                min_size=1, max_size=6))  # fmt: skip
def test_at_most_one_terminal_action_and_every_modifier(kinds: list[str]) -> None:
    book = Rulebook()
    for kind in kinds:
        book.add(Rule(Match(), Action(type=kind, status=503, ms=1, bytes_per_second=10)))  # type: ignore[arg-type]
    decision = book.decide(FACTS)
    terminal = [k for k in kinds if k in ("status", "drop", "cut", "expireToken")]
    assert (decision.terminal.type if decision.terminal else None) == (terminal[0] if terminal else None)
    assert [a.type for a in decision.modifiers] == [k for k in kinds if k not in terminal]
    # the rules after the first terminal one were not tried: they counted nothing
    first = kinds.index(terminal[0]) if terminal else len(kinds)
    for index, state in enumerate(book.rules):
        tried = not (index > first and kinds[index] in terminal)
        assert (state.matched, state.fired) == ((1, 1) if tried else (0, 0))


@given(st.sampled_from(["GET", "PUT", "put", None]), st.sampled_from(["*AttachmentSessions*", "/v1.0/*", None]),
       st.sampled_from(["uploadSession.*", "uploadSession.put", "attachments.create", None]),
       st.sampled_from(["u", "U", "someone", None]))  # fmt: skip
def test_a_match_needs_every_criterion(method: str | None, path: str | None, op: str | None, user: str | None) -> None:
    match = Match(method=method, path=path, operation=op, user=user)
    expected = (
        (method is None or method.upper() == "PUT")
        and path in (None, "*AttachmentSessions*")
        and op in (None, "uploadSession.*", "uploadSession.put")
        and user in (None, "u", "U")
    )
    assert facts_match(match, FACTS) == expected


# throttling -----------------------------------------------------------------------------------------


def test_spec_parsing() -> None:
    assert parse_throttling("outlook") == ThrottleLimits()
    assert parse_throttling("off") is None
    limits = parse_throttling("concurrency=2,requests=100/60,upload=20MB/60")
    assert limits == ThrottleLimits(2, 100, 60.0, 20 * 1024 * 1024, 60.0)
    assert parse_throttling("requests=5/500ms") == ThrottleLimits(requests=5, requests_window=0.5)
    for bad, field in [("concurrency=0", "concurrency"), ("requests=100", "requests"), ("upload=lots/60", "upload"),
                       ("speed=3", "speed"), ("concurrency=2,concurrency=3", "concurrency")]:  # fmt: skip
        try:
            parse_throttling(bad)
        except ThrottlingSpecError as exc:
            assert exc.field == field
        else:
            raise AssertionError(bad)


@given(st.integers(1, 6), st.integers(0, 12))
def test_concurrency_refuses_past_the_limit_and_counts_nothing(limit: int, started: int) -> None:
    throttler = Throttler(ThrottleLimits(concurrency=limit))
    key = ("app", "mailbox")
    outcomes = [throttler.admit(key, 0.0, 0) for _ in range(started)]
    assert [o is None for o in outcomes] == [i < limit for i in range(started)]
    assert all(o.limit == "MailboxConcurrency" and o.retry_after == 1 for o in outcomes[limit:] if o)
    assert throttler.inflight.get(key, 0) == min(started, limit)
    assert throttler.admit(("app", "other mailbox"), 0.0, 0) is None  # another mailbox is not affected
    assert throttler.violations == []  # not time-based: no Retry-After to honour


@given(st.integers(1, 20), st.integers(1, 100), st.lists(st.floats(0, 5), min_size=1, max_size=40))
def test_request_rate_is_a_sliding_window(limit: int, window: int, gaps: list[float]) -> None:
    throttler = Throttler(ThrottleLimits(concurrency=1000, requests=limit, requests_window=float(window)))
    key = ("app", "m")
    admitted: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        in_window = [t for t in admitted if t > now - window]
        refusal = throttler.admit(key, now, 0)
        if refusal is None:
            assert len(in_window) < limit
            admitted.append(now)
            throttler.release(key)
        else:
            if refusal.limit == "RetryAfter":
                assert refusal.violation is not None and refusal.violation.early_by > 0
            else:
                assert refusal.limit == "RequestRate" and len(in_window) >= limit
                assert refusal.retry_after >= 1 and isinstance(refusal.retry_after, int)
                # honouring Retry-After is enough for a slot to free up
                assert min(in_window) + window <= now + refusal.retry_after


def test_incoming_bytes_and_retry_after_compliance() -> None:
    throttler = Throttler(ThrottleLimits(upload_bytes=100, upload_window=60.0))
    key = ("app", "m")
    assert throttler.admit(key, 0.0, 60) is None
    throttler.release(key)
    refused = throttler.admit(key, 10.0, 50)
    assert refused is not None and refused.limit == "IncomingBytes" and refused.retry_after == 50
    early = throttler.admit(key, 30.0, 10, method="PUT", path="/x", request_id="r1")
    assert early is not None and early.limit == "RetryAfter" and early.original == "IncomingBytes"
    assert early.violation is not None and early.violation.early_by == 30.0
    assert early.retry_after == 30  # what is left of the first Retry-After
    assert [v.request_id for v in throttler.violations] == ["r1"]
    # the block does not restart: at 60 s the 60 bytes of 0 s have left the window too
    assert throttler.admit(key, 60.0, 50) is None
