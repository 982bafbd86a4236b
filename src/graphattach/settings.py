"""Server settings: one immutable object built from the CLI flags or the environment."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from graphattach.domain import limits

Profile = Literal["outlook", "lenient"]

#: The in-memory blob store's default memory limit: three 150 MiB uploads, whole.
DEFAULT_MEMORY_LIMIT = 512 * 1024 * 1024

#: ``graphattach serve`` hands its settings to the server's worker processes in this variable.
ENV_VAR = "GRAPHATTACH_SETTINGS"


def default_data_dir() -> Path:
    """``$GRAPHATTACH_DATA_DIR``, else ``$XDG_DATA_HOME/graphattach``, else ``~/.local/share/graphattach``."""
    if env := os.environ.get("GRAPHATTACH_DATA_DIR"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "graphattach"


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8765
    data_dir: Path = field(default_factory=default_data_dir)
    in_memory: bool = False
    #: Blob bytes the in-memory blob store keeps in memory; past it they spill to a temporary
    #: directory (``--memory-limit``; None: no limit). Only ``memory:`` blob stores use it.
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT
    #: Scheme, host and port clients use to reach Graph (the service root is this + ``/v1.0``).
    #: Derived from host and port when not set.
    public_url: str | None = None
    #: Origin of upload URLs. By default ``localhost`` instead of ``127.0.0.1`` (or the reverse),
    #: so that SDKs that attach Graph tokens by host behave as against outlook.office.com.
    upload_origin: str | None = None
    profile: Profile = "outlook"
    #: Refuse unknown query options and body properties (``--loose`` turns it off).
    strict: bool = True
    tls: bool = False
    #: When set, the admin API (``/_graphattach``) requires this key in ``X-Graphattach-Admin-Key``.
    admin_key: str | None = None
    upload_session_lifetime: float = limits.DEFAULT_UPLOAD_SESSION_LIFETIME_SECONDS
    max_upload_chunk: int = limits.DEFAULT_MAX_UPLOAD_CHUNK
    max_request_body: int = limits.MAX_REQUEST_BODY
    #: A request body that sends no byte for this many seconds is answered 408 and its connection
    #: closed (0: wait forever). Frees an upload session's lock held by a stalled PUT.
    body_idle_timeout: float = 60.0
    #: Seconds between sweeps of expired sessions and orphaned bytes (0 disables the sweeper).
    sweep_interval: float = 60.0
    #: Real seconds after which the sweeper gives up a blob an insert announced but never
    #: committed (the insert's process died); never compared with the settable server clock.
    orphan_grace: float = 3600.0
    #: The client secret apps use with the token endpoint (default ``graphattach-secret``).
    client_secret: str | None = None
    #: The tenant id of a new store (an existing store keeps its own).
    tenant_id: str | None = None
    #: Create the demo tenant's users on first start.
    demo_tenant: bool = True
    #: A team config file: app registrations and users with their own credentials
    #: (``auth/team.py``; ``--config`` or ``$GRAPHATTACH_CONFIG``).
    config_file: str | None = None
    #: Metadata and blob store URLs (``sqlite:///path``, ``memory:``, ``file:///dir``...); derived
    #: from ``data_dir``/``in_memory`` when not set.
    store: str | None = None
    blobs: str | None = None
    #: Hosts (``*`` wildcards) besides loopback that change notifications may be sent to.
    notification_hosts: tuple[str, ...] = ()
    #: Accept self-signed (unverifiable) certificates of https notification receivers.
    notification_insecure_tls: bool = False
    #: Seconds between the notification dispatcher's looks at the outbox when nothing woke it.
    notification_poll_interval: float = 1.0
    #: Mint ids, GUIDs, request ids and upload URLs from a generator seeded with this (``--seed``):
    #: a scripted session repeats them exactly. None: random.
    seed: int | None = None
    #: Start the clock frozen at this instant (ISO 8601; ``--frozen-clock``), e.g. for repeatable timestamps.
    frozen_clock: str | None = None
    #: A seed data file (JSON or YAML: protocol/seed_data.py) the store is seeded with, and reset to.
    seed_data: str | None = None
    #: Requests the journal keeps (``/_graphattach/requests``); 0 keeps none.
    journal_size: int = 1000
    #: A JSON (or YAML) file of fault rules loaded at start (docs/faults.md).
    faults_file: str | None = None
    #: Outlook throttling: None (off), ``outlook``, or ``concurrency=2,requests=100/60,upload=20MB/60``.
    throttling: str | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def root_url(self) -> str:
        """Scheme, host and port of the Graph endpoint, without the version."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}"

    def service_root(self, version: str = "v1.0") -> str:
        return f"{self.root_url}/{version}"

    @property
    def upload_root(self) -> str:
        if self.upload_origin:
            return self.upload_origin.rstrip("/")
        root = self.root_url
        # A different host name for the same server: 127.0.0.1 <-> localhost.
        if "://127.0.0.1" in root:
            return root.replace("://127.0.0.1", "://localhost", 1)
        if "://localhost" in root:
            return root.replace("://localhost", "://127.0.0.1", 1)
        return root


def settings_to_env(settings: Settings) -> str:
    """The settings as the JSON that :func:`settings_from_env` reads back from ``$GRAPHATTACH_SETTINGS``."""
    values = asdict(settings)
    values["data_dir"] = str(settings.data_dir)
    return json.dumps(values)


def settings_from_env() -> Settings:
    """The settings ``graphattach serve`` put in ``$GRAPHATTACH_SETTINGS`` (defaults when unset)."""
    raw = os.environ.get(ENV_VAR)
    if not raw:
        return Settings()
    values: dict[str, Any] = json.loads(raw)
    values["data_dir"] = Path(values["data_dir"])
    values["notification_hosts"] = tuple(values.get("notification_hosts") or ())
    return Settings(**values)
