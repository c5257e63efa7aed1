"""The scale benchmark: how a runtime holds up when many containers start at once.

For each concurrency level c, N container lifecycles (the startup benchmark's: ``true`` in a
fresh container, removed) run with c of them in flight at all times: c worker threads each
take the next lifecycle as soon as theirs is done, calling the adapter's own ``run_once``.
Threads keep forge off the critical path: a worker waits on the engine's socket or on a
``runc`` child, with the GIL released, so forge costs each lifecycle only its request
(``benchmarks/scale_vs_xargs.py`` checks this against ``xargs -P c``).

Per level: throughput (lifecycles completed per second of the level's wall time, with a
interval from the lifecycles' durations: ``stats.rate_ci``), latency p50/p90/p99 with bootstrap
intervals, failures, the engine's CPU and peak memory while the level ran (its daemon and
shims, sampled; plus the runtime processes forge itself ran: runc, crun) and forge's own CPU
per lifecycle. Per runtime, ``saturation_concurrency``: the first level after which
throughput stops rising significantly (:func:`saturation`).
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge_desktop.bench import stats
from forge_desktop.bench.runner import ProgressFn, RuntimeRun
from forge_desktop.bench.session import Log, Measured, Session, unprepared_entry
from forge_desktop.config import MAX_ITERATIONS, Config
from forge_desktop.errors import ForgeError, Interrupted, UsageError, failure_reason
from forge_desktop.models import RunContext, RunSpec, RuntimeInfo
from forge_desktop.profiling.procmem import procs_mem
from forge_desktop.runtimes.base import EngineProcesses, Runtime
from forge_desktop.runtimes.oci import NAMESPACE_NOTE

MAX_CONCURRENCY = 32
"""The adapters' API clients keep this many connections (runtimes/common.MAX_IN_FLIGHT)."""
DEFAULT_LEVELS = (1, 2, 4, 8)
SAMPLE_INTERVAL_S = 0.1
"""How often the engine's processes are read during a level: often enough to see most
containerd-shims (each lives as long as its container), rarely enough to cost forge little."""
MIN_RISE = 1.05
"""A rise in throughput smaller than 5% is not worth naming, however certain."""


@dataclass(frozen=True)
class ScaleOptions:
    runtimes: tuple[str, ...] = ()
    concurrency: tuple[int, ...] = DEFAULT_LEVELS
    iterations: int = 20
    """Lifecycles per level."""
    warmup: int = 2
    image: str | None = None
    save: bool = True

    def validate(self) -> None:
        if not self.concurrency:
            raise UsageError("--concurrency needs at least one level, e.g. 1,2,4,8")
        if any(not 1 <= c <= MAX_CONCURRENCY for c in self.concurrency):
            raise UsageError(f"--concurrency levels must be between 1 and {MAX_CONCURRENCY}, "
                             f"got {','.join(map(str, self.concurrency))}")
        if list(self.concurrency) != sorted(set(self.concurrency)):
            raise UsageError("--concurrency levels must be increasing, e.g. 1,2,4,8; got "
                             f"{','.join(map(str, self.concurrency))}")
        if not 1 <= self.iterations <= MAX_ITERATIONS:
            raise UsageError(f"--iterations must be between 1 and {MAX_ITERATIONS}, "
                             f"got {self.iterations}")
        if not 0 <= self.warmup <= 100:
            raise UsageError(f"--warmup must be between 0 and 100, got {self.warmup}")


# -- the saturation rule ------------------------------------------------------------------

def rises(lower: Mapping[str, Any], higher: Mapping[str, Any]) -> bool:
    """Does ``higher``'s throughput rise significantly over ``lower``'s? Yes when the lower
    bound of its 95% interval is above ``lower``'s estimate (a one-sided test at about 2.5%)
    and the rise is at least 5% (``MIN_RISE``)."""
    lo_tp, hi_tp = lower.get("throughput_per_s"), higher.get("throughput_per_s")
    ci = higher.get("throughput_ci95_per_s")
    if not isinstance(lo_tp, int | float) or not isinstance(hi_tp, int | float) \
            or not isinstance(ci, list | tuple) or len(ci) != 2:
        return False
    return bool(ci[0] > lo_tp and hi_tp >= lo_tp * MIN_RISE)


def saturation(levels: Sequence[Mapping[str, Any]]) -> int | None:
    """The first level after which throughput stops rising significantly: the level whose
    next one does not rise over it (:func:`rises`). None when every level rose over the one
    before (not saturated within the levels tried) or there are fewer than two levels; a
    level without a throughput ends the search at the one before it."""
    for lower, higher in zip(levels, levels[1:], strict=False):
        if not rises(lower, higher):
            c = lower.get("concurrency")
            return int(c) if isinstance(c, int) else None
    return None


# -- one level ------------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float | None:
    """user + system CPU seconds of ``pid`` from /proc (None when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


class EngineMonitor:
    """Samples the CPU and memory of an engine's own processes while a level runs, in a
    thread of its own; its own CPU is measured so that forge's figure can leave it out."""

    def __init__(self, runtime: Runtime, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        # an engine reached over ssh (transport mode, ``remote`` set) has its processes on
        # another machine: its CPU and memory are unknown here, not zero
        self.pids: Callable[[], list[int]] | None = runtime.engine_pids \
            if isinstance(runtime, EngineProcesses) \
            and getattr(runtime, "remote", None) is None else None
        self.interval_s = interval_s
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self.peak_bytes = 0
        self.own_cpu_s = 0.0
        self.baseline_cpu_s = 0.0
        self.failed: str | None = None
        """Why sampling stopped early, if it did: then no engine figures are reported."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self, baseline: bool = False) -> None:
        assert self.pids is not None
        pids = self.pids()
        for pid in pids:
            cpu = _cpu_s(pid)
            if cpu is None:
                continue
            # a process born during the level counts from 0: all its CPU is the level's
            self._first[pid] = cpu if baseline else self._first.get(pid, 0.0)
            self._last[pid] = cpu
        total = sum(m.pss_bytes if m.pss_bytes is not None else m.rss_bytes
                    for m in procs_mem(pids))
        self.peak_bytes = max(self.peak_bytes, total)

    def _loop(self) -> None:
        t0 = time.thread_time()
        try:
            while True:
                self._read()
                if self._stop.wait(self.interval_s):
                    break
            self._read()
        except Exception as exc:  # noqa: BLE001 - the level's figures go on without these
            self.failed = failure_reason(exc)
        finally:
            self.own_cpu_s = time.thread_time() - t0

    def __enter__(self) -> EngineMonitor:
        if self.pids is not None:
            t0 = time.thread_time()
            self._read(baseline=True)  # the processes that exist before the level
            self.baseline_cpu_s = time.thread_time() - t0
            self._thread = threading.Thread(target=self._loop, name="forge-scale-monitor",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def cpu_s(self) -> float | None:
        if self.pids is None or self.failed:
            return None
        # never below 0: a pid reused by a new process during the level
        return sum(max(self._last[p] - self._first.get(p, 0.0), 0.0) for p in self._last)

    @property
    def peak(self) -> int | None:
        return None if self.pids is None or self.failed else self.peak_bytes


@dataclass
class LevelRun:
    """What the workers of one level produced."""

    latencies_ms: list[float] = field(default_factory=list)
    completions_s: list[float] = field(default_factory=list)
    """When each lifecycle completed, seconds after the level began."""
    errors: list[str] = field(default_factory=list)
    stopped: bool = False


def run_level(runtime: Runtime, spec: RunSpec, ctx: RunContext, run: RuntimeRun,
              concurrency: int, iterations: int, first_seq: int, cancel: threading.Event,
              progress: Callable[[int], None]) -> tuple[LevelRun, float]:
    """``iterations`` lifecycles with ``concurrency`` in flight. Returns what they produced
    and the level's wall time (s). A failure that gives the runtime up (engine hung or gone,
    or ``MAX_CONSECUTIVE_ERRORS`` in a row) stops the level; cancel and Ctrl-C stop taking
    new lifecycles, wait for those in flight (each bounded by the adapter's timeout; the
    session's cleanup then removes anything left) and raise."""
    out = LevelRun()
    lock = threading.Lock()
    taken = 0
    stop = threading.Event()
    t0 = time.perf_counter()

    def take() -> int | None:
        nonlocal taken
        with lock:
            if taken >= iterations or stop.is_set() or cancel.is_set() or run.stopped:
                return None
            taken += 1
            return first_seq + taken

    def worker() -> None:
        while (seq := take()) is not None:
            try:
                sample = runtime.run_once(spec, ctx, seq)
            except ForgeError as exc:
                with lock:
                    out.errors.append(str(exc))
                    run.record_failure(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - a bug: stop the level, say why
                with lock:
                    out.errors.append(failure_reason(exc))
                    stop.set()
                continue
            done_s = time.perf_counter() - t0
            with lock:
                run.consecutive_errors = 0
                run.samples.append(sample)
                out.latencies_ms.append(sample.total_ms)
                out.completions_s.append(done_s)
                n = len(out.latencies_ms)
            progress(n)

    threads = [threading.Thread(target=worker, name=f"forge-scale-{i}", daemon=True)
               for i in range(min(concurrency, iterations))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.1)  # short joins: Ctrl-C reaches this (the main) thread at once
    except BaseException:
        stop.set()
        for t in threads:
            t.join()
        raise
    wall_s = time.perf_counter() - t0
    out.stopped = run.stopped or stop.is_set()
    if cancel.is_set():
        raise Interrupted("cancelled; the run's containers were removed")
    return out, wall_s


def level_entry(concurrency: int, out: LevelRun, wall_s: float, engine: EngineMonitor,
                forge_cpu_s: float, children_cpu_s: float) -> dict[str, Any]:
    n = len(out.latencies_ms)
    entry: dict[str, Any] = {"concurrency": concurrency, "completed": n,
                             "failures": len(out.errors), "wall_s": round(wall_s, 4),
                             "latencies_ms": [round(v, 3) for v in out.latencies_ms],
                             "errors": out.errors[:5]}
    if n:
        # completed per second from the level's start to its last completion
        rate = n / max(out.completions_s)
        entry["throughput_per_s"] = round(rate, 4)
        lo, hi = stats.rate_ci(rate, out.latencies_ms)
        entry["throughput_ci95_per_s"] = [round(lo, 4), round(hi, 4)]
        for q in (50, 90, 99):
            entry[f"p{q}_ms"] = round(stats.percentile(out.latencies_ms, q), 3)
            ci = stats.percentile_ci(out.latencies_ms, q)
            entry[f"p{q}_ci95_ms"] = [round(ci[0], 3), round(ci[1], 3)]
        entry["forge_cpu_ms_per_lifecycle"] = round(forge_cpu_s * 1000 / n, 3)
    engine_cpu = engine.cpu_s
    engine_total = (engine_cpu or 0.0) + children_cpu_s
    entry["engine_cpu_s"] = round(engine_total, 4) if engine_cpu is not None \
        or children_cpu_s > 0 else None
    entry["engine_cpu_percent"] = round(100 * engine_total / wall_s, 2) \
        if entry["engine_cpu_s"] is not None and wall_s > 0 else None
    entry["engine_peak_bytes"] = engine.peak
    if engine.failed:
        entry["errors"].append(f"the engine's processes could not be read: {engine.failed}")
    return entry


def _rusage() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def scale_entry(runtime: Runtime, info: RuntimeInfo, spec: RunSpec, ctx: RunContext,
                opts: ScaleOptions, cancel: threading.Event, progress: ProgressFn
                ) -> tuple[dict[str, Any], RuntimeRun]:
    run = RuntimeRun(runtime, info)
    entry: dict[str, Any] = {"runtime": runtime.name, "kind": runtime.kind,
                             "version": info.version, "cgroup_limits": info.cgroup_limits,
                             "levels": [], "saturation_concurrency": None, "warnings": [],
                             "errors": run.errors}
    if info.transport is not None:
        entry["transport"] = info.transport
    try:
        runtime.prepare(spec, ctx)
    except Interrupted:
        raise
    except Exception as exc:  # noqa: BLE001 - costs this runtime, not the run
        run.mark_unavailable(failure_reason(exc))
        entry["unavailable"] = run.unavailable
        return entry, run
    seq = 0
    for w in range(opts.warmup):
        if cancel.is_set():
            raise Interrupted("cancelled; the run's containers were removed")
        try:
            runtime.run_once(spec, ctx, seq := seq + 1)
        except ForgeError as exc:
            run.record_failure(exc)
            if run.stopped:
                return entry, run
        progress(runtime.name, w + 1, opts.warmup, True)
    for c in opts.concurrency:
        def level_progress(done: int, label: str = f"{runtime.name} x{c}") -> None:
            progress(label, done, opts.iterations, False)

        cpu0, kids0 = _rusage()
        with EngineMonitor(runtime) as engine:
            out, wall_s = run_level(runtime, spec, ctx, run, c, opts.iterations, seq, cancel,
                                    level_progress)
        cpu1, kids1 = _rusage()
        seq += opts.iterations
        entry["levels"].append(level_entry(c, out, wall_s, engine,
                                           max(cpu1 - cpu0 - engine.own_cpu_s
                                               - engine.baseline_cpu_s, 0.0),
                                           kids1 - kids0))
        if out.stopped:
            break
    entry["saturation_concurrency"] = saturation(entry["levels"])
    if info.note == NAMESPACE_NOTE:
        entry["warnings"].append("runs every container through one namespace helper, one at "
                                 "a time: its levels measure that helper, not concurrency, "
                                 "and the helper's children's CPU is not counted")
    if any(lv["failures"] for lv in entry["levels"]):
        entry["warnings"].append("some lifecycles failed: their levels' figures count only "
                                 "those that completed")
    return entry, run


Prepared = tuple[list[Runtime], RunSpec, dict[str, str], dict[str, RuntimeInfo]]


def run_scale(opts: ScaleOptions, config: Config, *, progress: ProgressFn | None = None,
              cancel: threading.Event | None = None, log: Log = lambda _m: None,
              targets: Mapping[str, float] | None = None, wait: bool = False
              ) -> tuple[dict[str, Any], Path | None]:
    def prepare(s: Session) -> Prepared:
        selected, image, unprepared = s.resolve(opts.runtimes, opts.image)
        spec = RunSpec(image=image, command=("true",), network="none")
        return selected, spec, unprepared, {r.name: r.info() for r in selected}

    def measure(s: Session, prepared: Prepared) -> Measured:
        selected, spec, unprepared, infos = prepared
        entries: list[dict[str, Any]] = []
        runs: list[RuntimeRun] = []
        for r in selected:
            if r.name in unprepared:
                entries.append(unprepared_entry(r, unprepared[r.name]))
                continue
            entry, run = scale_entry(r, infos[r.name], spec, s.ctx, opts, s.cancel,
                                     s.progress)
            entries.append(entry)
            runs.append(run)
        parameters = {"concurrency": list(opts.concurrency), "iterations": opts.iterations,
                      "warmup": opts.warmup, "network": "none", "image": spec.image,
                      "command": list(spec.command), "sample_interval_s": SAMPLE_INTERVAL_S}
        nothing = None
        if not any(lv.get("completed") for e in entries for lv in e.get("levels", [])):
            errors = "; ".join(f"{e['runtime']}: {e['errors'][-1]}" for e in entries
                               if e.get("errors"))
            nothing = f"no runtime completed a lifecycle ({errors})"
        return Measured(entries, parameters, [infos[r.name] for r in selected], "none", runs,
                        opts.iterations * len(opts.concurrency), nothing_measured=nothing)

    session = Session("scale", config, progress=progress, cancel=cancel, log=log,
                      targets=targets, wait=wait)
    return session.run(opts, prepare, measure)
