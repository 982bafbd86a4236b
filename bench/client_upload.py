"""Upload one large file with three clients to the same graphattach server: time and peak memory.

    .venv/bin/python bench/client_upload.py [--size-mib 150] [--compat-python .venv-compat/bin/python]

Clients, each in its own subprocess (so its ``VmHWM`` is that client's peak resident memory):

- ``graphattach``: this project's ``graphattach.client.Client.attach`` (4 MiB ranges read as sent);
- ``msgraph-core``: msgraph-sdk's createUploadSession + msgraph-core's ``LargeFileUploadTask``
  (5 MiB ranges); it only finishes against ``--profile lenient`` (docs/known-client-issues.md);
- ``O365``: python-o365's ``message.attachments.add(path); message.save_draft()`` (3 MiB ranges).

The server runs with ``--profile lenient`` on a temporary data directory (SQLite + files). Every
upload is checked afterwards: the SHA-256 of the attachment's ``$value`` must equal the file's.
msgraph-sdk, msgraph-core and O365 come from a separate virtualenv, ``scripts/compat-venv``
(pinned in tests/compat/requirements.txt), or by hand:

    python -m venv .venv-compat
    .venv-compat/bin/pip install msgraph-sdk==1.65.0 msgraph-core==1.5.2 O365==2.1.10

This file is both the driver (run with the project's Python) and the worker (``--worker NAME``,
run with whichever Python has that client); the worker imports only its own client.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
USER = "adele@contoso.onmicrosoft.com"
HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent


# --- workers (one client each; no graphattach import outside the graphattach worker) ----------------


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    return 0


def _peak_rss_kib() -> int:
    """This process's peak RSS. Not ``ru_maxrss``: Linux carries the parent's peak into it over
    fork and exec, so it would report the driver's memory whenever that is the larger."""
    return _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def worker_graphattach(root: str, token: str, item: str, path: str) -> None:
    from graphattach.client import Client, Message

    with Client(f"{root}/v1.0", token) as client:
        client.attach(Message(item, user=USER), path)


def worker_msgraph(root: str, token: str, item: str, path: str) -> None:
    import asyncio
    from urllib.parse import urlsplit

    from kiota_abstractions.authentication import (
        AccessTokenProvider,
        AllowedHostsValidator,
        BaseBearerTokenAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.models.attachment_item import AttachmentItem
    from msgraph.generated.models.attachment_type import AttachmentType
    from msgraph.generated.users.item.messages.item.attachments.create_upload_session.create_upload_session_post_request_body import (
        CreateUploadSessionPostRequestBody,
    )
    from msgraph_core.tasks.large_file_upload import LargeFileUploadTask

    class StaticTokenProvider(AccessTokenProvider):
        def __init__(self, hosts: list[str]) -> None:
            self._validator = AllowedHostsValidator(hosts)

        async def get_authorization_token(self, uri: str, additional_authentication_context: Any = None) -> str:
            return token if self._validator.is_url_host_valid(uri) else ""

        def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
            return self._validator

    async def run() -> None:
        host = urlsplit(root).hostname or "127.0.0.1"
        adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticTokenProvider([host])))
        adapter.base_url = f"{root}/v1.0"
        client = GraphServiceClient(request_adapter=adapter)
        body = CreateUploadSessionPostRequestBody(
            attachment_item=AttachmentItem(
                attachment_type=AttachmentType.File, name=os.path.basename(path), size=os.path.getsize(path)
            )
        )
        attachments = client.users.by_user_id(USER).messages.by_message_id(item).attachments
        session = await attachments.create_upload_session.post(body)
        with open(path, "rb") as stream:
            task = LargeFileUploadTask(session, client.request_adapter, stream)
            result = await task.upload()
        if not result.upload_succeeded:
            raise RuntimeError("LargeFileUploadTask did not succeed")

    asyncio.run(run())


def worker_o365(root: str, token: str, item: str, path: str) -> None:
    from O365 import Account
    from O365.connection import MSGraphProtocol
    from O365.utils.token import BaseTokenBackend

    class StaticTokenBackend(BaseTokenBackend):
        @property
        def has_data(self) -> bool:
            return True

        def load_token(self) -> bool:
            return True

        def save_token(self, force: bool = False) -> bool:
            return True

        def get_access_token(self, *, username: str | None = None) -> dict[str, str]:
            return {"secret": token, "expires_on": str(2**31 - 1)}

        def get_refresh_token(self, *, username: str | None = None) -> None:
            return None

        def token_is_expired(self, *, username: str | None = None) -> bool:
            return False

        def get_account(self, *, username: str | None = None, home_account_id: str | None = None) -> None:
            return None

    class LocalGraphProtocol(MSGraphProtocol):
        _protocol_url = f"{root}/"

    resource_name = f"users/{USER}"
    account = Account(
        ("graphattach-bench", "unused"),
        protocol=LocalGraphProtocol(api_version="v1.0", default_resource=resource_name, timezone="UTC"),
        token_backend=StaticTokenBackend(),
        main_resource=resource_name,
        timeout=(30, 600),
        requests_delay=0,
    )
    message = account.mailbox().get_message(object_id=item)
    if message is None:
        raise RuntimeError("O365 could not read the message")
    message.attachments.add([path])
    if not message.save_draft():
        raise RuntimeError("O365 save_draft() failed")


WORKERS = {"graphattach": worker_graphattach, "msgraph-core": worker_msgraph, "O365": worker_o365}


def run_worker(name: str, root: str, token: str, item: str, path: str) -> None:
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    WORKERS[name](root, token, item, path)
    seconds = time.perf_counter() - start
    peak = _peak_rss_kib()
    print(json.dumps({"seconds": seconds, "peak_rss_kib": peak, "rss_before_kib": before}))


# --- driver ----------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    rng = random.Random(150)
    block = rng.randbytes(MiB)
    with open(path, "wb") as f:
        written = 0
        i = 0
        while written < size:
            chunk = (block[i % 997 :] + block[: i % 997])[: size - written]
            f.write(chunk)
            digest.update(chunk)
            written += len(chunk)
            i += 1
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--item", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--size-mib", type=float, default=150.0, help="File size in MiB (default 150).")
    parser.add_argument(
        "--compat-python",
        default=str(ROOT / ".venv-compat" / "bin" / "python"),
        help="Python with msgraph-sdk, msgraph-core and O365 (default .venv-compat/bin/python).",
    )
    parser.add_argument("--clients", default="graphattach,msgraph-core,O365", help="Comma-separated subset.")
    parser.add_argument("--repeat", type=int, default=1, help="Rounds (the clients alternate; default 1).")
    parser.add_argument("--json", dest="json_out", default=None, help="Also write the results here.")
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.root, args.token, args.item, args.file)
        return 0

    import httpx

    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    compat = Path(args.compat_python)
    if any(c != "graphattach" for c in clients) and not compat.exists():
        print(
            f"{compat} not found: create it (see this file's docstring) or pass --clients graphattach", file=sys.stderr
        )
        return 2
    size = int(args.size_mib * MiB)
    work = Path(tempfile.mkdtemp(prefix="graphattach-bench-"))
    port = _free_port()
    root = f"http://127.0.0.1:{port}"
    log = open(work / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "graphattach", "serve", "--port", str(port), "--data-dir", str(work / "data")]
        + ["--profile", "lenient"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    results: list[dict[str, Any]] = []
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{root}/_graphattach/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"the server did not start; see {work / 'server.log'}")
        path = work / "upload-150.bin"
        expected = _make_file(path, size)
        token = httpx.post(f"{root}/_graphattach/token", json={"user": USER}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        print(f"file: {size:,} bytes  server: {root} (--profile lenient)  sha256: {expected[:16]}…", file=sys.stderr)
        for name in [c for _ in range(args.repeat) for c in clients]:
            created = httpx.post(f"{root}/v1.0/users/{USER}/messages", json={"subject": f"bench {name}"}, headers=auth)
            created.raise_for_status()
            item = created.json()["id"]
            python = sys.executable if name == "graphattach" else str(compat)
            cmd = [
                python,
                str(HERE),
                "--worker",
                name,
                "--root",
                root,
                "--token",
                token,
                "--item",
                item,
                "--file",
                str(path),
            ]
            done = subprocess.run(
                cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")}
            )
            row: dict[str, Any] = {"client": name, "ok": False}
            if done.returncode == 0:
                row.update(json.loads(done.stdout.strip().splitlines()[-1]))
                listed = httpx.get(
                    f"{root}/v1.0/users/{USER}/messages/{item}/attachments?$select=id,name", headers=auth
                )
                values = listed.json()["value"]
                digests = []
                for value in values:
                    digest = hashlib.sha256()
                    url = f"{root}/v1.0/users/{USER}/messages/{item}/attachments/{value['id']}/$value"
                    with httpx.stream("GET", url, headers=auth, timeout=300) as response:
                        for chunk in response.iter_bytes():
                            digest.update(chunk)
                    digests.append(digest.hexdigest())
                row["ok"] = digests == [expected]
                row["attachments"] = len(values)
            else:
                row["error"] = (done.stderr.strip().splitlines() or ["?"])[-1][:300]
            results.append(row)
            print(_line(row), file=sys.stderr)
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    summary = _summary(results)
    for row in summary:
        print(
            f"{row['client']:>13}: median {row['median_seconds']:.2f} s, peak RSS {row['max_peak_rss_kib'] / 1024:.1f} MiB"
            f" over {row['runs']} run(s), all verified: {row['all_ok']}",
            file=sys.stderr,
        )
    report = {"size_bytes": size, "profile": "lenient", "summary": summary, "results": results}
    print(json.dumps(report, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(r["ok"] for r in results) else 1


def _summary(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    import statistics

    out = []
    for name in dict.fromkeys(r["client"] for r in results):
        rows = [r for r in results if r["client"] == name]
        timed = [r for r in rows if "seconds" in r]
        out.append(
            {
                "client": name,
                "runs": len(rows),
                "all_ok": all(r["ok"] for r in rows),
                "median_seconds": statistics.median(r["seconds"] for r in timed) if timed else float("nan"),
                "max_peak_rss_kib": max((r["peak_rss_kib"] for r in timed), default=0),
            }
        )
    return out


def _line(row: dict[str, Any]) -> str:
    if "seconds" not in row:
        return f"{row['client']:>13}: failed: {row.get('error')}"
    return (
        f"{row['client']:>13}: {row['seconds']:7.2f} s  peak RSS {row['peak_rss_kib'] / 1024:7.1f} MiB "
        f"(bare interpreter {row['rss_before_kib'] / 1024:5.1f} MiB)  verified: {row['ok']}"
    )


if __name__ == "__main__":
    sys.exit(main())
