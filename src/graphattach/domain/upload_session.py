"""The upload-session state machine, as one table: ``(state, event) -> outcome`` per profile.

A session is created ``active`` by createUploadSession. Every request on its upload URL and the
sweeper's passing is an *event*; ``classify_put`` turns a PUT into one from the session and the
request's ``Content-Range`` and ``Content-Length``; ``observe`` derives the state, in which the
clock counts (a session past its ``expirationDateTime`` is ``expired`` whether or not the
sweeper has been by). ``TABLE`` then says what happens. The services carry the outcome out;
nothing here does I/O.

Rows where the two profiles differ are the PUTs msgraph-core 1.5.2 sends after an upload has
completed (https://github.com/microsoftgraph/msgraph-sdk-python-core/issues/691): ``outlook`` answers them as
the real service does, ``lenient`` answers them with the completing 201 again so that client
finishes. Everything else is identical in both profiles. See docs/fidelity.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from graphattach.domain.models import UploadSession


class State(StrEnum):
    """The stored states (``models.SessionState``; a test keeps the two equal) and ``ABSENT``."""

    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    #: No session under that id (never created, cancelled and forgotten, or swept; the record
    #: of how a session ended that the store keeps for the web UI is not a session).
    ABSENT = "absent"


class Event(StrEnum):
    #: PUT of the bytes right after the acknowledged ones, not reaching the last byte.
    NEXT_RANGE = "next range"
    #: PUT of the bytes right after the acknowledged ones, up to the last byte.
    FINAL_RANGE = "final range"
    #: PUT of exactly the range acknowledged last (a client retry).
    REPEAT_LAST = "repeat of the last range"
    #: PUT with an empty body whose Content-Range claims the whole file (msgraph-core's re-send).
    EMPTY_RESEND = "empty re-send of the whole range"
    #: PUT that starts after the next expected byte.
    GAP = "range after a gap"
    #: PUT that starts before the next expected byte and is not the last range repeated.
    OVERLAP = "range overlapping stored bytes"
    #: PUT whose Content-Range total differs from the declared size.
    WRONG_TOTAL = "total differs from the session size"
    #: PUT whose Content-Length differs from the length of its Content-Range.
    LENGTH_MISMATCH = "Content-Length differs from the range"
    #: PUT without a valid Content-Range or Content-Length header.
    BAD_HEADERS = "missing or malformed headers"
    #: PUT whose Content-Length is above the server's largest accepted range (``max_upload_chunk``).
    TOO_LARGE = "range larger than the server accepts"
    #: GET on the upload URL.
    STATUS = "status"
    #: DELETE on the upload URL.
    CANCEL = "cancel"
    #: The sweeper finds the session past its expirationDateTime.
    SWEEP = "sweep"


class Outcome(StrEnum):
    #: Store the bytes after the acknowledged ones, commit the new length; 200 + status.
    APPEND = "append"
    #: Store the last bytes and create the attachment atomically; 201 + Location.
    COMPLETE = "complete"
    #: Store nothing; 200 + status, the answer the range got the first time.
    REPLAY_STATUS = "replay status"
    #: Store nothing; 201 + the Location of the attachment the session created.
    REPLAY_CREATED = "replay created"
    #: 200 + status.
    REPORT_STATUS = "report status"
    #: 416 ``invalidRange`` naming the next expected range; nothing changes.
    REJECT_ORDER = "reject: out of order"
    #: 416 ``invalidRange`` naming the next expected range; nothing changes.
    REJECT_OVERLAP = "reject: overlap"
    #: 400 ``invalidRequest`` naming the declared size; nothing changes.
    REJECT_TOTAL = "reject: wrong total"
    #: 400 ``invalidRequest``; nothing changes.
    REJECT_LENGTH = "reject: length mismatch"
    #: 400 ``invalidRequest`` naming the header and the next expected range; nothing changes.
    REJECT_HEADERS = "reject: headers"
    #: 413 before a byte of the body is read; nothing changes.
    REJECT_TOO_LARGE = "reject: too large"
    #: Forget the session, free its bytes; 204.
    CANCEL = "cancel"
    #: 404 ``ErrorItemNotFound``.
    NOT_FOUND = "not found"
    #: 401: the upload URL's token expired with the session.
    TOKEN_EXPIRED = "token expired"
    #: Forget the session and free the bytes no attachment owns (the sweeper).
    FORGET = "forget"
    #: Nothing to do.
    NOTHING = "nothing"


@dataclass(frozen=True, slots=True)
class Rule:
    outlook: Outcome
    lenient: Outcome

    def for_profile(self, profile: str) -> Outcome:
        return self.lenient if profile == "lenient" else self.outlook


def _same(outcome: Outcome) -> Rule:
    return Rule(outcome, outcome)


_PUTS = (
    Event.NEXT_RANGE,
    Event.FINAL_RANGE,
    Event.REPEAT_LAST,
    Event.EMPTY_RESEND,
    Event.GAP,
    Event.OVERLAP,
    Event.WRONG_TOTAL,
    Event.LENGTH_MISMATCH,
    Event.BAD_HEADERS,
    Event.TOO_LARGE,
)

_O = Outcome
#: The whole state machine. Read a row as: in ``state``, on ``event``, do ``outlook`` / ``lenient``.
TABLE: dict[tuple[State, Event], Rule] = {
    # active: the upload is under way
    (State.ACTIVE, Event.NEXT_RANGE): _same(_O.APPEND),
    (State.ACTIVE, Event.FINAL_RANGE): _same(_O.COMPLETE),
    (State.ACTIVE, Event.REPEAT_LAST): _same(_O.REPLAY_STATUS),
    (State.ACTIVE, Event.EMPTY_RESEND): _same(_O.REJECT_LENGTH),
    (State.ACTIVE, Event.GAP): _same(_O.REJECT_ORDER),
    (State.ACTIVE, Event.OVERLAP): _same(_O.REJECT_OVERLAP),
    (State.ACTIVE, Event.WRONG_TOTAL): _same(_O.REJECT_TOTAL),
    (State.ACTIVE, Event.LENGTH_MISMATCH): _same(_O.REJECT_LENGTH),
    (State.ACTIVE, Event.BAD_HEADERS): _same(_O.REJECT_HEADERS),
    (State.ACTIVE, Event.TOO_LARGE): _same(_O.REJECT_TOO_LARGE),
    (State.ACTIVE, Event.STATUS): _same(_O.REPORT_STATUS),
    (State.ACTIVE, Event.CANCEL): _same(_O.CANCEL),
    (State.ACTIVE, Event.SWEEP): _same(_O.NOTHING),
    # completed: the attachment exists; Outlook has consumed the session
    (State.COMPLETED, Event.NEXT_RANGE): _same(_O.NOT_FOUND),
    (State.COMPLETED, Event.FINAL_RANGE): _same(_O.NOT_FOUND),
    (State.COMPLETED, Event.REPEAT_LAST): Rule(_O.NOT_FOUND, _O.REPLAY_CREATED),
    (State.COMPLETED, Event.EMPTY_RESEND): Rule(_O.NOT_FOUND, _O.REPLAY_CREATED),
    (State.COMPLETED, Event.GAP): _same(_O.NOT_FOUND),
    (State.COMPLETED, Event.OVERLAP): _same(_O.NOT_FOUND),
    (State.COMPLETED, Event.WRONG_TOTAL): _same(_O.NOT_FOUND),
    (State.COMPLETED, Event.LENGTH_MISMATCH): _same(_O.NOT_FOUND),
    (State.COMPLETED, Event.BAD_HEADERS): _same(_O.NOT_FOUND),
    (State.COMPLETED, Event.TOO_LARGE): _same(_O.NOT_FOUND),
    (State.COMPLETED, Event.STATUS): _same(_O.NOT_FOUND),
    (State.COMPLETED, Event.CANCEL): _same(_O.NOT_FOUND),
    (State.COMPLETED, Event.SWEEP): _same(_O.NOTHING),
    # cancelled (a row kept by another writer; we forget cancelled sessions at once)
    **{(State.CANCELLED, e): _same(_O.NOT_FOUND) for e in (*_PUTS, Event.STATUS, Event.CANCEL)},
    (State.CANCELLED, Event.SWEEP): _same(_O.FORGET),
    # expired: past expirationDateTime, swept or not; the URL's token died with it
    **{(State.EXPIRED, e): _same(_O.TOKEN_EXPIRED) for e in (*_PUTS, Event.STATUS, Event.CANCEL)},
    (State.EXPIRED, Event.SWEEP): _same(_O.FORGET),
    # absent
    **{(State.ABSENT, e): _same(_O.NOT_FOUND) for e in (*_PUTS, Event.STATUS, Event.CANCEL)},
    (State.ABSENT, Event.SWEEP): _same(_O.NOTHING),
}
del _O


def decide(state: State, event: Event, profile: str) -> Outcome:
    return TABLE[(state, event)].for_profile(profile)


def observe(session: UploadSession | None, now: datetime, *, token_expires: datetime | None = None) -> State:
    """The state a request sees. Expiry is by the clock, so it needs no sweep to take effect;
    a session already swept is ``expired`` as long as the token presented says so."""
    if session is None:
        if token_expires is not None and now >= token_expires:
            return State.EXPIRED
        return State.ABSENT
    if now >= session.expires:
        return State.EXPIRED
    return State(session.state)


def classify_put(session: UploadSession, start: int, end: int, total: int, content_length: int) -> Event:
    """Which PUT event a syntactically valid ``Content-Range`` (``start <= end < total``) is."""
    if total != session.size:
        return Event.WRONG_TOTAL
    if content_length == 0 and (start, end) == (0, session.size - 1):
        return Event.EMPTY_RESEND
    if content_length != end - start + 1:
        return Event.LENGTH_MISMATCH
    if session.last_range is not None and (start, end) == tuple(session.last_range):
        return Event.REPEAT_LAST
    if start == session.received:
        return Event.FINAL_RANGE if end == session.size - 1 else Event.NEXT_RANGE
    if start > session.received:
        return Event.GAP
    return Event.OVERLAP


def next_expected(session: UploadSession) -> int:
    """The first byte not acknowledged yet."""
    return session.received
