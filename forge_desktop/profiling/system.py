"""SystemAnalyzer: what the machine has and is doing (CPU, memory, disks, containers), and the
noise check run before benchmarks (pyperf's ``system`` checks, reduced to warnings).

``noise_warnings()`` is cheap (about 0.3 s, the busy-process window), never raises, and its
sentences land in every result's environment fingerprint. Engines are asked only through the
adapters' ``ContainerFacts``, and only by ``SystemAnalyzer.engines()``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from forge_desktop.config import Config, forge_home
from forge_desktop.errors import ForgeError
from forge_desktop.hostfacts import cpu_model
from forge_desktop.runtimes.base import ContainerFacts

SYS_CPU = Path("/sys/devices/system/cpu")
BUSY_WINDOW_S = 0.3
BUSY_PERCENT = 20.0
"""A process using more than this share of one core during the window is 'busy'."""
LOW_MEMORY_PERCENT = 10.0
ENGINE_TIMEOUT_S = 5.0
"""`forge benchmark resources` must not hang for the engines' 30 s default on a stuck daemon."""


# -- noise checks: each returns sentences; noise_warnings() shields the caller from errors -----
def governor_warnings(sys_cpu: Path = SYS_CPU) -> list[str]:
    governors: dict[str, list[str]] = {}
    for path in sorted(sys_cpu.glob("cpu[0-9]*/cpufreq/scaling_governor")):
        with contextlib.suppress(OSError):
            governors.setdefault(path.read_text().strip(), []).append(path.parts[-3])
    slow = {g: cpus for g, cpus in governors.items() if g != "performance"}
    if not slow:
        return []
    what = ", ".join(f"{g!r} on {len(cpus)} CPU{'s' if len(cpus) > 1 else ''}"
                     for g, cpus in sorted(slow.items()))
    return [f"CPU frequency governor is {what}, not 'performance': clock speed varies between "
            "runs (sudo cpupower frequency-set -g performance)"]


def turbo_warnings(sys_cpu: Path = SYS_CPU) -> list[str]:
    no_turbo = _read(sys_cpu / "intel_pstate" / "no_turbo")
    if no_turbo == "0":
        return ["Turbo Boost is on (intel_pstate/no_turbo = 0): the clock depends on "
                "temperature and load; disable it for stable timings"]
    if _read(sys_cpu / "cpufreq" / "boost") == "1":
        return ["CPU boost is on (cpufreq/boost = 1): the clock depends on temperature and "
                "load; disable it for stable timings"]
    return []


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def busy_processes(window_s: float = BUSY_WINDOW_S, threshold: float = BUSY_PERCENT,
                   sleep: Callable[[float], None] = time.sleep
                   ) -> list[tuple[str, int, float]]:
    """(name, pid, CPU %) of other processes above ``threshold`` over ``window_s``, busiest
    first. forge itself and its children are not 'other'."""
    me = os.getpid()
    mine = {me}
    with contextlib.suppress(psutil.Error):
        mine |= {c.pid for c in psutil.Process(me).children(recursive=True)}
    procs = []
    for proc in psutil.process_iter(["name"]):
        if proc.pid in mine:
            continue
        with contextlib.suppress(psutil.Error):
            proc.cpu_percent(None)
            procs.append(proc)
    sleep(window_s)
    busy = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            percent = proc.cpu_percent(None)
            if percent > threshold:
                busy.append((proc.info.get("name") or "?", proc.pid, percent))
    return sorted(busy, key=lambda b: -b[2])


def busy_warnings(busy: Sequence[tuple[str, int, float]]) -> list[str]:
    if not busy:
        return []
    top = ", ".join(f"{name} (pid {pid}) {pct:.0f}%" for name, pid, pct in busy[:3])
    more = f" and {len(busy) - 3} more" if len(busy) > 3 else ""
    return [f"other processes are busy: {top}{more} of a core; they compete with the "
            "benchmark"]


def memory_warnings(total_bytes: int, available_bytes: int) -> list[str]:
    if total_bytes and available_bytes / total_bytes * 100 < LOW_MEMORY_PERCENT:
        return [f"low memory: {available_bytes / total_bytes * 100:.0f}% available "
                f"({available_bytes / 2**20:.0f} MiB); swapping and reclaim distort timings"]
    return []


def battery_warnings(battery: Any) -> list[str]:
    if battery is not None and battery.power_plugged is False:
        return [f"running on battery ({battery.percent:.0f}%): power saving slows the CPU; "
                "plug the machine in"]
    return []


def load_warnings(load_1min: float, cores: int) -> list[str]:
    if cores and load_1min > cores:
        return [f"load average {load_1min:.2f} is above the {cores} cores: the machine is "
                "busy"]
    return []


def noise_warnings(sys_cpu: Path = SYS_CPU, window_s: float = BUSY_WINDOW_S) -> list[str]:
    """Sentences about what would make timings noisy now; [] when the machine is quiet.
    Fast (the busy-process window plus a few milliseconds) and never raises."""
    checks: list[Callable[[], list[str]]] = [
        lambda: governor_warnings(sys_cpu),
        lambda: turbo_warnings(sys_cpu),
        lambda: busy_warnings(busy_processes(window_s)),
        lambda: memory_warnings(*_mem_total_available()),
        lambda: battery_warnings(psutil.sensors_battery()),
        lambda: load_warnings(os.getloadavg()[0], psutil.cpu_count() or 1),
    ]
    out: list[str] = []
    for check in checks:
        with contextlib.suppress(Exception):  # a probe that fails says nothing, never breaks
            out += check()
    return out


def _mem_total_available() -> tuple[int, int]:
    vm = psutil.virtual_memory()
    return int(vm.total), int(vm.available)


# -- disks -------------------------------------------------------------------------------------
def existing_parent(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (FORGE_HOME may not exist yet)."""
    path = path.expanduser().absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def disk_entry(path: Path) -> dict[str, Any]:
    """Total, free (what an unprivileged user can still write) and used % as ``df`` shows
    them, for the filesystem holding ``path``."""
    where = existing_parent(path)
    usage = psutil.disk_usage(str(where))
    return {"path": str(path), "measured_at": str(where), "total_bytes": int(usage.total),
            "free_bytes": int(usage.free), "used_percent": float(usage.percent)}


# -- engines -----------------------------------------------------------------------------------
@dataclass
class EngineFacts:
    name: str
    running: int | None = None
    total: int | None = None
    store_path: str | None = None
    store_source: str | None = None
    reason: str | None = None


def engine_facts(runtimes: Sequence[Any]) -> list[EngineFacts]:
    """Container counts and store paths of the engines among ``runtimes``; an engine that
    cannot answer gets None counts and the reason."""
    out = []
    for runtime in runtimes:
        if not isinstance(runtime, ContainerFacts):
            continue
        facts = EngineFacts(runtime.name)
        try:
            facts.reason = runtime.available()
            if facts.reason is None:
                with contextlib.suppress(ForgeError):  # the counts matter more than the path
                    root = runtime.store_root()
                    if root:
                        facts.store_path, facts.store_source = root, "info"
                facts.running, facts.total = runtime.container_counts()
        except Exception as exc:  # noqa: BLE001 - a ForgeError, or a bug: a reason
            facts.running = facts.total = None
            facts.reason = str(exc) or type(exc).__name__
        if facts.store_path is None and Path(runtime.default_store_root).is_dir():
            facts.store_path = runtime.default_store_root
            facts.store_source = "default"
        out.append(facts)
    return out


class SystemAnalyzer:
    """One look at the machine. ``runtimes`` default to docker and podman from the config's
    registry (closed afterwards); ``cpu_interval_s`` is psutil's CPU measuring window."""

    def __init__(self, config: Config | None = None, runtimes: Sequence[Any] | None = None,
                 cpu_interval_s: float = 0.2, sys_cpu: Path = SYS_CPU,
                 home: Path | None = None) -> None:
        self.config = config
        self.runtimes = runtimes
        self.cpu_interval_s = cpu_interval_s
        self.sys_cpu = sys_cpu
        self.home = home

    def cpu(self) -> dict[str, Any]:
        per_core = [float(p) for p in psutil.cpu_percent(self.cpu_interval_s, percpu=True)]
        try:
            load = [round(x, 2) for x in os.getloadavg()]
        except OSError:
            load = None
        return {"model": cpu_model(), "count": psutil.cpu_count() or os.cpu_count(),
                "physical_count": psutil.cpu_count(logical=False),
                "percent": round(sum(per_core) / len(per_core), 1) if per_core else None,
                "per_core_percent": per_core, "load_avg": load}

    def memory(self) -> dict[str, Any]:
        vm = psutil.virtual_memory()
        return {"total_bytes": int(vm.total), "available_bytes": int(vm.available),
                "used_percent": float(vm.percent)}

    def swap(self) -> dict[str, Any]:
        sw = psutil.swap_memory()
        return {"total_bytes": int(sw.total), "used_bytes": int(sw.used),
                "used_percent": float(sw.percent)}

    def noise(self) -> list[str]:
        return noise_warnings(self.sys_cpu)

    def engines(self) -> list[EngineFacts]:
        if self.runtimes is not None:
            return engine_facts(self.runtimes)
        from forge_desktop.config import load_config
        from forge_desktop.runtimes.registry import known_runtimes

        config = self.config or load_config()
        config = replace(config, timeout_s=min(config.timeout_s, ENGINE_TIMEOUT_S))
        runtimes = [r for r in known_runtimes(config) if isinstance(r, ContainerFacts)]
        try:
            return engine_facts(runtimes)
        finally:
            for r in runtimes:
                with contextlib.suppress(Exception):
                    r.close()

    def analyze(self) -> dict[str, Any]:
        """Everything, JSON-ready. Quiet measurements first (CPU window, noise check), then
        the engines, whose answers cost CPU."""
        cpu, noise = self.cpu(), self.noise()
        engines = self.engines()
        stores = []
        for e in engines:
            if e.store_path is None:
                continue
            entry: dict[str, Any] = {"engine": e.name, "source": e.store_source}
            try:
                entry.update(disk_entry(Path(e.store_path)))
            except OSError as exc:
                entry.update(path=e.store_path, total_bytes=None, free_bytes=None,
                             used_percent=None, reason=exc.strerror or str(exc))
            stores.append(entry)
        containers: dict[str, Any] = {}
        for e in engines:
            containers[e.name] = {"running": e.running, "total": e.total}
            if e.reason:
                containers[e.name]["reason"] = e.reason
        return {"cpu": cpu, "memory": self.memory(), "swap": self.swap(),
                "disk": {"forge_home": disk_entry(self.home or forge_home()), "stores": stores},
                "containers": containers, "noise_warnings": noise}
