"""Memory of processes and cgroups, read the way a user can check by hand
(``/proc/<pid>/smaps_rollup``, ``memory.usage_in_bytes`` / ``memory.current``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class ProcMem:
    pid: int
    name: str
    rss_bytes: int
    pss_bytes: int | None
    uss_bytes: int | None
    vms_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "name": self.name, "rss_bytes": self.rss_bytes,
                "pss_bytes": self.pss_bytes, "uss_bytes": self.uss_bytes,
                "vms_bytes": self.vms_bytes}


def read_mem(proc: psutil.Process) -> tuple[int, int, int | None, int | None]:
    """(rss, vms, pss, uss) of one process: PSS and USS from smaps_rollup when readable (None
    otherwise). Raises psutil.NoSuchProcess when the process is gone."""
    try:
        full = proc.memory_full_info()
        return (int(full.rss), int(full.vms), getattr(full, "pss", None),
                getattr(full, "uss", None))
    except psutil.AccessDenied:
        info = proc.memory_info()
        return int(info.rss), int(info.vms), None, None


def proc_mem(pid: int) -> ProcMem | None:
    """RSS always; PSS and USS from smaps_rollup when readable. None if the process is gone."""
    try:
        proc = psutil.Process(pid)
        name = proc.name()
        rss, vms, pss, uss = read_mem(proc)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    return ProcMem(pid, name, rss, pss, uss, vms)


def procs_mem(pids: Iterable[int]) -> list[ProcMem]:
    return [m for m in (proc_mem(p) for p in pids) if m is not None]


def cgroup_memory_bytes(pid: int) -> int | None:
    """Memory charged to the cgroup of ``pid``: v1 memory.usage_in_bytes where a v1 memory
    controller is mounted (hybrid hosts too), else v2 memory.current."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    v2_path = None
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            candidate = CGROUP_ROOT / "memory" / path.lstrip("/") / "memory.usage_in_bytes"
            value = _read_int(candidate)
            if value is not None:
                return value
        if controllers == "":
            v2_path = path
    if v2_path is not None:
        for base in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
            value = _read_int(base / v2_path.lstrip("/") / "memory.current")
            if value is not None:
                return value
    return None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def parent_shim(pid: int) -> int | None:
    """The per-container supervisor outside the container (containerd-shim, conmon), if any."""
    try:
        parent = psutil.Process(pid).parent()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    if parent is None:
        return None
    name = parent.name()
    if name.startswith("containerd-shim") or name in ("conmon", "shim"):
        return int(parent.pid)
    return None


def is_alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (an exited child its parent has not reaped yet); a reused
    pid does not count (psutil compares the start time)."""
    try:
        return bool(proc.is_running()) and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


class ProcessTree:
    """Reads the summed memory, CPU and threads of some root processes (and, with
    ``include_children``, all their descendants): one ``read()`` per snapshot, for ``Sampler``.

    psutil.Process objects are kept between reads because CPU % is measured between two calls
    on the same object; a process seen for the first time reports 0 % in that read. ``read()``
    returns None once every root has exited. Raises psutil.NoSuchProcess when no root runs
    (an exited, unreaped child does not count).
    """

    def __init__(self, pids: Sequence[int], include_children: bool = False) -> None:
        self.include_children = include_children
        self.roots: list[psutil.Process] = []
        for pid in dict.fromkeys(pids):
            try:
                proc = psutil.Process(pid)
            except psutil.NoSuchProcess:
                continue
            if is_alive(proc):
                self.roots.append(proc)
        if not self.roots:
            raise psutil.NoSuchProcess(pids[0] if pids else -1)
        self._known: dict[int, psutil.Process] = {}
        self.exited: list[int] = []
        """Roots seen exiting, in order (a warning for the user)."""
        self.names = {p.pid: _name(p) for p in self.roots}
        for proc in self.roots:  # prime CPU % so the first read covers the time since now
            self._track(proc)

    def _track(self, proc: psutil.Process) -> psutil.Process:
        known = self._known.get(proc.pid)
        if known is not None and known.is_running():
            return known
        self._known[proc.pid] = proc
        with contextlib.suppress(psutil.Error):
            proc.cpu_percent(None)
        return proc

    def _members(self) -> list[psutil.Process]:
        members: dict[int, psutil.Process] = {}
        for root in self.roots:
            if root.pid in self.exited:
                continue
            if not is_alive(root):
                self.exited.append(root.pid)
                continue
            members[root.pid] = root
            if self.include_children:
                try:
                    children = root.children(recursive=True)
                except psutil.Error:
                    children = []
                for child in children:
                    if is_alive(child):  # an unreaped zombie holds no memory
                        members.setdefault(child.pid, child)
        tracked = [self._track(p) for p in members.values()]
        self._known = {p.pid: p for p in tracked}  # forget the exited ones
        return tracked

    def alive(self) -> bool:
        return any(r.pid not in self.exited and is_alive(r) for r in self.roots)

    def read(self) -> dict[str, Any] | None:
        """One snapshot: ``rss_bytes``, ``vms_bytes``, ``uss_bytes``, ``pss_bytes`` (None when
        a member's smaps cannot be read: a partial sum would mislead), ``cpu_percent`` (100 =
        one core), ``threads``, ``processes``, ``system_memory_percent``."""
        members = self._members()
        if not members:
            return None
        rss = vms = threads = counted = 0
        pss: int | None = 0
        uss: int | None = 0
        cpu = 0.0
        for proc in members:
            try:
                p_rss, p_vms, p_pss, p_uss = read_mem(proc)
                p_cpu = proc.cpu_percent(None)
                p_threads = proc.num_threads()
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue  # exited between listing and reading
            rss += p_rss
            vms += p_vms
            pss = None if pss is None or p_pss is None else pss + p_pss
            uss = None if uss is None or p_uss is None else uss + p_uss
            cpu += p_cpu
            threads += p_threads
            counted += 1
        if not counted:
            return None
        return {"rss_bytes": rss, "vms_bytes": vms, "uss_bytes": uss, "pss_bytes": pss,
                "cpu_percent": round(cpu, 1), "threads": threads, "processes": counted,
                "system_memory_percent": psutil.virtual_memory().percent}


def _name(proc: psutil.Process) -> str:
    try:
        return str(proc.name())
    except psutil.Error:
        return "?"


class Sampler:
    """Takes ``count`` snapshots of ``collect()`` every ``interval_s``; each snapshot gets
    ``t_s`` (seconds since ``origin``, by default the first snapshot). ``collect()`` returning
    None means the target is gone: sampling stops with what was taken. The one sampler
    behind the memory benchmark and the MemoryProfiler. Clock and sleep are injectable for
    tests."""

    def __init__(self, collect: Callable[[], dict[str, Any] | None], interval_s: float,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.collect = collect
        self.interval_s = interval_s
        self.clock = clock
        self.sleep = sleep

    def run(self, count: int, should_stop: Callable[[], bool] = lambda: False,
            on_sample: Callable[[dict[str, Any]], None] | None = None,
            origin: float | None = None) -> list[dict[str, Any]]:
        snapshots: list[dict[str, Any]] = []
        start = self.clock()
        zero = start if origin is None else origin
        for i in range(count):
            if should_stop():
                break
            now = self.clock()
            values = self.collect()
            if values is None:
                break
            snap = {"t_s": round(now - zero, 4), **values}
            snapshots.append(snap)
            if on_sample:
                on_sample(snap)
            if i + 1 < count:
                # aim at start + k*interval so collection time does not stretch the period
                self.sleep(max(0.0, start + (i + 1) * self.interval_s - self.clock()))
        return snapshots
