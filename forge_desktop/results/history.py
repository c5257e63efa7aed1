"""Results as history: filters, trends with change points, regression checks, machines.

Pure functions over the index's :class:`~forge_desktop.results.index.ResultSummary` rows; the
regression check also takes the startup samples of a few documents through a ``load``
callable, so tests hand in dicts and the CLI hands in files.

Three rules keep comparisons honest:

- Only like is compared with like. Results are grouped by machine
  (:func:`~forge_desktop.results.environment.machine_key`: host, CPU, core count, memory);
  ``check`` compares results of one machine only, ``trend`` draws one series per machine and
  runtime (startup series are split further by how startup was timed, ``network/via``: an
  API call and a ``docker run`` command are different measurements).
- Across machines only ratios are compared: each runtime's startup divided by a baseline
  runtime's startup *in the same result*, so a faster laptop does not read as a faster runtime.
- A regression needs evidence beyond a session's luck: a slowdown larger than a floor (10%),
  whose interval, widened for the drift between sessions, lies wholly beyond that floor, at a
  strict alpha (0.001) after a Benjamini-Hochberg correction for the number of runtimes
  checked at once (docs/BENCHMARKING.md, "Regression checks", has the reasoning and the
  false-alarm rate measured on real sessions).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from forge_desktop.errors import UsageError
from forge_desktop.results.document import DISK_KINDS, MEMORY_KINDS, STARTUP_KINDS, startup_samples
from forge_desktop.results.index import ResultSummary, machine_id
from forge_desktop.results.schema import KINDS, parse_iso

MIB = 1024 * 1024
DEFAULT_LAST = 5
DEFAULT_MAX_REGRESSION_PCT = 10.0
"""The floor: a smaller change is never a regression (config: ``check.max_regression_pct``)."""
DEFAULT_ALPHA = 0.001
"""After the Benjamini-Hochberg correction; with nothing changed, the chance that a check
calls anything (config: ``check.alpha``). Otava's level; asv's 0.002 would be 1 in 500."""
DEFAULT_DRIFT_PCT = 30.0
"""The drift assumed between two sessions of a runtime (log-scale sd, as a percentage) until
``MIN_DRIFT_SESSIONS`` earlier sessions measure it (config: ``check.session_drift_pct``):
consecutive sessions on a shared 2-core VM moved docker's median 2.3x and runc's 1.6x."""
DRIFT_HISTORY = 10
"""Earlier sessions of a runtime whose medians measure its drift (newest first)."""
MIN_DRIFT_SESSIONS = 3


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    """How it is shown; summaries keep ms for startup and bytes for the others."""
    kinds: tuple[str, ...]
    """The result kinds that carry it."""
    title: str

    def show(self, value: float) -> float:
        return value if self.unit == "ms" else value / MIB


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("startup", "ms", STARTUP_KINDS, "median startup"),
    Metric("daemon_memory", "MiB", MEMORY_KINDS, "daemon memory (PSS)"),
    Metric("per_container_memory", "MiB", MEMORY_KINDS, "memory per running container"),
    Metric("disk", "MiB", DISK_KINDS, "disk: benchmark image + one container"),
)}


# --- selecting ------------------------------------------------------------------------------

_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: dt.datetime | None = None) -> float:
    """``--since``: an ISO date or time (no zone: local time), or an age back from ``now``
    (``30m``, ``24h``, ``7d``, ``2w``). Epoch seconds."""
    raw = text.strip()
    if m := _AGE.match(raw):
        now = now or dt.datetime.now(dt.timezone.utc)
        return now.timestamp() - float(m[1]) * _SECONDS[m[2].lower()]
    try:
        stamp = parse_iso(raw)
    except ValueError:
        raise UsageError(f"--since must be a date (2026-11-01, 2026-11-01T08:00) or an age "
                         f"(30m, 24h, 7d, 2w), got {text!r}") from None
    if stamp.tzinfo is None:
        stamp = stamp.astimezone()  # a naive time is the user's local time
    return stamp.timestamp()


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")


def check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise UsageError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")


def check_metric(metric: str) -> Metric:
    if metric not in METRICS:
        raise UsageError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    return METRICS[metric]


def select(results: Iterable[ResultSummary], *, kind: str | None = None,
           runtime: str | None = None, since_ts: float | None = None,
           limit: int | None = None) -> list[ResultSummary]:
    """Filter (order kept: the index gives newest first), then keep the first ``limit``."""
    chosen = [s for s in results
              if (kind is None or s.kind == kind)
              and (runtime is None or runtime in s.runtimes)
              and (since_ts is None or s.created_ts >= since_ts)]
    return chosen if limit is None else chosen[:limit]


def newest_first(results: Iterable[ResultSummary]) -> list[ResultSummary]:
    return sorted(results, key=lambda s: (s.created_ts, s.id), reverse=True)


# --- change points --------------------------------------------------------------------------

MAD_TO_SD = 1.4826
"""Scales the median absolute deviation to a standard deviation for normal data."""


@dataclass(frozen=True)
class ChangePoint:
    index: int
    value: float
    reference: float
    """Median of the window of points before it."""
    change_pct: float


def change_points(values: Sequence[float], window: int = 5, threshold: float = 3.0,
                  min_change: float = 0.10, min_history: int = 3) -> list[ChangePoint]:
    """Points where a series moves to a new level, by a rolling robust test.

    Point ``i`` is a change point when it differs from the median of the previous ``window``
    points by more than ``threshold`` scaled MADs (MAD x 1.4826, a robust standard deviation)
    AND by more than ``min_change`` (10%) of that median: the MAD test alone flags tiny moves
    in a very quiet series, the relative floor alone ignores noise. The window never reaches
    back across the last change point, so a step is reported once, at its first point, and
    the points after it are judged against the new level. At least ``min_history`` points
    (since the series began or since the last change) are needed to judge one. A lone spike
    is reported too: the next points show whether the level really moved.
    """
    found: list[ChangePoint] = []
    start = 0
    for i, x in enumerate(values):
        history = values[max(start, i - window):i]
        if len(history) < min_history:
            continue
        ref = statistics.median(history)
        spread = MAD_TO_SD * statistics.median([abs(h - ref) for h in history])
        delta = abs(x - ref)
        relative = delta / abs(ref) if ref else (math.inf if delta else 0.0)
        if delta > threshold * spread and relative > min_change:
            pct = 100 * (x - ref) / abs(ref) if ref else math.copysign(math.inf, x - ref)
            found.append(ChangePoint(i, float(x), float(ref), pct))
            start = i
    return found


# --- trends ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    id: str
    kind: str
    created_at: str
    created_ts: float
    value: float
    """In the metric's display unit (ms or MiB)."""


@dataclass(frozen=True)
class Series:
    machine: str
    host: str
    runtime: str
    setup: str | None
    points: tuple[Point, ...]
    """Oldest first."""
    changes: tuple[ChangePoint, ...]

    def to_json(self) -> dict[str, Any]:
        changed = {c.index: c for c in self.changes}
        return {"machine": machine_id(self.machine), "machine_key": self.machine,
                "host": self.host, "runtime": self.runtime, "setup": self.setup,
                "points": [{**asdict(p), "change_point": i in changed,
                            "change_pct": round(changed[i].change_pct, 2) if i in changed
                            else None} for i, p in enumerate(self.points)],
                "change_points": [asdict(c) for c in self.changes]}


def trend(results: Iterable[ResultSummary], metric: str,
          runtime: str | None = None) -> list[Series]:
    """One series per machine, runtime (and, for startup, timing set-up), oldest point first,
    from every result kind that carries the metric."""
    spec = check_metric(metric)
    groups: dict[tuple[str, str, str | None], list[Point]] = {}
    hosts: dict[str, str] = {}
    for s in sorted(results, key=lambda s: (s.created_ts, s.id)):
        if s.kind not in spec.kinds:
            continue
        for name, figures in s.metrics.items():
            value = figures.get(metric)
            if value is None or (runtime is not None and name != runtime):
                continue
            setup = s.setups.get(name) if metric == "startup" else None
            groups.setdefault((s.machine, name, setup), []).append(
                Point(s.id, s.kind, s.created_at, s.created_ts, spec.show(value)))
            hosts[s.machine] = s.host
    return [Series(machine, hosts[machine], name, setup, tuple(points),
                   tuple(change_points([p.value for p in points])))
            for (machine, name, setup), points in sorted(
                groups.items(), key=lambda kv: (hosts[kv[0][0]], kv[0][0], kv[0][1],
                                                kv[0][2] or ""))]


# --- machines -------------------------------------------------------------------------------

@dataclass(frozen=True)
class MachineRow:
    machine: str
    host: str
    environment: dict[str, Any]
    results: int
    first_ts: float
    last_ts: float
    baseline_runtime: str
    ratios: dict[str, tuple[float, int]]
    """runtime -> (median over results of startup / baseline's startup, results counted)."""

    def to_json(self) -> dict[str, Any]:
        return {"machine": machine_id(self.machine), "machine_key": self.machine,
                "host": self.host, "environment": self.environment, "results": self.results,
                "first": _iso(self.first_ts), "last": _iso(self.last_ts),
                "baseline_runtime": self.baseline_runtime,
                "startup_ratios": {k: {"ratio": round(r, 4), "results": n}
                                   for k, (r, n) in self.ratios.items()}}


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds") \
        .replace("+00:00", "Z")


def machines(results: Iterable[ResultSummary],
             baseline_runtime: str = "docker") -> list[MachineRow]:
    """One row per machine, newest activity first. A runtime's ratio is its median startup
    divided by the baseline runtime's in the same result (same run, same conditions), then
    the median of those ratios over the machine's results: 0.6 reads "60% of docker's time"."""
    groups: dict[str, list[ResultSummary]] = {}
    for s in results:
        if s.kind != "fleet":  # a fleet's hosts have their own results and rows
            groups.setdefault(s.machine, []).append(s)
    rows = []
    for key, group in groups.items():
        per_runtime: dict[str, list[float]] = {}
        for s in group:
            if s.kind not in STARTUP_KINDS:
                continue
            base = s.metrics.get(baseline_runtime, {}).get("startup")
            if not base:
                continue
            for name, figures in s.metrics.items():
                if name != baseline_runtime and figures.get("startup") is not None:
                    per_runtime.setdefault(name, []).append(figures["startup"] / base)
        newest = max(group, key=lambda s: s.created_ts)
        rows.append(MachineRow(
            key, newest.host, newest.environment, len(group),
            min(s.created_ts for s in group), newest.created_ts, baseline_runtime,
            {k: (statistics.median(v), len(v)) for k, v in sorted(per_runtime.items())}))
    return sorted(rows, key=lambda r: r.last_ts, reverse=True)


# --- regression check -----------------------------------------------------------------------

GROUPS: dict[str, tuple[str, ...]] = {
    "startup": ("startup",),
    "memory": ("daemon_memory", "per_container_memory"),
    "disk": ("disk",),
}


@dataclass(frozen=True)
class Comparison:
    """One metric group: the newest result carrying it and, per runtime, the baseline
    results (``--baseline ID``, or the previous N of the same kind on the same machine) and
    the earlier results that measure its drift from session to session (startup only)."""

    group: str
    current: ResultSummary
    baselines: dict[str, tuple[ResultSummary, ...]]
    explicit: bool
    history: dict[str, tuple[ResultSummary, ...]] = field(default_factory=dict)
    pinned: tuple[str, ...] = ()
    """Runtimes compared with the baseline pinned for them (``forge results baseline set``)."""


@dataclass(frozen=True)
class CheckRow:
    metric: str
    runtime: str
    unit: str
    current: float | None
    baseline: float | None
    change_pct: float | None
    """Positive: slower or bigger."""
    ci: tuple[float, float] | None
    """The (1 - alpha) interval of the slowdown factor (current / baseline medians), widened
    for the drift between sessions; startup only."""
    p_value: float | None
    """Of "the change is within the floor" (startup only)."""
    p_adjusted: float | None
    """``p_value`` after the Benjamini-Hochberg correction over the startup rows checked."""
    n_current: int
    n_baseline: int
    status: str
    """regression, improvement, ok, no baseline or not comparable."""
    reason: str
    """Why: below floor, not significant, regression, improvement, or what is missing."""
    current_id: str
    baseline_ids: tuple[str, ...]
    drift_pct: float | None = None
    """The session-to-session drift allowed for (log-scale sd as a percentage)."""
    drift_sessions: int = 0
    """Earlier sessions that measured it; 0: the configured default was assumed."""
    host: str = ""
    machine: str = ""
    """The short machine id (``machine_id``) of the results compared."""


@dataclass
class CheckReport:
    max_regression_pct: float
    alpha: float = DEFAULT_ALPHA
    drift_pct: float = DEFAULT_DRIFT_PCT
    comparisons: list[Comparison] = field(default_factory=list)
    rows: list[CheckRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[CheckRow]:
        return [r for r in self.rows if r.status == "regression"]

    def to_json(self) -> dict[str, Any]:
        return {
            "max_regression_pct": self.max_regression_pct, "alpha": self.alpha,
            "session_drift_pct": self.drift_pct,
            "comparisons": [{"group": c.group, "host": c.current.host,
                             "machine": machine_id(c.current.machine),
                             "current": c.current.id,
                             "current_kind": c.current.kind,
                             "baseline": "given" if c.explicit else "previous results",
                             "pinned": list(c.pinned),
                             "baselines": {k: [s.id for s in v]
                                           for k, v in c.baselines.items()}}
                            for c in self.comparisons],
            "rows": [{**asdict(r), "ci": list(r.ci) if r.ci else None} for r in self.rows],
            "regressions": [{"metric": r.metric, "runtime": r.runtime, "host": r.host,
                             "machine": r.machine, "change_pct": r.change_pct}
                            for r in self.regressions],
            "regressed": bool(self.regressions), "notes": self.notes}


def check_max_regression(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"--max-regression must be a positive percentage, got {value:g}")
    return value


def check_alpha(value: float) -> float:
    if not 0 < value < 1:
        raise UsageError(f"--alpha must be a probability between 0 and 1 (e.g. 0.001), "
                         f"got {value:g}")
    return value


def check_last(value: int) -> int:
    if value < 1:
        raise UsageError(f"--last must be at least 1, got {value}")
    return value


def _carries(s: ResultSummary, group: str) -> bool:
    metrics = GROUPS[group]
    return s.kind in METRICS[metrics[0]].kinds and any(
        m in figures for figures in s.metrics.values() for m in metrics)


def _order(s: ResultSummary) -> tuple[float, str]:
    return s.created_ts, s.id


def _same_setup(group: str, runtime: str, a: ResultSummary, b: ResultSummary) -> bool:
    return group != "startup" or a.setups.get(runtime) == b.setups.get(runtime)


def plan_check(results: Sequence[ResultSummary], baseline: ResultSummary | None = None,
               last: int = DEFAULT_LAST, pinned: Mapping[tuple[str, str], str] | None = None
               ) -> tuple[list[Comparison], list[str]]:
    """Which results to compare (one comparison per machine and metric group), and notes.

    Every machine is checked against its own history (results copied from several machines
    into one folder are checked machine by machine); with an explicit baseline, only the
    baseline's machine. Per group, the current result is the newest on that machine carrying
    the group (and newer than an explicit baseline); per runtime, the baseline is the
    explicit one or the previous ``last`` results of the current's kind on that machine that
    measured the runtime (for startup: timed the same way, ``network/via``), and the history
    is the previous ``DRIFT_HISTORY`` of those. ``pinned``: (machine key, runtime) -> the id of
    the baseline pinned for them, used instead of the previous results when no explicit
    baseline is given."""
    ordered = newest_first(results)
    notes: list[str] = []
    if baseline is not None:
        wanted = [baseline.machine]
        others = {s.host for s in ordered if s.machine != baseline.machine}
        if others:
            notes.append(f"results of other machines ({', '.join(sorted(others))}) are not "
                         f"compared with {baseline.id}: check compares results of the same "
                         "machine")
    else:
        wanted = list(dict.fromkeys(s.machine for s in ordered))
    comparisons = []
    for machine in wanted:
        comparisons += _plan_machine([s for s in ordered if s.machine == machine], baseline,
                                     last, notes, pinned or {})
    if not comparisons and not notes:
        notes.append("no result with startup, memory or disk figures to check")
    return comparisons, notes


def _earlier(group: str, current: ResultSummary, carriers: Sequence[ResultSummary],
             limit: int) -> dict[str, tuple[ResultSummary, ...]]:
    """Per runtime of ``current``: the newest ``limit`` older results of its kind that
    measured that runtime the same way."""
    previous = [s for s in carriers if s.kind == current.kind and _order(s) < _order(current)]
    found = {}
    for name, figures in current.metrics.items():
        wanted = [m for m in GROUPS[group] if m in figures]
        if wanted:
            found[name] = tuple([s for s in previous
                                 if any(m in s.metrics.get(name, {}) for m in wanted)
                                 and _same_setup(group, name, current, s)][:limit])
    return found


def _plan_machine(local: list[ResultSummary], baseline: ResultSummary | None, last: int,
                  notes: list[str], pinned: Mapping[tuple[str, str], str]) -> list[Comparison]:
    comparisons = []
    for group in GROUPS:
        carriers = [s for s in local if _carries(s, group)]
        if baseline is not None:
            if not _carries(baseline, group):
                continue
            newer = [s for s in carriers if _order(s) > _order(baseline)]
            if not newer:
                notes.append(f"{group}: nothing newer than {baseline.id} on this machine "
                             "to compare with it")
                continue
            current = newer[0]
            bases: dict[str, tuple[ResultSummary, ...]] = {
                name: (baseline,) for name in current.metrics if name in baseline.metrics}
            comparisons.append(Comparison(group, current, bases, True,
                                          _earlier(group, current, carriers, DRIFT_HISTORY)))
            continue
        if not carriers:
            continue
        current = carriers[0]
        history = _earlier(group, current, carriers, max(last, DRIFT_HISTORY))
        bases = {k: v[:last] for k, v in history.items()}
        chosen = _pinned(group, current, local, pinned, notes)
        comparisons.append(Comparison(group, current, {**bases, **chosen}, False,
                                      {k: v[:DRIFT_HISTORY] for k, v in history.items()},
                                      tuple(sorted(chosen))))
    return comparisons


def _pinned(group: str, current: ResultSummary, local: Sequence[ResultSummary],
            pinned: Mapping[tuple[str, str], str], notes: list[str]
            ) -> dict[str, tuple[ResultSummary, ...]]:
    """Per runtime of ``current`` with a baseline pinned on this machine: that result, when
    it is still in the store, older than ``current`` and carries the group's figures."""
    by_id = {s.id: s for s in local}
    found: dict[str, tuple[ResultSummary, ...]] = {}
    for name, figures in current.metrics.items():
        pin = pinned.get((current.machine, name))
        if pin is None or not any(m in figures for m in GROUPS[group]):
            continue
        base = by_id.get(pin)
        if base is None:
            notes.append(f"the baseline pinned for {name}, {pin}, is not among these results "
                         "(removed?); compared with the previous results")
        elif not any(m in base.metrics.get(name, {}) for m in GROUPS[group]):
            continue  # pinned for another group (a memory result, checking startup)
        elif _order(base) >= _order(current):
            notes.append(f"{group}: {current.id} is the baseline pinned for {name}; nothing "
                         "newer to compare with it")
        else:
            found[name] = (base,)
    return found


def _call(change_pct: float, p_adjusted: float | None, max_regression_pct: float,
          alpha: float) -> tuple[str, str]:
    """(status, reason) of a change: within the floor either way (a speed-up counts as a
    factor: 1/(1 + floor) and faster), then the evidence."""
    ratio = 1 + change_pct / 100
    if ratio <= 0 or abs(math.log(ratio)) <= math.log1p(max_regression_pct / 100):
        return "ok", "below floor"
    if p_adjusted is not None and p_adjusted >= alpha:
        return "ok", "not significant"
    return ("regression", "regression") if ratio > 1 else ("improvement", "improvement")


def startup_row(runtime: str, current: Sequence[float], baseline: Sequence[float], *,
                max_regression_pct: float = DEFAULT_MAX_REGRESSION_PCT,
                alpha: float = DEFAULT_ALPHA, drift_pct: float = DEFAULT_DRIFT_PCT,
                history: Sequence[float] = (), baseline_sessions: int = 1,
                current_id: str = "", baseline_ids: tuple[str, ...] = (),
                q: float = 50.0) -> CheckRow:
    """Startup of one runtime against its baseline samples (``baseline_sessions`` results
    pooled). The drift between sessions is measured from ``history``, the medians of earlier
    sessions (at least ``MIN_DRIFT_SESSIONS``, else ``drift_pct`` is assumed). Judged alone
    here; :func:`decide` corrects the p-values of all the rows of a check together. ``q``: 95
    compares the p95 instead (row ``startup_p95``; ``history`` then holds earlier p95s)."""
    from forge_desktop.bench import stats

    if len(history) >= MIN_DRIFT_SESSIONS:
        drift_sd, df = stats.session_drift(history)
        sessions: int = len(history)
    else:
        drift_sd, df, sessions = math.log1p(drift_pct / 100), None, 0
    shift = stats.session_shift(current, baseline, floor=max_regression_pct / 100,
                                drift_sd=drift_sd, drift_df=df,
                                baseline_sessions=baseline_sessions, alpha=alpha, q=q)
    change = 100 * (shift.ratio - 1)
    status, reason = _call(change, shift.p_value, max_regression_pct, alpha)
    if q == 50.0:
        metric, now, base = "startup", stats.median(current), stats.median(baseline)
    else:
        metric, now, base = (f"startup_p{q:g}", stats.percentile(current, q),
                             stats.percentile(baseline, q))
    return CheckRow(metric, runtime, "ms", now, base, change, shift.ci, shift.p_value,
                    shift.p_value, len(current), len(baseline), status, reason, current_id,
                    baseline_ids, 100 * math.expm1(drift_sd), sessions)


def size_row(metric: str, runtime: str, current: float, baseline: Sequence[float],
             max_regression_pct: float = DEFAULT_MAX_REGRESSION_PCT, current_id: str = "",
             baseline_ids: tuple[str, ...] = ()) -> CheckRow:
    """Memory or disk: one figure per result, so no test; the baseline is the median of the
    baseline results' figures, and a change beyond ``max_regression_pct`` is the call (the
    figures are from one machine: ``plan_check`` sees to it)."""
    base = statistics.median(baseline)
    change = 100 * (current / base - 1) if base else 0.0
    status, reason = _call(change, None, max_regression_pct, DEFAULT_ALPHA)  # no test
    return CheckRow(metric, runtime, "bytes", current, base, change, None, None, None, 1,
                    len(baseline), status, reason, current_id, baseline_ids)


def decide(rows: Sequence[CheckRow], max_regression_pct: float,
           alpha: float = DEFAULT_ALPHA) -> list[CheckRow]:
    """The rows with a test (startup), Benjamini-Hochberg corrected together: the more
    runtimes a check compares, the stronger each one's evidence must be."""
    from forge_desktop.bench import stats

    tested = [i for i, r in enumerate(rows) if r.p_value is not None]
    adjusted = stats.benjamini_hochberg([rows[i].p_value or 0.0 for i in tested])
    out = list(rows)
    for i, p in zip(tested, adjusted, strict=True):
        row = rows[i]
        status, reason = _call(row.change_pct or 0.0, p, max_regression_pct, alpha)
        out[i] = replace(row, p_adjusted=p, status=status, reason=reason)
    return out


def run_check(results: Sequence[ResultSummary], load: Callable[[ResultSummary], Mapping[str, Any]],
              *, baseline: ResultSummary | None = None, last: int = DEFAULT_LAST,
              max_regression_pct: float = DEFAULT_MAX_REGRESSION_PCT,
              alpha: float = DEFAULT_ALPHA, drift_pct: float = DEFAULT_DRIFT_PCT,
              pinned: Mapping[tuple[str, str], str] | None = None) -> CheckReport:
    """Compare the newest results with their baseline, metric by metric, runtime by runtime:
    startup by its median and by its p95, memory and disk by their figures. ``pinned``: the
    baselines pinned per machine and runtime (results/state.py)."""
    check_max_regression(max_regression_pct)
    check_alpha(alpha)
    check_last(last)
    comparisons, notes = plan_check(results, baseline, last, pinned)
    report = CheckReport(max_regression_pct, alpha, drift_pct, comparisons, notes=notes)
    docs: dict[str, Mapping[str, Any]] = {}

    def doc(s: ResultSummary) -> Mapping[str, Any]:
        if s.id not in docs:
            docs[s.id] = load(s)
        return docs[s.id]

    rows = []
    for comp in comparisons:
        cur = comp.current
        for name in sorted(cur.metrics):
            for metric in GROUPS[comp.group]:
                if metric in cur.metrics[name]:
                    row = _compare(comp, name, metric, doc, report)
                    rows.append(replace(row, host=cur.host, machine=machine_id(cur.machine)))
                    if metric == "startup" and row.p_value is not None:
                        tail = _compare_tail(comp, name, doc, report)
                        rows.append(replace(tail, host=cur.host,
                                            machine=machine_id(cur.machine)))
    report.rows = decide(rows, max_regression_pct, alpha)
    return report


def _compare(comp: Comparison, name: str, metric: str,
             doc: Callable[[ResultSummary], Mapping[str, Any]],
             report: CheckReport) -> CheckRow:
    cur = comp.current
    value = cur.metrics[name][metric]
    bases = [s for s in comp.baselines.get(name, ()) if metric in s.metrics.get(name, {})]
    ids = tuple(s.id for s in bases)
    unit = "ms" if metric == "startup" else "bytes"

    def missing(status: str, reason: str, baseline: float | None = None) -> CheckRow:
        return CheckRow(metric, name, unit, value, baseline, None, None, None, None, 0, 0,
                        status, reason, cur.id, ids)

    if not bases:
        return missing("no baseline", "no earlier result")
    if metric != "startup":
        return size_row(metric, name, value, [s.metrics[name][metric] for s in bases],
                        report.max_regression_pct, cur.id, ids)
    if (comp.explicit or name in comp.pinned) and not _same_setup("startup", name, cur,
                                                                  bases[0]):
        return missing("not comparable", f"timed differently: {cur.setups.get(name)} vs "
                       f"{bases[0].setups.get(name)}", bases[0].metrics[name][metric])
    current = startup_samples(doc(cur), name)
    pooled = [x for s in bases for x in startup_samples(doc(s), name)]
    if not current or not pooled:
        return missing("no baseline", "no startup samples")
    earlier = [s.metrics.get(name, {}).get(metric) for s in comp.history.get(name, ())]
    history = [float(m) for m in earlier  # a hand-edited file must not crash the check
               if isinstance(m, int | float) and math.isfinite(m) and m > 0]
    return startup_row(name, current, pooled, max_regression_pct=report.max_regression_pct,
                       alpha=report.alpha, drift_pct=report.drift_pct, history=history,
                       baseline_sessions=len(bases), current_id=cur.id, baseline_ids=ids)


TAIL_MIN_RUNS = 10
"""Runs on each side before a p95 is compared: with fewer, the p95 is the slowest run or
two, and its bootstrap says little."""


def _compare_tail(comp: Comparison, name: str,
                  doc: Callable[[ResultSummary], Mapping[str, Any]],
                  report: CheckReport) -> CheckRow:
    """The startup p95 of one runtime against its baseline's (pooled runs): the same
    minimum-effect test as the median's, on the p95 (its bootstrap sd, the drift of earlier
    sessions' p95), so both go through the same Benjamini-Hochberg correction."""
    from forge_desktop.bench import stats

    cur = comp.current
    bases = [s for s in comp.baselines.get(name, ()) if "startup" in s.metrics.get(name, {})]
    ids = tuple(s.id for s in bases)
    current = startup_samples(doc(cur), name)
    pooled = [x for s in bases for x in startup_samples(doc(s), name)]
    if min(len(current), len(pooled)) < TAIL_MIN_RUNS:
        return CheckRow("startup_p95", name, "ms",
                        stats.percentile(current, 95) if current else None,
                        stats.percentile(pooled, 95) if pooled else None, None, None, None,
                        None, len(current), len(pooled), "not comparable",
                        f"p95 needs {TAIL_MIN_RUNS} runs a side", cur.id, ids)
    history = [stats.percentile(xs, 95) for s in comp.history.get(name, ())
               if (xs := startup_samples(doc(s), name))]
    return startup_row(name, current, pooled, max_regression_pct=report.max_regression_pct,
                       alpha=report.alpha, drift_pct=report.drift_pct, history=history,
                       baseline_sessions=len(bases), current_id=cur.id, baseline_ids=ids,
                       q=95.0)
