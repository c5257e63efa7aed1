"""The memory benchmark: what a runtime costs idle, per running container, and per extra one.

Per runtime: the daemon's RSS and PSS (dockerd + containerd; the podman API service; nothing
for bare OCI runtimes); N ``sleep`` containers started one by one, the total measured after
each (the density line); then, settled, each container's cost outside it (containerd-shim or
conmon PSS) and inside it (its cgroup's memory); then samples of the total over time. PSS
rather than RSS for processes: shared pages are split among sharers, so sums add up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_desktop.bench import stats
from forge_desktop.bench.runner import ProgressFn
from forge_desktop.bench.session import Log, Measured, Session, unprepared_entry
from forge_desktop.config import Config
from forge_desktop.errors import ForgeError, Interrupted, UsageError
from forge_desktop.models import RunContext, RunSpec, RuntimeInfo
from forge_desktop.profiling.procmem import (
    Sampler,
    cgroup_memory_bytes,
    parent_shim,
    proc_mem,
    procs_mem,
)
from forge_desktop.runtimes.base import LongRunning, Runtime
from forge_desktop.runtimes.transport import refuse_remote

MAX_CONTAINERS = 50
"""Each container is capped at 64 MiB and 64 pids; 50 of them stay far from a laptop's
limits while a density line needs no more."""
MAX_SAMPLES = 10_000
SLEEP_COMMAND = ("sleep", "600")


@dataclass(frozen=True)
class MemoryOptions:
    runtimes: tuple[str, ...] = ()
    containers: int = 5
    samples: int = 10
    interval_s: float = 0.2
    settle_s: float = 1.0
    image: str | None = None
    save: bool = True

    def validate(self) -> None:
        refuse_remote(self.runtimes, "memory")
        if not 1 <= self.containers <= MAX_CONTAINERS:
            raise UsageError(f"--containers must be between 1 and {MAX_CONTAINERS}, "
                             f"got {self.containers}")
        if not 1 <= self.samples <= MAX_SAMPLES:
            raise UsageError(f"--samples must be between 1 and {MAX_SAMPLES}, got {self.samples}")
        if not 0.01 <= self.interval_s <= 60:
            raise UsageError(f"--interval must be between 0.01 and 60 s, got {self.interval_s}")


@dataclass
class _Running:
    cid: str
    pid: int
    shim_pid: int | None


def _sum(values: Sequence[int | None]) -> int:
    return sum(v for v in values if v is not None)


def _pss(m: Any) -> int:
    return int(m.pss_bytes if m.pss_bytes is not None else m.rss_bytes)


class _Measure:
    """Reads the current memory of one runtime's daemon and running containers."""

    def __init__(self, daemon_pids: list[int]) -> None:
        self.daemon_pids = daemon_pids
        self.running: list[_Running] = []

    def breakdown(self) -> dict[str, int]:
        daemon = _sum([_pss(m) for m in procs_mem(self.daemon_pids)])
        shims = _sum([_pss(m) for m in procs_mem(r.shim_pid for r in self.running if r.shim_pid)])
        cgroups = _sum([cgroup_memory_bytes(r.pid) for r in self.running])
        return {"daemon_pss_bytes": daemon, "shims_pss_bytes": shims, "cgroups_bytes": cgroups,
                "total_bytes": daemon + shims + cgroups}


def no_limits_reason(name: str, note: str | None) -> str:
    return (f"{name} runs without cgroups here ({note or 'no cgroup limits'}): the memory "
            "benchmark reads each container's memory cgroup and sets its limits; measure "
            f"{name} with `forge benchmark startup`")


def memory_entry(runtime: Runtime, image: str, ctx: RunContext, opts: MemoryOptions, *,
                 progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Measure one runtime; engine failures land in ``errors``, the run goes on."""
    entry: dict[str, Any] = {"runtime": runtime.name, "kind": runtime.kind,
                             "version": None, "containers": opts.containers,
                             "warnings": [], "errors": []}
    try:
        info = runtime.info()
    except ForgeError as exc:
        # the engine died since the run began (e.g. mid-compare): an error in this entry,
        # not an exception that would throw away what the other runtimes measured
        entry["errors"].append(str(exc))
        return entry
    entry["version"] = info.version
    if not info.available:
        entry["errors"].append(f"{runtime.name}: {info.reason}")
        return entry
    entry["cgroup_limits"] = info.cgroup_limits
    if info.network is not None:
        entry["network"] = info.network
    if info.cgroup_limits is False:  # its containers would sit in forge's own cgroup
        entry["errors"].append(no_limits_reason(runtime.name, info.note))
        return entry
    spec = RunSpec(image=image, command=SLEEP_COMMAND, network="none")
    if not isinstance(runtime, LongRunning):
        entry["errors"].append(f"{runtime.name} runs commands to completion: memory of "
                               "running containers does not apply")
        return entry
    measure = _Measure(runtime.daemon_pids())
    try:
        runtime.prepare(spec, ctx)
        daemon = procs_mem(measure.daemon_pids)
        entry["daemon_processes"] = [m.to_dict() for m in daemon]
        has_daemon = runtime.kind == "engine"
        entry["daemon_rss_bytes"] = _sum([m.rss_bytes for m in daemon]) if has_daemon else None
        entry["daemon_pss_bytes"] = _sum([_pss(m) for m in daemon]) if has_daemon else None
        if has_daemon and not daemon:
            entry["warnings"].append("the daemon's processes were not found on this host "
                                     "(remote engine?): daemon memory is not measured")
        density = [{"containers": 0, **measure.breakdown()}]
        for k in range(1, opts.containers + 1):
            if cancel is not None and cancel.is_set():
                raise Interrupted("cancelled; the run's containers were removed")
            cid = runtime.start_detached(spec, ctx, k)
            pid = runtime.container_pid(cid)
            measure.running.append(_Running(cid, pid, parent_shim(pid)))
            sleep(min(opts.settle_s, 0.3))
            density.append({"containers": k, **measure.breakdown()})
            if progress:
                progress(runtime.name, k, opts.containers, False)
        sleep(opts.settle_s)
        shims = [proc_mem(r.shim_pid) if r.shim_pid else None for r in measure.running]
        outside = [_pss(m) if m else 0 for m in shims]
        outside_rss = [m.rss_bytes if m else 0 for m in shims]
        inside_raw = [cgroup_memory_bytes(r.pid) for r in measure.running]
        inside = [v or 0 for v in inside_raw]
        if None in inside_raw:
            entry["warnings"].append("a container's memory cgroup could not be read; "
                                     "inside figures count it as 0")
        entry["containers_detail"] = [
            {"id": r.cid, "pid": r.pid, "shim_pid": r.shim_pid, "outside_pss_bytes": o,
             "outside_rss_bytes": orss, "inside_cgroup_bytes": i}
            for r, o, orss, i in zip(measure.running, outside, outside_rss, inside_raw,
                                     strict=True)]
        entry["per_container_parts"] = {
            "outside_pss_bytes": int(stats.median(outside)),
            "outside_rss_bytes": int(stats.median(outside_rss)),
            "inside_cgroup_bytes": int(stats.median(inside)),
        }
        entry["per_container_bytes"] = int(stats.median(
            [o + i for o, i in zip(outside, inside, strict=True)]))
        entry["density"] = density
        fitted = stats.slope([d["containers"] for d in density],
                             [d["total_bytes"] for d in density])
        entry["density_slope_bytes"] = int(fitted) if fitted is not None else None
        entry["samples"] = Sampler(measure.breakdown, opts.interval_s, sleep=sleep).run(
            opts.samples, should_stop=lambda: cancel is not None and cancel.is_set())
    except ForgeError as exc:
        if isinstance(exc, Interrupted):
            raise
        entry["errors"].append(str(exc))
    finally:
        for r in measure.running:
            runtime.remove_container(r.cid)
    return entry


def run_memory(opts: MemoryOptions, config: Config, *, progress: ProgressFn | None = None,
               cancel: threading.Event | None = None, log: Log = lambda _m: None,
               targets: Mapping[str, float] | None = None, wait: bool = False
               ) -> tuple[dict[str, Any], Path | None]:
    def prepare(s: Session) -> tuple[list[Runtime], str, dict[str, str], list[RuntimeInfo]]:
        selected, image, unprepared = s.resolve(opts.runtimes, opts.image)
        infos = [r.info() for r in selected]
        unlimited = [i for i in infos if i.cgroup_limits is False]
        kept = [r for r, i in zip(selected, infos, strict=True) if i.cgroup_limits is not False]
        if unlimited and (opts.runtimes or not kept):  # asked for: refuse, not pretend
            raise UsageError(no_limits_reason(unlimited[0].name, unlimited[0].note))
        for i in unlimited:
            s.log(f"{i.name} skipped: {no_limits_reason(i.name, i.note)}")
        return kept, image, unprepared, infos

    def measure(s: Session, prepared: tuple[list[Runtime], str, dict[str, str],
                                            list[RuntimeInfo]]) -> Measured:
        kept, image, unprepared, infos = prepared
        entries = [unprepared_entry(r, unprepared[r.name]) if r.name in unprepared
                   else memory_entry(r, image, s.ctx, opts, progress=s.progress,
                                     cancel=s.cancel)
                   for r in kept]
        parameters = {"containers": opts.containers, "samples": opts.samples,
                      "interval_s": opts.interval_s, "settle_s": opts.settle_s, "image": image,
                      "command": list(SLEEP_COMMAND), "memory_limit_bytes":
                      RunSpec(image).memory_limit_bytes, "pids_limit": RunSpec(image).pids_limit}
        nothing = None
        if all(e["errors"] for e in entries):
            nothing = "no runtime could be measured (" + "; ".join(
                f"{e['runtime']}: {e['errors'][0]}" for e in entries) + ")"
        return Measured(entries, parameters, infos, "none", nothing_measured=nothing)

    session = Session("memory", config, progress=progress, cancel=cancel, log=log,
                      targets=targets, wait=wait)
    return session.run(opts, prepare, measure)
