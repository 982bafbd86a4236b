"""A small Graph app: save the file attachments of new Inbox mail to a folder.

    python save_attachments.py USER TARGET_DIR [--since ISO8601]

It uses msgraph-sdk like any app would; only the client it is given points at graphattach in the
tests (test_save_attachments.py) and at https://graph.microsoft.com/v1.0 in production.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_name(name: str) -> str:
    """A file name that stays inside the target folder: the last path component, tamed."""
    cleaned = _UNSAFE.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    return cleaned or "attachment"


async def save_new_attachments(client: GraphServiceClient, user: str, target: Path, since: datetime) -> list[Path]:
    """Save the file attachments of ``user``'s Inbox messages received after ``since`` into
    ``target``; returns the files written, oldest message first. Names that collide get a suffix."""
    target.mkdir(parents=True, exist_ok=True)
    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        filter=f"receivedDateTime gt {since.strftime('%Y-%m-%dT%H:%M:%SZ')} and hasAttachments eq true",
        select=["id", "subject", "receivedDateTime"],
        orderby=["receivedDateTime asc"],
        top=50,
    )
    inbox = client.users.by_user_id(user).mail_folders.by_mail_folder_id("inbox")
    page = await inbox.messages.get(request_configuration=RequestConfiguration(query_parameters=query))
    written: list[Path] = []
    while page is not None:
        for message in page.value or []:
            assert message.id is not None
            attachments = await inbox.messages.by_message_id(message.id).attachments.get()
            for attachment in attachments.value if attachments else []:
                if not isinstance(attachment, FileAttachment) or attachment.content_bytes is None:
                    continue  # item and reference attachments have no bytes to save
                path = _free_path(target, safe_name(attachment.name or "attachment"))
                path.write_bytes(attachment.content_bytes)
                written.append(path)
        if not page.odata_next_link:
            break
        page = await inbox.messages.with_url(page.odata_next_link).get()
    return written


def _free_path(target: Path, name: str) -> Path:
    path = target / name
    stem, suffix = path.stem, path.suffix
    counter = 1
    while path.exists():
        path = target / f"{stem} ({counter}){suffix}"
        counter += 1
    return path


if __name__ == "__main__":  # pragma: no cover - the production entry point
    import argparse
    import asyncio

    from azure.identity.aio import DefaultAzureCredential

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("user")
    parser.add_argument("target", type=Path)
    parser.add_argument("--since", type=datetime.fromisoformat, default=datetime(1970, 1, 1))
    args = parser.parse_args()
    graph = GraphServiceClient(DefaultAzureCredential(), ["https://graph.microsoft.com/.default"])
    for saved in asyncio.run(save_new_attachments(graph, args.user, args.target, args.since)):
        print(saved)
