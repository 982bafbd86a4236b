"""The upload-session state machine: the table is complete, and PUTs classify as documented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from graphattach.domain.content_types import guess_content_type
from graphattach.domain.models import UploadSession
from graphattach.domain.upload_session import (
    TABLE,
    Event,
    Outcome,
    State,
    classify_put,
    decide,
    observe,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)
SIZE = 10_000


def session(received: int = 0, last: tuple[int, int] | None = None, state: str = "active") -> UploadSession:
    return UploadSession(
        id="s",
        user_id="u",
        item_id="i",
        item_kind="message",
        name="flower",
        content_type=None,
        is_inline=False,
        content_id=None,
        size=SIZE,
        received=received,
        blob_key="uploads/s",
        state=state,  # type: ignore[arg-type]
        expires=NOW + timedelta(hours=1),
        created=NOW,
        last_range=last,
    )


def test_the_table_covers_every_state_and_event() -> None:
    assert set(TABLE) == {(state, event) for state in State for event in Event}


def test_profiles_differ_only_on_puts_after_completion() -> None:
    differing = {key for key, rule in TABLE.items() if rule.outlook != rule.lenient}
    assert differing == {(State.COMPLETED, Event.REPEAT_LAST), (State.COMPLETED, Event.EMPTY_RESEND)}
    for key in differing:
        assert TABLE[key].outlook is Outcome.NOT_FOUND
        assert TABLE[key].lenient is Outcome.REPLAY_CREATED


def test_only_an_active_session_stores_bytes() -> None:
    storing = {key for key, rule in TABLE.items() if {rule.outlook, rule.lenient} & {Outcome.APPEND, Outcome.COMPLETE}}
    assert storing == {(State.ACTIVE, Event.NEXT_RANGE), (State.ACTIVE, Event.FINAL_RANGE)}


def test_expired_sessions_answer_401_and_are_forgotten_by_the_sweeper() -> None:
    for event in Event:
        expected = Outcome.FORGET if event is Event.SWEEP else Outcome.TOKEN_EXPIRED
        assert decide(State.EXPIRED, event, "outlook") is expected
        assert decide(State.EXPIRED, event, "lenient") is expected


@pytest.mark.parametrize(
    ("received", "last", "start", "end", "total", "length", "event"),
    [
        (0, None, 0, 4999, SIZE, 5000, Event.NEXT_RANGE),
        (0, None, 0, SIZE - 1, SIZE, SIZE, Event.FINAL_RANGE),
        (5000, (0, 4999), 5000, SIZE - 1, SIZE, 5000, Event.FINAL_RANGE),
        (5000, (0, 4999), 0, 4999, SIZE, 5000, Event.REPEAT_LAST),
        (5000, (0, 4999), 6000, 6999, SIZE, 1000, Event.GAP),
        (5000, (0, 4999), 4000, 5999, SIZE, 2000, Event.OVERLAP),
        (5000, (0, 4999), 0, 999, SIZE, 1000, Event.OVERLAP),
        (5000, (0, 4999), 5000, 5999, SIZE + 1, 1000, Event.WRONG_TOTAL),
        (5000, (0, 4999), 5000, 5999, SIZE, 999, Event.LENGTH_MISMATCH),
        (0, None, 0, SIZE - 1, SIZE, 0, Event.EMPTY_RESEND),
        (SIZE, (0, SIZE - 1), 0, SIZE - 1, SIZE, 0, Event.EMPTY_RESEND),
        (SIZE, (5000, SIZE - 1), 5000, SIZE - 1, SIZE, 5000, Event.REPEAT_LAST),
    ],
)
def test_classify_put(
    received: int, last: tuple[int, int] | None, start: int, end: int, total: int, length: int, event: Event
) -> None:
    assert classify_put(session(received, last), start, end, total, length) is event


def test_a_completed_session_answers_msgraph_core_resends_by_profile() -> None:
    done = session(SIZE, (5000, SIZE - 1), state="completed")
    resend = classify_put(done, 5000, SIZE - 1, SIZE, 5000)
    empty = classify_put(done, 0, SIZE - 1, SIZE, 0)
    for event in (resend, empty):
        assert decide(observe(done, NOW), event, "outlook") is Outcome.NOT_FOUND
        assert decide(observe(done, NOW), event, "lenient") is Outcome.REPLAY_CREATED
    other = classify_put(done, 0, 4999, SIZE, 5000)
    assert decide(observe(done, NOW), other, "lenient") is Outcome.NOT_FOUND


def test_observe_uses_the_clock() -> None:
    live = session()
    assert observe(live, NOW) is State.ACTIVE
    assert observe(live, live.expires) is State.EXPIRED
    assert observe(None, NOW) is State.ABSENT
    assert observe(None, NOW, token_expires=NOW) is State.EXPIRED
    assert observe(None, NOW, token_expires=NOW + timedelta(seconds=1)) is State.ABSENT
    assert observe(session(state="completed"), NOW) is State.COMPLETED


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("flower", b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        ("x.bin", b"\x89PNG\r\n\x1a\nxxxx", "image/png"),
        ("report", b"%PDF-1.7", "application/pdf"),
        ("notes.txt", b"hello", "text/plain"),
        ("data", b"\x00\x01\x02", "application/octet-stream"),
    ],
)
def test_guess_content_type_from_bytes_then_name(name: str, head: bytes, expected: str) -> None:
    assert guess_content_type(name, head) == expected


def test_the_state_machine_knows_exactly_the_stored_states() -> None:
    from graphattach.domain.models import SESSION_STATES
    from graphattach.domain.upload_session import State

    assert {state.value for state in State} == SESSION_STATES | {State.ABSENT.value}
