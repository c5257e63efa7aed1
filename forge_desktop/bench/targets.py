"""Performance targets: ``--max-startup-ms``, ``--max-memory-mb``, ``--max-disk-mb``,
``--min-throughput``, ``--max-p99-ms`` or a ``[targets]`` table in config.toml (keys
``startup_ms``, ``memory_mb``, ``disk_mb``, ``throughput_per_s``, ``p99_ms``).

The metrics, per runtime:
- ``startup_ms``: median startup time;
- ``memory_mb``: idle daemon PSS plus one running container (outside + inside), MiB;
- ``disk_mb``: the benchmark image plus one created container on disk, MiB;
- ``throughput_per_s`` (scale, a floor): the highest throughput of any concurrency level;
- ``p99_ms`` (scale): the worst p99 latency of any concurrency level.
A missed target makes the command exit 3, so CI can gate on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from forge_desktop.config import Config
from forge_desktop.errors import UsageError
from forge_desktop.results.document import peak_throughput, worst_p99_ms

MIB = 1024 * 1024
METRICS = ("startup_ms", "memory_mb", "disk_mb", "throughput_per_s", "p99_ms")
FLAGS = {"startup_ms": "--max-startup-ms", "memory_mb": "--max-memory-mb",
         "disk_mb": "--max-disk-mb", "throughput_per_s": "--min-throughput",
         "p99_ms": "--max-p99-ms"}
FLOORS = frozenset({"throughput_per_s"})
"""Metrics whose target is a minimum: met when the value is at least the limit."""


def resolve_targets(config: Config, cli: Mapping[str, str | float | None]) -> dict[str, float]:
    """Config targets overridden by command-line ones; every value a positive number."""
    limits = {k: v for k, v in config.targets.items() if k in METRICS}
    for metric, raw in cli.items():
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(f"{FLAGS[metric]} must be a number, got {raw!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise UsageError(f"{FLAGS[metric]} must be a positive number, got {raw!r}")
        limits[metric] = value
    return limits


def metric_value(entry: Mapping[str, Any], metric: str) -> float | None:
    """Read a metric from a runtime entry of a startup/memory/disk result, or of a compare
    result (whose entries nest ``memory`` and ``disk``)."""
    if metric == "startup_ms":
        stats = entry.get("stats") or (entry.get("startup") or {}).get("stats")
        return float(stats["median_ms"]) if stats else None
    if metric == "memory_mb":
        mem = entry.get("memory", entry)
        per = mem.get("per_container_bytes")
        if per is None:
            return None
        return float((mem.get("daemon_pss_bytes") or 0) + per) / MIB
    if metric == "disk_mb":
        disk = entry.get("disk", entry)
        image, per = disk.get("benchmark_image_bytes"), disk.get("per_container_bytes")
        if image is None or per is None:
            return None
        return float(image + per) / MIB
    if metric == "throughput_per_s":
        return peak_throughput(entry)
    if metric == "p99_ms":
        return worst_p99_ms(entry)
    raise ValueError(metric)


def evaluate(doc: Mapping[str, Any], limits: Mapping[str, float]) -> list[dict[str, Any]]:
    rows = []
    for entry in doc.get("runtimes", []):
        for metric, limit in limits.items():
            value = metric_value(entry, metric)
            if value is None:
                continue  # this result does not measure that metric for this runtime
            rows.append({"runtime": entry["runtime"], "metric": metric, "limit": limit,
                         "value": round(value, 3),
                         "met": value >= limit if metric in FLOORS else value <= limit})
    return rows
