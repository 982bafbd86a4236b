"""``GraphServer``: the real graphattach app on a real socket, in this process, for tests.

    from graphattach.testing import GraphServer

    with GraphServer() as graph:
        token = graph.token("adele@contoso.onmicrosoft.com")
        httpx.get(f"{graph.url}/me/messages", headers={"Authorization": f"Bearer {token}"})
        graph.clock.advance(3600)
        graph.reset()

The server runs uvicorn on a thread of its own with its own event loop, on a free port of
127.0.0.1, on in-memory stores unless ``data_dir`` is given. Everything else goes through the
admin API (``/_graphattach``), so ``GraphServer.connect(url)`` offers the same methods for a
server started elsewhere (``graphattach serve``, a container).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import httpx

from graphattach.testing.records import ItemInfo, RequestRecord, UserInfo

if TYPE_CHECKING:
    from graphattach.settings import Settings

ADELE = "adele@contoso.onmicrosoft.com"
ALEX = "alex@contoso.onmicrosoft.com"
MEGAN = "megan@contoso.onmicrosoft.com"
#: The demo tenant's users (password ``graphattach`` for the token endpoint's password grant).
DEMO_USERS = (ADELE, ALEX, MEGAN)
#: The app id of the tokens ``GraphServer`` mints for its own helpers (``send_mail``): the journal
#: and the permissions report tell them apart from the app under test.
HELPER_APP_ID = "6a7e5f4c-0d1b-4c2e-9f3a-7b8c9d0e1f2a"
#: The longest token lifetime the admin API mints (one year and a day, as ``api/admin.py``).
MAX_TOKEN_LIFETIME = 366 * 86400
#: The client secret of the token endpoint (client credentials grant), unless the server sets its own.
CLIENT_SECRET = "graphattach-secret"


class GraphServerError(RuntimeError):
    """The admin API refused a call, or the server could not start."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ServerClock:
    """The server's clock: token lifetimes, upload session expiry and every timestamp follow it."""

    def __init__(self, server: GraphServer) -> None:
        self._server = server

    def _post(self, body: dict[str, Any]) -> datetime:
        self._server._clock_moved()
        return _parse_now(self._server._admin("POST", "/clock", json=body))

    def now(self) -> datetime:
        return _parse_now(self._server._admin("GET", "/clock"))

    @property
    def frozen(self) -> bool:
        return bool(self._server._admin("GET", "/clock")["frozen"])

    def advance(
        self, seconds: float | timedelta = 0, *, minutes: float = 0, hours: float = 0, days: float = 0
    ) -> datetime:
        """Move forward; returns the new server time."""
        total = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        total += minutes * 60 + hours * 3600 + days * 86400
        return self._post({"advanceSeconds": total})

    def set(self, when: datetime | str, *, frozen: bool | None = None) -> datetime:
        """Jump to ``when`` (naive means UTC); ``frozen=True`` stops the clock there."""
        value = when if isinstance(when, str) else when.isoformat()
        body: dict[str, Any] = {"set": value}
        if frozen is not None:
            body["frozen"] = frozen
        return self._post(body)

    def freeze(self) -> datetime:
        """Stop the clock where it is (timestamps then repeat from run to run)."""
        return self._post({"frozen": True})

    def unfreeze(self) -> datetime:
        return self._post({"frozen": False})

    def reset(self) -> None:
        """Back to the wall clock (or to the instant the server was started frozen at)."""
        self._server._clock_moved()
        self._server._admin("DELETE", "/clock")


#: What ``faults`` arguments accept: one rule (a dict), several (a list, or ``{"rules": [...]}``), or
#: the path of a JSON or YAML rules file, as ``graphattach serve --faults FILE`` reads.
FaultRules = Mapping[str, Any] | Iterable[Mapping[str, Any]] | str | Path


def fault_rules(rules: FaultRules) -> list[dict[str, Any]]:
    """``rules`` as a list of rule objects (a file is read here, so a connected server gets them too)."""
    if isinstance(rules, (str, Path)):
        from graphattach.protocol.faults import is_yaml_path, rules_document

        path = Path(rules).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise GraphServerError(f"fault rules file {path}: {exc.strerror or exc}") from None
        from graphattach.domain.faults import FaultRuleError

        try:
            value = rules_document(text, yaml=is_yaml_path(str(path)))
        except FaultRuleError as exc:
            raise GraphServerError(f"fault rules file {path}: {exc.message}") from None
        rules = value["rules"] if isinstance(value, dict) and "rules" in value else value
        if not isinstance(rules, list):
            raise GraphServerError(f'fault rules file {path}: must be a list of rules or {{"rules": [...]}}')
    if isinstance(rules, Mapping):
        return list(rules["rules"]) if "rules" in rules else [dict(rules)]
    return [dict(rule) for rule in rules]


class ServerFaults:
    """The server's fault rules (docs/faults.md): ``add``, ``list``, ``remove``, ``clear``.

    A reset removes every rule but those the server was given at start (``GraphServer(faults=...)``,
    ``--graphattach-faults``), which it installs again with fresh counters."""

    def __init__(self, server: GraphServer) -> None:
        self._server = server

    def add(
        self,
        rules: FaultRules | None = None,
        /,
        *,
        match: Mapping[str, Any] | None = None,
        action: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Install rules: ``add({"match": ..., "action": ...})``, a list of them, a rules file, or
        ``add(match={...}, action={...})``. Returns them as the server lists them (with ``id``)."""
        if rules is None:
            if action is None:
                raise TypeError("give rules, or action= (and match=)")
            rules = {"match": dict(match or {}), "action": dict(action)}
        elif match is not None or action is not None:
            raise TypeError("give rules, or match= and action=, not both")
        body = fault_rules(rules)
        if not body:
            return []
        added: list[dict[str, Any]] = self._server._admin("POST", "/faults", json={"rules": body})["value"]
        return added

    def list(self) -> list[dict[str, Any]]:
        """Every rule, with how many requests it ``matched`` and ``fired`` on."""
        found: list[dict[str, Any]] = self._server._admin("GET", "/faults")["value"]
        return found

    def remove(self, rule_id: str) -> None:
        self._server._admin("DELETE", f"/faults/{rule_id}")

    def clear(self) -> None:
        """Remove every rule (those given at start too, until the next reset)."""
        self._server._admin("DELETE", "/faults")


class ServerThrottling:
    """Outlook's per-app, per-mailbox limits (docs/faults.md, *Outlook throttling*): ``set``, ``off``,
    ``state`` and the Retry-After ``violations``. A reset restarts the counters and goes back to the
    limits the server was started with (``GraphServer(throttling=...)``; off without)."""

    def __init__(self, server: GraphServer) -> None:
        self._server = server

    def set(self, limits: str | Mapping[str, Any] = "outlook") -> dict[str, Any]:
        """``"outlook"``, a spec (``"concurrency=2,requests=100/60,upload=20MB/60"``), ``"off"``, or a
        dict of those keys. Returns the new state; counters and violations restart."""
        if isinstance(limits, str) and limits.strip().lower() in ("off", "none", ""):
            self.off()
            return self.state()
        body = {"spec": limits} if isinstance(limits, str) else dict(limits)
        state: dict[str, Any] = self._server._admin("POST", "/throttling", json=body)
        return state

    def off(self) -> None:
        self._server._admin("DELETE", "/throttling")

    def state(self) -> dict[str, Any]:
        """``{"enabled", "limits", "inFlight", "violations"}`` as ``GET /_graphattach/throttling`` gives it."""
        state: dict[str, Any] = self._server._admin("GET", "/throttling")
        return state

    @property
    def limits(self) -> dict[str, Any] | None:
        """The limits in force (``concurrency``, ``requests``, ``upload``), None when off."""
        limits: dict[str, Any] | None = self.state()["limits"]
        return limits

    @property
    def violations(self) -> list[dict[str, Any]]:
        """Requests that came back before their ``Retry-After`` had passed."""
        found: list[dict[str, Any]] = self.state()["violations"]
        return found


def _check_rules(rules: list[dict[str, Any]]) -> None:
    """The server's own check of fault rules, before it starts: the error names the field."""
    from graphattach.domain.faults import FaultRuleError
    from graphattach.protocol.faults import parse_rules_document

    try:
        parse_rules_document(rules)
    except FaultRuleError as exc:
        raise GraphServerError(f"Invalid fault rule: '{exc.field}' {exc.message}.", 400, "BadRequest") from None


def _parse_now(body: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(body["now"])


class _LoopThread:
    """uvicorn serving ``settings`` on ``sock`` in a thread with its own event loop."""

    def __init__(self, settings: Settings, sock: socket.socket, ssl: tuple[Path, Path] | None) -> None:
        self.settings = settings
        self.sock = sock
        self.ssl = ssl
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: Any = None
        self.ctx: Any = None
        self.app: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"graphattach-{settings.port}", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start(); SystemExit is how uvicorn reports startup failure
            self.error = exc

    async def _serve(self) -> None:
        import uvicorn

        from graphattach.api.app import build_app
        from graphattach.composition import close_context, open_context

        self.loop = asyncio.get_running_loop()
        self.ctx = await open_context(self.settings)
        try:
            self.app = build_app(self.ctx)
            config = uvicorn.Config(
                self.app,
                lifespan="on",
                log_level="warning",
                access_log=False,
                timeout_keep_alive=30,
                # a test server stops at once: no grace period for connections left open
                timeout_graceful_shutdown=1,
                ssl_certfile=str(self.ssl[0]) if self.ssl else None,
                ssl_keyfile=str(self.ssl[1]) if self.ssl else None,
            )
            self.server = uvicorn.Server(config)
            await self.server.serve(sockets=[self.sock])
        finally:
            await close_context(self.ctx)

    def start(self, timeout: float) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not (self.server is not None and self.server.started):
            if not self.thread.is_alive():
                raise GraphServerError(f"graphattach did not start: {self.error!r}") from self.error
            if time.monotonic() > deadline:
                self.stop()
                raise GraphServerError(f"graphattach did not start within {timeout} s")
            time.sleep(0.001)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(30)


class GraphServer:
    """A graphattach server for tests: in this process (``GraphServer(...)``, then ``start()`` or
    ``with``), or one running elsewhere (``GraphServer.connect(url)``).

    ``profile`` is ``outlook`` (exactly the real service) or ``lenient``; ``data_dir`` keeps the
    data in SQLite + files there (default: in memory); ``seed`` makes ids, request ids and upload
    URLs repeat from run to run; ``seed_data`` a JSON or YAML file of users, folders, messages and
    events that every reset restores; ``frozen_clock`` starts the clock stopped at that instant;
    ``faults`` fault rules (a rule, a list, or a JSON/YAML rules file) the server starts with and
    every reset installs again; ``throttling`` Outlook's limits (``outlook`` or a spec such as
    ``concurrency=2,requests=100/60``; docs/faults.md), which every reset goes back to;
    ``tls`` serves https with a self-signed certificate (``ca_bundle``). Any other keyword is a
    field of ``graphattach.settings.Settings`` (``session_lifetime`` → ``upload_session_lifetime``).
    """

    def __init__(
        self,
        *,
        profile: Literal["outlook", "lenient"] = "outlook",
        data_dir: str | Path | None = None,
        seed: int | None = None,
        frozen_clock: datetime | str | None = None,
        seed_data: str | Path | None = None,
        admin_key: str | None = None,
        faults: FaultRules | None = None,
        throttling: str | None = None,
        demo_tenant: bool = True,
        strict: bool = True,
        tls: bool = False,
        journal_size: int = 1000,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout: float = 30.0,
        **settings: Any,
    ) -> None:
        if "session_lifetime" in settings:
            settings["upload_session_lifetime"] = settings.pop("session_lifetime")
        if isinstance(frozen_clock, datetime):
            frozen_clock = frozen_clock.isoformat()
        self._options: dict[str, Any] = {
            "profile": profile,
            "seed": seed,
            "frozen_clock": frozen_clock,
            "seed_data": str(Path(seed_data).expanduser().resolve()) if seed_data is not None else None,
            "admin_key": admin_key,
            "throttling": throttling,
            "demo_tenant": demo_tenant,
            "strict": strict,
            "tls": tls,
            "journal_size": journal_size,
            "host": host,
            **settings,
        }
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._port = port
        self._start_timeout = start_timeout
        self._admin_key = admin_key
        self._external = False
        self._thread: _LoopThread | None = None
        self._http: httpx.Client | None = None
        self._info: dict[str, Any] = {}
        self._root = ""
        self._verify: Any = True
        self._clock_epoch = 0
        self._tokens: dict[Any, tuple[str, int, float]] = {}
        self._identities: dict[str, tuple[int, tuple[str, str, str]]] = {}
        self._temp_dir: Any = None
        #: Rules every reset installs again (``faults=``), as JSON objects.
        self._start_faults: list[dict[str, Any]] = fault_rules(faults) if faults is not None else []
        _check_rules(self._start_faults)
        #: Limits every reset sets again on a connected server (an in-process one has them as its
        #: start setting, which its reset goes back to by itself).
        self._start_throttling: str | None = None
        self.clock = ServerClock(self)
        self.faults = ServerFaults(self)
        self.throttling = ServerThrottling(self)

    # lifecycle ------------------------------------------------------------------------------------

    @classmethod
    def connect(cls, url: str, admin_key: str | None = None, *, verify: Any = True) -> GraphServer:
        """The same API for a server running elsewhere, through its admin API only.

        ``url`` is its root (``http://127.0.0.1:8765``) or service root (``…/v1.0``); ``verify`` is
        passed to httpx (a CA bundle path for a self-signed ``--tls`` server)."""
        server = cls(admin_key=admin_key)
        server._external = True
        root = url.rstrip("/")
        for suffix in ("/v1.0", "/beta"):
            if root.endswith(suffix):
                root = root[: -len(suffix)]
        server._verify = verify
        server._attach(root)
        return server

    @property
    def external(self) -> bool:
        """True for ``connect()``: this object did not start the server and will not stop it."""
        return self._external

    @property
    def running(self) -> bool:
        return self._http is not None

    def start(self) -> GraphServer:
        """Start serving (a no-op when already running). Returns self."""
        if self._http is not None:
            return self
        if self._external:
            raise GraphServerError("a connected server cannot be started again; connect() anew")
        from graphattach.settings import Settings

        if self._options.get("seed_data"):
            from graphattach.services.seed_data import read_plan

            read_plan(self._options["seed_data"])  # a SeedDataError here names the file, place and problem
        family = socket.AF_INET6 if ":" in self._options["host"] else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
        # without it every response waits ~40 ms for the client's delayed ACK (Nagle).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._options["host"], self._port))
        sock.listen(128)
        sock.setblocking(False)
        port = sock.getsockname()[1]
        options = dict(self._options)
        if self._data_dir is None:
            options.update(in_memory=True)
            if options.get("tls"):
                import tempfile

                self._temp_dir = tempfile.TemporaryDirectory(prefix="graphattach-tls-")
                options["data_dir"] = Path(self._temp_dir.name)
        else:
            options["data_dir"] = self._data_dir.expanduser().resolve()
        settings = Settings(port=port, **options)
        cert: tuple[Path, Path] | None = None
        if settings.tls:
            from graphattach.cli.server import _tls_files

            cert = _tls_files(Path(settings.data_dir), settings.host)
            self._verify = str(cert[0])
        self._thread = _LoopThread(settings, sock, cert)
        try:
            self._thread.start(self._start_timeout)
        except BaseException:
            sock.close()
            self._thread = None
            raise
        self._attach(settings.root_url)
        self._install_start_faults()
        return self

    def _install_start_faults(self) -> None:
        if self._start_faults:
            self._admin("POST", "/faults", json={"rules": self._start_faults})

    def stop(self) -> None:
        """Stop serving (in-process) or let go of the connection (connected). Idempotent."""
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        if self._temp_dir is not None:
            self._temp_dir.cleanup()
            self._temp_dir = None
        self._tokens.clear()
        self._identities.clear()

    def __enter__(self) -> GraphServer:
        return self.start() if not self._external else self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def _client_verify(self) -> Any:
        # Plain http needs no certificates: loading the default CA bundle costs 0.1-0.5 s per client.
        return self._verify if self._root.startswith("https://") else False

    def _attach(self, root: str) -> None:
        headers = {"X-Graphattach-Admin-Key": self._admin_key} if self._admin_key else {}
        self._root = root
        self._http = httpx.Client(timeout=60, headers=headers, verify=self._client_verify)
        try:
            self._info = self._admin("GET", "/info")
        except httpx.HTTPError as exc:
            self._http.close()
            self._http = None
            raise GraphServerError(f"no graphattach server answers at {root}: {exc}") from exc

    # where it is -------------------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        """Scheme, host and port (``http://127.0.0.1:PORT``): the admin API and the token endpoint live here."""
        self._require()
        return self._root

    @property
    def url(self) -> str:
        """The Graph service root, ``http://127.0.0.1:PORT/v1.0``."""
        return str(self._require()["graphUrl"])

    @property
    def beta_url(self) -> str:
        return str(self._require()["betaUrl"])

    @property
    def upload_origin(self) -> str:
        """Scheme, host and port of upload URLs (``localhost`` for ``127.0.0.1``, as Outlook's own host differs)."""
        return str(self._require()["uploadOrigin"])

    @property
    def tenant_id(self) -> str:
        return str(self._require()["tenantId"])

    @property
    def token_endpoint(self) -> str:
        """``{root}/{tenant}/oauth2/v2.0/token``: client credentials (secret ``graphattach-secret``) or password grant."""
        return str(self._require()["tokenEndpoint"])

    @property
    def authority(self) -> str:
        """``{root}/{tenant}``: the authority for msal and azure-identity."""
        return f"{self._root}/{self.tenant_id}"

    @property
    def profile(self) -> str:
        return str(self._require()["profile"])

    @property
    def ca_bundle(self) -> str | None:
        """The self-signed certificate of a ``tls=True`` server (for ``verify=`` / ``SSL_CERT_FILE``)."""
        return self._verify if isinstance(self._verify, str) else None

    def info(self) -> dict[str, Any]:
        """``GET /_graphattach/info`` as it is now (version, stores, server time...)."""
        found: dict[str, Any] = self._admin("GET", "/info")
        return found

    def _require(self) -> dict[str, Any]:
        if self._http is None:
            raise GraphServerError("the server is not running: start() it or use it in a with block")
        return self._info

    # the admin API -----------------------------------------------------------------------------------

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._http is None:
            raise GraphServerError("the server is not running: start() it or use it in a with block")
        response = self._http.request(method, f"{self._root}/_graphattach{path}", **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                message, code = f"{response.status_code} {error['code']}: {error['message']}", error["code"]
            except (ValueError, KeyError, TypeError):
                message, code = f"HTTP {response.status_code}: {response.text[:300]}", None
            raise GraphServerError(f"{method} /_graphattach{path}: {message}", response.status_code, code)
        return response.json() if response.content else None

    def _clock_moved(self) -> None:
        self._clock_epoch += 1

    # tokens ------------------------------------------------------------------------------------------

    def token(
        self,
        user: str = ADELE,
        scopes: str | Iterable[str] | None = None,
        *,
        lifetime: int = 3600,
        app_id: str | None = None,
    ) -> str:
        """A delegated bearer token for ``user`` (UPN or id); without ``scopes``, every mail, calendar
        and user scope.

        In-process, the token is signed in the calling thread with the server's key and clock, as
        ``POST /_graphattach/token`` would (so it is no request and not in the journal); a connected
        server mints it through that endpoint."""
        minted = self._mint_here(user, scopes, lifetime, app_id)
        if minted is not None:
            return minted
        body: dict[str, Any] = {"user": user, "lifetime": lifetime}
        if scopes is not None:
            body["scopes"] = scopes if isinstance(scopes, str) else list(scopes)
        if app_id is not None:
            body["appId"] = app_id
        return str(self._admin("POST", "/token", json=body)["access_token"])

    def app_token(
        self, roles: str | Iterable[str] | None = None, *, lifetime: int = 3600, app_id: str | None = None
    ) -> str:
        """An application bearer token; without ``roles``, Mail.ReadWrite, Mail.Send, Calendars.ReadWrite,
        User.Read.All (in-process, signed in the calling thread as ``token`` is)."""
        minted = self._mint_here(None, roles, lifetime, app_id)
        if minted is not None:
            return minted
        body: dict[str, Any] = {"app": True, "lifetime": lifetime}
        if roles is not None:
            body["roles"] = roles if isinstance(roles, str) else list(roles)
        if app_id is not None:
            body["appId"] = app_id
        return str(self._admin("POST", "/token", json=body)["access_token"])

    def _mint_here(self, user: str | None, names: Any, lifetime: Any, app_id: str | None) -> str | None:
        """A token signed in this thread (in-process servers), or None to ask the admin API: also
        for input it would refuse, so that the refusal is the server's own."""
        thread = self._thread
        if thread is None or thread.ctx is None or self._http is None:
            return None
        if isinstance(lifetime, bool) or not isinstance(lifetime, int) or not 0 < lifetime <= MAX_TOKEN_LIFETIME:
            return None
        if names is not None and not isinstance(names, str):
            names = list(names)
            if not all(isinstance(name, str) for name in names):
                return None
        from graphattach.auth.permissions import DEFAULT_APP_ROLES, DEFAULT_DELEGATED_SCOPES
        from graphattach.auth.tokens import ADMIN_APP_ID, CLI_APP_ID
        from graphattach.domain import ids

        ctx = thread.ctx
        default = DEFAULT_APP_ROLES if user is None else DEFAULT_DELEGATED_SCOPES
        chosen = (
            list(default) if names is None else names.replace(",", " ").split() if isinstance(names, str) else names
        )
        identity = self._identity(user) if user is not None else None
        if user is not None and identity is None:
            return None  # the admin API answers 404 ErrorInvalidUser
        now = ctx.clock.now().timestamp()
        # The admin API's id stream, as POST /_graphattach/token mints from (the token's ``uti``).
        with ids.minting_from(ctx.admin_ids):
            if identity is None:
                token: str = ctx.tokens.mint_app(
                    roles=chosen, app_id=app_id or ADMIN_APP_ID, lifetime=lifetime, now=now
                )
                return token
            token = ctx.tokens.mint_delegated(
                user_id=identity[0],
                upn=identity[1],
                name=identity[2],
                scopes=chosen,
                lifetime=lifetime,
                app_id=app_id or CLI_APP_ID,
                now=now,
            )
            return token

    def _identity(self, user: str) -> tuple[str, str, str] | None:
        """(id, userPrincipalName, display name) of ``user``, cached while the store's users stay
        the same (a store that cannot say so is asked every time, on the server's loop)."""
        thread = self._thread
        assert thread is not None and thread.loop is not None
        ctx = thread.ctx
        version = getattr(ctx.metadata, "users_version", None)
        cached = self._identities.get(user)
        if version is not None and cached is not None and cached[0] == version:
            return cached[1]
        from graphattach.services.users import find_user

        found = asyncio.run_coroutine_threadsafe(find_user(ctx, user), thread.loop).result()
        if found is None:
            return None
        identity = (found.id, found.user_principal_name, found.display_name)
        if version is not None:
            # ``version`` was read before the lookup: a change meanwhile only makes the entry stale.
            self._identities[user] = (version, identity)
        return identity

    def _current_token(self, user: str | None, scopes: Any, roles: Any, app_id: str | None = None) -> str:
        """A cached token, minted again when the clock was moved through this object or after 50 minutes."""
        key = (user, str(scopes), str(roles), app_id)
        cached = self._tokens.get(key)
        if cached is not None and cached[1] == self._clock_epoch and time.monotonic() - cached[2] < 3000:
            return cached[0]
        token = self.app_token(roles, app_id=app_id) if user is None else self.token(user, scopes, app_id=app_id)
        self._tokens[key] = (token, self._clock_epoch, time.monotonic())
        return token

    def bearer(self, user: str | None = ADELE, scopes: Any = None, *, roles: Any = None) -> str:
        """A valid token for ``user`` (``None``: an app token with ``roles``), reused while valid."""
        return self._current_token(user, scopes, roles)

    # users -------------------------------------------------------------------------------------------

    def add_user(
        self,
        upn: str,
        name: str | None = None,
        *,
        password: str | None = None,
        max_message_size: int | None = None,
        id: str | None = None,
    ) -> UserInfo:
        """A new user with a mailbox (well-known folders) and a calendar. A reset removes it."""
        body: dict[str, Any] = {"userPrincipalName": upn, "displayName": name, "password": password, "id": id}
        if max_message_size is not None:
            body["maxMessageSize"] = max_message_size
        return UserInfo.from_json(self._admin("POST", "/users", json=body))

    def users(self) -> list[UserInfo]:
        return [UserInfo.from_json(u) for u in self._admin("GET", "/users")["value"]]

    def user(self, upn_or_id: str) -> UserInfo:
        for user in self.users():
            if upn_or_id.lower() in (user.upn.lower(), user.id.lower()):
                return user
        raise KeyError(upn_or_id)

    # state -------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Every mailbox, upload session, rule and journal entry back to the seeded state (the demo
        tenant, or the seed data); the clock back to where it started; a seeded id sequence restarted;
        the fault rules back to those given at start (``faults=``); throttling counters restarted."""
        self._clock_moved()
        thread = self._thread
        if thread is not None and thread.loop is not None:
            # In-process: the same service the admin API calls, without an HTTP round trip (about
            # half of a test's fixture overhead); a connected server goes through the admin API.
            from graphattach.protocol.faults import parse_rules_document
            from graphattach.services import tenant

            rules = parse_rules_document(self._start_faults) if self._start_faults else []

            async def reset() -> None:
                await tenant.reset(thread.ctx)
                for rule in rules:  # the rules it was started with, with fresh counters
                    thread.app.state.faults.rulebook.add(rule)

            asyncio.run_coroutine_threadsafe(reset(), thread.loop).result()
            return
        self._admin("POST", "/reset")
        self._install_start_faults()
        if self._start_throttling:
            self.throttling.set(self._start_throttling)

    # snapshots ---------------------------------------------------------------------------------------

    def export_snapshot(self, path: str | Path) -> Path:
        """Everything the server holds (users, folders, items, attachments with their bytes, upload
        sessions) streamed to ``path`` (docs/testing.md, *Snapshots*)."""
        target = Path(path)
        assert self._http is not None
        self._require()
        with self._http.stream("GET", f"{self._root}/_graphattach/snapshot") as response:
            if response.status_code != 200:
                response.read()
                raise GraphServerError(f"snapshot export: {response.status_code} {response.text[:300]}")
            with target.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        return target

    def import_snapshot(self, path: str | Path) -> dict[str, int]:
        """Replace everything the server holds with a snapshot file: all or nothing (a truncated,
        corrupt or newer file is refused and nothing changes). Returns what was restored."""

        def chunks() -> Iterator[bytes]:
            with Path(path).open("rb") as source:
                while block := source.read(1024 * 1024):
                    yield block

        self._clock_moved()
        result: dict[str, int] = self._admin("POST", "/snapshot", content=chunks())
        return result

    # the journal -------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request the journal holds, oldest first."""
        return self.requests_matching()

    def requests_matching(
        self,
        *,
        operation: str | None = None,
        method: str | None = None,
        status: int | str | None = None,
        user: str | None = None,
        path: str | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[RequestRecord]:
        """Journal entries matching every filter given (``operation="attachments."`` is a prefix,
        ``status="4xx"`` a class; ``since`` a ``seq`` already seen)."""
        params = {
            k: str(v)
            for k, v in {
                "operation": operation,
                "method": method,
                "status": status,
                "user": user,
                "path": path,
                "since": since,
                "limit": limit,
            }.items()
            if v is not None
        }
        body = self._admin("GET", "/requests", params=params)
        return [RequestRecord.from_json(e) for e in body["value"]]

    def har(self, **filters: Any) -> dict[str, Any]:
        """The journal as HAR 1.2 (credentials redacted); same filters as ``requests_matching``."""
        result: dict[str, Any] = self._admin("GET", "/requests.har", params={k: str(v) for k, v in filters.items()})
        return result

    def permissions_report(self, **filters: Any) -> dict[str, Any]:
        """The least privileged permissions that cover what each app did (``minimalPermissions``), what
        its tokens granted and the excess."""
        result: dict[str, Any] = self._admin(
            "GET", "/permissions-report", params={k: str(v) for k, v in filters.items()}
        )
        return result

    # mailbox views -----------------------------------------------------------------------------------

    def messages(self, user: str = ADELE, folder: str | None = None) -> list[ItemInfo]:
        """``user``'s messages, newest first, with their attachments (name, size, content type, SHA-256);
        ``folder`` is a well-known name (``inbox``), a display name or an id."""
        params = {"folder": folder} if folder else {}
        return [ItemInfo.from_json(v) for v in self._admin("GET", f"/users/{user}/messages", params=params)["value"]]

    def events(self, user: str = ADELE) -> list[ItemInfo]:
        """``user``'s events, newest first, with their attachments."""
        return [ItemInfo.from_json(v) for v in self._admin("GET", f"/users/{user}/events")["value"]]

    # clients -----------------------------------------------------------------------------------------

    def _auth_headers(self, user: str | None, scopes: Any, roles: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._current_token(user, scopes, roles)}"}

    def httpx_client(
        self, user: str | None = ADELE, *, scopes: Any = None, roles: Any = None, **kwargs: Any
    ) -> httpx.Client:
        """An ``httpx.Client`` on the service root with a bearer token for ``user`` (``None``: an app
        token with ``roles``): ``graph.httpx_client().get("me/messages")``."""
        headers = {**self._auth_headers(user, scopes, roles), **kwargs.pop("headers", {})}
        return httpx.Client(
            base_url=self.url + "/", headers=headers, verify=self._client_verify, **{"timeout": 60, **kwargs}
        )

    def httpx_async_client(
        self, user: str | None = ADELE, *, scopes: Any = None, roles: Any = None, **kwargs: Any
    ) -> httpx.AsyncClient:
        """As ``httpx_client``, asynchronous."""
        headers = {**self._auth_headers(user, scopes, roles), **kwargs.pop("headers", {})}
        return httpx.AsyncClient(
            base_url=self.url + "/", headers=headers, verify=self._client_verify, **{"timeout": 60, **kwargs}
        )

    def msgraph_client(self, user: str | None = ADELE, *, scopes: Any = None, roles: Any = None) -> Any:
        """msgraph-sdk's ``GraphServiceClient`` pointed at this server, with a token for ``user``
        (``None``: an app token with ``roles``). Needs ``pip install msgraph-sdk``."""
        from graphattach.testing.clients import msgraph_client

        return msgraph_client(self, user, scopes, roles)

    def azure_credential(self, client_id: str = "graphattach-test-app", client_secret: str = CLIENT_SECRET) -> Any:
        """azure-identity's ``ClientSecretCredential`` against this server's token endpoint (app tokens).

        azure-identity only talks to an https authority: start the server with ``tls=True``. The
        credential trusts the server's self-signed certificate; instance discovery (a call to
        login.microsoftonline.com) is off. Needs ``pip install azure-identity``."""
        if not self._root.startswith("https://"):
            raise GraphServerError("azure-identity needs an https authority: use GraphServer(tls=True)")
        try:
            from azure.identity import ClientSecretCredential
        except ImportError as exc:
            raise RuntimeError(
                "graph.azure_credential() needs azure-identity: pip install 'graphattach[azure]'"
            ) from exc
        return ClientSecretCredential(
            self.tenant_id,
            client_id,
            client_secret,
            authority=self._root,
            disable_instance_discovery=True,
            connection_verify=self.ca_bundle or True,
        )

    # helpers that act like another mail user ------------------------------------------------------

    def send_mail(
        self,
        *,
        sender: str = ALEX,
        to: str | Iterable[str] = ADELE,
        subject: str = "",
        body: str = "",
        attachments: Mapping[str, bytes] | Iterable[tuple[str, bytes, str]] = (),
    ) -> None:
        """``sender`` sends a mail (through Graph's ``sendMail``, with a token of the helper app) that
        lands in the Inbox of each recipient of this tenant. ``attachments`` maps file names to bytes,
        or gives ``(name, bytes, content type)``; the whole request stays under Graph's 4 MB."""
        recipients = [to] if isinstance(to, str) else list(to)
        files = (
            [(name, data, "application/octet-stream") for name, data in attachments.items()]
            if isinstance(attachments, Mapping)
            else list(attachments)
        )
        message = {
            "subject": subject,
            "body": {"contentType": "text", "content": body},
            "toRecipients": [{"emailAddress": {"address": r}} for r in recipients],
            "attachments": [
                {
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": name,
                    "contentType": content_type,
                    "contentBytes": base64.b64encode(data).decode("ascii"),
                }
                for name, data, content_type in files
            ],
        }
        token = self._current_token(sender, None, None, HELPER_APP_ID)
        assert self._http is not None
        response = self._http.post(
            f"{self.url}/users/{sender}/sendMail",
            json={"message": message, "saveToSentItems": True},
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code != 202:
            raise GraphServerError(f"sendMail as {sender}: {response.status_code} {response.text[:300]}")

    def __repr__(self) -> str:
        where = self._root or "not running"
        return f"<GraphServer {where}{' (connected)' if self._external else ''}>"


def hostname(url: str) -> str:
    return urlsplit(url).hostname or "127.0.0.1"
