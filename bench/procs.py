"""Server processes: start and stop them, and read their CPU time and memory from /proc.

A server is measured as its whole process tree (granian runs its worker as a child of the
``graphattach serve`` process; nginx has a master and a worker): CPU seconds are summed over the
tree, and resident memory is sampled (summed over the tree) by a background thread while a workload
runs, next to each process's own ``VmHWM``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            continue
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are alive now."""
    seen: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in seen or not os.path.exists(f"/proc/{p}"):
            continue
        seen.append(p)
        todo.extend(_children(p))
    return seen


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy (every process, ours or not), from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class ProcTree:
    """The process tree of one server, rooted at ``pid``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        #: CPU time of descendants seen earlier that have since exited is not counted.
        self._known: set[int] = set()

    def pids(self) -> list[int]:
        pids = tree(self.pid)
        self._known.update(pids)
        return pids

    def cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.pids())

    def rss(self) -> int:
        """Resident bytes, summed over the tree."""
        return sum(status_kib(p, "VmRSS") for p in self.pids()) * 1024

    def hwm(self) -> dict[int, int]:
        """Each process's peak resident bytes since it started (VmHWM)."""
        return {p: status_kib(p, "VmHWM") * 1024 for p in self.pids()}


@dataclass
class Usage:
    cpu_s: float = 0.0
    rss_before: int = 0
    rss_peak: int = 0
    rss_after: int = 0
    samples: int = 0
    hwm: dict[int, int] = field(default_factory=dict)

    @property
    def growth(self) -> int:
        return max(0, self.rss_peak - self.rss_before)


class Monitor:
    """``with Monitor(tree) as usage:`` samples the tree's RSS every ``interval`` seconds."""

    def __init__(self, procs: ProcTree | None, interval: float = 0.02) -> None:
        self.procs = procs
        self.interval = interval
        self.usage = Usage()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu0 = 0.0

    def _sample(self) -> None:
        assert self.procs is not None
        while not self._stop.wait(self.interval):
            rss = self.procs.rss()
            self.usage.samples += 1
            if rss > self.usage.rss_peak:
                self.usage.rss_peak = rss

    def __enter__(self) -> Usage:
        if self.procs is None:
            return self.usage
        self._cpu0 = self.procs.cpu()
        self.usage.rss_before = self.usage.rss_peak = self.procs.rss()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="rss-sampler")
        self._thread.start()
        return self.usage

    def __exit__(self, *exc: object) -> None:
        if self.procs is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        rss = self.procs.rss()
        self.usage.rss_after = rss
        self.usage.rss_peak = max(self.usage.rss_peak, rss)
        self.usage.cpu_s = self.procs.cpu() - self._cpu0
        self.usage.hwm = self.procs.hwm()


class Server:
    """A server process started in its own session (so its whole group can be signalled)."""

    def __init__(
        self, name: str, cmd: list[str], log_path: Path, *, env: dict[str, str] | None = None, cwd: Path | None = None
    ):
        self.name = name
        self.cmd = cmd
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def procs(self) -> ProcTree:
        return ProcTree(self.pid)

    def start(self) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(self.env or {})},
                cwd=self.cwd,
                start_new_session=True,
            )
        finally:
            log.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def wait_ready(self, check: object, timeout: float = 60.0) -> None:
        """Poll ``check()`` (True when ready) until it is, the process dies, or ``timeout`` passes."""
        assert callable(check)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                assert self.proc is not None
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, ConnectionError, ValueError):
                if check():
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f} s:\n{self.log_tail()}")

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a crash, no clean shutdown)."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(15)
        self._wait_group_gone()

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(15)
        # Children left behind (e.g. a worker whose parent died first).
        self._signal_group(signal.SIGKILL)
        self._wait_group_gone()

    def _wait_group_gone(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.02)


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


def port_answers(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
