"""Memory of processes and cgroups, read the way a user can check by hand
(``/proc/<pid>/smaps_rollup``, ``memory.usage_in_bytes`` / ``memory.current``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
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


def proc_mem(pid: int) -> ProcMem | None:
    """RSS always; PSS and USS from smaps_rollup when readable. None if the process is gone."""
    try:
        proc = psutil.Process(pid)
        name = proc.name()
        try:
            full = proc.memory_full_info()
            rss, vms = full.rss, full.vms
            pss, uss = getattr(full, "pss", None), getattr(full, "uss", None)
        except psutil.AccessDenied:
            info = proc.memory_info()
            rss, vms, pss, uss = info.rss, info.vms, None, None
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    return ProcMem(pid, name, rss, pss, uss, vms)


def procs_mem(pids: Iterable[int]) -> list[ProcMem]:
    return [m for m in (proc_mem(p) for p in pids) if m is not None]


def find_pids(match: Callable[[str, list[str]], bool]) -> list[int]:
    """Pids whose (name, cmdline) satisfy ``match``."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if match(proc.info["name"] or "", proc.info["cmdline"] or []):
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


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


class Sampler:
    """Takes ``count`` snapshots of ``collect()`` every ``interval_s``; each snapshot gets
    ``t_s`` (seconds since the first). The one sampler behind the memory benchmark and the
    MemoryProfiler. Clock and sleep are injectable for tests."""

    def __init__(self, collect: Callable[[], dict[str, Any]], interval_s: float,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.collect = collect
        self.interval_s = interval_s
        self.clock = clock
        self.sleep = sleep

    def run(self, count: int, should_stop: Callable[[], bool] = lambda: False,
            on_sample: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        snapshots: list[dict[str, Any]] = []
        start = self.clock()
        for i in range(count):
            if should_stop():
                break
            snap = {"t_s": round(self.clock() - start, 4), **self.collect()}
            snapshots.append(snap)
            if on_sample:
                on_sample(snap)
            if i + 1 < count:
                # aim at start + k*interval so collection time does not stretch the period
                self.sleep(max(0.0, start + (i + 1) * self.interval_s - self.clock()))
        return snapshots
