"""The suite: physical limits, then each workload against every target, runs interleaved.

For each workload the targets take turns (run 1 of nginx, tus and graphattach, then run 2, ...)
so that the drift of a shared, noisy machine hits all of them alike and the ratios hold. Every
workload gets a fresh ``graphattach serve`` process (same data directory and port), so that its
peak RSS and CPU seconds are its own.
"""

from __future__ import annotations

import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cases as C
from bench.anchors import Nginx, Tus, find_nginx, find_tus
from bench.ga import GraphServer
from bench.httpc import ConnectionBroken, HTTPError
from bench.procs import MiB, Monitor, free_port, machine_busy

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = ("physical", "nginx", "tus", "graphattach")


@dataclass
class CaseResult:
    key: str
    workload: str
    target: str
    label: str
    unit: str
    status: str = "ok"  # ok | unavailable | skipped | error
    note: str = ""
    values: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    server_cpu_s: list[float] = field(default_factory=list)
    client_cpu_s: list[float] = field(default_factory=list)
    rss_before_mb: list[float] = field(default_factory=list)
    rss_peak_mb: list[float] = field(default_factory=list)
    rss_growth_mb: list[float] = field(default_factory=list)
    #: The largest VmHWM of any process of the server tree at the end of the runs.
    vm_hwm_mb: float | None = None
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    #: The machine's busy CPUs over each run (every process: server, client, kernel, others).
    cores_busy: list[float] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"runs": len(self.values)}
        if self.values:
            out.update(median=statistics.median(self.values), min=min(self.values), max=max(self.values))
        for name in ("server_cpu_s", "client_cpu_s", "p50_ms", "p99_ms", "seconds", "cores_busy"):
            vals = getattr(self, name)
            if vals:
                out[name] = statistics.median(vals)
        if self.rss_peak_mb:
            out["rss_peak_mb"] = max(self.rss_peak_mb)
            out["rss_growth_mb"] = max(self.rss_growth_mb)
        if self.vm_hwm_mb is not None:
            out["vm_hwm_mb"] = self.vm_hwm_mb
        return out


@dataclass
class Options:
    smoke: bool = False
    runs: int = 5
    workloads: list[str] | None = None
    targets: list[str] | None = None
    out: Path | None = None
    keep: bool = False
    allow_missing_anchors: bool = False
    budget_seconds: float = 14 * 60
    seed: int = 20240601
    verbose: bool = True
    #: graphattach ``--in-memory``, and a floor that syncs nothing (the anchors sync nothing either).
    in_memory: bool = False


def log(opts: Options, msg: str) -> None:
    if opts.verbose:
        print(msg, file=sys.stderr, flush=True)


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        return ""


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("graphattach", "granian", "uvloop", "starlette", "uvicorn"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _meminfo_total_mb() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _status_of(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, HTTPError) and exc.status in C.UNAVAILABLE_STATUSES:
        return "unavailable", str(exc)
    if isinstance(exc, C.Unavailable):
        return "unavailable", str(exc)
    return "error", f"{type(exc).__name__}: {exc}"


class Runner:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.sizes = C.Sizes.smoke() if opts.smoke else C.Sizes.full()
        self.results: dict[str, CaseResult] = {}
        self.started = time.monotonic()
        self.anchor_notes: dict[str, str] = {}
        self.ga_port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="graphattach-bench-"))
        self.env: C.Env | None = None

    # -- budget -------------------------------------------------------------------------------------

    def time_left(self) -> float:
        return self.opts.budget_seconds - (time.monotonic() - self.started)

    def wanted(self, target: str) -> bool:
        return self.opts.targets is None or target in self.opts.targets

    # -- the run --------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        opts = self.opts
        sizes = self.sizes
        meta: dict[str, Any] = {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": "smoke" if opts.smoke else "full",
            "runs": 1 if opts.smoke else opts.runs,
            "sizes": asdict(sizes),
            "machine": {
                "cpus": os.cpu_count(),
                "mem_total_mb": round(_meminfo_total_mb()),
                "kernel": platform.release(),
                "loadavg_start": os.getloadavg(),
            },
            "versions": _versions(),
            "git": {
                "commit": _git("rev-parse", "HEAD"),
                "branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
                # Changes to the code measured that no commit holds yet (the results and prose aside).
                "uncommitted": bool(
                    _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results", ":!*.md")
                ),
            },
            "command": " ".join(["python -m bench", *sys.argv[1:]]),
        }
        length = max(
            sizes.big, sizes.tiny_puts * sizes.tiny_chunk, sizes.concurrent_size, sizes.post_raw, C.SESSION_MIN
        )
        log(opts, f"bench: {meta['mode']} mode, {meta['runs']} run(s) per case; test data {length / 1e6:.0f} MB")
        data = memoryview(random.Random(opts.seed).randbytes(length))
        env = self.env = C.Env(sizes=sizes, data=data, workdir=self.workdir, smoke=opts.smoke, in_memory=opts.in_memory)
        meta["in_memory"] = opts.in_memory
        try:
            self._start_anchors(env, meta)
            if self.wanted("physical"):
                for cls in C.PHYSICAL_CASES:
                    self._group([cls(env)])
            for workload, _title, _unit in C.WORKLOADS:
                if opts.workloads and workload not in opts.workloads:
                    continue
                group = [cls(env) for cls in C.CASES[workload] if self.wanted(cls.target)]
                self._group(group)
        finally:
            for server in (env.nginx, env.tus, env.ga):
                if server is not None:
                    server.stop()
            if not opts.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)
        meta["machine"]["loadavg_end"] = os.getloadavg()
        meta["elapsed_s"] = round(time.monotonic() - self.started, 1)
        meta["anchors"] = self.anchor_notes
        return {"meta": meta, "results": {k: {**asdict(v), "summary": v.summary()} for k, v in self.results.items()}}

    def _start_anchors(self, env: C.Env, meta: dict[str, Any]) -> None:
        opts = self.opts
        missing = []
        if self.wanted("nginx"):
            binary, info = find_nginx()
            self.anchor_notes["nginx"] = info
            if binary is None:
                missing.append(("nginx", info))
            else:
                try:
                    env.nginx = Nginx(binary, self.workdir / "nginx").start_and_wait()
                except Exception as exc:
                    missing.append(("nginx", f"nginx did not start: {exc}"))
        if self.wanted("tus"):
            node, info = find_tus()
            self.anchor_notes["tus"] = info
            if node is None:
                missing.append(("tus", info))
            else:
                try:
                    env.tus = Tus(node, self.workdir / "tus").start_and_wait()
                except Exception as exc:
                    missing.append(("tus", f"@tus/server did not start: {exc}"))
        for name, why in missing:
            self.anchor_notes[name] = why
            log(opts, f"bench: skipping {name}: {why}")
        if missing and not (opts.smoke or opts.allow_missing_anchors):
            raise SystemExit(
                "bench: anchors missing: "
                + "; ".join(f"{n}: {w}" for n, w in missing)
                + "\nRun scripts/bench-setup once, or pass --allow-missing-anchors."
            )

    def _available(self, case: C.Case) -> str | None:
        """Why ``case`` cannot run (its server was not started), or None."""
        env = self.env
        assert env is not None
        if case.target == "nginx" and env.nginx is None:
            return self.anchor_notes.get("nginx", "nginx not started")
        if case.target == "tus" and env.tus is None:
            return self.anchor_notes.get("tus", "@tus/server not started")
        return None

    def _result(self, case: C.Case) -> CaseResult:
        res = self.results.get(case.key)
        if res is None:
            res = self.results[case.key] = CaseResult(case.key, case.workload, case.target, case.label, case.unit)
        return res

    def _fail(self, case: C.Case, exc: BaseException, when: str) -> None:
        res = self._result(case)
        res.status, message = _status_of(exc)
        res.note = f"{when}: {message}"[:600]
        if res.status == "error":
            res.error = "".join(traceback.format_exception(exc))[-4000:]
        if (
            case.target == "graphattach"
            and self.env is not None
            and self.env.ga is not None
            and not self.env.ga.alive()
        ):
            res.status = "error"
            res.note += f" (the server process died: {self.env.ga.log_tail(800)})"
        log(self.opts, f"  {case.key}: {res.status}: {res.note[:300]}")

    def _start_ga(self) -> None:
        env = self.env
        assert env is not None
        if env.ga is not None:
            env.ga.stop()
        env.ga = GraphServer(
            self.workdir / "ga-data",
            self.workdir / "graphattach.log",
            port=self.ga_port,
            extra=["--in-memory"] if self.opts.in_memory else None,
        ).start_and_wait()

    def _group(self, group: list[C.Case]) -> None:
        if not group:
            return
        opts = self.opts
        env = self.env
        assert env is not None
        runs = 1 if opts.smoke else opts.runs
        log(opts, f"bench: {group[0].workload} ({', '.join(c.target for c in group)})")
        active: list[C.Case] = []
        if any(c.target == "graphattach" for c in group):
            try:
                self._start_ga()
            except Exception as exc:
                for c in group:
                    if c.target == "graphattach":
                        self._fail(c, exc, "starting graphattach")
                        self._result(c).status = "error"
                group = [c for c in group if c.target != "graphattach"]
        for case in group:
            res = self._result(case)
            why = self._available(case)
            if why is not None:
                res.status, res.note = "skipped", why
                continue
            try:
                case.setup()
            except Exception as exc:
                self._fail(case, exc, "setup")
                continue
            active.append(case)
        for r in range(runs):
            if self.time_left() <= 0:
                for case in active:
                    self._result(case).note += f" time budget spent: {r} of {runs} runs."
                break
            for case in list(active):
                res = self._result(case)
                try:
                    case.before_run()
                    # Untimed: the dirty pages of earlier runs go to the disk now. nginx and
                    # @tus/server sync nothing, and the kernel's write-back of their files would
                    # otherwise compete with the next run's own fdatasync.
                    os.sync()
                    server = case.server
                    cpu0, machine0, wall0 = time.process_time(), machine_busy(), time.perf_counter()
                    with Monitor(server.procs if server is not None else None) as usage:
                        sample = case.run()
                    client_cpu = time.process_time() - cpu0
                    wall = time.perf_counter() - wall0
                    cores_busy = (machine_busy() - machine0) / wall if wall > 0 else 0.0
                    case.after_run()
                except Exception as exc:
                    self._fail(case, exc, f"run {r + 1}")
                    active.remove(case)
                    continue
                res.values.append(sample.value)
                res.seconds.append(sample.seconds)
                res.client_cpu_s.append(client_cpu)
                res.cores_busy.append(cores_busy)
                res.extra.append(sample.extra)
                if server is not None:
                    res.server_cpu_s.append(usage.cpu_s)
                    res.rss_before_mb.append(usage.rss_before / MiB)
                    res.rss_peak_mb.append(usage.rss_peak / MiB)
                    res.rss_growth_mb.append(usage.growth / MiB)
                    if usage.hwm:
                        hwm = max(usage.hwm.values()) / MiB
                        res.vm_hwm_mb = max(res.vm_hwm_mb or 0.0, hwm)
                if sample.latencies:
                    res.p50_ms.append(C.percentile(sample.latencies, 0.50) * 1000)
                    res.p99_ms.append(C.percentile(sample.latencies, 0.99) * 1000)
                if case.note and case.note not in res.note:
                    res.note = (res.note + " " + case.note).strip()
                log(
                    opts,
                    f"  {case.key} run {r + 1}/{runs}: {sample.value:,.1f} {case.unit}"
                    + (
                        f", server CPU {usage.cpu_s:.2f} s, RSS peak {usage.rss_peak / MiB:.0f} MB"
                        if server is not None
                        else ""
                    ),
                )
        for case in group:
            if case in active or self._result(case).status == "ok":
                try:
                    case.teardown()
                except (HTTPError, ConnectionBroken, OSError, AttributeError) as exc:
                    log(opts, f"  {case.key}: teardown: {exc}")
        if env.ga is not None and not env.ga.alive():
            for case in group:
                if case.target == "graphattach":
                    res = self._result(case)
                    res.status = "error"
                    res.note += f" The server process died: {env.ga.log_tail(800)}"
        if env.ga is not None:
            env.ga.stop()
            env.ga = None


def run_suite(opts: Options) -> tuple[dict[str, Any], int]:
    """Run, write the JSON, Markdown and chart; (results, exit status)."""
    from bench import report

    runner = Runner(opts)
    results = runner.run()
    out = opts.out or (RESULTS / "tmp" / "smoke" if opts.smoke else RESULTS / "memory" if opts.in_memory else RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    written = report.write_all(results, out)
    for path in written:
        log(opts, f"bench: wrote {path}")
    errors = [k for k, v in results["results"].items() if v["status"] == "error"]
    if errors:
        log(opts, f"bench: errors in {', '.join(errors)}")
    return results, 1 if errors else 0
