"""``bench/run chaos``: graphattach's own client under a seeded mix of faults.

``graphattach attach`` sends N files (3–150 MB by default) to one draft of a ``graphattach serve``
process, once with no fault rule and once under a seeded mix on upload PUTs and attachment POSTs
(about 30 % of them: 503 and 429 with Retry-After, drop, cut, delay). Every file must come back
SHA-256-identical, each exactly once. Prints both times.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ADELE = "adele@contoso.onmicrosoft.com"
MB = 1_000_000


def chaos_rules(seed: int) -> list[dict[str, Any]]:
    """About 30 % of upload PUTs and attachment POSTs fail, the same way on every run of one seed
    (each rule draws from its own seeded sequence; with one file at a time the order is fixed)."""
    rules: list[dict[str, Any]] = []
    for offset, match in enumerate(
        [{"operation": "uploadSession.put"}, {"method": "POST", "operation": "attachments.*"}]
    ):
        base = seed * 100 + offset * 10
        actions: list[tuple[float, dict[str, Any]]] = [
            (0.07, {"type": "status", "status": 503, "retryAfter": 1}),
            (0.06, {"type": "status", "status": 429, "retryAfter": 1}),
            (0.06, {"type": "drop"}),
            (0.06, {"type": "cut", "afterBytes": 64 * 1024}),
            (0.06, {"type": "delay", "minMs": 50, "maxMs": 400}),
        ]
        for index, (probability, action) in enumerate(actions):
            rules.append({"match": {**match, "probability": probability, "seed": base + index}, "action": action})
    return rules


@dataclass
class Outcome:
    seconds: float
    exit_code: int
    files_ok: int
    files: int
    fired: int
    matched: int
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.files_ok == self.files


def make_files(directory: Path, sizes: list[int], seed: int) -> list[Path]:
    rng = random.Random(seed)
    paths = []
    for index, size in enumerate(sizes):
        path = directory / f"file-{index:02d}.bin"
        with path.open("wb") as out:
            left = size
            while left:
                piece = min(left, 8 * 1024 * 1024)
                out.write(rng.randbytes(piece))
                left -= piece
        paths.append(path)
    return paths


def sizes_for(count: int, low: int, high: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(low, high) for _ in range(count)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def attach_under_faults(
    root: str,
    files: list[Path],
    rules: list[dict[str, Any]],
    *,
    concurrency: int = 1,
    timeout: float = 1800,
    user: str = ADELE,
) -> Outcome:
    """Run ``graphattach attach`` of ``files`` to a new draft of the server at ``root`` under
    ``rules``; check every attachment's bytes and that each file is there exactly once."""
    with httpx.Client(base_url=root, timeout=120) as http:
        http.delete("/_graphattach/faults")
        token = http.post("/_graphattach/token", json={"user": user}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        draft = http.post("/v1.0/me/messages", json={"subject": "chaos"}, headers=auth)
        draft.raise_for_status()
        message = draft.json()["id"]
        if rules:
            added = http.post("/_graphattach/faults", json={"rules": rules})
            added.raise_for_status()
        command = [
            sys.executable, "-m", "graphattach", "attach", *map(str, files), "--message", message,
            "--graph-url", f"{root}/v1.0", "--token", token, "--concurrency", str(concurrency), "--json", "-q",
        ]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        seconds = time.perf_counter() - started
        counts = http.get("/_graphattach/faults").json()["value"]
        http.delete("/_graphattach/faults")
        listed = http.get(f"/v1.0/me/messages/{message}/attachments?$select=id,name", headers=auth)
        listed.raise_for_status()
        by_name: dict[str, list[str]] = {}
        for attachment in listed.json()["value"]:
            by_name.setdefault(attachment["name"], []).append(attachment["id"])
        ok = 0
        for path in files:
            ids = by_name.get(path.name, [])
            if len(ids) != 1:
                continue
            digest = hashlib.sha256()
            url = f"/v1.0/me/messages/{message}/attachments/{ids[0]}/$value"
            with http.stream("GET", url, headers=auth) as response:
                if response.status_code != 200:
                    continue
                for chunk in response.iter_bytes():
                    digest.update(chunk)
            if digest.hexdigest() == _sha256(path):
                ok += 1
    return Outcome(
        seconds=seconds,
        exit_code=done.returncode,
        files_ok=ok,
        files=len(files),
        fired=sum(r["fired"] for r in counts),
        matched=max((r["matched"] for r in counts), default=0),
        stderr=done.stderr[-2000:],
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench chaos", description=__doc__)
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--min-mb", type=float, default=3.2, help="smallest file, MB (above the 3 MB POST cap)")
    p.add_argument("--max-mb", type=float, default=150.0)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--concurrency", type=int, default=4, help="files at once (1: the same faults on every run)")
    p.add_argument("--out", type=Path, default=None, help="JSON result file (default bench/results/chaos.json)")
    return p


def run_chaos(argv: list[str]) -> int:
    ns = parser().parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.helpers import running_server

    with tempfile.TemporaryDirectory(prefix="graphattach-chaos-") as scratch:
        work = Path(scratch)
        low = int(ns.min_mb * MB)
        high = min(int(ns.max_mb * MB), 150 * 1024 * 1024)
        sizes = sizes_for(ns.files, low, high, ns.seed)
        print(f"chaos: {ns.files} files, {sum(sizes) / MB:.0f} MB in all, seed {ns.seed}", file=sys.stderr)
        files = make_files(work, sizes, ns.seed)
        results: dict[str, Any] = {
            "files": ns.files,
            "bytes": sum(sizes),
            "seed": ns.seed,
            "concurrency": ns.concurrency,
        }
        with running_server(work / "data") as server:
            # 20 files of up to 150 MB go over Outlook's 150 MB per message: the bench's user
            # has a larger maximum message size (PATCH users/{upn} maxMessageSize).
            user = "chaos@contoso.onmicrosoft.com"
            httpx.post(f"{server.root}/_graphattach/users", json={"userPrincipalName": user, "maxMessageSize": 2**40})
            for label, rules in (("fault-free", []), ("faults", chaos_rules(ns.seed))):
                outcome = attach_under_faults(server.root, files, rules, concurrency=ns.concurrency, user=user)
                results[label] = {
                    "seconds": round(outcome.seconds, 2),
                    "exitCode": outcome.exit_code,
                    "identical": outcome.files_ok,
                    "faultsFired": outcome.fired,
                }
                print(
                    f"chaos: {label}: {outcome.seconds:.1f} s, {outcome.files_ok}/{outcome.files} SHA-256-identical "
                    f"and exactly once, exit {outcome.exit_code}, {outcome.fired} faults fired",
                    file=sys.stderr,
                )
                if not outcome.ok:
                    print(outcome.stderr, file=sys.stderr)
    out = ns.out or Path(__file__).resolve().parent / "results" / "chaos.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))
    ok = all(results[k]["exitCode"] == 0 and results[k]["identical"] == ns.files for k in ("fault-free", "faults"))
    return 0 if ok else 1
