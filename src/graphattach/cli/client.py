"""Client commands: ``attach``, ``attachments``, ``upload`` (built on graphattach.client).

Exit codes (also in docs/client.md):

    0  success
    1  Graph answered an error (not found, access denied, throttled for good...)
    2  usage error or bad input (missing file, a directory, over 150 MB, file changed during upload)
    3  network: the service could not be reached, after every retry
    4  the service answered something that is not Graph
    5  no token could be had (token command failed, azure-identity missing, sign-in failed)
    130 interrupted (Ctrl-C); an upload session in progress is cancelled first
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from graphattach.client import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_GRAPH_URL,
    Attachment,
    AuthError,
    Client,
    ClientError,
    CommandToken,
    Event,
    GraphError,
    InvalidInput,
    Message,
    Progress,
    ProtocolError,
    Retrying,
    RetryPolicy,
    TokenProvider,
    TransportError,
    device_code_token,
)

EXIT_OK, EXIT_GRAPH, EXIT_USAGE, EXIT_NETWORK, EXIT_PROTOCOL, EXIT_AUTH, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 5, 130

EXIT_CODES = (
    "Exit codes: 0 ok; 1 Graph error; 2 usage or bad input; 3 network; "
    "4 not a Graph answer; 5 no token; 130 interrupted."
)

#: Builds the client; tests replace it to plug in a fake transport.
client_factory: Callable[..., Client] = Client


def exit_code(error: BaseException) -> int:
    if isinstance(error, GraphError):
        return EXIT_GRAPH
    if isinstance(error, InvalidInput):
        return EXIT_USAGE
    if isinstance(error, TransportError):
        return EXIT_NETWORK
    if isinstance(error, ProtocolError):
        return EXIT_PROTOCOL
    if isinstance(error, AuthError):
        return EXIT_AUTH
    return EXIT_GRAPH


def _error_json(error: ClientError) -> dict[str, Any]:
    return {
        "code": error.code,
        "message": error.message,
        "status": error.status,
        "requestId": error.request_id,
        "uploadUrl": error.upload_url,
    }


def _fail(error: ClientError, prefix: str = "") -> NoReturn:
    click.echo(f"graphattach: {prefix}{error.one_line()}", err=True)
    if error.upload_url:
        click.echo(f"graphattach: the upload session is still open: {error.upload_url}", err=True)
    sys.exit(exit_code(error))


# --- options shared by every client command ---------------------------------------------------------


@dataclass
class ClientSettings:
    """The options every client command shares (not the server's ``graphattach.settings.Settings``)."""

    graph_url: str
    token: str | None
    token_command: str | None
    azure_client_id: str | None
    azure_tenant: str
    as_json: bool
    quiet: bool
    ca_bundle: str | None
    retries: int

    def token_provider(self) -> str | TokenProvider | None:
        given = [x for x in (self.token, self.token_command, self.azure_client_id) if x]
        if len(given) > 1:
            raise click.UsageError("give one of --token, --token-command and --azure-client-id")
        if self.token:
            return self.token
        if self.token_command:
            # `graphattach token` in the command asks the server this command talks to
            return CommandToken(self.token_command, env={"GRAPHATTACH_GRAPH_URL": self.graph_url})
        if self.azure_client_id:

            def prompt(uri: str, code: str, expires: Any) -> None:
                click.echo(f"To sign in, open {uri} and enter the code {code}", err=True)

            return device_code_token(self.azure_client_id, self.azure_tenant, prompt=prompt)
        raise click.UsageError(
            "no token: give --token (or GRAPHATTACH_TOKEN), --token-command "
            '(e.g. "graphattach token --user adele@contoso.onmicrosoft.com") or --azure-client-id'
        )

    def say_retry(self, retrying: Retrying) -> None:
        """Each retry as it happens, on stderr: what failed, where, and the pause before the next try."""
        if not self.quiet:
            click.echo(f"graphattach: {retrying.one_line()}", err=True)

    @contextmanager
    def client(self, *, needs_token: bool = True, **kwargs: Any) -> Iterator[Client]:
        try:
            token = self.token_provider() if needs_token else None
            verify: Any = self.ca_bundle or True
            client = client_factory(
                self.graph_url,
                token,
                verify=verify,
                retry=RetryPolicy(attempts=self.retries),
                on_retry=self.say_retry,
                **kwargs,
            )
        except ClientError as exc:
            _fail(exc)
        with client:
            try:
                yield client
            except ClientError as exc:
                _fail(exc)
            except KeyboardInterrupt:
                click.echo("graphattach: interrupted", err=True)
                sys.exit(EXIT_INTERRUPTED)


def graph_options(f: Any) -> Any:
    """Which Graph service, and the token for it."""
    options = [
        click.option(
            "--graph-url",
            envvar="GRAPHATTACH_GRAPH_URL",
            show_envvar=True,
            default=DEFAULT_GRAPH_URL,
            show_default=True,
            help="Service root with its version; a local server: http://127.0.0.1:8765/v1.0.",
        ),
        click.option("--token", envvar="GRAPHATTACH_TOKEN", show_envvar=True, default=None, help="Bearer token."),
        click.option(
            "--token-command",
            envvar="GRAPHATTACH_TOKEN_COMMAND",
            show_envvar=True,
            default=None,
            help='A command printing a token, e.g. "graphattach token --user adele@contoso.onmicrosoft.com" '
            "(run with GRAPHATTACH_GRAPH_URL set to --graph-url).",
        ),
        click.option(
            "--azure-client-id",
            envvar="GRAPHATTACH_AZURE_CLIENT_ID",
            show_envvar=True,
            default=None,
            help="Sign in to Microsoft Entra ID with a device code for this app (needs graphattach[azure]).",
        ),
        click.option(
            "--azure-tenant",
            envvar="GRAPHATTACH_AZURE_TENANT",
            show_envvar=True,
            default="organizations",
            show_default=True,
            help="Tenant id or domain for --azure-client-id.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def output_options(f: Any) -> Any:
    """Output, retries and TLS trust: every client command has them."""
    options = [
        click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout (for scripts)."),
        click.option("-q", "--quiet", is_flag=True, help="No progress nor retry messages."),
        click.option(
            "--retries",
            envvar="GRAPHATTACH_RETRIES",
            show_envvar=True,
            type=click.IntRange(0, 100),
            default=RetryPolicy().attempts,
            show_default=True,
            help="Retries of a failed request (network errors, 429, 5xx), each announced on stderr; "
            "a refused connection to this machine is not retried.",
        ),
        click.option(
            "--ca-bundle",
            envvar="GRAPHATTACH_CA_BUNDLE",
            show_envvar=True,
            default=None,
            help="CA certificate file to trust (a local server with --tls).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def common_options(f: Any) -> Any:
    return graph_options(output_options(f))


def target_options(f: Any) -> Any:
    options = [
        click.option("--message", "message_id", default=None, help="The message id."),
        click.option("--event", "event_id", default=None, help="The event id."),
        click.option("--user", default=None, help="userPrincipalName or id (default: the signed-in user, /me)."),
        click.option(
            "--folder",
            default=None,
            help="Mail folder of the message: an id or well-known name; nested child folders as a/b/c.",
        ),
        click.option(
            "--calendar",
            default=None,
            help='Calendar of the event: an id, or "default" for /calendar.',
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def make_target(
    message_id: str | None, event_id: str | None, user: str | None, folder: str | None, calendar: str | None
) -> Message | Event:
    if bool(message_id) == bool(event_id):
        raise click.UsageError("give exactly one of --message ID and --event ID")
    if message_id:
        if calendar:
            raise click.UsageError("--calendar goes with --event")
        folders = [p for p in folder.split("/") if p] if folder else None
        return Message(message_id, user=user, folder=folders)
    if folder:
        raise click.UsageError("--folder goes with --message")
    assert event_id is not None
    return Event(event_id, user=user, calendar=calendar)


def _settings(**kwargs: Any) -> ClientSettings:
    return ClientSettings(
        graph_url=kwargs.get("graph_url") or DEFAULT_GRAPH_URL,
        token=kwargs.get("token"),
        token_command=kwargs.get("token_command"),
        azure_client_id=kwargs.get("azure_client_id"),
        azure_tenant=kwargs.get("azure_tenant") or "organizations",
        as_json=kwargs["as_json"],
        quiet=kwargs["quiet"],
        ca_bundle=kwargs["ca_bundle"],
        retries=kwargs["retries"],
    )


def _attachment_line(attachment: Attachment) -> str:
    size = f"{attachment.size:,}" if attachment.size is not None else "?"
    kind = attachment.kind
    return f"{attachment.id}  {attachment.name or ''}  size {size}  {attachment.content_type or '-'}  {kind}"


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


# --- progress ---------------------------------------------------------------------------------------------


class PlainProgress:
    """One line per step on stderr, for logs and pipes."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()

    def __call__(self, progress: Progress) -> None:
        if not self.enabled:
            return
        percent = 100 * progress.done // progress.total if progress.total else 100
        with self._lock:
            click.echo(f"{progress.name}: {progress.done}/{progress.total} bytes ({percent}%)", err=True)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


class RichProgress:
    """A rich progress bar per file (bytes, rate, ETA) on a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            task = self._tasks.get(progress.name)
            if task is None:
                task = self._tasks[progress.name] = self._progress.add_task(progress.name, total=progress.total)
        self._progress.update(task, completed=progress.done)

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()


def progress_display(settings: ClientSettings) -> PlainProgress | RichProgress:
    if not settings.quiet and sys.stderr.isatty() and os.environ.get("TERM") != "dumb" and _has_rich():
        return RichProgress()
    return PlainProgress(enabled=not settings.quiet)


def _has_rich() -> bool:
    # graphattach-client[cli] and graphattach install rich; without it, progress is plain lines
    import importlib.util

    return importlib.util.find_spec("rich") is not None


# --- commands -----------------------------------------------------------------------------------------------


def register(cli: click.Group) -> None:
    """Add the client commands to ``cli``."""

    @cli.command(epilog=EXIT_CODES)
    @click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
    @target_options
    @click.option("--name", default=None, help="Attachment name (one file only; default: the file name).")
    @click.option("--content-type", default=None, help="MIME type (default: guessed from the name).")
    @click.option("--inline", is_flag=True, help="An inline attachment (with --content-id for cid: references).")
    @click.option("--content-id", default=None, help="Content-ID for <img src='cid:...'> (implies --inline).")
    @click.option("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, show_default=True, help="Bytes per upload PUT.")
    @click.option("--concurrency", type=click.IntRange(1, 16), default=4, show_default=True, help="Files at once.")
    @click.option("--restart-expired", is_flag=True, help="Start a new session if one expires.")
    @common_options
    def attach(
        files: tuple[Path, ...],
        message_id: str | None,
        event_id: str | None,
        user: str | None,
        folder: str | None,
        calendar: str | None,
        name: str | None,
        content_type: str | None,
        inline: bool,
        content_id: str | None,
        chunk_size: int,
        concurrency: int,
        restart_expired: bool,
        **common: Any,
    ) -> None:
        """Attach FILEs (any size up to 150 MB) to a message or an event."""
        settings = _settings(**common)
        target = make_target(message_id, event_id, user, folder, calendar)
        if len(files) > 1 and (name or content_id):
            raise click.UsageError("--name and --content-id apply to one file")
        if chunk_size <= 0:
            raise click.UsageError("--chunk-size must be positive")
        outcomes: list[tuple[Path, Attachment | None, ClientError | None]] = []
        with (
            settings.client(chunk_size=chunk_size, concurrency=concurrency) as client,
            progress_display(settings) as show,
        ):
            if len(files) == 1:
                try:
                    attachment = client.attach(
                        target,
                        files[0],
                        name=name,
                        content_type=content_type,
                        inline=inline,
                        content_id=content_id,
                        progress=show,
                        restart_expired=restart_expired,
                    )
                    outcomes.append((files[0], attachment, None))
                except ClientError as exc:
                    outcomes.append((files[0], None, exc))
            else:
                for result in client.attach_many(
                    target, list(files), concurrency=concurrency, progress=show, restart_expired=restart_expired
                ):
                    outcomes.append((Path(str(result.file)), result.attachment, result.error))
        _report(settings, outcomes)

    @cli.group(epilog=EXIT_CODES)
    def attachments() -> None:
        """List, read, download and remove attachments of a message or an event."""

    @attachments.command("ls")
    @target_options
    @common_options
    def ls(
        message_id: str | None,
        event_id: str | None,
        user: str | None,
        folder: str | None,
        calendar: str | None,
        **common: Any,
    ) -> None:
        """List the attachments (without their content)."""
        settings = _settings(**common)
        target = make_target(message_id, event_id, user, folder, calendar)
        with settings.client() as client:
            found = client.list_attachments(target)
        if settings.as_json:
            _print_json([a.to_json() for a in found])
            return
        for attachment in found:
            click.echo(_attachment_line(attachment))

    @attachments.command("get")
    @click.argument("attachment_id")
    @target_options
    @click.option("--select", default=None, help="Comma-separated properties ($select), e.g. name,size.")
    @common_options
    def get(
        attachment_id: str,
        message_id: str | None,
        event_id: str | None,
        user: str | None,
        folder: str | None,
        calendar: str | None,
        select: str | None,
        **common: Any,
    ) -> None:
        """Show one attachment's properties (contentBytes left out)."""
        settings = _settings(**common)
        target = make_target(message_id, event_id, user, folder, calendar)
        fields = [s.strip() for s in select.split(",") if s.strip()] if select else None
        with settings.client() as client:
            attachment = client.get_attachment(target, attachment_id, select=fields)
        if settings.as_json:
            _print_json(attachment.raw)
            return
        for key, value in attachment.raw.items():
            click.echo(f"{key}: {value}")

    @attachments.command("download")
    @click.argument("attachment_ids", nargs=-1, required=True)
    @target_options
    @click.option(
        "-o",
        "--output",
        type=click.Path(path_type=Path),
        default=Path("."),
        show_default=True,
        help="A file (one attachment) or a directory (files named after the attachments).",
    )
    @common_options
    def download(
        attachment_ids: tuple[str, ...],
        message_id: str | None,
        event_id: str | None,
        user: str | None,
        folder: str | None,
        calendar: str | None,
        output: Path,
        **common: Any,
    ) -> None:
        """Download attachments' raw bytes ($value), streamed to disk."""
        settings = _settings(**common)
        target = make_target(message_id, event_id, user, folder, calendar)
        if len(attachment_ids) > 1 and not output.is_dir():
            raise click.UsageError("several attachments need --output to be a directory")
        done: list[dict[str, Any]] = []
        with settings.client() as client:
            for attachment_id in attachment_ids:
                attachment = client.get_attachment(target, attachment_id, select=("id", "name", "contentType"))
                dest = output / os.path.basename(attachment.name or attachment_id) if output.is_dir() else output
                count = client.download(target, attachment, dest)
                done.append({"id": attachment_id, "path": str(dest), "bytes": count})
                if not settings.as_json:
                    click.echo(f"{dest}  {count:,} bytes")
        if settings.as_json:
            _print_json(done)

    @attachments.command("rm")
    @click.argument("attachment_ids", nargs=-1, required=True)
    @target_options
    @common_options
    def rm(
        attachment_ids: tuple[str, ...],
        message_id: str | None,
        event_id: str | None,
        user: str | None,
        folder: str | None,
        calendar: str | None,
        **common: Any,
    ) -> None:
        """Delete attachments."""
        settings = _settings(**common)
        target = make_target(message_id, event_id, user, folder, calendar)
        with settings.client() as client:
            for attachment_id in attachment_ids:
                client.delete_attachment(target, attachment_id)
                if not settings.as_json:
                    click.echo(f"deleted {attachment_id}")
        if settings.as_json:
            _print_json({"deleted": list(attachment_ids)})

    @cli.command(epilog=EXIT_CODES)
    @click.option("--subject", default=None, help="Subject.")
    @click.option("--to", "to", multiple=True, help="A recipient's address (repeat for more).")
    @click.option("--body", default=None, help="Body text.")
    @click.option("--user", default=None, help="userPrincipalName or id (default: the signed-in user, /me).")
    @common_options
    def draft(subject: str | None, to: tuple[str, ...], body: str | None, user: str | None, **common: Any) -> None:
        """Create a draft message in Drafts and print its id (for --message)."""
        settings = _settings(**common)
        with settings.client() as client:
            message = client.create_draft(subject=subject, to=list(to), body=body, user=user)
        if settings.as_json:
            _print_json({"id": message.id, "user": message.user})
        else:
            click.echo(message.id)

    @cli.command(epilog=EXIT_CODES)
    @click.option("--subject", required=True, help="Subject.")
    @click.option("--start", required=True, help="Start, e.g. 2026-12-01T10:00:00 (in --time-zone).")
    @click.option("--end", required=True, help="End, e.g. 2026-12-01T11:00:00 (in --time-zone).")
    @click.option("--time-zone", default="UTC", show_default=True, help="Time zone of --start and --end.")
    @click.option("--body", default=None, help="Body text.")
    @click.option("--user", default=None, help="userPrincipalName or id (default: the signed-in user, /me).")
    @click.option("--calendar", default=None, help="A calendar id (default: the user's default calendar).")
    @common_options
    def event(
        subject: str,
        start: str,
        end: str,
        time_zone: str,
        body: str | None,
        user: str | None,
        calendar: str | None,
        **common: Any,
    ) -> None:
        """Create an event and print its id (for --event)."""
        settings = _settings(**common)
        with settings.client() as client:
            created = client.create_event(
                subject=subject, start=start, end=end, time_zone=time_zone, body=body, user=user, calendar=calendar
            )
        if settings.as_json:
            _print_json({"id": created.id, "user": created.user})
        else:
            click.echo(created.id)

    @cli.command(epilog=EXIT_CODES)
    @click.argument("message_id")
    @click.option("--user", default=None, help="userPrincipalName or id (default: the signed-in user, /me).")
    @common_options
    def send(message_id: str, user: str | None, **common: Any) -> None:
        """Send a draft (it moves to Sent Items; recipients of this server find it in their Inbox)."""
        settings = _settings(**common)
        with settings.client() as client:
            client.send_draft(Message(message_id, user=user))
        if settings.as_json:
            _print_json({"sent": message_id})
        else:
            click.echo(f"sent {message_id}")

    @cli.group(epilog=EXIT_CODES)
    def upload() -> None:
        """Resume or cancel an upload session by its URL."""

    @upload.command("resume")
    @click.argument("upload_url")
    @click.argument("file", type=click.Path(path_type=Path))
    @click.option("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, show_default=True, help="Bytes per upload PUT.")
    @output_options
    def resume(upload_url: str, file: Path, chunk_size: int, **common: Any) -> None:
        """Continue an interrupted upload session with the same FILE (no token needed)."""
        settings = _settings(**common)
        with settings.client(needs_token=False, chunk_size=chunk_size) as client, progress_display(settings) as show:
            try:
                attachment = client.resume(upload_url, file, progress=show)
                outcome: tuple[Path, Attachment | None, ClientError | None] = (file, attachment, None)
            except ClientError as exc:
                outcome = (file, None, exc)
        _report(settings, [outcome])

    @upload.command("cancel")
    @click.argument("upload_url")
    @output_options
    def cancel(upload_url: str, **common: Any) -> None:
        """Cancel an upload session (DELETE on its URL; no token needed)."""
        settings = _settings(**common)
        with settings.client(needs_token=False) as client:
            client.cancel(upload_url)
        if settings.as_json:
            _print_json({"cancelled": upload_url})
        else:
            click.echo("cancelled")


def _report(settings: ClientSettings, outcomes: Sequence[tuple[Path, Attachment | None, ClientError | None]]) -> None:
    if settings.as_json:
        _print_json(
            [
                {"file": str(path), "ok": error is None}
                | ({"attachment": attachment.to_json()} if attachment else {})
                | ({"error": _error_json(error)} if error else {})
                for path, attachment, error in outcomes
            ]
        )
    else:
        for path, attachment, _ in outcomes:
            if attachment is not None:
                click.echo(f"{path}: attached  {_attachment_line(attachment)}")
    errors = [(path, error) for path, _, error in outcomes if error is not None]
    for path, error in errors:
        click.echo(f"graphattach: {path}: {error.one_line()}", err=True)
        if error.upload_url:
            click.echo(f"graphattach: resume with: graphattach upload resume '{error.upload_url}' {path}", err=True)
    if errors:
        sys.exit(exit_code(errors[0][1]))
