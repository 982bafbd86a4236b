"""The request journal: what the server served, kept in a bounded ring in memory.

Every Graph, upload, token and admin request becomes a ``JournalEntry`` (the admin calls that
read the journal itself are left out, so that following it does not fill it). The middleware
(``api/request_scope.py``) opens the entry and puts it in a context variable for the duration of
the request; the code that learns who called and which permission the call needed notes it
there (``note_principal``, ``note_permission``). The least-privilege report is computed from the
entries: for each app and kind of caller, the smallest set of the least privileged permissions
that covers every call it made.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from graphattach.auth.principal import Principal
from graphattach.domain.testkit import JournalEntry, PrivilegeGroup

#: Entries kept when the settings do not say (``--journal-size``).
DEFAULT_SIZE = 1000
#: Bytes of each request and response body kept for the HAR export (the rest is counted, not kept).
DEFAULT_BODY_LIMIT = 8 * 1024

#: Permissions a token carries that no Graph call needs (Dev Proxy's guidance plugin leaves them out too:
#: https://learn.microsoft.com/microsoft-cloud/dev/dev-proxy/technical-reference/graphminimalpermissionsguidanceplugin).
_NOT_GRAPH = frozenset({"openid", "profile", "offline_access", "email"})


_current: ContextVar[JournalEntry | None] = ContextVar("graphattach_journal_entry", default=None)


def current() -> JournalEntry | None:
    return _current.get()


def set_current(entry: JournalEntry | None) -> Any:
    return _current.set(entry)


def reset_current(token: Any) -> None:
    _current.reset(token)


def note_principal(principal: Principal) -> None:
    """The caller of the request being served."""
    entry = _current.get()
    if entry is None:
        return
    entry.caller = principal.kind
    entry.user = principal.upn
    entry.user_id = principal.user_id
    entry.app_id = principal.app_id
    entry.granted = tuple(sorted(principal.permissions))


def note_fault(what: str) -> None:
    """The fault rule or throttling limit applied to the request being served."""
    entry = _current.get()
    if entry is not None:
        entry.fault = what if entry.fault is None else f"{entry.fault}; {what}"


def note_upload_caller(user_id: str) -> None:
    """An upload URL's request: the session's mailbox owner, authorised by the URL's own token."""
    entry = _current.get()
    if entry is not None:
        entry.caller = "upload"
        entry.user_id = user_id


def note_permission(accepted: tuple[str, ...]) -> None:
    """The permissions that would allow the request being served, least privileged first."""
    entry = _current.get()
    if entry is not None and not entry.accepted:
        entry.accepted = accepted


class Journal:
    """A ring of the last ``size`` entries (0 keeps none) with a sequence number that only grows."""

    def __init__(self, size: int = DEFAULT_SIZE, body_limit: int = DEFAULT_BODY_LIMIT) -> None:
        self.size = size
        self.body_limit = body_limit
        self._entries: deque[JournalEntry] = deque(maxlen=max(size, 0))
        self._seq = itertools.count(1)
        self._cleared_at = 0

    @property
    def enabled(self) -> bool:
        return self.size > 0

    def open(self, time: datetime, method: str, path: str, query: str) -> JournalEntry:
        return JournalEntry(seq=next(self._seq), time=time, method=method, path=path, query=query)

    def append(self, entry: JournalEntry) -> None:
        """Keep ``entry``, unless the journal was cleared since it was opened (the request that
        reset the server is not in the journal it emptied)."""
        if self.size > 0 and entry.seq > self._cleared_at:
            self._entries.append(entry)

    def clear(self) -> None:
        """Forget every entry, and those of requests still being served; sequence numbers keep
        growing, so a follower never sees one twice."""
        self._entries.clear()
        self._cleared_at = next(self._seq)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter(list(self._entries))

    def select(
        self,
        *,
        since: int = 0,
        operation: str | None = None,
        method: str | None = None,
        status: str | None = None,
        user: str | None = None,
        path: str | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Entries after sequence number ``since`` matching every filter given, oldest first.

        ``operation`` matches a name or a prefix ending in ``.`` or ``*`` (``attachments.``);
        ``status`` a code or a class (``4xx``); ``user`` a UPN (any case) or an object id;
        ``path`` a substring of the path.
        """
        matched = [
            e for e in list(self._entries) if e.seq > since and _matches(e, operation, method, status, user, path)
        ]
        if limit is not None and limit >= 0:
            matched = matched[-limit:] if limit else []
        return matched


def _matches(
    entry: JournalEntry,
    operation: str | None,
    method: str | None,
    status: str | None,
    user: str | None,
    path: str | None,
) -> bool:
    if operation:
        prefix = operation.rstrip("*")
        if operation.endswith(("*", ".")):
            if not entry.operation.startswith(prefix):
                return False
        elif entry.operation != operation:
            return False
    if method and entry.method.upper() != method.upper():
        return False
    if status:
        code = str(entry.status)
        wanted = status.lower()
        if wanted.endswith("xx"):
            if not code.startswith(wanted[0]):
                return False
        elif code != wanted:
            return False
    if user:
        wanted_user = user.lower()
        if wanted_user not in ((entry.user or "").lower(), (entry.user_id or "").lower()):
            return False
    return not (path and path not in entry.path)


# least-privilege report ---------------------------------------------------------------------------


def minimal_permissions(needs: Iterable[tuple[str, ...]], caller: str) -> list[str]:
    """The smallest set of least privileged permissions such that every call's accepted set meets it.

    Start from each call's least privileged permission, then drop a permission when every call that
    chose it is also covered by another one in the set (Mail.Read goes when Mail.ReadWrite is there,
    since Mail.ReadWrite allows reading too).
    """
    candidates = [_usable(accepted, caller) for accepted in needs]
    candidates = [accepted for accepted in candidates if accepted]
    chosen = {accepted[0] for accepted in candidates}
    for name in sorted(chosen, key=lambda n: (_rank(n), n)):
        rest = chosen - {name}
        if all(rest.intersection(accepted) for accepted in candidates):
            chosen = rest
    return sorted(chosen)


def _usable(accepted: tuple[str, ...], caller: str) -> tuple[str, ...]:
    # *.Shared permissions are delegated only: an app cannot be granted them.
    if caller == "app":
        return tuple(p for p in accepted if not p.endswith(".Shared"))
    return accepted


def _rank(name: str) -> int:
    # Try to drop the narrower permissions first: a read before a write, a single scope before .All.
    return (0 if "Read" in name and "Write" not in name else 1) + (1 if name.endswith(".All") else 0)


def permissions_report(entries: Iterable[JournalEntry]) -> list[PrivilegeGroup]:
    """One group per (kind of caller, app id) that made authenticated Graph calls."""
    groups: dict[tuple[str, str], list[JournalEntry]] = {}
    for entry in entries:
        if entry.caller in ("delegated", "app") and entry.app_id:
            groups.setdefault((entry.caller, entry.app_id), []).append(entry)
    report = []
    for (caller, app_id), members in sorted(groups.items()):
        needed = [e for e in members if e.accepted]
        minimal = minimal_permissions((e.accepted for e in needed), caller)
        granted = sorted({p for e in members for p in e.granted})
        covered = {p.lower() for p in minimal}
        excess = [p for p in granted if p.lower() not in covered and p.lower() not in _NOT_GRAPH]
        operations: dict[str, str] = {}
        for e in needed:
            usable = _usable(e.accepted, caller)
            operations.setdefault(e.operation, usable[0] if usable else e.accepted[0])
        report.append(
            PrivilegeGroup(
                caller=caller,
                app_id=app_id,
                minimal=minimal,
                granted=granted,
                excess=excess,
                operations=dict(sorted(operations.items())),
                requests=len(members),
                denied=sum(1 for e in members if e.status == 403),
            )
        )
    return report
