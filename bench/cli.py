"""``python -m bench [--smoke] ...``, ``python -m bench crash --trials N`` and
``python -m bench chaos`` (the client under faults), ``python -m bench report [results.json]`` (render the Markdown and the chart again from a JSON)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cases import WORKLOADS
from bench.suite import TARGETS, Options, run_suite


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark graphattach against the physical limit, nginx and @tus/server (127.0.0.1 only). "
        "Installs nothing: run scripts/bench-setup once for the anchors and the chart.",
    )
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one run, anchors optional (< 60 s)")
    p.add_argument("--runs", type=int, default=5, help="runs per case (default 5; the median is reported)")
    p.add_argument(
        "--workloads",
        type=_csv,
        default=None,
        help="comma-separated subset of: " + ", ".join(k for k, _, _ in WORKLOADS),
    )
    p.add_argument("--targets", type=_csv, default=None, help="comma-separated subset of: " + ", ".join(TARGETS))
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default bench/results, smoke: bench/results/tmp/smoke)",
    )
    p.add_argument("--keep", action="store_true", help="keep the scratch directory (data dirs, server logs)")
    p.add_argument(
        "--in-memory",
        action="store_true",
        help="graphattach serve --in-memory, held against a floor that syncs nothing "
        "(default output: bench/results/memory)",
    )
    p.add_argument("--allow-missing-anchors", action="store_true", help="run without nginx or @tus/server when missing")
    p.add_argument("--budget", type=float, default=None, help="seconds after which remaining runs are skipped")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p


def crash_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench crash",
        description="SIGKILL graphattach during upload sessions, restart, resume, verify SHA-256; then sweep and count blobs.",
    )
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--size", type=int, default=150_000_000, help="bytes per upload (default 150 MB)")
    p.add_argument("--seed", type=int, default=None, help="random seed for the kill points")
    p.add_argument("--out", type=Path, default=None, help="JSON result file (default bench/results/crash.json)")
    p.add_argument("--keep", action="store_true", help="keep the data directory")
    p.add_argument(
        "--stack",
        choices=["embedded", "postgres-s3"],
        default="embedded",
        help="embedded SQLite + files (default), or a throwaway PostgreSQL + moto S3 server",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def fuzz_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench fuzz",
        description="Raw-HTTP hypothesis fuzz (uploads, admin, attachments) then schemathesis; no 5xx, invariants hold.",
    )
    p.add_argument("--requests", type=int, default=100_000, help="requests of the raw-HTTP part (default 100000)")
    p.add_argument("--seed", type=int, default=None, help="seed (printed; a failure prints it too)")
    p.add_argument("--schemathesis-examples", type=int, default=20, help="examples per operation (0: skip)")
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="stop the raw-HTTP part after this many seconds even if --requests is not reached (the summary says so)",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def load_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench load",
        description="Concurrent clients on a mixed workload against one server: errors, SHA-256, RSS, fds.",
    )
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    p.add_argument("--max-upload", type=int, default=50_000_000, help="largest upload session in bytes")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--crashes", type=int, default=0, help="kill -9 the server this many times at random moments")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "fuzz":
        from bench.fuzz import run_fuzz

        ns = fuzz_parser().parse_args(args[1:])
        return run_fuzz(
            ns.requests, ns.seed, ns.schemathesis_examples, verbose=not ns.quiet, max_seconds=ns.max_seconds
        )
    if args and args[0] in ("load", "crash-mixed"):
        from bench.load import run_load

        ns = load_parser().parse_args(args[1:])
        crashes = ns.crashes if args[0] == "load" else max(ns.crashes, 1)
        return run_load(ns.clients, ns.duration, ns.max_upload, ns.seed, crashes, verbose=not ns.quiet)
    if args and args[0] == "crash":
        from bench.crash import run_crash

        ns = crash_parser().parse_args(args[1:])
        return run_crash(ns.trials, ns.size, ns.seed, ns.out, keep=ns.keep, verbose=not ns.quiet, stack=ns.stack)
    if args and args[0] == "chaos":
        from bench.chaos import run_chaos

        return run_chaos(args[1:])
    if args and args[0] == "report":
        import json

        from bench import report

        source = Path(args[1]) if len(args) > 1 else Path(__file__).resolve().parent / "results" / "latest.json"
        data = json.loads(source.read_text())
        for path in report.write_all(data, source.parent, source.stem):
            print(f"bench: wrote {path}", file=sys.stderr)
        return 0
    if args and args[0] == "run":
        args = args[1:]
    ns = parser().parse_args(args)
    for w in ns.workloads or []:
        if w not in {k for k, _, _ in WORKLOADS}:
            raise SystemExit(f"unknown workload {w!r}")
    for t in ns.targets or []:
        if t not in TARGETS:
            raise SystemExit(f"unknown target {t!r}")
    opts = Options(
        smoke=ns.smoke,
        runs=max(1, ns.runs),
        workloads=ns.workloads,
        targets=ns.targets,
        out=ns.out,
        keep=ns.keep,
        allow_missing_anchors=ns.allow_missing_anchors,
        verbose=not ns.quiet,
        in_memory=ns.in_memory,
    )
    if ns.budget is not None:
        opts.budget_seconds = ns.budget
    elif ns.smoke:
        opts.budget_seconds = 50
    _, status = run_suite(opts)
    return status
