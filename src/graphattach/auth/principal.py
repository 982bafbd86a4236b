"""Who is calling: a signed-in user (delegated) or an application."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["delegated", "app"]
    #: Permissions: ``scp`` of a delegated token, ``roles`` of an app token.
    permissions: frozenset[str]
    app_id: str
    #: The signed-in user's object id (delegated only).
    user_id: str | None = None
    upn: str | None = None

    @property
    def is_delegated(self) -> bool:
        return self.kind == "delegated"

    def has_any(self, permissions: tuple[str, ...]) -> bool:
        held = {p.lower() for p in self.permissions}
        return any(p.lower() in held for p in permissions)
