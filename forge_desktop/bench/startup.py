"""The startup benchmark: how long a fresh container running ``true`` takes, per runtime."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_desktop.bench import stats
from forge_desktop.bench.runner import ProgressFn, Runner, RuntimeRun
from forge_desktop.bench.session import Log, Measured, Session
from forge_desktop.config import MAX_ITERATIONS, MAX_WARMUP, Config
from forge_desktop.errors import UsageError
from forge_desktop.models import NetworkMode, RunSpec, RuntimeInfo, Via
from forge_desktop.runtimes.base import Runtime
from forge_desktop.runtimes.transport import split_name

NETWORKS: tuple[NetworkMode, ...] = ("none", "host", "default")
VIAS: tuple[Via, ...] = ("api", "cli")


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
        remote = [n for n in self.runtimes if split_name(n)]
        if self.via == "cli" and remote:
            # the engine's CLI would dial its own ssh, without forge's host-key rules
            raise UsageError(f"-r {remote[0]} --via cli: transport mode drives the engine's "
                             "API only; drop --via cli, or run the CLI on the host with "
                             "--host NAME (agent mode)")


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
    if run.info.transport is not None:  # transport mode: beside the phases, not out of them
        entry["transport"] = run.info.transport
    if run.info.network is not None:  # cri pods: host, whatever --network says
        entry["network"] = run.info.network
    if totals:
        summary = stats.summarize(totals)
        entry["stats"] = summary.to_dict()
        # the Kubernetes pod-startup SLO is a p99, kube-burner's reports p50/p90/p99
        entry["percentiles_ms"] = {f"p{q}": round(stats.percentile(totals, q), 4)
                                   for q in (50, 90, 99)}
        phases = list(dict.fromkeys(p for s in run.samples for p in s.phases_ms))
        entry["phase_medians_ms"] = {
            p: round(stats.median([s.phases_ms[p] for s in run.samples if p in s.phases_ms]), 4)
            for p in phases}
        entry["warnings"] = stats.reliability_warnings(totals, summary.outliers)
        to_exec = [s.to_exec_ms for s in run.samples if s.to_exec_ms is not None]
        if to_exec:
            entry["to_exec_stats"] = stats.summarize(to_exec).to_dict()
    return entry


Prepared = tuple[list[Runtime], RunSpec, dict[str, str], dict[str, RuntimeInfo]]


def run_startup(opts: StartupOptions, config: Config, *, progress: ProgressFn | None = None,
                cancel: threading.Event | None = None, log: Log = lambda _m: None,
                targets: Mapping[str, float] | None = None, wait: bool = False,
                kind: str = "startup") -> tuple[dict[str, Any], Path | None]:
    """A startup round saved as ``kind`` (bench/canary.py: the same round, ``canary``)."""
    def prepare(s: Session) -> Prepared:
        selected, image, unprepared = s.resolve(opts.runtimes, opts.image)
        spec = RunSpec(image=image, command=("true",), network=opts.network,  # type: ignore[arg-type]
                       via=opts.via)  # type: ignore[arg-type]
        return selected, spec, unprepared, {r.name: r.info() for r in selected}

    def measure(s: Session, prepared: Prepared) -> Measured:
        selected, spec, unprepared, infos = prepared
        runs = Runner(selected, spec, s.ctx, progress=s.progress, cancel=s.cancel).run(
            opts.iterations, opts.warmup, infos, own_cleanup=False, unprepared=unprepared)
        parameters = {"iterations": opts.iterations, "warmup": opts.warmup,
                      "network": opts.network, "image": spec.image, "via": opts.via,
                      "command": list(spec.command)}
        nothing = None
        if not any(r.samples for r in runs):
            errors = "; ".join(f"{r.runtime.name}: {r.errors[-1]}" for r in runs if r.errors)
            nothing = f"no runtime completed an iteration ({errors})"
        return Measured([runtime_entry(r, opts.via) for r in runs], parameters,
                        [r.info for r in runs], opts.network, runs, opts.iterations,
                        nothing_measured=nothing)

    session = Session(kind, config, progress=progress, cancel=cancel, log=log,
                      targets=targets, wait=wait)
    return session.run(opts, prepare, measure)
