"""MemoryProfiler: a process tree's memory, CPU and threads over time, plus (optionally) where
forge's own Python code allocates, saved as a ``profile`` result.

Sampling is ``procmem.Sampler`` over ``procmem.ProcessTree`` (the readers the memory benchmark
uses), so ``forge benchmark memory`` and ``forge benchmark profile`` read memory the same way.
``run_profile`` is the whole command without the terminal: targets (a PID, a command forge
starts, or a container engine's daemon), sampling, the document, saving.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import psutil

from forge_desktop.bench import stats
from forge_desktop.config import Config, profiles_dir
from forge_desktop.errors import RuntimeUnavailable, TargetNotFound, UsageError
from forge_desktop.profiling.procmem import ProcessTree, Sampler

MAX_SAMPLES = 100_000
MAX_INTERVAL_S = 3600.0
DEFAULT_TOP_N = 10
TERMINATE_GRACE_S = 3.0
"""A command still running when the samples are done gets SIGTERM, then SIGKILL after this."""

Snapshot = dict[str, Any]
OnSample = Callable[[Snapshot, int, int], None]
"""(snapshot, samples taken so far, samples asked for)"""




@dataclass(frozen=True)
class ProfileOptions:
    samples: int = 20
    interval_s: float = 0.5
    pid: int | None = None
    command: tuple[str, ...] = ()
    include_children: bool = False
    tracemalloc: bool = False
    top_n: int = DEFAULT_TOP_N
    save: bool = True

    def validate(self) -> None:
        if not 1 <= self.samples <= MAX_SAMPLES:
            raise UsageError(f"--samples must be between 1 and {MAX_SAMPLES}, got {self.samples}")
        if not (math.isfinite(self.interval_s) and 0 < self.interval_s <= MAX_INTERVAL_S):
            raise UsageError(f"--interval must be more than 0 and at most {MAX_INTERVAL_S:g} s, "
                             f"got {self.interval_s:g}")
        if self.pid is not None and self.command:
            raise UsageError("give either --pid PID or -- COMMAND ..., not both")
        if self.pid is not None and self.pid < 1:
            raise UsageError(f"--pid must be a positive process id, got {self.pid}")
        if not 1 <= self.top_n <= 1000:
            raise UsageError(f"--top must be between 1 and 1000, got {self.top_n}")


@dataclass
class Target:
    """What is profiled. ``kind``: a PID, a command forge started, an engine's daemon, or
    forge itself."""

    kind: Literal["pid", "command", "daemon", "self"]
    pids: list[int]
    include_children: bool
    names: dict[int, str] = field(default_factory=dict)
    engine: str | None = None
    argv: list[str] | None = None
    exit_code: int | None = None
    terminated: bool = False

    def describe(self) -> str:
        procs = ", ".join(f"{self.names.get(p, '?')} ({p})" for p in self.pids)
        children = " and children" if self.include_children else ""
        if self.kind == "daemon":
            return f"the {self.engine} daemon: {procs}{children}"
        if self.kind == "command":
            return f"`{' '.join(self.argv or [])}` (pid {self.pids[0]}){children}"
        if self.kind == "self":
            return f"forge itself (pid {self.pids[0]}){children}"
        return f"{procs}{children}"

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": self.kind, "pids": self.pids,
                               "names": [self.names.get(p) for p in self.pids],
                               "include_children": self.include_children,
                               "description": self.describe()}
        if self.kind == "daemon":
            doc["engine"] = self.engine
        if self.kind == "command":
            doc.update(argv=self.argv, exit_code=self.exit_code, terminated=self.terminated)
        return doc


def rss_summary(snapshots: Sequence[Snapshot]) -> dict[str, Any]:
    """Average, peak, minimum, range of RSS and its growth per minute: the least-squares
    slope over every sample, so one noisy sample moves it little (a first-to-last
    difference would be all noise)."""
    rss = [int(s["rss_bytes"]) for s in snapshots]
    if not rss:
        return {"avg_rss_bytes": None, "peak_rss_bytes": None, "min_rss_bytes": None,
                "range_bytes": None, "growth_bytes_per_min": None, "samples": 0,
                "duration_s": 0.0, "avg_cpu_percent": None, "peak_threads": None}
    ts = [float(s["t_s"]) for s in snapshots]
    per_s = stats.slope(ts, rss)
    cpu = [float(s["cpu_percent"]) for s in snapshots if s.get("cpu_percent") is not None]
    threads = [int(s["threads"]) for s in snapshots if s.get("threads") is not None]
    return {"avg_rss_bytes": round(sum(rss) / len(rss)), "peak_rss_bytes": max(rss),
            "min_rss_bytes": min(rss), "range_bytes": max(rss) - min(rss),
            "growth_bytes_per_min": None if per_s is None else round(per_s * 60),
            "samples": len(rss), "duration_s": round(max(ts) - min(ts), 4),
            "avg_cpu_percent": round(sum(cpu) / len(cpu), 1) if cpu else None,
            "peak_threads": max(threads) if threads else None}


_SKIPPED_FILES = (tracemalloc.__file__, "<frozen importlib._bootstrap>",
                  "<frozen importlib._bootstrap_external>", "<unknown>")


def top_sites(snapshot: tracemalloc.Snapshot, n: int) -> list[dict[str, Any]]:
    """The ``n`` source lines holding the most memory allocated since tracing began and still
    alive, as ``{site: "file:line", size_bytes, count}``."""
    filtered = snapshot.filter_traces([tracemalloc.Filter(False, f) for f in _SKIPPED_FILES])
    out = []
    for stat in filtered.statistics("lineno")[:n]:
        frame = stat.traceback[0]
        out.append({"site": f"{frame.filename}:{frame.lineno}", "size_bytes": stat.size,
                    "count": stat.count})
    return out


class MemoryProfiler:
    """Samples a process tree over time (default: this process); ``snapshot(label)`` takes one
    on demand, from any thread. With ``trace_python``, tracemalloc traces this Python process
    from ``start()`` to ``stop()`` and ``tracemalloc_top`` lists the top allocation sites.

    ``collect``, ``clock`` and ``sleep`` are injectable (tests step it deterministically).
    """

    def __init__(self, pids: Sequence[int] | None = None, *, include_children: bool = False,
                 trace_python: bool = False, top_n: int = DEFAULT_TOP_N,
                 collect: Callable[[], Snapshot | None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.tree: ProcessTree | None = None
        if collect is None:
            wanted = list(pids) if pids else [os.getpid()]
            try:
                self.tree = ProcessTree(wanted, include_children)
            except psutil.NoSuchProcess:
                raise TargetNotFound(f"no process with PID {wanted[0]} (it is not running); "
                                     "check the PID with `ps`") from None
            collect = self.tree.read
        self._collect = collect
        self.trace_python = trace_python
        self.top_n = top_n
        self.clock = clock
        self.sleep = sleep
        self.ended_early = False
        """True once the target exited (every root process gone)."""
        self._lock = threading.Lock()
        self._snapshots: list[Snapshot] = []
        self._t0: float | None = None
        self._tm_started = False
        self._tm_top: list[dict[str, Any]] | None = None

    # -- sampling ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the clock (``t_s`` 0) and tracemalloc; implied by the first sample."""
        if self._t0 is not None:
            return
        self._t0 = self.clock()
        if self.trace_python and not tracemalloc.is_tracing():
            tracemalloc.start()
            self._tm_started = True

    def _read(self) -> Snapshot | None:
        with self._lock:  # psutil objects keep CPU % state: one reader at a time
            values = self._collect()
        if values is None:
            self.ended_early = True
        return values

    def _keep(self, snap: Snapshot) -> None:
        with self._lock:
            self._snapshots.append(snap)

    def snapshot(self, label: str | None = None) -> Snapshot | None:
        """One snapshot now (labelled if ``label``); None when the target has exited."""
        self.start()
        assert self._t0 is not None
        now = self.clock()
        values = self._read()
        if values is None:
            return None
        snap: Snapshot = {"t_s": round(now - self._t0, 4), **values}
        if label:
            snap["label"] = label
        self._keep(snap)
        return snap

    def sample(self, count: int, interval_s: float, *, on_sample: OnSample | None = None,
               should_stop: Callable[[], bool] = lambda: False) -> list[Snapshot]:
        """``count`` snapshots ``interval_s`` apart; stops early when the target exits. The
        snapshots taken are kept even if this raises (Ctrl-C)."""
        self.start()
        taken: list[Snapshot] = []

        def keep(snap: Snapshot) -> None:
            self._keep(snap)
            taken.append(snap)
            if on_sample:
                on_sample(snap, len(taken), count)

        Sampler(self._read, interval_s, clock=self.clock, sleep=self.sleep).run(
            count, should_stop, keep, origin=self._t0)
        return taken

    def stop(self) -> None:
        """Take the tracemalloc snapshot and stop tracing (if this profiler started it)."""
        if self.trace_python and tracemalloc.is_tracing() and self._tm_top is None:
            self._tm_top = top_sites(tracemalloc.take_snapshot(), self.top_n)
            if self._tm_started:
                tracemalloc.stop()
                self._tm_started = False

    # -- results ----------------------------------------------------------------------------
    @property
    def snapshots(self) -> list[Snapshot]:
        with self._lock:
            return sorted(self._snapshots, key=lambda s: float(s["t_s"]))

    @property
    def tracemalloc_top(self) -> list[dict[str, Any]] | None:
        """Top allocation sites after ``stop()``; None without ``trace_python``."""
        return self._tm_top

    def summary(self) -> dict[str, Any]:
        return rss_summary(self.snapshots)


# -- targets --------------------------------------------------------------------------------
def _names(pids: Sequence[int]) -> dict[int, str]:
    names = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            names[pid] = psutil.Process(pid).name()
    return names


def daemon_target(config: Config, include_children: bool = False) -> Target:
    """docker's dockerd + containerd when running here, else the podman API service."""
    from forge_desktop.runtimes.base import LongRunning
    from forge_desktop.runtimes.registry import known_runtimes

    runtimes = known_runtimes(config)
    try:
        by_name = {r.name: r for r in runtimes}
        for engine in ("docker", "podman"):
            runtime = by_name.get(engine)
            if runtime is None or not isinstance(runtime, LongRunning):
                continue
            pids = sorted(runtime.daemon_pids())
            if pids:
                return Target("daemon", pids, include_children, _names(pids), engine=engine)
    finally:
        for r in runtimes:
            r.close()
    raise RuntimeUnavailable("no container engine daemon runs on this host (neither dockerd "
                             "nor a podman API service); start one, or profile a process "
                             "with --pid PID or -- COMMAND ...")


def _spawn(argv: Sequence[str], output: int | IO[Any] | None) -> subprocess.Popen[bytes]:
    try:
        # own session: the terminal's Ctrl-C reaches forge only, which then ends the whole
        # group (the command and its children) itself
        return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=output,
                                start_new_session=True)
    except FileNotFoundError:
        raise UsageError(f"cannot run {argv[0]!r}: command not found") from None
    except PermissionError:
        raise UsageError(f"cannot run {argv[0]!r}: permission denied") from None
    except OSError as exc:
        raise UsageError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None


def _end(proc: subprocess.Popen[bytes], target: Target) -> None:
    """Terminate the command's process group if it still runs; record how it ended."""
    if proc.poll() is None:
        target.terminated = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(TERMINATE_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    else:  # the command is gone; children it left in its group go too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    target.exit_code = proc.returncode


def run_profile(opts: ProfileOptions, config: Config, *, on_sample: OnSample | None = None,
                on_target: Callable[[Target], None] | None = None,
                output: int | IO[Any] | None = 2,
                sleep: Callable[[float], None] = time.sleep
                ) -> tuple[dict[str, Any], Path | None]:
    """Profile what ``opts`` names and build the ``profile`` document (saved under
    profiles_dir() unless ``opts.save`` is false). ``output`` receives a command's stdout
    (default: forge's stderr, so forge's stdout stays clean for --json). A Ctrl-C stops
    sampling: the document has ``interrupted`` set and is saved with what was taken."""
    from forge_desktop.results import store
    from forge_desktop.results.environment import fingerprint
    from forge_desktop.results.schema import new_document
    from forge_desktop.runtimes.base import new_run_context

    opts.validate()
    if opts.save:
        store.ensure_writable(profiles_dir())
    proc: subprocess.Popen[bytes] | None = None
    if opts.command:
        proc = _spawn(opts.command, output)
        target = Target("command", [proc.pid], True, {proc.pid: Path(opts.command[0]).name},
                        argv=list(opts.command))
    elif opts.pid is not None:
        target = Target("pid", [opts.pid], opts.include_children, _names([opts.pid]))
    else:
        target = daemon_target(config, opts.include_children)
    warnings: list[str] = []
    interrupted = False
    try:
        try:
            profiler = MemoryProfiler(target.pids, include_children=target.include_children,
                                      trace_python=opts.tracemalloc, top_n=opts.top_n,
                                      sleep=sleep)
        except TargetNotFound:
            if proc is None:
                raise
            # the command exited before the first sample: an empty profile says so
            profiler = MemoryProfiler(collect=lambda: None, trace_python=opts.tracemalloc,
                                      top_n=opts.top_n, sleep=sleep)
        if on_target:
            on_target(target)
        try:
            profiler.sample(opts.samples, opts.interval_s, on_sample=on_sample)
        except KeyboardInterrupt:
            interrupted = True
        profiler.stop()
    finally:
        if proc is not None:
            _end(proc, target)
    taken = len(profiler.snapshots)
    if interrupted:
        warnings.append(f"interrupted after {taken} of {opts.samples} samples; the samples "
                        "taken are kept")
    elif profiler.ended_early and target.kind != "command":
        warnings.append(f"{target.describe()} exited after {taken} of {opts.samples} samples; "
                        "the samples taken are kept")
    if taken == 0 and not interrupted:
        warnings.append("no sample could be taken: the command exited at once")
    ctx = new_run_context()
    parameters = {"samples": opts.samples, "interval_s": opts.interval_s,
                  "include_children": target.include_children, "tracemalloc": opts.tracemalloc,
                  "top_n": opts.top_n}
    doc = new_document("profile", ctx.run_id, fingerprint([]), parameters, [], True,
                       target=target.to_dict(), snapshots=profiler.snapshots,
                       summary=profiler.summary(), tracemalloc_top=profiler.tracemalloc_top,
                       tracemalloc_scope=("forge's own process (pid "
                                          f"{os.getpid()})" if opts.tracemalloc else None),
                       ended_early=profiler.ended_early, interrupted=interrupted,
                       warnings=warnings)
    return doc, (store.save(doc, profiles_dir()) if opts.save else None)
