"""The shape of a result document, and the one way to read its figures.

A result file may come from anywhere (a colleague's laptop, a CI artifact, a hand edit), so
nothing here trusts it: every reader takes the decoded JSON as it is and answers ``None`` (or
an empty container) for a field that is missing or of the wrong type, never raises. The
TypedDicts say what forge writes (schema version 1, ``results/schema.py``); they describe,
they do not check: a reader still looks at each value's type.

Everything that reads result documents (the index, the exports, the window, the CLI, the
notifications) goes through these readers, so a figure is read one way everywhere: one reader
per figure, one id resolver (:func:`resolve_id`), one headline (:func:`headline_value`,
:func:`headline_text`, :func:`notification`), one size verdict (:func:`size_verdict`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict, TypeVar

from forge_desktop.errors import StoreError, UsageError

MIB = 1024 * 1024
KIB = 1024

STARTUP_SHAPED = ("startup", "canary")
"""Kinds whose documents are a startup round (a canary is a short one, bench/canary.py)."""
STARTUP_KINDS = (*STARTUP_SHAPED, "compare")
MEMORY_KINDS = ("memory", "compare")
DISK_KINDS = ("disk", "compare")
TIMED_KINDS = (*STARTUP_SHAPED, "compare", "image")
HEADLINE_UNITS = {"startup": "ms", "canary": "ms", "compare": "ms", "image": "ms", "memory": "MiB",
                  "disk": "KiB", "scale": "/s"}
"""startup/canary/compare/image: median ms; memory: MiB per running container; disk: KiB that one
created container adds; scale: the best level's lifecycles per second (higher is better)."""
RATE_UNITS = frozenset({"/s"})
"""Headline units where more is better: :func:`headline_text` ranks them largest first."""


# --- the shape (what forge writes) ------------------------------------------------------------

class Stats(TypedDict, total=False):
    n: int
    median_ms: float
    mean_ms: float
    stdev_ms: float
    p95_ms: float
    ci95_ms: list[float]


class Sample(TypedDict, total=False):
    total_ms: float
    phases_ms: dict[str, float]
    to_exec_ms: float
    t_s: float
    daemon_pss_bytes: int
    shims_pss_bytes: int
    cgroups_bytes: int
    total_bytes: int


class ScaleLevel(TypedDict, total=False):
    concurrency: int
    completed: int
    failures: int
    wall_s: float
    latencies_ms: list[float]
    throughput_per_s: float
    throughput_ci95_per_s: list[float]
    p50_ms: float
    p50_ci95_ms: list[float]
    p90_ms: float
    p90_ci95_ms: list[float]
    p99_ms: float
    p99_ci95_ms: list[float]
    engine_cpu_s: float | None
    engine_cpu_percent: float | None
    engine_peak_bytes: int | None
    forge_cpu_ms_per_lifecycle: float


class RuntimeEntry(TypedDict, total=False):
    """One runtime's part of a result; which figures it holds depends on the kind."""

    runtime: str
    version: str
    via: str
    errors: list[str]
    warnings: list[str]
    not_applicable: str
    stats: Stats
    samples: list[Sample]
    phase_medians_ms: dict[str, float]
    to_exec_stats: Stats
    per_container_bytes: int
    daemon_pss_bytes: int
    benchmark_image_bytes: int
    store_fs_bytes: int
    density: list[dict[str, Any]]
    levels: list[ScaleLevel]
    """scale: one per concurrency level, in increasing order."""
    saturation_concurrency: int | None
    memory: RuntimeEntry
    """compare: the memory phase's entry."""
    disk: RuntimeEntry
    """compare: the disk phase's entry."""


class ResultDocument(TypedDict, total=False):
    schema_version: int
    id: str
    kind: str
    created_at: str
    complete: bool
    environment: dict[str, Any]
    parameters: dict[str, Any]
    runtimes: list[RuntimeEntry]
    comparison: dict[str, Any]
    targets: list[dict[str, Any]]
    like_for_like_warnings: list[str]
    timing: dict[str, Any]


Doc = Mapping[str, Any]
"""A decoded document as read: typed loosely on purpose, every reader checks each value."""


# --- tolerant readers -------------------------------------------------------------------------

def number(value: Any) -> int | float | None:
    """A finite number, else None: a string, a bool, NaN, infinity or an int beyond 64 bits
    (a 400-digit int in a file overflows ``float()``) reads as missing. An int stays an int,
    so an export writes ``1234`` as the file had it, not ``1234.0``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 2**63 else None
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def real(value: Any) -> float | None:
    """:func:`number` as a float."""
    found = number(value)
    return None if found is None else float(found)


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def mappings(value: Any) -> list[dict[str, Any]]:
    return [v for v in items(value) if isinstance(v, dict)]


def texts(value: Any) -> list[str]:
    """The strings of a list field."""
    return [v for v in items(value) if isinstance(v, str)]


def text(value: Any) -> str:
    return "" if value is None else str(value)


def count(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


def entries(doc: Doc) -> list[dict[str, Any]]:
    """Every per-runtime entry that is an object (the exports show nameless ones as "?")."""
    return mappings(doc.get("runtimes"))


def named_entries(doc: Doc) -> list[dict[str, Any]]:
    """The per-runtime entries that have a runtime name."""
    return [e for e in entries(doc) if isinstance(e.get("runtime"), str)]


def part(kind: str, entry: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A compare entry's ``memory`` or ``disk`` phase; the entry itself for other kinds."""
    return mapping(entry.get(name)) if kind == "compare" else dict(entry)


# --- one reader per figure --------------------------------------------------------------------

def median_ms(entry: Mapping[str, Any]) -> float | None:
    """The median startup (or load) time of a runtime, ms."""
    return real(mapping(entry.get("stats")).get("median_ms"))


def ci95_ms(entry: Mapping[str, Any]) -> tuple[float, float] | None:
    """The 95% confidence interval of the median startup (or load) time, ms."""
    bounds = [real(v) for v in items(mapping(entry.get("stats")).get("ci95_ms"))]
    if len(bounds) != 2 or bounds[0] is None or bounds[1] is None:
        return None
    return bounds[0], bounds[1]


def transport_text(entry: Mapping[str, Any]) -> str | None:
    """Transport mode's line (``-r docker@CONTEXT``): what ssh adds to each call and to each
    measured lifecycle; None for an engine reached on its own machine."""
    tr = mapping(entry.get("transport"))
    if not tr:
        return None
    call = real(tr.get("call_ms"))
    overhead = real(tr.get("overhead_ms_per_lifecycle"))
    def shown(value: Any, limit: int) -> str:  # one printable line, whatever the file says
        return "".join(c for c in text(value) if c.isprintable())[:limit]

    where = shown(tr.get("host"), 80) or "?"
    line = f"transport: {shown(tr.get('mode'), 16) or 'ssh'} to {where}, " + (
        f"~{call:.1f} ms a call" if call is not None else "call time unknown")
    if overhead is not None:
        local = real(tr.get("local_call_ms"))
        line += (f" ({local:.1f} ms on the host)" if local is not None else "") + \
            f", ~{overhead:.1f} ms of each lifecycle"
    else:
        line += ", its share of each lifecycle unknown (no call on the host to compare)"
    return line


def per_container_bytes(entry: Mapping[str, Any]) -> float | None:
    """Memory: bytes per running container; disk: bytes one created container adds."""
    return real(entry.get("per_container_bytes"))


def daemon_pss_bytes(entry: Mapping[str, Any]) -> float | None:
    return real(entry.get("daemon_pss_bytes"))


def disk_bytes(disk: Mapping[str, Any]) -> float | None:
    """The benchmark image plus one created container (the ``disk_mb`` target's figure)."""
    image, per = real(disk.get("benchmark_image_bytes")), per_container_bytes(disk)
    return None if image is None or per is None else image + per


def sample_totals(entry: Mapping[str, Any]) -> list[float]:
    """Every iteration's ``total_ms`` that is a number, in order."""
    return [v for s in mappings(entry.get("samples"))
            if (v := real(s.get("total_ms"))) is not None]


def startup_samples(doc: Doc, runtime: str) -> list[float]:
    """The positive iteration times (ms) of ``runtime``: what a statistical test compares."""
    for entry in entries(doc):
        if entry.get("runtime") == runtime:
            return [v for v in sample_totals(entry) if v > 0]
    return []


def scale_levels(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A scale entry's levels that have a numeric concurrency, in the file's order."""
    return [lv for lv in mappings(entry.get("levels")) if real(lv.get("concurrency")) is not None]


def level_ci(level: Mapping[str, Any], key: str) -> tuple[float, float] | None:
    """A two-number interval field of a level (``throughput_ci95_per_s``, ``p99_ci95_ms``)."""
    return interval(level.get(key))


def peak_throughput(entry: Mapping[str, Any]) -> float | None:
    """The best level's lifecycles per second (the scale headline)."""
    values = [v for lv in scale_levels(entry) if (v := real(lv.get("throughput_per_s")))
              is not None]
    return max(values) if values else None


def worst_p99_ms(entry: Mapping[str, Any]) -> float | None:
    values = [v for lv in scale_levels(entry) if (v := real(lv.get("p99_ms"))) is not None]
    return max(values) if values else None


def metrics(kind: str, entry: Mapping[str, Any]) -> dict[str, float]:
    """The figures history works with: ``startup`` (median ms), ``daemon_memory`` (daemon PSS
    bytes), ``per_container_memory`` (bytes per running container), ``disk`` (bytes)."""
    found: dict[str, float] = {}
    if kind in STARTUP_KINDS and (median := median_ms(entry)) is not None:
        found["startup"] = median
    if kind in MEMORY_KINDS:
        mem = part(kind, entry, "memory")
        if (value := daemon_pss_bytes(mem)) is not None:
            found["daemon_memory"] = value
        if (value := per_container_bytes(mem)) is not None:
            found["per_container_memory"] = value
    if kind in DISK_KINDS and (value := disk_bytes(part(kind, entry, "disk"))) is not None:
        found["disk"] = value
    return found


# --- one headline -----------------------------------------------------------------------------

def headline_value(kind: str, entry: Mapping[str, Any]) -> float | None:
    """A runtime's headline figure in ``HEADLINE_UNITS[kind]``."""
    if kind in ("memory", "disk"):
        per = per_container_bytes(entry)
        return None if per is None else per / (MIB if kind == "memory" else KIB)
    if kind == "scale":
        return peak_throughput(entry)
    return median_ms(entry)


def headline_text(values: Mapping[str, float], unit: str, *, digits: int | None = None,
                  unit_each: bool = False) -> str:
    """Each runtime's headline figure, best (smallest; for a rate, largest) first:
    "runc 40.3 · podman 193.9 ms".
    ``digits`` None: two decimals for a MiB figure under 10, else one; ``unit_each``: the
    unit after every figure (the window's narrower column) rather than once at the end."""
    ranked = sorted(values.items(), key=lambda kv: kv[1], reverse=unit in RATE_UNITS)

    def figure(value: float) -> str:
        return f"{value:,.{digits}f}" if digits is not None else figure_text(value, unit)

    if unit_each:
        return " · ".join(f"{name} {figure(value)} {unit}" for name, value in ranked)
    if not ranked:
        return "-"
    return " · ".join(f"{name} {figure(value)}" for name, value in ranked) + f" {unit}"


def figure_text(value: float, unit: str) -> str:
    """A headline figure as the CLI's tables show it: two decimals for a MiB figure under
    10, else one."""
    return f"{value:.2f}" if unit == "MiB" and value < 10 else f"{value:.1f}"


def notification(doc: Doc) -> str:
    """The one-line summary a notification shows, shared by every front end."""
    kind = text(doc.get("kind")) or "benchmark"
    named = named_entries(doc)
    comparison = mapping(doc.get("comparison"))
    if kind == "compare" and comparison:
        ratios = [(r, v) for r in mappings(comparison.get("ratios"))
                  if r.get("metric") == "startup" and (v := real(r.get("ratio"))) is not None]
        if not ratios:
            return "Compare finished"
        best, ratio = max(ratios, key=lambda rv: rv[1])
        return (f"Compare finished: {text(best.get('runtime'))} {ratio:.2f}x faster than "
                f"{text(comparison.get('baseline'))} at startup")
    if kind in (*STARTUP_SHAPED, "image"):
        timed = sorted((m, e["runtime"]) for e in named if (m := median_ms(e)) is not None)
        if timed:
            what = kind.capitalize() if kind in STARTUP_SHAPED else "Image " + text(
                mapping(doc.get("parameters")).get("source") or "load")
            return f"{what} finished: " + ", ".join(f"{n} {m:.0f} ms" for m, n in timed)
    if kind == "scale":
        rates = sorted(((t, e["runtime"]) for e in named
                        if (t := peak_throughput(e)) is not None), reverse=True)
        if rates:
            return "Scale finished: " + ", ".join(f"{n} {t:.1f} containers/s" for t, n in rates)
    if kind in ("memory", "disk"):
        per = sorted((b, e["runtime"]) for e in named
                     if (b := per_container_bytes(e)) is not None)
        if per and kind == "memory":
            return "Memory finished: " + ", ".join(
                f"{n} {b / MIB:.1f} MiB per container" for b, n in per)
        if per:
            return "Disk finished: " + ", ".join(
                f"{n} {b / KIB:.0f} KiB per container" for b, n in per)
    return f"{kind.capitalize()} finished"


def verdicts(doc: Doc) -> list[str]:
    """What a person wants to read of a finished run, one line per runtime, best first, with
    the 95% confidence interval: "podman 1.43x faster than docker [1.30-1.95]" (compare),
    "runc median 52.1 ms [50.3-54.0]" (startup, canary, image), "runc 1.2 MiB per container"
    (memory, disk). A notification's body."""
    kind = text(doc.get("kind"))
    comparison = mapping(doc.get("comparison"))
    if kind == "compare" and comparison:
        base = text(comparison.get("baseline"))
        lines = []
        rows = [(ratio, r) for r in mappings(comparison.get("ratios"))
                if r.get("metric") == "startup" and (ratio := real(r.get("ratio"))) and ratio > 0]
        for ratio, row in sorted(rows, key=lambda rr: -rr[0]):
            ci = [x for v in items(row.get("ci95")) if (x := real(v)) and x > 0]
            band = (ci[0], ci[1]) if len(ci) == 2 else None
            slower = ratio < 1
            if slower:  # said as the inverse, so the figure reads above 1
                ratio, band = 1 / ratio, (1 / band[1], 1 / band[0]) if band else None
            shown = f" [{band[0]:.2f}-{band[1]:.2f}]" if band else ""
            lines.append(f"{text(row.get('runtime'))} {ratio:.2f}x "
                         f"{'slower' if slower else 'faster'} than {base}{shown}")
        return lines
    if kind in TIMED_KINDS:
        timed = [(m, e) for e in named_entries(doc) if (m := median_ms(e)) is not None]
        timed.sort(key=lambda me: me[0])
        lines = []
        for median, entry in timed:
            ci = [x for v in items(mapping(entry.get("stats")).get("ci95_ms"))
                  if (x := real(v)) is not None]
            shown = f" [{ci[0]:.1f}-{ci[1]:.1f}]" if len(ci) == 2 else ""
            lines.append(f"{entry['runtime']} median {median:.1f} ms{shown}")
        return lines
    if kind in ("memory", "disk"):
        unit, scale = ("MiB", MIB) if kind == "memory" else ("KiB", KIB)
        sized = [(b, str(e["runtime"])) for e in named_entries(doc)
                 if (b := per_container_bytes(e)) is not None]
        return [f"{name} {figure_text(b / scale, unit)} {unit} per container"
                for b, name in sorted(sized)]
    if kind == "scale":  # the best level of each runtime, fastest first
        best = []
        for entry in named_entries(doc):
            levels = [(t, lv) for lv in scale_levels(entry)
                      if (t := real(lv.get("throughput_per_s"))) is not None]
            if levels:
                best.append((*max(levels, key=lambda tl: tl[0]), str(entry["runtime"])))
        lines = []
        for rate, level, name in sorted(best, key=lambda b: -b[0]):
            ci = [x for v in items(level.get("throughput_ci95_per_s"))
                  if (x := real(v)) is not None]
            shown = f" [{ci[0]:.1f}-{ci[1]:.1f}]" if len(ci) == 2 else ""
            lines.append(f"{name} {rate:.1f} containers/s{shown} at "
                         f"{real(level.get('concurrency')) or 0:.0f} in flight")
        return lines
    return []


# --- a fleet (issue 14: ``kind: fleet``, forge_desktop/fleet.py) ----------------------------

def interval(value: Any) -> tuple[float, float] | None:
    """A ``[lo, hi]`` pair of finite numbers (a ratio's ``ci95``), else None."""
    pair = items(value)
    if len(pair) != 2:
        return None
    lo, hi = real(pair[0]), real(pair[1])
    return None if lo is None or hi is None else (lo, hi)


def fleet_hosts(doc: Doc) -> list[dict[str, Any]]:
    """A fleet's hosts as written (``name``, ``url``, ``result_id``, ``error``...)."""
    return mappings(doc.get("hosts"))


def fleet_comparison(doc: Doc) -> dict[str, Any]:
    """A fleet's ``comparison``: ``baseline_host``, ``baseline_runtime``, ``ratios``,
    ``engine_ratios``, ``engine_effect``, ``host_effect``."""
    return mapping(doc.get("comparison"))


# --- one verdict ------------------------------------------------------------------------------

def size_ratio(baseline: float | None, candidate: float | None) -> float | None:
    """baseline / candidate: above 1 the candidate is leaner or smaller."""
    if baseline is None or candidate is None or baseline <= 0 or candidate <= 0:
        return None
    return baseline / candidate


def size_verdict(ratio: float | None) -> str:
    """A memory or disk ratio in words: one figure per result, so no test, and within 2% is
    "about the same"."""
    if ratio is None:
        return "not applicable"
    if abs(ratio - 1) < 0.02:
        return "about the same"
    return "smaller" if ratio > 1 else "larger"


# --- one id resolver --------------------------------------------------------------------------

T = TypeVar("T")


def resolve_id(wanted: str, pool: Sequence[T], names: Callable[[T], tuple[str, ...]], *,
               where: Path | None = None) -> T:
    """The item of ``pool`` that ``wanted`` names: a whole id or file name (``.json``
    optional), else the one item with a name starting with it. UsageError for an empty or
    ambiguous text, StoreError when nothing matches (``where``: the folder searched, said in
    the message)."""
    key = wanted.strip().removesuffix(".json")
    if not key:
        raise UsageError("an empty result id; `forge results list` shows the saved ones")
    for item in pool:
        if key in names(item):
            return item
    matches = [item for item in pool if any(n.startswith(key) for n in names(item))]
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = [names(m)[0] for m in matches[:8]]
        more = f" and {len(matches) - 8} more" if len(matches) > 8 else ""
        raise UsageError(f"{wanted.strip()!r} matches {len(matches)} results "
                         f"({', '.join(shown)}{more}); give more of the id")
    found = f"{wanted.strip()!r} in {where}" if where is not None else wanted.strip()
    raise StoreError(f"no result with id {found}; `forge results list` shows the ids")
