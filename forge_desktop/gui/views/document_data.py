"""What the results window shows of one result, without Qt: pure functions from a result
document to tables, bars and series, and comparisons of results or runtimes. Tests call these
directly. Every figure is read through ``results.document`` (a field of the wrong type reads
as missing), the size verdict included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forge_desktop.gui.views.history_data import machine_text
from forge_desktop.results import document
from forge_desktop.results.document import MIB, TIMED_KINDS
from forge_desktop.results.document import mapping as _dict
from forge_desktop.results.document import named_entries as entries
from forge_desktop.results.document import real as _num
from forge_desktop.results.document import texts as _texts
from forge_desktop.results.index import ResultSummary

PHASE_ORDER = ("create", "start", "wait", "remove")

# --- one document -----------------------------------------------------------------------------

def _snapshots(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    return document.mappings(doc.get("snapshots"))


def _samples(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    return document.mappings(entry.get("samples"))


def distributions(doc: Mapping[str, Any]) -> list[tuple[str, list[float]]]:
    """Per runtime, its measured times (ms) in order: the strip and box of a timed result."""
    out = []
    for e in entries(doc):
        totals = [v for s in _samples(e) if (v := _num(s.get("total_ms"))) is not None
                  and v > 0]
        if totals:
            out.append((e["runtime"], totals))
    return out


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(frozen=True)
class PhaseBar:
    runtime: str
    phases_ms: dict[str, float]
    """Phase -> median ms, in display order."""
    to_exec_ms: float | None
    """From the create request until the container's process started (a point, not a
    phase: it overlaps create and start)."""


def phase_breakdown(doc: Mapping[str, Any]) -> list[PhaseBar]:
    """The median of each phase per runtime (create / start / wait / remove first, then any
    other phase such as an image load); from ``phase_medians_ms`` or else the samples."""
    bars = []
    for e in entries(doc):
        medians = {str(k): v for k, raw in _dict(e.get("phase_medians_ms")).items()
                   if (v := _num(raw)) is not None}
        if not medians:
            per: dict[str, list[float]] = {}
            for s in _samples(e):
                for k, raw in _dict(s.get("phases_ms")).items():
                    if (v := _num(raw)) is not None:
                        per.setdefault(str(k), []).append(v)
            medians = {k: _median(v) for k, v in per.items()}
        if not medians:
            continue
        order = [p for p in PHASE_ORDER if p in medians] + sorted(
            p for p in medians if p not in PHASE_ORDER)
        to_exec = _num(_dict(e.get("to_exec_stats")).get("median_ms"))
        if to_exec is None:
            execs = [v for s in _samples(e) if (v := _num(s.get("to_exec_ms"))) is not None]
            to_exec = _median(execs) if execs else None
        bars.append(PhaseBar(e["runtime"], {p: medians[p] for p in order}, to_exec))
    return bars


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / MIB:,.2f}"


def samples_table(doc: Mapping[str, Any]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Every measured iteration (timed kinds), memory sample or profile snapshot."""
    kind = doc.get("kind")
    cols: tuple[str, ...]
    rows: list[tuple[str, ...]]
    if kind == "profile":
        cols = ("t (s)", "RSS (MiB)", "PSS (MiB)", "USS (MiB)", "CPU %", "Threads",
                "Processes")
        rows = [(_fmt(_num(s.get("t_s")), 2), _mib(_num(s.get("rss_bytes"))),
                 _mib(_num(s.get("pss_bytes"))), _mib(_num(s.get("uss_bytes"))),
                 _fmt(_num(s.get("cpu_percent"))), _fmt(_num(s.get("threads")), 0),
                 _fmt(_num(s.get("processes")), 0)) for s in _snapshots(doc)]
        return cols, rows
    if kind == "memory":
        cols = ("Runtime", "t (s)", "Daemon PSS (MiB)", "Shims PSS (MiB)", "Cgroups (MiB)",
                "Total (MiB)")
        rows = [(e["runtime"], _fmt(_num(s.get("t_s")), 2),
                 *[_mib(_num(s.get(k))) for k in ("daemon_pss_bytes", "shims_pss_bytes",
                                                  "cgroups_bytes", "total_bytes")])
                for e in entries(doc) for s in _samples(e)]
        return cols, rows
    if kind == "scale":
        cols = ("Runtime", "In flight", "Per s", "95% CI", "p50 (ms)", "p90 (ms)",
                "p99 (ms)", "Failed", "Engine CPU %", "Engine peak (MiB)",
                "forge CPU (ms/lifecycle)")
        rows = []
        for e in entries(doc):
            for lv in document.scale_levels(e):
                ci = document.level_ci(lv, "throughput_ci95_per_s")
                rows.append((e["runtime"], _fmt(_num(lv.get("concurrency")), 0),
                             _fmt(_num(lv.get("throughput_per_s")), 2),
                             f"{ci[0]:,.2f}–{ci[1]:,.2f}" if ci else "-",
                             *[_fmt(_num(lv.get(k))) for k in ("p50_ms", "p90_ms", "p99_ms")],
                             _fmt(_num(lv.get("failures")), 0),
                             _fmt(_num(lv.get("engine_cpu_percent"))),
                             _mib(_num(lv.get("engine_peak_bytes"))),
                             _fmt(_num(lv.get("forge_cpu_ms_per_lifecycle")), 2)))
        return cols, rows
    phases: dict[str, None] = {}
    to_exec = False
    for e in entries(doc):
        for s in _samples(e):
            phases.update(dict.fromkeys(str(k) for k in _dict(s.get("phases_ms"))))
            to_exec = to_exec or _num(s.get("to_exec_ms")) is not None
    order = [p for p in PHASE_ORDER if p in phases] + [p for p in phases
                                                        if p not in PHASE_ORDER]
    cols = ("Runtime", "#", "Total (ms)", *[f"{p} (ms)" for p in order],
            *(["to exec (ms)"] if to_exec else []))
    rows = []
    for e in entries(doc):
        for i, s in enumerate(_samples(e), 1):
            ph = _dict(s.get("phases_ms"))
            rows.append((e["runtime"], str(i), _fmt(_num(s.get("total_ms")), 2),
                         *[_fmt(_num(ph.get(p)), 2) for p in order],
                         *([_fmt(_num(s.get("to_exec_ms")), 2)] if to_exec else [])))
    return cols, rows


def profile_rows(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A profile's summary as (figure, value) pairs."""
    s = _dict(doc.get("summary"))
    target = _dict(doc.get("target"))
    rows = [("Target", str(target.get("description") or "-"))]
    for label, key in (("Average RSS", "avg_rss_bytes"), ("Peak RSS", "peak_rss_bytes"),
                       ("Lowest RSS", "min_rss_bytes"), ("Range", "range_bytes")):
        rows.append((label, f"{_mib(_num(s.get(key)))} MiB"))
    rows += [("Growth", f"{_mib(_num(s.get('growth_bytes_per_min')))} MiB/min"),
             ("Samples", _fmt(_num(s.get("samples")), 0)),
             ("Duration", f"{_fmt(_num(s.get('duration_s')), 2)} s"),
             ("Average CPU", f"{_fmt(_num(s.get('avg_cpu_percent')))} %"),
             ("Peak threads", _fmt(_num(s.get("peak_threads")), 0))]
    return rows


def warnings_of(doc: Mapping[str, Any]) -> list[str]:
    """Everything that makes the figures less trustworthy, one sentence each."""
    out = []
    if doc.get("complete") is False:
        out.append("incomplete: some runtimes failed (their errors follow)")
    env = _dict(doc.get("environment"))
    out += [f"machine: {w}" for w in _texts(env.get("noise_warnings"))]
    out += [f"note: {w}" for w in _texts(doc.get("like_for_like_warnings"))]
    out += _texts(doc.get("warnings"))
    for e in entries(doc):
        name = e["runtime"]
        if e.get("not_applicable"):
            out.append(f"{name}: not applicable: {e['not_applicable']}")
        out += [f"{name}: warning: {w}" for w in _texts(e.get("warnings"))]
        for part in ("memory", "disk"):
            out += [f"{name} {part}: warning: {w}"
                    for w in _texts(_dict(e.get(part)).get("warnings"))]
        out += [f"{name}: error: {err}" for err in _texts(e.get("errors"))]
    return out


@dataclass(frozen=True)
class Series:
    label: str
    xs: list[float]
    ys: list[float]


def memory_series(doc: Mapping[str, Any]) -> list[Series]:
    """Memory over time (s, MiB): each runtime's total in a memory (or compare) result, RSS
    and PSS of a profile's target."""
    if doc.get("kind") == "profile":
        snaps = _snapshots(doc)
        out = []
        for label, key in (("RSS", "rss_bytes"), ("PSS", "pss_bytes")):
            pts = [(t, v / MIB) for s in snaps if (t := _num(s.get("t_s"))) is not None
                   and (v := _num(s.get(key))) is not None]
            if pts:
                out.append(Series(label, [p[0] for p in pts], [p[1] for p in pts]))
        return out
    out = []
    for e in entries(doc):
        source = _dict(e.get("memory")) if doc.get("kind") == "compare" else e
        pts = [(t, v / MIB) for s in _samples(source) if (t := _num(s.get("t_s"))) is not None
               and (v := _num(s.get("total_bytes"))) is not None]
        if pts:
            out.append(Series(e["runtime"], [p[0] for p in pts], [p[1] for p in pts]))
    return out


def density_series(doc: Mapping[str, Any]) -> list[Series]:
    """Total memory (MiB) against the number of running containers, per runtime."""
    out = []
    for e in entries(doc):
        source = _dict(e.get("memory")) if doc.get("kind") == "compare" else e
        raw = source.get("density")
        pts = [(n, v / MIB) for d in raw if isinstance(d, dict)
               and (n := _num(d.get("containers"))) is not None
               and (v := _num(d.get("total_bytes"))) is not None] \
            if isinstance(raw, list) else []
        if pts:
            out.append(Series(e["runtime"], [p[0] for p in pts], [p[1] for p in pts]))
    return out


@dataclass(frozen=True)
class ScalePoint:
    concurrency: float
    throughput: float
    ci: tuple[float, float] | None
    p50_ms: float | None
    p99_ms: float | None
    failures: float | None


def scale_series(doc: Mapping[str, Any]) -> list[tuple[str, list[ScalePoint], float | None]]:
    """Per runtime of a scale result: throughput against concurrency (with its interval and
    the latencies for the hover), and the saturation level (None: not reached)."""
    if doc.get("kind") != "scale":
        return []
    out = []
    for e in entries(doc):
        pts = [ScalePoint(c, t, document.level_ci(lv, "throughput_ci95_per_s"),
                          _num(lv.get("p50_ms")), _num(lv.get("p99_ms")),
                          _num(lv.get("failures")))
               for lv in document.scale_levels(e)
               if (c := _num(lv.get("concurrency"))) is not None
               and (t := _num(lv.get("throughput_per_s"))) is not None]
        if pts:
            out.append((e["runtime"], pts, _num(e.get("saturation_concurrency"))))
    return out


# --- comparisons ------------------------------------------------------------------------------

SIZE_METRICS = {"daemon_memory": "daemon memory", "per_container_memory":
                "memory per container", "disk": "disk (image + container)"}


@dataclass(frozen=True)
class CompareRow:
    metric: str
    runtime: str
    baseline: str
    """What the candidate is compared with: a runtime, or the older result's id."""
    baseline_value: float | None
    candidate_value: float | None
    unit: str
    ratio: float | None
    """baseline / candidate: above 1 the candidate is faster or smaller."""
    ci: tuple[float, float] | None
    p_value: float | None
    verdict: str


def _timed_row(metric: str, runtime: str, baseline: str, cand: Sequence[float],
               base: Sequence[float]) -> CompareRow:
    from forge_desktop.bench import stats

    if not cand or not base:
        return CompareRow(metric, runtime, baseline, stats.median(base) if base else None,
                          stats.median(cand) if cand else None, "ms", None, None, None,
                          "no samples")
    ratio, ci = stats.ratio_of_medians_ci(cand, base)
    p = stats.mann_whitney_p(cand, base)
    return CompareRow(metric, runtime, baseline, stats.median(base), stats.median(cand), "ms",
                      ratio, ci, p, stats.verdict(ratio, ci, p))


def _size_row(metric: str, runtime: str, baseline: str, cand: float | None,
              base: float | None) -> CompareRow:
    ratio = document.size_ratio(base, cand)
    verdict = document.size_verdict(ratio)
    return CompareRow(SIZE_METRICS[metric], runtime, baseline,
                      None if base is None else base / MIB,
                      None if cand is None else cand / MIB, "MiB", ratio, None, None, verdict)


def _timed_metric(kind: str) -> str | None:
    return {"startup": "startup", "canary": "startup", "compare": "startup",
            "image": "image load"}.get(kind)


def compare_results(a: ResultSummary, a_doc: Mapping[str, Any], b: ResultSummary,
                    b_doc: Mapping[str, Any]) -> tuple[list[CompareRow], list[str]]:
    """Result ``b`` (candidate) against result ``a`` (baseline), runtime by runtime: times
    with a bootstrap CI of the ratio of medians and a rank test; sizes as plain ratios."""
    notes = []
    if a.machine != b.machine:
        notes.append(f"the results come from different machines ({machine_text(a)} and "
                     f"{machine_text(b)}): times differ with the machine; compare runtimes "
                     "within each result instead")
    rows = []
    common = [r for r in b.runtimes if r in a.runtimes]
    if not common:
        notes.append("the two results share no runtime")
    metric_a, metric_b = _timed_metric(a.kind), _timed_metric(b.kind)
    for name in common:
        if metric_a and metric_a == metric_b:
            rows.append(_timed_row(metric_b, name, a.id, document.startup_samples(b_doc, name),
                                   document.startup_samples(a_doc, name)))
        for metric in SIZE_METRICS:
            cand = b.metrics.get(name, {}).get(metric)
            base = a.metrics.get(name, {}).get(metric)
            if cand is not None or base is not None:
                rows.append(_size_row(metric, name, a.id, cand, base))
    if common and not rows:
        notes.append(f"nothing in common to compare ({a.kind} and {b.kind})")
    return rows, notes


def default_baseline(summary: ResultSummary) -> str | None:
    """The slowest runtime, so ratios read "4.9x faster" (as ``benchmark compare`` does)."""
    values = summary.headline
    if values and summary.kind in TIMED_KINDS:
        return max(values, key=lambda k: values[k])
    return summary.runtimes[0] if summary.runtimes else None


def compare_runtimes(summary: ResultSummary, doc: Mapping[str, Any],
                     baseline: str) -> list[CompareRow]:
    """Every other runtime of one result against ``baseline`` (same run, same machine)."""
    rows = []
    metric = _timed_metric(summary.kind)
    base_samples = document.startup_samples(doc, baseline) if metric else []
    for name in summary.runtimes:
        if name == baseline:
            continue
        if metric:
            rows.append(_timed_row(metric, name, baseline, document.startup_samples(doc, name),
                                   base_samples))
        for m in SIZE_METRICS:
            cand = summary.metrics.get(name, {}).get(m)
            base = summary.metrics.get(baseline, {}).get(m)
            if cand is not None or base is not None:
                rows.append(_size_row(m, name, baseline, cand, base))
    return rows


def compare_cells(row: CompareRow) -> tuple[str, ...]:
    digits = 2 if row.unit == "MiB" else 1

    def value(v: float | None) -> str:
        return "-" if v is None else f"{v:,.{digits}f} {row.unit}"

    ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
    ci = "-" if row.ci is None else f"{row.ci[0]:.2f}–{row.ci[1]:.2f}"
    p = "-" if row.p_value is None else f"{row.p_value:.3g}"
    return (row.runtime, row.metric, value(row.candidate_value), value(row.baseline_value),
            ratio, ci, p, row.verdict)


COMPARE_COLUMNS = ("Runtime", "Metric", "Value", "Baseline", "Ratio", "95% CI", "p",
                   "Verdict")
"""Ratio: baseline / value (above 1: faster or smaller); p: Mann-Whitney U, two-sided."""
