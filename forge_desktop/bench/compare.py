"""``forge benchmark compare``: startup, memory and disk for several runtimes in one result,
with ratios against a baseline, their confidence intervals, significance and a verdict.

Startup iterations are interleaved across runtimes in a new shuffled order every round, so
drift (heat, background load, a cron job) hits every runtime alike (hyperfine #21). The
baseline defaults to the slowest runtime, so factors read "4.9x faster".
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_desktop.bench import stats
from forge_desktop.bench.disk import disk_entry
from forge_desktop.bench.memory import MemoryOptions, memory_entry
from forge_desktop.bench.runner import ProgressFn, Runner, RuntimeRun
from forge_desktop.bench.session import Log, Measured, Session, limits_warnings
from forge_desktop.bench.startup import StartupOptions, runtime_entry
from forge_desktop.config import Config
from forge_desktop.errors import EngineError, ForgeError, UsageError
from forge_desktop.models import RunSpec, RuntimeInfo
from forge_desktop.results.document import size_verdict
from forge_desktop.runtimes.base import LongRunning, Runtime, StoreUsage
from forge_desktop.runtimes.oci import bundle_root

ALPHA = 0.05


@dataclass(frozen=True)
class CompareOptions:
    runtimes: tuple[str, ...] = ()
    iterations: int = 10
    warmup: int = 2
    baseline: str | None = None
    network: str = "none"
    image: str | None = None
    containers: int = 3
    memory_samples: int = 5
    seed: int | None = None
    save: bool = True

    def validate(self) -> None:
        StartupOptions(self.runtimes, self.iterations, self.warmup, self.network).validate()
        MemoryOptions(containers=self.containers, samples=self.memory_samples).validate()
        if self.runtimes and self.baseline and self.baseline not in self.runtimes:
            raise UsageError(f"--baseline {self.baseline!r} is not among the runtimes "
                             f"compared ({', '.join(self.runtimes)})")


def _ratio(baseline: float | None, candidate: float | None) -> float | None:
    """baseline / candidate: above 1 means the candidate is faster, leaner or smaller."""
    if baseline is None or candidate is None or candidate <= 0 or baseline <= 0:
        return None
    return baseline / candidate


def _disk_bytes(disk: Mapping[str, Any] | None) -> float | None:
    if not disk:
        return None
    image, per = disk.get("benchmark_image_bytes"), disk.get("per_container_bytes")
    return None if image is None or per is None else float(image + per)


def comparison(entries: Sequence[dict[str, Any]], baseline: str | None) -> dict[str, Any]:
    """Ratios of every runtime against the baseline for startup, memory and disk."""
    measured = [e for e in entries if e.get("stats")]
    if not measured:
        raise EngineError("no runtime completed a startup iteration; nothing to compare")
    if baseline is None:
        baseline = max(measured, key=lambda e: e["stats"]["median_ms"])["runtime"]
    base = next((e for e in entries if e["runtime"] == baseline), None)
    if base is None or not base.get("stats"):
        raise EngineError(f"the baseline {baseline} has no startup samples to compare with")
    base_totals = [s["total_ms"] for s in base["samples"]]
    rows: list[dict[str, Any]] = []
    for e in entries:
        if e["runtime"] == baseline:
            continue
        if e.get("stats"):
            totals = [s["total_ms"] for s in e["samples"]]
            ratio, ci = stats.ratio_of_medians_ci(totals, base_totals)
            p = stats.mann_whitney_p(totals, base_totals)
            rows.append({"runtime": e["runtime"], "metric": "startup", "ratio": round(ratio, 4),
                         "ci95": [round(ci[0], 4), round(ci[1], 4)], "p_value": p,
                         "verdict": stats.verdict(ratio, ci, p, ALPHA),
                         "median_ms": e["stats"]["median_ms"],
                         "baseline_median_ms": base["stats"]["median_ms"]})
        mem, base_mem = e.get("memory") or {}, base.get("memory") or {}
        for metric, key in (("daemon_memory", "daemon_pss_bytes"),
                            ("per_container_memory", "per_container_bytes")):
            r = _ratio(base_mem.get(key), mem.get(key))
            rows.append({"runtime": e["runtime"], "metric": metric,
                         "ratio": None if r is None else round(r, 4), "ci95": None,
                         "p_value": None, "verdict": size_verdict(r),
                         "value_bytes": mem.get(key), "baseline_bytes": base_mem.get(key)})
        r = _ratio(_disk_bytes(base.get("disk")), _disk_bytes(e.get("disk")))
        rows.append({"runtime": e["runtime"], "metric": "disk",
                     "ratio": None if r is None else round(r, 4), "ci95": None,
                     "p_value": None, "verdict": size_verdict(r),
                     "value_bytes": _disk_bytes(e.get("disk")),
                     "baseline_bytes": _disk_bytes(base.get("disk"))})
    return {"baseline": baseline, "alpha": ALPHA, "ratios": rows}


def _image_layers(runtime: Runtime, image: str) -> list[str] | None:
    try:
        if runtime.kind == "engine":
            return list(runtime.image_layers(image))  # type: ignore[attr-defined]
        if runtime.kind == "oci":
            import json

            source = json.loads((bundle_root(image) / "source.json").read_text())
            return list(source.get("layers") or []) or None
    except (ForgeError, OSError, ValueError, KeyError):
        return None
    return None


def like_for_like(runtimes: Sequence[Runtime], image: str, opts: CompareOptions,
                  entries: Sequence[dict[str, Any]]) -> list[str]:
    """Reasons the comparison is not apples to apples, in words a user can act on."""
    warnings = []
    layers = {r.name: _image_layers(r, image) for r in runtimes}
    known = {k: v for k, v in layers.items() if v}
    if len({tuple(v) for v in known.values()}) > 1:
        warnings.append("the image content differs between runtimes (" + "; ".join(
            f"{k}: {v[-1][:19]}" for k, v in known.items()) + "): not like for like; "
            "run `forge image prepare` so every runtime gets the same layers")
    if opts.network == "default" and len(runtimes) > 1:
        warnings.append("--network default means a different network set-up on each runtime "
                        "(docker bridge, podman netavark/CNI, none for bare OCI); use "
                        "--network none for a like-for-like startup")
    if opts.warmup == 0:
        warnings.append("no warmup: the first iterations pay cold caches on some runtimes; "
                        "use --warmup 2")
    vias = {e["via"] for e in entries}
    if len(vias) > 1:
        warnings.append("runtimes are timed differently (" + ", ".join(
            f"{e['runtime']}: {e['via']}" for e in entries) + "): a command is timed end to "
            "end including its client, an engine through its API")
    return warnings + limits_warnings(entries)


def run_compare(opts: CompareOptions, config: Config, *, progress: ProgressFn | None = None,
                cancel: threading.Event | None = None, log: Log = lambda _m: None,
                targets: Mapping[str, float] | None = None, wait: bool = False
                ) -> tuple[dict[str, Any], Path | None]:
    Prepared = tuple[float, list[Runtime], RunSpec, dict[str, str], dict[str, RuntimeInfo]]

    def prepare(s: Session) -> Prepared:
        wall0 = time.perf_counter()  # not before: a --wait for the lock is not the run's
        selected, image, unprepared = s.resolve(opts.runtimes, opts.image)
        names = [r.name for r in selected]
        if opts.baseline and opts.baseline not in names:
            raise UsageError(f"--baseline {opts.baseline!r} is not among the runtimes "
                             f"compared ({', '.join(names)})")
        spec = RunSpec(image=image, command=("true",), network=opts.network)  # type: ignore[arg-type]
        return wall0, selected, spec, unprepared, {r.name: r.info() for r in selected}

    def measure(s: Session, prepared: Prepared) -> Measured:
        wall0, selected, spec, unprepared, infos = prepared
        image = spec.image
        mem_opts = MemoryOptions(containers=opts.containers, samples=opts.memory_samples)
        t0 = time.perf_counter()
        runs = Runner(selected, spec, s.ctx, progress=s.progress, cancel=s.cancel,
                      rng=random.Random(opts.seed)).run(
            opts.iterations, opts.warmup, infos, interleave=True, own_cleanup=False,
            unprepared=unprepared)
        t1 = time.perf_counter()
        ready = [r for r in selected if r.name not in unprepared]
        # without cgroups there is no memory cgroup to read nor limit to set: not measured;
        # nor of an engine reached over ssh (transport mode), whose processes are elsewhere
        local = [r for r in ready if infos[r.name].transport is None]
        memory = {r.name: memory_entry(r, image, s.ctx, mem_opts, progress=s.progress,
                                       cancel=s.cancel)
                  for r in local if isinstance(r, LongRunning)
                  and infos[r.name].cgroup_limits is not False}
        t2 = time.perf_counter()
        # as memory: a runtime without the ability (cri: no StoreUsage) has no disk figures
        disk = {r.name: disk_entry(r, image, s.ctx, cancel=s.cancel)
                for r in local if isinstance(r, StoreUsage)}
        t3 = time.perf_counter()
        entries = _entries(runs, memory, disk)
        warnings = like_for_like(ready, image, opts, entries)
        parameters = {"iterations": opts.iterations, "warmup": opts.warmup,
                      "network": opts.network, "image": image, "via": "api",
                      "command": list(spec.command), "containers": opts.containers,
                      "memory_samples": opts.memory_samples, "interleaved": True,
                      "seed": opts.seed, "baseline": opts.baseline}

        def timing() -> dict[str, Any]:
            """After the run's cleanup, which the wall time (and so the overhead) includes."""
            lifecycles_s = sum(sum(x.total_ms for x in r.samples) + sum(r.warmup_ms)
                               for r in runs) / 1000
            wall_s = time.perf_counter() - wall0
            measured_s = lifecycles_s + (t2 - t1) + (t3 - t2)
            return {"timing": {
                "wall_s": round(wall_s, 3), "startup_lifecycles_s": round(lifecycles_s, 3),
                "startup_phase_s": round(t1 - t0, 3), "memory_phase_s": round(t2 - t1, 3),
                "disk_phase_s": round(t3 - t2, 3), "setup_s": round(t0 - wall0, 3),
                "overhead_ratio": round(wall_s / measured_s, 4) if measured_s else None}}

        return Measured(entries, parameters, list(infos.values()), opts.network, runs,
                        opts.iterations, extra={
                            "comparison": comparison(entries, opts.baseline),
                            "like_for_like_warnings": warnings}, after_cleanup=timing)

    session = Session("compare", config, progress=progress, cancel=cancel, log=log,
                      targets=targets, wait=wait)
    return session.run(opts, prepare, measure)


def _entries(runs: Sequence[RuntimeRun], memory: Mapping[str, dict[str, Any]],
             disk: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    entries = []
    for run in runs:
        entry = runtime_entry(run, "api")
        name = run.runtime.name
        entry["memory"] = memory.get(name)
        entry["disk"] = disk.get(name)
        for part in ("memory", "disk"):
            if entry[part]:
                entry["errors"] = entry["errors"] + [f"{part}: {e}" for e in entry[part]["errors"]]
        entries.append(entry)
    return entries
