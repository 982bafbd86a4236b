"""The server's clock, which tests move (admin API ``/_graphattach/clock``, ``GraphServer.clock``).

It runs with the wall clock, shifted by ``offset``, unless it is frozen: then ``now()`` stays at
one instant until it is advanced or set. Token lifetimes, upload session expiry and every
timestamp the server writes read this clock, so a test steps through an hour without sleeping,
and a frozen clock makes timestamps repeat from run to run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def _aware(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


class Clock:
    def __init__(self, frozen_at: datetime | None = None) -> None:
        #: Where ``reset()`` puts the clock back: frozen at this instant, or the wall clock (None).
        self.initial = _aware(frozen_at) if frozen_at is not None else None
        self.offset = timedelta()
        self.frozen_at: datetime | None = self.initial

    @property
    def frozen(self) -> bool:
        return self.frozen_at is not None

    def now(self) -> datetime:
        if self.frozen_at is not None:
            return self.frozen_at
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds`` (frozen or not)."""
        if self.frozen_at is not None:
            self.frozen_at += timedelta(seconds=seconds)
        else:
            self.offset += timedelta(seconds=seconds)
        return self.now()

    def set(self, when: datetime, *, frozen: bool | None = None) -> datetime:
        """Jump to ``when`` (naive means UTC); ``frozen`` True/False freezes or lets it run from
        there, None keeps the current mode."""
        when = _aware(when)
        freeze = self.frozen if frozen is None else frozen
        if freeze:
            self.frozen_at = when
            self.offset = timedelta()
        else:
            self.frozen_at = None
            self.offset = when - datetime.now(UTC)
        return self.now()

    def freeze(self) -> datetime:
        """Stop the clock where it is."""
        return self.set(self.now(), frozen=True)

    def unfreeze(self) -> datetime:
        """Let the clock run again from where it stands."""
        return self.set(self.now(), frozen=False)

    def reset(self) -> None:
        """Back to the wall clock, or to the instant the server was started frozen at."""
        self.offset = timedelta()
        self.frozen_at = self.initial
