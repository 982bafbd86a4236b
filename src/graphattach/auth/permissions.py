"""Which permissions each operation needs (least privileged first), per the Graph docs.

A higher permission implies the lower one (Mail.ReadWrite covers Mail.Read), so each entry lists
every permission that suffices. Sources: the
permissions section of each operation's page, e.g.
https://learn.microsoft.com/graph/api/attachment-createuploadsession#permissions.
"""

from __future__ import annotations

MAIL_READ = ("Mail.Read", "Mail.ReadWrite", "Mail.Read.Shared", "Mail.ReadWrite.Shared")
MAIL_WRITE = ("Mail.ReadWrite", "Mail.ReadWrite.Shared")
MAIL_SEND = ("Mail.Send", "Mail.Send.Shared")
CALENDARS_READ = (
    "Calendars.Read",
    "Calendars.ReadWrite",
    "Calendars.Read.Shared",
    "Calendars.ReadWrite.Shared",
)
CALENDARS_WRITE = ("Calendars.ReadWrite", "Calendars.ReadWrite.Shared")
USERS_READ_ALL = (
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)

#: Every delegated scope ``graphattach token`` grants when none are asked for.
DEFAULT_DELEGATED_SCOPES = (
    "Mail.Read",
    "Mail.ReadWrite",
    "Mail.Send",
    "Calendars.Read",
    "Calendars.ReadWrite",
    "User.Read",
)
#: The application roles an app registration may hold (the ones some operation here checks).
APP_ROLES = frozenset({*MAIL_READ, *MAIL_WRITE, *MAIL_SEND, *CALENDARS_READ, *CALENDARS_WRITE, *USERS_READ_ALL})
#: Every application role ``graphattach token --app`` grants when none are asked for.
DEFAULT_APP_ROLES = ("Mail.ReadWrite", "Mail.Send", "Calendars.ReadWrite", "User.Read.All")


def read_permissions(item_kind: str) -> tuple[str, ...]:
    return MAIL_READ if item_kind == "message" else CALENDARS_READ


def write_permissions(item_kind: str) -> tuple[str, ...]:
    return MAIL_WRITE if item_kind == "message" else CALENDARS_WRITE
