"""Results → ``latest.json`` (raw), ``latest.md`` (tables with the ratios to the anchors), ``latest.png``."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cases import WORKLOADS
from graphattach.settings import DEFAULT_MEMORY_LIMIT

TARGET_NAMES = {"physical": "physical limit", "nginx": "nginx", "tus": "@tus/server", "graphattach": "graphattach"}
TARGET_ORDER = ["physical", "nginx", "tus", "graphattach"]
COLORS = {"physical": "#9e9e9e", "nginx": "#2e7d32", "tus": "#f9a825", "graphattach": "#1565c0"}
PHYSICAL_TITLE = ("physical", "Physical limits", "MB/s")
PHYSICAL_WORKLOADS = ("disk_write", "disk_write_fdatasync", "page_cache_read", "loopback_tcp", "loopback_sendfile")
#: The physical limit each workload is held against (graphattach syncs every acknowledged range).
PHYSICAL_REFERENCE = {
    "upload_big": ("upload_big", "durable floor"),
    "upload_concurrent": ("disk_write_fdatasync", "disk write with fdatasync"),
    # What granian sends from memory, with no file read (bench/floor_app.py); loopback sendfile
    # stays in the physical table.
    "download_big": ("download_big", "send floor"),
    "content_bytes": ("loopback_tcp", "loopback send"),
    # No anchor syncs small requests: these are held against the durable floor (bench/floor_app.py).
    "tiny_puts": ("tiny_puts", "durable floor"),
    "post_small": ("post_small", "durable floor"),
}


def _chart_label(key: str, in_memory: bool = False) -> str:
    target, workload = key.split(".", 1)
    if key == "physical.upload_concurrent":
        # in memory the no-sync floor, on disk the durable floor syncing in threads (bench/cases.py)
        return "no-sync floor" if in_memory else "durable floor"
    if target == "physical" and workload not in PHYSICAL_WORKLOADS:
        label = PHYSICAL_REFERENCE[workload][1] if workload in PHYSICAL_REFERENCE else "durable floor"
        # against --in-memory the floor syncs nothing
        return label.replace("durable floor", "no-sync floor") if in_memory else label
    return TARGET_NAMES[target]


def _fmt(v: float | None, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if abs(v) >= 100 or digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def _median(results: dict[str, Any], key: str) -> float | None:
    r = results.get(key)
    if not r or r["status"] != "ok" or "median" not in r["summary"]:
        return None
    return float(r["summary"]["median"])


def _summary(results: dict[str, Any], key: str, field: str) -> float | None:
    r = results.get(key)
    if not r or r["status"] != "ok":
        return None
    v = r["summary"].get(field)
    return None if v is None else float(v)


@dataclass
class Check:
    name: str
    measured: str
    target: str
    ok: bool | None  # None: could not be measured
    shortfall: str
    #: What bounds graphattach on this row (a floor doing the least the workload needs), as
    #: measured in the same run against the same reference; "" when nothing measured bounds it.
    ceiling: str = ""
    #: Whether that ceiling itself reaches the target (None: no ceiling measured).
    ceiling_ok: bool | None = None
    #: graphattach's measure as a share of the ceiling's.
    of_ceiling: float | None = None

    @property
    def verdict(self) -> str:
        if self.ok is None:
            return "not measured"
        if self.ok:
            return "met"
        share = f"; graphattach at {self.of_ceiling * 100:.0f} % of the ceiling" if self.of_ceiling else ""
        if self.ceiling_ok is False:
            return f"{self.shortfall}: the target is past the ceiling{share}"
        return f"**{self.shortfall}**{share}"


@dataclass(frozen=True)
class Ceiling:
    """The value a bound on graphattach reaches in the same run, and what that bound is."""

    value: float | None
    what: str
    #: ``value`` is itself the ratio the target is a minimum of (not a measure to divide).
    ratio: bool = False


def _ratio_text(ratio: float, minimum: float) -> str:
    return f"{ratio:.2f}×" if minimum >= 1 else f"{ratio * 100:.0f} %"


def _ratio_check(
    name: str, num: float | None, den: float | None, minimum: float, what: str, ceiling: Ceiling | None = None
) -> Check:
    target = f"≥ {minimum:g}× {what}" if minimum >= 1 else f"≥ {minimum * 100:.0f} % of {what}"
    if num is None or den is None or den == 0:
        return Check(name, "not measured", target, None, "")
    ratio = num / den
    measured = f"{_ratio_text(ratio, minimum)} ({_fmt(num, 1)} vs {_fmt(den, 1)})"
    ok = ratio >= minimum
    check = Check(name, measured, target, ok, "" if ok else f"missed by {(1 - ratio / minimum) * 100:.0f} %")
    if ceiling is not None and ceiling.value:
        bound = ceiling.value if ceiling.ratio else ceiling.value / den
        shown = "" if ceiling.ratio else f" ({_fmt(ceiling.value, 1)})"
        check.ceiling = f"{ceiling.what}: {_ratio_text(bound, minimum)}{shown}"
        check.ceiling_ok = bound >= minimum
        check.of_ceiling = ratio / bound
    return check


def _max_check(name: str, value: float | None, maximum: float, unit: str) -> Check:
    target = f"≤ {maximum:g} {unit}"
    if value is None:
        return Check(name, "not measured", target, None, "")
    ok = value <= maximum
    return Check(
        name,
        f"{value:,.0f} {unit}",
        target,
        ok,
        "" if ok else f"over by {value - maximum:,.0f} {unit} ({(value / maximum - 1) * 100:.0f} %)",
    )


def _min_check(name: str, value: float | None, minimum: float, unit: str, ceiling: Ceiling | None = None) -> Check:
    target = f"≥ {minimum:,g} {unit}"
    if value is None:
        return Check(name, "not measured", target, None, "")
    ok = value >= minimum
    check = Check(
        name, f"{value:,.0f} {unit}", target, ok, "" if ok else f"missed by {(1 - value / minimum) * 100:.0f} %"
    )
    if ceiling is not None and ceiling.value is not None:
        check.ceiling = f"{ceiling.what}: {ceiling.value:,.0f} {unit}"
        check.ceiling_ok = ceiling.value >= minimum
        check.of_ceiling = value / ceiling.value if ceiling.value else None
    return check


def _extra_median(results: dict[str, Any], key: str, field: str) -> float | None:
    """The median of ``field`` over the runs' extra figures (runs without it left out)."""
    r = results.get(key)
    if not r or r["status"] != "ok":
        return None
    values = [float(e[field]) for e in r.get("extra", []) if e.get(field)]
    return statistics.median(values) if values else None


def put_bound(status: float, added: float = 0.0) -> float:
    """The most a 1 KiB PUT can reach (req/s): it does all that a status GET on its upload URL
    does (``status`` req/s), then what it must add to that and cannot overlap with it (``added``
    seconds): on disk the floor's write (``floor_write``), in memory taking its body from the
    server (``body_receipt``). On disk graphattach reads a small body while the session is read
    in the store's thread, which hides the body's time there."""
    return 1 / (1 / status + added)


def floor_write(floor: float | None, floor_nosync: float | None) -> float:
    """Seconds the floor's write (sync and commit) adds to a request: its PUT less the same PUT
    without the sync and commit; 0 without both rates."""
    return max(1 / floor - 1 / floor_nosync, 0.0) if floor and floor_nosync else 0.0


def body_receipt(floor: float | None, floor_empty: float | None) -> float:
    """Seconds taking a 1 KiB body from the server adds to a request: the no-sync floor's PUT
    less the same PUT with an empty body (which the app never asks for); 0 without both rates."""
    return max(1 / floor - 1 / floor_empty, 0.0) if floor and floor_empty else 0.0


def tiny_put_bound(results: dict[str, Any], in_memory: bool) -> float | None:
    """``put_bound`` from a suite run's figures; None where they were not measured."""
    status = _extra_median(results, "graphattach.tiny_puts", "status_rate")
    floor = _median(results, "physical.tiny_puts")
    if status is None or floor is None:
        return None
    if in_memory:
        empty = _extra_median(results, "physical.tiny_puts", "empty_rate")
        return None if empty is None else put_bound(status, body_receipt(floor, empty))
    nosync = _extra_median(results, "physical.tiny_puts", "no_sync_rate")
    return None if nosync is None else put_bound(status, floor_write(floor, nosync))


def _serial(*rates: float | None) -> float | None:
    """The rate of doing each step in turn over the same bytes (harmonic sum)."""
    if any(r is None or r <= 0 for r in rates):
        return None
    return 1 / sum(1 / r for r in rates if r)


def _lowest(*ceilings: Ceiling | None) -> Ceiling | None:
    """The tightest of the bounds that were measured."""
    found = [c for c in ceilings if c is not None and c.value is not None]
    return min(found, key=lambda c: c.value or 0.0) if found else None


def cpu_ceiling(results: dict[str, Any], cpus: int | None) -> Ceiling | None:
    """What uploads at once can gain over the single upload at the single upload's CPU cost per
    byte: the machine's CPUs over those it kept busy (server, client and kernel) during that
    upload. None where either was not measured."""
    busy = _summary(results, "graphattach.upload_big", "cores_busy")
    if not cpus or not busy:
        return None
    return Ceiling(cpus / busy, f"the {cpus} CPUs ({busy:.2f} busy in the single upload)", ratio=True)


def checks(results: dict[str, Any], in_memory: bool = False, cpus: int | None = None) -> list[Check]:
    """The targets of the one-sync design (each workload held against its floor, measured in the
    same run); with ``in_memory``, those of ``graphattach serve --in-memory``. ``cpus``: the
    machine's, for the bound on uploads at once."""
    m: Callable[[str], float | None] = lambda key: _median(results, key)  # noqa: E731
    floor = "no-sync floor" if in_memory else "durable floor"
    floor_concurrent = m("physical.upload_concurrent")
    # On disk the floor's own single upload is the one it made with its syncs in threads, as in
    # its uploads at once (bench/cases.py, FloorUploadConcurrent); in memory, FloorUploadBig.
    floor_single = (
        m("physical.upload_big") if in_memory else _extra_median(results, "physical.upload_concurrent", "single_rate")
    )
    common = [
        _ratio_check(
            "Concurrent uploads, aggregate vs one upload",
            m("graphattach.upload_concurrent"),
            m("graphattach.upload_big"),
            1.3,
            "single upload",
            _lowest(
                # what the floor gains from the same uploads at once
                Ceiling(floor_concurrent / floor_single, f"{floor}'s own", ratio=True)
                if floor_concurrent and floor_single
                else None,
                cpu_ceiling(results, cpus),
            ),
        ),
        _max_check(
            # --in-memory keeps the blobs themselves in RAM, up to its memory limit (then spills)
            "Concurrent uploads, server peak RSS"
            + (f" (blobs in RAM up to the {DEFAULT_MEMORY_LIMIT >> 20} MiB limit)" if in_memory else ""),
            _summary(results, "graphattach.upload_concurrent", "rss_peak_mb"),
            200 + (round(DEFAULT_MEMORY_LIMIT / 1e6) if in_memory else 0),
            "MB",
        ),
        # Without zero-copy a server also copies each byte out of the page cache: the send floor
        # and that read, one after the other, are the ceiling of a streamed $value.
        _ratio_check(
            "$value vs the send floor",
            m("graphattach.download_big"),
            m("physical.download_big"),
            0.9,
            "send floor",
            Ceiling(_serial(m("physical.download_big"), m("physical.page_cache_read")), "send floor + page-cache read"),
        ),
        _ratio_check(
            "$value vs the send floor plus a page-cache read of the same bytes",
            m("graphattach.download_big"),
            _serial(m("physical.download_big"), m("physical.page_cache_read")),
            0.9,
            "send floor + page-cache read",
        ),
        _max_check(
            "GET contentBytes, server RSS growth",
            _summary(results, "graphattach.content_bytes", "rss_growth_mb"),
            50,
            "MB",
        ),
        _ratio_check(
            f"POST ~1 MiB attachment vs the {floor}", m("graphattach.post_small"), m("physical.post_small"), 0.9, floor
        ),
    ]
    floor_upload = Ceiling(m("physical.upload_big"), floor)
    put_bound = Ceiling(
        tiny_put_bound(results, in_memory), "status GET + " + ("taking the body" if in_memory else "the floor's write")
    )
    if in_memory:
        return [
            _ratio_check(
                "Upload, one big file vs @tus/server",
                m("graphattach.upload_big"),
                m("tus.upload_big"),
                2.0,
                "@tus/server",
                floor_upload,
            ),
            _ratio_check(
                "1 KiB PUTs vs a no-op granian app",
                m("graphattach.tiny_puts"),
                m("physical.tiny_puts"),
                0.8,
                floor,
                put_bound,
            ),
            *common,
        ]
    return [
        _ratio_check(
            "Upload, one big file vs the disk (fdatasync every 4 MiB)",
            m("graphattach.upload_big"),
            m("physical.disk_write_fdatasync"),
            0.9,
            "disk write with fdatasync",
            floor_upload,
        ),
        _ratio_check(
            "Upload, one big file vs @tus/server",
            m("graphattach.upload_big"),
            m("tus.upload_big"),
            1.5,
            "@tus/server",
            floor_upload,
        ),
        # Bounded by the floor and by what any PUT on an upload URL pays, whichever is lower.
        _min_check(
            "1 KiB PUTs",
            m("graphattach.tiny_puts"),
            1500,
            "PUT/s",
            _lowest(Ceiling(m("physical.tiny_puts"), floor), put_bound),
        ),
        _ratio_check(
            "1 KiB PUTs vs the one-sync floor",
            m("graphattach.tiny_puts"),
            m("physical.tiny_puts"),
            0.85,
            floor,
            put_bound,
        ),
        *common,
    ]


def markdown(data: dict[str, Any]) -> str:
    meta, results = data["meta"], data["results"]
    lines: list[str] = []
    machine = meta["machine"]
    lines.append(
        f"Run {meta['started']} ({meta['mode']} mode, {meta['runs']} run(s) per case, {meta.get('elapsed_s', '?')} s), `{meta['command']}`"
    )
    lines.append(
        f"on {machine['cpus']} CPUs, {machine['mem_total_mb']:,} MB RAM, Linux {machine['kernel']}; "
        f"load average {machine['loadavg_start'][0]:.1f} at the start and {machine.get('loadavg_end', [math.nan])[0]:.1f} at the end "
        "(a shared machine: absolute figures drift, ratios within one run hold)."
    )
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    uncommitted = ", with uncommitted changes" if meta["git"].get("uncommitted") else ""
    anchors = "; ".join(f"{TARGET_NAMES[k]}: {v}" for k, v in meta.get("anchors", {}).items())
    lines.append(
        f"Versions: {versions}; {anchors}; commit {meta['git']['commit'][:10]} ({meta['git']['branch']}{uncommitted})."
    )
    lines.append("")
    lines.append("### Targets")
    lines.append("")
    lines.append(
        "The ceiling is what bounds graphattach on that row, measured in the same run against the same "
        "reference: a floor doing the least the workload needs, or, for the 1 KiB PUTs, a status `GET` on the "
        "upload URL plus what the floor's PUT pays for the part a PUT cannot overlap with that (the least a "
        "PUT does): the floor's write on disk, taking the 1 KiB body from the server in memory. Where the target is past the ceiling, "
        "no server built this way meets it; where the ceiling meets it, the miss (**bold**) is graphattach's "
        "own cost; in both, graphattach's share of the ceiling is its own cost."
    )
    lines.append("")
    lines.append("| check | measured (medians) | target | ceiling in this run | result |")
    lines.append("|---|---|---|---|---|")
    for c in checks(results, bool(meta.get("in_memory")), meta.get("machine", {}).get("cpus")):
        lines.append(f"| {c.name} | {c.measured} | {c.target} | {c.ceiling or '–'} | {c.verdict} |")
    lines.append("")
    lines.append("### Ratios of graphattach to each anchor")
    lines.append("")
    lines.append("graphattach's median divided by the anchor's median (> 1: graphattach is faster).")
    lines.append("")
    lines.append("| workload | graphattach | ÷ nginx | ÷ @tus/server | ÷ physical limit |")
    lines.append("|---|---|---|---|---|")
    for workload, title, unit in WORKLOADS:
        ga = _median(results, f"graphattach.{workload}")
        if ga is None:
            status = results.get(f"graphattach.{workload}", {}).get("status", "not run")
            lines.append(f"| {title} | {status} | – | – | – |")
            continue
        cells = []
        for target in ("nginx", "tus"):
            other = _median(results, f"{target}.{workload}")
            cells.append(f"{ga / other:.2f}" if other else "–")
        ref = PHYSICAL_REFERENCE.get(workload)
        if workload == "upload_concurrent" and meta.get("in_memory"):
            ref = (workload, _chart_label("physical.upload_concurrent"))  # the floor's own, in memory only
        if ref and meta.get("in_memory") and ref[1] == "durable floor":
            ref = (ref[0], "no-sync floor")  # against --in-memory the floor syncs nothing
        phys = _median(results, f"physical.{ref[0]}") if ref else None
        cells.append(f"{ga / phys:.2f} ({ref[1]})" if ref and phys else "–")
        lines.append(f"| {title} | {_fmt(ga, 1)} {unit} | {' | '.join(cells)} |")
    lines.append("")
    lines.append("### Figures")
    lines.append("")
    lines.append(
        "Median of the runs (min–max); server CPU seconds per run (median); peak RSS of the server's whole "
        "process tree, sampled every 20 ms (for graphattach: the `graphattach serve` process plus granian's "
        "worker); VmHWM of the largest single process."
    )
    lines.append("")
    lines.append("| workload | target | what | median (min–max) | server CPU s/run | peak RSS MB | VmHWM MB | note |")
    lines.append("|---|---|---|---|---|---|---|---|")
    titles = {k: (t, u) for k, t, u in WORKLOADS}
    titles["physical"] = (PHYSICAL_TITLE[1], PHYSICAL_TITLE[2])
    order = [*PHYSICAL_WORKLOADS, *(k for k, _, _ in WORKLOADS)]
    for workload in order:
        for target in TARGET_ORDER:
            r = results.get(f"{target}.{workload}")
            if r is None:
                continue
            s = r["summary"]
            title = titles.get(workload, (PHYSICAL_TITLE[1], ""))[0]
            if workload in PHYSICAL_WORKLOADS:
                title = "Physical limit"
            if r["status"] == "ok" and "median" in s:
                fig = f"{_fmt(s['median'], 1)} {r['unit']} ({_fmt(s['min'], 1)}–{_fmt(s['max'], 1)})"
                if "p50_ms" in s:
                    fig += f"; p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms"
            else:
                fig = r["status"]
            cpu = _fmt(s.get("server_cpu_s"), 2) if "server_cpu_s" in s else "–"
            rss = "–"
            if "rss_peak_mb" in s:
                rss = f"{s['rss_peak_mb']:.0f}"
                if workload == "content_bytes":
                    rss += f" (growth {s['rss_growth_mb']:.0f})"
            hwm = f"{s['vm_hwm_mb']:.0f}" if "vm_hwm_mb" in s else "–"
            note = r["note"].replace("|", "\\|").replace("\n", " ")[:240]
            lines.append(
                f"| {title} | {_chart_label(target + '.' + workload, bool(meta.get('in_memory')))} | {r['label']} | {fig} | {cpu} | {rss} | {hwm} | {note} |"
            )
    lines.append("")
    return "\n".join(lines)


def chart(data: dict[str, Any], path: Path) -> str | None:
    """Write the PNG; returns why not when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (scripts/bench-setup installs it): no chart"
    results = data["results"]
    panels = [("physical", PHYSICAL_TITLE[1], PHYSICAL_TITLE[2]), *WORKLOADS]
    fig, axes = plt.subplots(2, 4, figsize=(18, 8.5))
    flat = list(axes.flat)
    for ax, (workload, title, unit) in zip(flat, panels, strict=False):
        if workload == "physical":
            keys = [f"physical.{w}" for w in PHYSICAL_WORKLOADS]
            labels = [
                "disk write\npage cache",
                "disk write\nfdatasync",
                "read\npage cache",
                "loopback\nsend",
                "loopback\nsendfile",
            ]
            colors = [COLORS["physical"]] * len(keys)
        else:
            keys = [f"{t}.{workload}" for t in TARGET_ORDER if f"{t}.{workload}" in results]
            labels = [_chart_label(k, bool(data["meta"].get("in_memory"))) for k in keys]
            colors = [COLORS[k.split(".")[0]] for k in keys]
        medians, lows, highs = [], [], []
        for k in keys:
            r = results.get(k)
            s = r["summary"] if r else {}
            if r and r["status"] == "ok" and "median" in s:
                medians.append(s["median"])
                lows.append(s["median"] - s["min"])
                highs.append(s["max"] - s["median"])
            else:
                medians.append(0.0)
                lows.append(0.0)
                highs.append(0.0)
        xs = range(len(keys))
        ax.bar(xs, medians, color=colors, yerr=[lows, highs], capsize=4)
        ax.set_xticks(list(xs), labels, fontsize=9)
        ax.set_title(title, fontsize=11)
        ax.set_ylabel(unit)
        for x, k, v, hi in zip(xs, keys, medians, highs, strict=True):
            r = results.get(k)
            text = f"{v:,.0f}" if r and r["status"] == "ok" else (r["status"] if r else "")
            ax.annotate(
                text, (x, v + hi), ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points"
            )
    for ax in flat[len(panels) :]:
        ax.axis("off")
    if len(flat) > len(panels):
        lines = ["Targets (medians)", ""]
        for c in checks(results, bool(data["meta"].get("in_memory")), data["meta"].get("machine", {}).get("cpus")):
            verdict = "n/a" if c.ok is None else ("met" if c.ok else "MISSED")
            lines.append(f"{verdict:>6}  {c.name}")
            lines.append(f"        {c.measured}; target {c.target}")
            if c.ceiling:
                past = " (target past it)" if c.ceiling_ok is False else ""
                lines.append(f"        ceiling {c.ceiling}{past}")
        flat[len(panels)].text(
            0,
            1,
            "\n".join(lines),
            va="top",
            ha="left",
            fontsize=6.6,  # a line more per target with a ceiling: kept inside the panel
            family="monospace",
            transform=flat[len(panels)].transAxes,
        )
    meta = data["meta"]
    fig.suptitle(
        f"graphattach vs anchors on 127.0.0.1 — {meta['mode']} run {meta['started']}, median of {meta['runs']} (bars: min–max); "
        f"shared {meta['machine']['cpus']}-CPU machine, load {meta['machine']['loadavg_start'][0]:.1f}",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


def write_all(data: dict[str, Any], out: Path, stem: str = "latest") -> list[Path]:
    written = []
    md_path = out / f"{stem}.md"
    png_path = out / f"{stem}.png"
    why = chart(data, png_path)
    if why:
        data["meta"]["chart"] = why
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    written.append(json_path)
    md_path.write_text(markdown(data) + ("\n" + why + "\n" if why else ""))
    written.append(md_path)
    if not why:
        written.append(png_path)
    return written
