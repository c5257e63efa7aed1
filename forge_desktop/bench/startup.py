"""The startup benchmark: how long a fresh container running ``true`` takes, per runtime."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_desktop.bench import stats
from forge_desktop.bench.runner import (
    ProgressFn,
    Runner,
    RuntimeRun,
    raise_if_given_up,
    sweep_dead,
)
from forge_desktop.config import MAX_ITERATIONS, MAX_WARMUP, Config
from forge_desktop.errors import EngineError, UsageError
from forge_desktop.image import prepare_each
from forge_desktop.models import NetworkMode, RunContext, RunSpec, RuntimeInfo, Via
from forge_desktop.profiling.perf import PerformanceProfiler, with_self_timing
from forge_desktop.profiling.system import noise_warnings
from forge_desktop.results import store
from forge_desktop.results.environment import fingerprint
from forge_desktop.results.schema import new_document
from forge_desktop.runtimes.base import Runtime, new_run_context
from forge_desktop.runtimes.registry import known_runtimes, select_runtimes

NETWORKS: tuple[NetworkMode, ...] = ("none", "host", "default")
VIAS: tuple[Via, ...] = ("api", "cli")
Log = Callable[[str], None]


@dataclass(frozen=True)
class StartupOptions:
    runtimes: tuple[str, ...] = ()
    iterations: int = 10
    warmup: int = 2
    network: str = "none"
    image: str | None = None
    via: str = "api"
    save: bool = True

    def validate(self) -> None:
        if not 1 <= self.iterations <= MAX_ITERATIONS:
            raise UsageError(f"--iterations must be between 1 and {MAX_ITERATIONS}, "
                             f"got {self.iterations}")
        if not 0 <= self.warmup <= MAX_WARMUP:
            raise UsageError(f"--warmup must be between 0 and {MAX_WARMUP}, got {self.warmup}")
        if self.network not in NETWORKS:
            raise UsageError(f"--network must be one of {', '.join(NETWORKS)}, "
                             f"got {self.network!r}")
        if self.via not in VIAS:
            raise UsageError(f"--via must be api or cli, got {self.via!r}")


def runtime_entry(run: RuntimeRun, via: str) -> dict[str, Any]:
    totals = [s.total_ms for s in run.samples]
    entry: dict[str, Any] = {
        "runtime": run.runtime.name,
        "kind": run.runtime.kind,
        "version": run.info.version,
        "via": via if run.runtime.kind == "engine" else "command",
        "cgroup_limits": run.info.cgroup_limits,
        "samples": [s.to_dict() for s in run.samples],
        "stats": None,
        "phase_medians_ms": {},
        "warnings": [],
        "errors": run.errors,
    }
    if run.unavailable is not None:
        entry["unavailable"] = run.unavailable
    if totals:
        summary = stats.summarize(totals)
        entry["stats"] = summary.to_dict()
        phases = list(dict.fromkeys(p for s in run.samples for p in s.phases_ms))
        entry["phase_medians_ms"] = {
            p: round(stats.median([s.phases_ms[p] for s in run.samples if p in s.phases_ms]), 4)
            for p in phases}
        entry["warnings"] = stats.reliability_warnings(totals, summary.outliers)
        to_exec = [s.to_exec_ms for s in run.samples if s.to_exec_ms is not None]
        if to_exec:
            entry["to_exec_stats"] = stats.summarize(to_exec).to_dict()
    return entry


def limits_warnings(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """One like-for-like warning per runtime whose containers ran without cgroup limits (crun
    in its cgroup2 namespace, rootless runc on cgroup v1): the others pay for those limits."""
    return [f"{e['runtime']}: not like-for-like: no cgroup limits (its containers run without "
            "the memory and pids limits that runtimes with cgroups set up)"
            for e in entries if e.get("cgroup_limits") is False]


def build_result(kind: str, ctx: RunContext, runs: Sequence[RuntimeRun],
                 parameters: dict[str, Any], network: str | None,
                 noise: list[str] | None = None) -> dict[str, Any]:
    via = parameters.get("via", "api")
    entries = [runtime_entry(r, via) for r in runs]
    warnings = limits_warnings(entries)
    return new_document(kind, ctx.run_id, fingerprint([r.info for r in runs], network, noise),
                        parameters, entries, all(not r.errors for r in runs),
                        **({"like_for_like_warnings": warnings} if warnings else {}))


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
    sources = [r for r in known_runtimes(config)
               if r.kind == "engine" and r.name not in {s.name for s in selected}
               and r.available() is None]
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


def run_startup(opts: StartupOptions, config: Config, *, progress: ProgressFn | None = None,
                cancel: threading.Event | None = None, log: Log = lambda _m: None,
                targets: Mapping[str, float] | None = None
                ) -> tuple[dict[str, Any], Path | None]:
    opts.validate()
    if opts.save:
        store.ensure_writable()
    perf = PerformanceProfiler()
    ctx = new_run_context()
    with perf.measure("prepare"):
        selected, image, unprepared = resolve(config, opts.runtimes, opts.image, ctx, log)
        spec = RunSpec(image=image, command=("true",), network=opts.network,  # type: ignore[arg-type]
                       via=opts.via)  # type: ignore[arg-type]
        infos = {r.name: r.info() for r in selected}
        noise = noise_warnings()  # before measuring: afterwards our own load is the noise
    runner = Runner(selected, spec, ctx, progress=progress, cancel=cancel)
    with perf.measure("measure"):
        runs = runner.run(opts.iterations, opts.warmup, infos, unprepared=unprepared)
    parameters = {"iterations": opts.iterations, "warmup": opts.warmup, "network": opts.network,
                  "image": image, "via": opts.via, "command": list(spec.command)}
    doc = build_result("startup", ctx, runs, parameters, opts.network, noise)
    with_self_timing(doc, perf)
    if targets:
        from forge_desktop.bench.targets import evaluate

        doc["targets"] = evaluate(doc, targets)
    if not any(r.samples for r in runs):
        errors = "; ".join(f"{r.runtime.name}: {r.errors[-1]}" for r in runs if r.errors)
        raise EngineError(f"no runtime completed an iteration ({errors}); nothing was saved")
    path = store.save(doc) if opts.save else None
    raise_if_given_up(runs, opts.iterations, path)  # after the save: what completed is kept
    return doc, path
