"""``graphattach serve``."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from graphattach.settings import ENV_VAR, Settings, default_data_dir, settings_to_env

T = TypeVar("T")

#: Defaults shown by ``serve --help``.
_DEFAULTS = Settings()


def _tls_files(data_dir: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``host``, ``127.0.0.1`` and ``localhost``, made once."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    cert_path, key_path = data_dir / "tls-cert.pem", data_dir / "tls-key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    data_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "graphattach local")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _prepare_store(settings: Settings) -> str:
    """Open the store once before the workers start: migrate, seed the demo tenant, bring upload
    sessions up to their blobs, read the tenant id."""
    if settings.in_memory:
        from graphattach.composition import new_tenant_id

        return new_tenant_id(settings)
    import asyncio

    from graphattach.composition import context_for
    from graphattach.services.uploads import recover_sessions

    async def prepare() -> str:
        async with context_for(settings) as ctx:
            # After a crash of the machine or the database, an upload session's row may lag
            # behind the ranges its blob holds: the blob is the journal.
            await recover_sessions(ctx)
            return ctx.tenant_id

    return asyncio.run(prepare())


def _prepare(settings: Settings) -> tuple[str, Path | None, Path | None]:
    """What serve does once before the server starts: the store's tenant id, and the TLS files."""
    tenant_id = _prepare_store(settings)
    cert = key = None
    if settings.tls:
        cert, key = _tls_files(settings.data_dir, settings.host)
    return tenant_id, cert, key


def _in_child(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a forked child process that exits after it; the result comes back pickled.

    The server's parent process lives as long as the server and its workers are forked from it:
    what the one-off preparation imports (storage, composition, cryptography...) would stay
    resident in both. On failure the child prints the traceback and the parent exits with status
    1, as the exception would have done here. Without fork (Windows), ``fn`` runs in this process.
    """
    import multiprocessing

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:
        return fn(*args)
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(send, fn, *args), name="graphattach-prepare")
    child.start()
    send.close()
    try:
        result: T = receive.recv()
    except EOFError:  # the child failed: it printed the traceback, unless a signal killed it
        child.join()
        if child.exitcode is not None and child.exitcode < 0:
            click.echo(f"graphattach: preparing the store was killed by signal {-child.exitcode}", err=True)
        sys.exit(1)
    finally:
        receive.close()
    child.join()
    return result


def _child_main(send: Any, fn: Callable[..., Any], *args: Any) -> None:
    try:
        send.send(fn(*args))
    except KeyboardInterrupt:  # the parent, interrupted too, reports it
        sys.exit(1)
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.exit(1)


def _check_faults_file(path: Path) -> Path:
    """The file's absolute path, after its rules parsed (a bad rule stops serve with its field)."""
    from graphattach.domain.faults import FaultRuleError
    from graphattach.protocol.faults import is_yaml_path, parse_rules_document, rules_document

    try:
        parse_rules_document(rules_document(path.read_text(encoding="utf-8"), yaml=is_yaml_path(str(path))))
    except (OSError, FaultRuleError) as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    return path.resolve()


def _check_throttling(spec: str) -> str | None:
    from graphattach.domain.throttling import ThrottlingSpecError, parse_throttling

    try:
        return None if parse_throttling(spec) is None else spec
    except ThrottlingSpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--throttling") from None


def _mib(count: int) -> str:
    return f"{count / (1 << 20):g} MiB"


def _parse_memory_limit(text: str) -> int | None:
    from graphattach.domain.limits import parse_size

    if text.strip().lower() in ("unlimited", "none"):
        return None
    try:
        return parse_size(text)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}, or 'unlimited'", param_hint="--memory-limit") from None


def _check_port(host: str, port: int) -> None:
    """Exit with a clear message when ``host:port`` cannot be listened on (another server has it).

    granian's workers bind with ``SO_REUSEPORT`` (so that they share the port), which would let a
    second ``graphattach serve`` on the same port start and take half the connections. A plain
    bind, which fails while any socket listens there, tells first.
    """
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        if os.name != "nt":  # TIME_WAIT connections of a server that just stopped do not count
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                message = (
                    f"port {port} on {host} is in use (another graphattach serve?): "
                    f"stop that server or choose another --port"
                )
            else:
                message = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            click.echo(f"graphattach: {message}", err=True)
            sys.exit(1)


def _own_command() -> str:
    """How to run this graphattach from a shell: ``graphattach`` when it is on PATH, else its path."""
    import shlex
    import shutil

    found = shutil.which("graphattach")
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if found and (argv0 is None or argv0.name != "graphattach" or Path(found).resolve() == argv0.resolve()):
        return "graphattach"
    if argv0 is not None and argv0.name == "graphattach" and argv0.exists():
        return shlex.quote(str(argv0.resolve()))
    return f"{shlex.quote(sys.executable)} -m graphattach"


def _has_uvloop() -> bool:
    import importlib.util

    return importlib.util.find_spec("uvloop") is not None


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option("--port", default=8765, show_default=True, type=int, help="Port to listen on.")
    @click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        default=None,
        help="Where metadata (SQLite) and attachment bytes live. [env var: GRAPHATTACH_DATA_DIR; default: ~/.local/share/graphattach]",
    )
    @click.option("--in-memory", is_flag=True, help="Keep nothing: in-memory stores.")
    @click.option(
        "--memory-limit",
        default="512MB",
        show_default=True,
        help="With --in-memory: attachment bytes kept in memory; past it they go to a temporary "
        "directory removed at exit. A size (512MB, 2GB; MB = MiB) or 'unlimited'.",
    )
    @click.option(
        "--profile",
        type=click.Choice(["outlook", "lenient"]),
        default="outlook",
        show_default=True,
        help="outlook: exactly the real service; lenient: bend where well-known clients need it.",
    )
    @click.option("--loose", is_flag=True, help="Ignore unknown query options and body properties.")
    @click.option("--public-url", default=None, help="Scheme://host:port clients use (behind a proxy).")
    @click.option("--upload-origin", default=None, help="Scheme://host:port of upload URLs.")
    @click.option("--tls", is_flag=True, help="Serve https with a generated self-signed certificate.")
    @click.option(
        "--admin-key",
        envvar="GRAPHATTACH_ADMIN_KEY",
        show_envvar=True,
        default=None,
        help="Require this key on the admin API (X-Graphattach-Admin-Key).",
    )
    @click.option(
        "--session-lifetime",
        type=float,
        default=_DEFAULTS.upload_session_lifetime,
        show_default=True,
        help="Upload session lifetime in seconds.",
    )
    @click.option(
        "--max-chunk",
        type=int,
        default=_DEFAULTS.max_upload_chunk,
        show_default=True,
        help="Largest upload PUT accepted, in bytes.",
    )
    @click.option(
        "--sweep-interval",
        type=float,
        default=_DEFAULTS.sweep_interval,
        show_default=True,
        help="Seconds between expiry sweeps (0: off).",
    )
    @click.option(
        "--body-timeout",
        type=float,
        default=_DEFAULTS.body_idle_timeout,
        show_default=True,
        help="Seconds a request body may stall before a 408 and a closed connection (0: never).",
    )
    @click.option(
        "--store",
        default=None,
        envvar="GRAPHATTACH_STORE",
        show_envvar=True,
        help="Metadata store URL (sqlite:///path, memory:, postgresql://...).",
    )
    @click.option(
        "--blobs",
        default=None,
        envvar="GRAPHATTACH_BLOBS",
        show_envvar=True,
        help="Blob store URL (file:///dir, memory:, s3://bucket/prefix).",
    )
    @click.option(
        "--s3-endpoint",
        default=None,
        envvar="AWS_ENDPOINT_URL_S3",
        show_envvar=True,
        help="Endpoint of an S3-compatible store for --blobs s3://... (MinIO, Ceph...); AWS when unset.",
    )
    @click.option("--workers", type=int, default=1, show_default=True, help="Server worker processes.")
    @click.option(
        "--server",
        "server_impl",
        type=click.Choice(["granian", "uvicorn"]),
        default="granian",
        show_default=True,
        help="ASGI server.",
    )
    @click.option("--no-demo", is_flag=True, help="Do not create the demo tenant's users.")
    @click.option(
        "--notification-hosts",
        default="",
        envvar="GRAPHATTACH_NOTIFICATION_HOSTS",
        help="Hosts besides loopback that change notifications may be sent to (comma-separated, * wildcards).",
    )
    @click.option(
        "--notification-insecure-tls",
        is_flag=True,
        help="Accept self-signed certificates of https notification receivers.",
    )
    @click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="GRAPHATTACH_CONFIG",
        default=None,
        help="Team config (JSON): app registrations and users with their own credentials (README).",
    )
    @click.option(
        "--seed",
        type=int,
        default=None,
        help="Mint ids, request ids and upload URLs from this seed: a scripted session repeats them exactly.",
    )
    @click.option(
        "--frozen-clock",
        default=None,
        metavar="ISO8601",
        help="Start with the clock stopped at this instant (e.g. 2026-01-01T09:00:00Z); the admin API moves it.",
    )
    @click.option(
        "--seed-data",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Seed a new store (and every reset) with the users, folders, messages and events of this JSON or YAML file.",
    )
    @click.option(
        "--journal-size",
        type=click.IntRange(min=0),
        default=1000,
        show_default=True,
        help="Requests the journal keeps in memory (GET /_graphattach/requests); 0 keeps none.",
    )
    @click.option(
        "--faults",
        "faults_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="Fault rules to load at start: a JSON (or YAML) list of rules, see docs/faults.md.",
    )
    @click.option(
        "--throttling",
        default=None,
        help='Outlook throttling per app id + mailbox: outlook, or e.g. "concurrency=2,requests=100/60,upload=20MB/60".',
    )
    def serve(
        host: str,
        port: int,
        data_dir: Path | None,
        in_memory: bool,
        memory_limit: str,
        profile: str,
        loose: bool,
        public_url: str | None,
        upload_origin: str | None,
        tls: bool,
        admin_key: str | None,
        session_lifetime: float,
        max_chunk: int,
        sweep_interval: float,
        body_timeout: float,
        store: str | None,
        blobs: str | None,
        s3_endpoint: str | None,
        workers: int,
        server_impl: str,
        no_demo: bool,
        notification_hosts: str,
        notification_insecure_tls: bool,
        config_file: Path | None,
        seed: int | None,
        frozen_clock: str | None,
        seed_data: Path | None,
        journal_size: int,
        faults_file: Path | None,
        throttling: str | None,
    ) -> None:
        """Start the Graph server (embedded SQLite + files under --data-dir by default)."""
        if s3_endpoint:  # read by S3BlobStore where the store is opened: the preparing child, the workers
            os.environ["AWS_ENDPOINT_URL_S3"] = s3_endpoint

        settings = Settings(
            host=host,
            port=port,
            data_dir=(data_dir or default_data_dir()).expanduser().resolve(),
            in_memory=in_memory,
            memory_limit=_parse_memory_limit(memory_limit),
            public_url=public_url,
            upload_origin=upload_origin,
            profile=profile,  # type: ignore[arg-type]
            strict=not loose,
            tls=tls,
            admin_key=admin_key,
            store=store,
            blobs=blobs,
            demo_tenant=not no_demo,
            notification_hosts=tuple(h.strip() for h in notification_hosts.split(",") if h.strip()),
            notification_insecure_tls=notification_insecure_tls,
            config_file=str(config_file.expanduser().resolve()) if config_file else None,
            seed=seed,
            frozen_clock=frozen_clock,
            journal_size=journal_size,
            seed_data=str(seed_data.expanduser().resolve()) if seed_data else None,
            client_secret=os.environ.get("GRAPHATTACH_CLIENT_SECRET"),
            upload_session_lifetime=session_lifetime,
            max_upload_chunk=max_chunk,
            sweep_interval=sweep_interval,
            body_idle_timeout=body_timeout,
            faults_file=str(_check_faults_file(faults_file)) if faults_file is not None else None,
            throttling=_check_throttling(throttling) if throttling is not None else None,
        )
        if frozen_clock is not None:
            from datetime import datetime

            try:
                datetime.fromisoformat(frozen_clock)
            except ValueError:
                raise click.BadParameter(
                    f"{frozen_clock!r} is not an ISO 8601 date and time (e.g. 2026-01-01T09:00:00Z)",
                    param_hint="--frozen-clock",
                ) from None
        if seed_data is not None:
            from graphattach.protocol.seed_data import SeedDataError
            from graphattach.services.seed_data import read_plan

            try:
                read_plan(seed_data)
            except SeedDataError as exc:
                raise click.BadParameter(str(exc), param_hint="--seed-data") from None
        if in_memory and workers > 1:
            raise click.UsageError("--in-memory keeps state in one process: use --workers 1.")
        if settings.config_file:
            from graphattach.auth.team import ConfigError, load_team_config

            try:
                load_team_config(settings.config_file)  # refuse a wrong file before anything starts
            except ConfigError as exc:
                raise click.UsageError(str(exc)) from None
        _check_port(host, port)
        tenant_id, cert, key = _in_child(_prepare, settings)
        settings = dataclasses.replace(settings, tenant_id=tenant_id)
        os.environ[ENV_VAR] = settings_to_env(settings)

        def banner() -> None:
            where = "in memory (nothing is kept)" if in_memory else str(settings.data_dir)
            if in_memory and settings.memory_limit is not None:
                where += f"; bytes past {_mib(settings.memory_limit)} go to a temporary directory"
            graph_url = settings.service_root("v1.0")
            click.echo(f"graphattach serving Microsoft Graph at {graph_url} (and /beta)")
            click.echo(f"  upload origin: {settings.upload_root}   profile: {profile}   data: {where}")
            click.echo(f"  web UI:        {settings.root_url}/{'  (asks for the admin key)' if admin_key else ''}")
            if settings.faults_file or settings.throttling:
                click.echo(
                    f"  fault rules:   {settings.faults_file or 'none'}   throttling: {settings.throttling or 'off'}"
                )
            if tls:
                click.echo(f"  TLS certificate (trust it in clients): {cert}")
            default_url = graph_url == "http://127.0.0.1:8765/v1.0"
            click.echo(
                f"  get a token:   {_own_command()} token --user adele@contoso.onmicrosoft.com"
                + ("" if default_url else f" --graph-url {graph_url}")
            )
            if not default_url:
                click.echo(f"  other commands: export GRAPHATTACH_GRAPH_URL={graph_url}")
            click.echo(f"  tenant id:     {tenant_id}")
            sys.stdout.flush()

        if server_impl == "uvicorn":
            banner()
            import uvicorn

            uvicorn.run(
                "graphattach.api.asgi:create_app_from_env",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level="warning",
                ssl_certfile=str(cert) if cert else None,
                ssl_keyfile=str(key) if key else None,
                timeout_keep_alive=30,
            )
            return
        from granian import Granian
        from granian.constants import HTTPModes, Interfaces, Loops

        server = Granian(
            "graphattach.api.asgi:create_app_from_env",
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            factory=True,
            workers=workers,
            http=HTTPModes.http1,
            log_level="warning",  # type: ignore[arg-type]
            ssl_cert=cert,
            ssl_key=key,
            backpressure=None,
            # uvloop answers more small requests per second than asyncio's loop (upload PUTs,
            # GETs); the figures are in bench/README.md.
            loop=Loops.uvloop if _has_uvloop() else Loops.asyncio,
        )
        if hasattr(server, "on_startup"):  # called once the socket is bound, before the workers start (not in 2.0)
            server.on_startup(banner)
        else:
            banner()
        server.serve()
