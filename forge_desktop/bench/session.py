"""The benchmark session: everything around a benchmark kind's own measurement, in one place.

Every kind (startup, memory, disk, compare, image) runs as ``Session(...).run(opts, prepare,
measure)``. The session validates the options, checks the store is writable, and takes this
FORGE_HOME's benchmark lock (one benchmark at a time across processes and front ends: see
``forge_desktop.lock``); the run context is its own. The kind's ``prepare`` picks and readies
its runtimes (registering their cleanup on the session); then the session checks for
background noise, *before* measuring, since afterwards the run's own load is the noise; then
the kind's ``measure`` produces entries, reporting progress and honouring cancel through the
session. The session then builds the document (fingerprint, like-for-like notes, targets, its
own timing), refuses to save a run that measured nothing, saves, and gives up loudly on
runtimes lost mid-run, after the save so what completed is kept.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from forge_desktop import lock
from forge_desktop.bench.runner import (
    ProgressFn,
    RuntimeRun,
    cleanup_on_exit,
    raise_if_given_up,
    sweep_dead,
)
from forge_desktop.bench.targets import evaluate
from forge_desktop.config import Config
from forge_desktop.errors import EngineError, Interrupted
from forge_desktop.image import prepare_each
from forge_desktop.models import RunContext, RuntimeInfo
from forge_desktop.profiling.perf import PerformanceProfiler, with_self_timing
from forge_desktop.profiling.system import noise_warnings
from forge_desktop.results import document, store
from forge_desktop.results.environment import fingerprint
from forge_desktop.results.schema import new_document
from forge_desktop.runtimes.base import Runtime, end_run, new_run_context
from forge_desktop.runtimes.registry import known_runtimes, select_runtimes

Log = Callable[[str], None]
P = TypeVar("P")


class Options(Protocol):
    @property
    def save(self) -> bool: ...

    def validate(self) -> None: ...


@dataclass
class Measured:
    """What a kind's measurement hands back to the session."""

    entries: list[dict[str, Any]]
    parameters: dict[str, Any]
    infos: Sequence[RuntimeInfo]
    """For the environment fingerprint."""
    network: str | None = None
    runs: Sequence[RuntimeRun] = ()
    """Runtimes measured by iterations: any given up on mid-run fails the command (GaveUp)."""
    iterations: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    """Further top-level document fields (comparison, timing, ...)."""
    nothing_measured: str | None = None
    """Why no runtime produced a figure, when none did: the session saves nothing and fails."""
    after_cleanup: Callable[[], dict[str, Any]] | None = None
    """Further document fields known only once the run's cleanup is over (its wall time)."""


def limits_warnings(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """One like-for-like warning per runtime whose containers ran without cgroup limits (crun
    in its cgroup2 namespace, rootless runc on cgroup v1): the others pay for those limits."""
    return [f"{e['runtime']}: not like-for-like: no cgroup limits (its containers run without "
            "the memory and pids limits that runtimes with cgroups set up)"
            for e in entries if e.get("cgroup_limits") is False]


def network_warnings(entries: Sequence[Mapping[str, Any]], network: str) -> list[str]:
    """One like-for-like warning per runtime whose containers got another network than the
    run's (cri pods use the host network: no CNI)."""
    return [f"{e['runtime']}: not like-for-like: its containers use the {e['network']} "
            f"network, the others --network {network}"
            for e in entries if e.get("network") not in (None, network)]


def transport_warnings(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Transport-mode runtimes beside local ones: the network is in every phase of the first."""
    remote = [e for e in entries if document.transport_text(e)]
    if not remote or len(remote) == len(entries):
        return []
    local = ", ".join(str(e["runtime"]) for e in entries if e not in remote)
    return [f"{e['runtime']}: not like-for-like with {local}: it is reached over ssh, so the "
            f"network is in every phase ({document.transport_text(e)}); subtract that, or run "
            "it where the engine is with --host (agent mode)" for e in remote]


def unprepared_entry(runtime: Runtime, reason: str) -> dict[str, Any]:
    """The result entry of a runtime left out of a run because it could not be prepared (for
    benchmarks that build their entries without a Runner)."""
    run = RuntimeRun(runtime, RuntimeInfo(runtime.name, runtime.kind, True))
    run.mark_unavailable(reason)
    return {"runtime": runtime.name, "kind": runtime.kind, "unavailable": reason,
            "errors": run.errors}


def resolve(config: Config, names: Sequence[str], image: str | None, ctx: RunContext,
            log: Log) -> tuple[list[Runtime], str, dict[str, str]]:
    """Pick the runtimes, sweep dead runs' leftovers, make sure the image is on each. Returns
    them, the image, and by name the reason of each runtime the image could not be prepared
    for: the caller leaves those out of its run, records why, and measures the others."""
    selected, _skipped = select_runtimes(config, list(names) or None)
    sweep_dead(selected)
    # engines a bare OCI bundle may be exported from; not one measured only when named (cri:
    # asking it would start a private containerd for a runc run)
    sources = [r for r in known_runtimes(config)
               if r.kind == "engine" and r.name not in {s.name for s in selected}
               and not getattr(r, "explicit_only", False) and r.available() is None]
    try:
        resolved, unprepared = prepare_each(selected, ctx, image or config.image, sources, log)
    except BaseException:
        for r in selected:  # e.g. a temporary podman service started for this run
            r.cleanup(ctx.run_id)
            r.close()
        raise
    finally:
        for extra in sources:
            extra.close()
    return selected, resolved, unprepared


class Session:
    def __init__(self, kind: str, config: Config, *, progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None, log: Log = lambda _m: None,
                 targets: Mapping[str, float] | None = None, wait: bool = False) -> None:
        self.kind = kind
        self.config = config
        self.progress: ProgressFn = progress or (lambda *_a: None)
        self.cancel = cancel or threading.Event()
        self.log = log
        self.targets = dict(targets or {})
        self.wait = wait
        """When another benchmark holds the lock: wait for it rather than refuse (Busy)."""
        self.ctx = new_run_context()
        self.noise: list[str] | None = None
        self.perf = PerformanceProfiler()
        self._stack: contextlib.ExitStack | None = None

    # -- for the kinds ----------------------------------------------------------------------
    def check_cancel(self, removed: str = "the run's containers were removed") -> None:
        if self.cancel.is_set():
            raise Interrupted(f"cancelled; {removed}")

    def on_exit(self, cm: contextlib.AbstractContextManager[Any]) -> Any:
        """Enter ``cm`` until the measurement is over (cleanup runs on error and cancel too)."""
        assert self._stack is not None, "on_exit is for prepare and measure"
        return self._stack.enter_context(cm)

    def resolve(self, names: Sequence[str], image: str | None
                ) -> tuple[list[Runtime], str, dict[str, str]]:
        """``resolve`` for this run; the runtimes' containers are removed and their clients
        closed when the measurement ends, however it ends."""
        selected, resolved, unprepared = resolve(self.config, names, image, self.ctx, self.log)
        self.on_exit(cleanup_on_exit(selected, self.ctx))
        return selected, resolved, unprepared

    # -- the session ------------------------------------------------------------------------
    def run(self, opts: Options, prepare: Callable[[Session], P],
            measure: Callable[[Session, P], Measured]) -> tuple[dict[str, Any], Path | None]:
        try:
            opts.validate()
            if opts.save:
                store.ensure_writable()
            with lock.held(self.kind, wait=self.wait, cancel=self.cancel, log=self.log):
                with contextlib.ExitStack() as stack:
                    self._stack = stack
                    try:
                        with self.perf.measure("prepare"):
                            prepared = prepare(self)
                        self.check_cancel()
                        self.noise = noise_warnings()
                        self.log("noise check before measuring: " + ("; ".join(self.noise)
                                                                     or "quiet"))
                        with self.perf.measure("measure"):
                            measured = measure(self, prepared)
                    finally:
                        self._stack = None
                return self._finish(opts, measured)
        finally:
            # However the run ends, and whether or not a kind registered cleanup_on_exit (which
            # ends it too): from now on a sweep may take what the run left, in this process.
            end_run(self.ctx)

    def _finish(self, opts: Options, m: Measured) -> tuple[dict[str, Any], Path | None]:
        extra = {**m.extra, **(m.after_cleanup() if m.after_cleanup else {})}
        notes = list(dict.fromkeys([*extra.get("like_for_like_warnings", []),
                                    *limits_warnings(m.entries),
                                    *network_warnings(m.entries, m.network or "none"),
                                    *transport_warnings(m.entries)]))
        if notes or "like_for_like_warnings" in extra:
            extra["like_for_like_warnings"] = notes
        doc = new_document(self.kind, self.ctx.run_id,
                           fingerprint(list(m.infos), m.network, self.noise), m.parameters,
                           m.entries, all(not e.get("errors") for e in m.entries), **extra)
        with_self_timing(doc, self.perf)
        doc["targets"] = evaluate(doc, self.targets) if self.targets else []
        if m.nothing_measured is not None:
            raise EngineError(f"{m.nothing_measured}; nothing was saved")
        path = store.save(doc) if opts.save else None
        raise_if_given_up(m.runs, m.iterations, path)  # after the save: what completed is kept
        return doc, path
