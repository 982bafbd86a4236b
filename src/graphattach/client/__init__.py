"""A client for attaching files of any size to Outlook messages and events, here or on Microsoft Graph.

Blocking and asynchronous, over one protocol core::

    from graphattach.client import Client, Message

    with Client("https://graph.microsoft.com/v1.0", token) as client:
        attachment = client.attach(Message("AAMkAD…"), "report.pdf")   # any size up to 150 MB
        client.download(Message("AAMkAD…"), attachment, "copy.pdf")

``AsyncClient`` has the same methods, awaited. Errors form one tree rooted at ``ClientError``
(see :mod:`graphattach.client._errors`). docs/client.md has the whole story.
"""

from typing import TYPE_CHECKING, Any

from graphattach.client._auth import (
    AzureIdentityToken,
    CallableToken,
    CommandToken,
    GraphattachTokenProvider,
    StaticToken,
    TokenProvider,
    client_secret_token,
    device_code_token,
    interactive_token,
)
from graphattach.client._common import AttachResult
from graphattach.client._core import DEFAULT_CHUNK_SIZE, DEFAULT_GRAPH_URL, Progress, Retrying, RetryPolicy
from graphattach.client._errors import (
    AuthError,
    BadRequest,
    ClientError,
    Conflict,
    FileChanged,
    Forbidden,
    GraphError,
    InvalidInput,
    NotFound,
    ProtocolError,
    RequestTooLarge,
    ServerError,
    Throttled,
    TransportError,
    Unauthorized,
    UploadSessionExpired,
)
from graphattach.client._models import Attachment, Event, Message, Target, UploadSession
from graphattach.client._sync import Client

if TYPE_CHECKING:
    from graphattach.client._async import AsyncClient

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_GRAPH_URL",
    "AsyncClient",
    "AttachResult",
    "Attachment",
    "AuthError",
    "AzureIdentityToken",
    "BadRequest",
    "CallableToken",
    "Client",
    "ClientError",
    "CommandToken",
    "Conflict",
    "Event",
    "FileChanged",
    "Forbidden",
    "GraphError",
    "GraphattachTokenProvider",
    "InvalidInput",
    "Message",
    "NotFound",
    "Progress",
    "ProtocolError",
    "RequestTooLarge",
    "RetryPolicy",
    "Retrying",
    "ServerError",
    "StaticToken",
    "Target",
    "Throttled",
    "TokenProvider",
    "TransportError",
    "Unauthorized",
    "UploadSession",
    "UploadSessionExpired",
    "client_secret_token",
    "device_code_token",
    "interactive_token",
]


def __getattr__(name: str) -> Any:
    # AsyncClient (and anyio beyond what httpx loads) is imported on first use: a blocking
    # program never pays for it.
    if name == "AsyncClient":
        from graphattach.client._async import AsyncClient

        return AsyncClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
