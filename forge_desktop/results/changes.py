"""Change points over the whole history: where a series of results shifted, and what changed
with it.

A **series** is one machine x runtime x metric x like-for-like setup (image, network, via), its
points the results carrying that metric, oldest first: startup, compare and canary results of
one setup form one series (they time the same thing). Each point is the result's figure
(startup: its median ms) and, where the result kept them, its raw samples.

How it decides (docs/BENCHMARKING.md, "Change points", has the figures):

1. **Candidates**: an exact optimal partition of the log figures (least squares, a penalty
   of ``2 log n`` robust variances per change; PELT finds the same partition, faster, on
   series far longer than a history holds), segments of at least ``MIN_SEGMENT`` results.
   A candidate costs nothing: the tests below decide.
2. **Confirmation**, each boundary against its two neighbouring segments: a Mann-Whitney test
   on the raw samples of the two segments, and a minimum-effect t test on the results'
   log figures ("the shift is at most the floor"), which counts each result as one
   observation, so a session's own luck (all its samples share the machine's state at the
   time) cannot pass for a shift. The t test's sd is at least the series' robust spread from
   one result to the next, and its p is multiplied by the places the boundary could have
   taken between its neighbours: the boundary was put where the segments differ most and are
   most alike inside. The p-value is the larger of the two tests' (a change must pass both:
   an intersection-union test). A boundary whose two segment medians differ by less than the
   floor (10%) is dropped and its neighbours tested again, so a step is one boundary,
   reported once.
3. **Correction**: Benjamini-Hochberg over every boundary tested in every series examined (a
   series with no candidate counts as one test with p = 1); a change is reported when its q
   value is below ``ALPHA`` (0.001, the regression check's level).

Attribution: the fingerprint fields that differ between the last result before the boundary
and the first after it (runtime version, storage driver, kernel, cgroup version, forge
version, image id, CPU model, parameters, the kind of result).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge_desktop.results import document, history, state
from forge_desktop.results.index import ResultSummary, Scan, machine_id, parse_created, printable

DEFAULT_FLOOR = 0.10
ALPHA = history.DEFAULT_ALPHA
MIN_SEGMENT = 3
"""Results on each side of a boundary before it can be confirmed: the t test on the results'
figures needs a spread on each side."""


@dataclass(frozen=True)
class Attribution:
    field: str
    before: str
    after: str

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class Change:
    machine: str
    """The short machine id (``index.machine_id``), as ``forge results machines`` shows it."""
    runtime: str
    metric: str
    setup: str
    """The like-for-like key: image, then network/via for startup."""
    result_id: str
    """The first result after the shift."""
    at: str
    """ISO time of that result."""
    before: float
    after: float
    """Segment medians, in the metric's display unit (ms or MiB)."""
    change_pct: float
    p_value: float
    q_value: float
    attribution: tuple[Attribution, ...]
    acked: bool

    def to_json(self) -> dict[str, Any]:
        return {"machine": self.machine, "runtime": self.runtime, "metric": self.metric,
                "setup": self.setup, "result_id": self.result_id, "at": self.at,
                "before": round(self.before, 4), "after": round(self.after, 4),
                "change_pct": round(self.change_pct, 2), "p_value": self.p_value,
                "q_value": self.q_value,
                "attribution": [a.to_json() for a in self.attribution], "acked": self.acked}

    @classmethod
    def from_json(cls, data: Any) -> Change:
        """The change ``to_json`` wrote (`forge results changes --json`, read back by the
        tray); ValueError when it is not one."""
        try:
            return cls(
                str(data["machine"]), str(data["runtime"]), str(data["metric"]),
                str(data["setup"]), str(data["result_id"]), str(data["at"]),
                float(data["before"]), float(data["after"]), float(data["change_pct"]),
                float(data["p_value"]), float(data["q_value"]),
                tuple(Attribution(str(a["field"]), str(a["before"]), str(a["after"]))
                      for a in data["attribution"]), bool(data["acked"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a change point: {exc}") from None

    def headline(self) -> str:
        """"docker startup +38% since 14:02 (docker 20.10 → 24.0)": what changed, when, and
        the likeliest cause (the runtime's version first)."""
        when = _local(self.at)
        causes = sorted(self.attribution, key=lambda a: _CAUSE_ORDER.get(a.field, 99))[:2]
        said = "; ".join(f"{self.runtime if a.field == 'version' else a.field} "
                         f"{a.before} → {a.after}" for a in causes)
        metric = self.metric.replace("_", " ")
        return (f"{self.runtime} {metric} {self.change_pct:+.0f}% since {when}"
                + (f" ({said})" if said else ""))


_CAUSE_ORDER = {"version": 0, "storage_driver": 1, "image_id": 2, "kernel": 3,
                "cgroup_version": 4, "forge_version": 5, "cpu_model": 6}


def _local(iso: str) -> str:
    """The time of a change as a person reads it: today's as 14:02, older with its date."""
    try:
        stamp = dt.datetime.fromtimestamp(parse_created(iso)).astimezone()
    except (ValueError, OverflowError, OSError):
        return iso
    today = dt.datetime.now().astimezone().date()
    return stamp.strftime("%H:%M" if stamp.date() == today else "%Y-%m-%d %H:%M")


# --- the series -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    summary: ResultSummary
    value: float
    """The result's figure in the metric's display unit (startup: median ms)."""
    samples: tuple[float, ...]
    """The raw samples (startup iterations, ms); the figure alone for one-figure metrics."""
    doc: document.Doc = field(default_factory=dict, repr=False, compare=False)
    runtime: str = ""

    def facts(self) -> dict[str, str]:
        """The fingerprint fields attribution compares (read only at a reported boundary)."""
        return facts(self.doc, self.runtime)


@dataclass
class Series:
    machine: str
    runtime: str
    metric: str
    setup: str
    points: list[Point] = field(default_factory=list)


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    raw = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return printable(raw)


def facts(doc: document.Doc, runtime: str) -> dict[str, str]:
    """The fields of a result that may explain a change of ``runtime``'s figures."""
    env = document.mapping(doc.get("environment"))
    engine = document.mapping(document.mapping(env.get("runtimes")).get(runtime))
    entry = next((e for e in document.named_entries(doc) if e["runtime"] == runtime), {})
    found = {
        "version": entry.get("version") or engine.get("version"),
        "storage_driver": engine.get("storage_driver"),
        "image_id": engine.get("image_id") or entry.get("image_id"),
        "kernel": env.get("kernel"),
        "cgroup_version": env.get("cgroup_version"),
        "forge_version": env.get("forge_version"),
        "cpu_model": env.get("cpu_model"),
        "os": env.get("os"),
        "kind": doc.get("kind"),
    }
    for key, value in document.mapping(doc.get("parameters")).items():
        found[f"parameters.{key}"] = value
    return {k: t for k, v in found.items() if (t := _text(v)) is not None}


def setup_of(metric: str, doc: document.Doc, runtime: str) -> str:
    """Like is compared with like: the image, and for startup how it was timed."""
    params = document.mapping(doc.get("parameters"))
    image = _text(params.get("image")) or "default image"
    if metric != "startup":
        return image
    entry = next((e for e in document.named_entries(doc) if e["runtime"] == runtime), {})
    via = entry.get("via") or params.get("via") or "api"
    return f"{image} {params.get('network') or 'none'}/{via}"


def build_series(results: Sequence[ResultSummary], load: Callable[[ResultSummary], document.Doc],
                 *, runtime: str | None = None, metrics: Sequence[str] = tuple(history.METRICS)
                 ) -> list[Series]:
    """Every series of ``metrics`` (of ``runtime`` alone if given), points oldest first."""
    groups: dict[tuple[str, str, str, str], Series] = {}
    for s in sorted(results, key=lambda s: (s.created_ts, s.id)):
        wanted = [m for m in metrics if s.kind in history.METRICS[m].kinds]
        if not wanted:
            continue
        doc: document.Doc | None = None
        for name, figures in s.metrics.items():
            if runtime is not None and name != runtime:
                continue
            for metric in wanted:
                value = figures.get(metric)
                if value is None or value <= 0:
                    continue
                if doc is None:
                    doc = load(s)
                spec = history.METRICS[metric]
                if metric == "startup":
                    samples = tuple(document.startup_samples(doc, name)) or (value,)
                else:
                    samples = (spec.show(value),)
                setup = setup_of(metric, doc, name)
                key = (s.machine, name, metric, setup)
                series = groups.setdefault(key, Series(s.machine, name, metric, setup))
                series.points.append(Point(s, spec.show(value), samples, doc, name))
    return list(groups.values())


# --- candidates -----------------------------------------------------------------------------

def partition(values: Sequence[float], min_segment: int = MIN_SEGMENT,
              penalty: float | None = None) -> list[int]:
    """The boundaries (index of the first point after each) of the least-squares partition of
    ``values`` into segments of at least ``min_segment`` points, each boundary costing
    ``penalty`` (default: ``2 log n`` times a robust variance of the series, from the median
    absolute difference of neighbours, which a step barely moves).

    Exact optimal partitioning (Jackson et al. 2005), O(n^2) with numpy: PELT (Killick et al.
    2012) gives the same partition and only prunes for speed, which a history of hundreds of
    results does not need."""
    import numpy as np

    y = np.asarray(values, dtype=float)
    n = len(y)
    if n < 2 * min_segment:
        return []
    if penalty is None:
        diffs = np.abs(np.diff(y))
        sigma = float(np.median(diffs)) / (0.6745 * math.sqrt(2))
        # a series of equal values: any boundary at all is a real difference to test
        penalty = 2 * math.log(n) * max(sigma, 1e-6 * (float(np.abs(y).max()) or 1.0)) ** 2
    s1 = np.concatenate(([0.0], np.cumsum(y)))
    s2 = np.concatenate(([0.0], np.cumsum(y * y)))
    best = np.full(n + 1, np.inf)
    best[0] = -penalty
    last = np.zeros(n + 1, dtype=int)
    for t in range(min_segment, n + 1):
        starts = np.arange(0, t - min_segment + 1)
        starts = starts[np.isfinite(best[starts])]
        if not len(starts):
            continue
        length = t - starts
        cost = (s2[t] - s2[starts]) - (s1[t] - s1[starts]) ** 2 / length
        total = best[starts] + cost + penalty
        i = int(np.argmin(total))
        best[t], last[t] = total[i], starts[i]
    cuts = []
    t = n
    while t > 0:
        t = int(last[t])
        if t > 0:
            cuts.append(t)
    return sorted(cuts)


# --- confirmation ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Tested:
    series: Series
    index: int
    """The first point after the boundary."""
    before: float
    after: float
    p_value: float


def _median(values: Sequence[float]) -> float:
    """statistics' median: the figures were checked when read, and bench.stats' checked
    median, called for every segment at every merge step, was a fifth of a 10,000-result
    search."""
    return statistics.median(values)


def _segment_test(before: Sequence[Point], after: Sequence[Point], floor: float,
                  spread: float = 0.0) -> float:
    """p of "no shift beyond the floor": the larger of the rank test on the raw samples and
    the minimum-effect t test on the results' log figures."""
    from scipy import stats as sps

    from forge_desktop.bench import stats

    raw_p = stats.mann_whitney_p([x for p in before for x in p.samples],
                                 [x for p in after for x in p.samples])
    a = [math.log(p.value) for p in before]
    b = [math.log(p.value) for p in after]
    ma, mb = math.fsum(a) / len(a), math.fsum(b) / len(b)
    ss = math.fsum((v - ma) ** 2 for v in a) + math.fsum((v - mb) ** 2 for v in b)
    df = len(a) + len(b) - 2
    se = max(math.sqrt(ss / df), spread) * math.sqrt(1 / len(a) + 1 / len(b))
    excess = abs(mb - ma) - math.log1p(floor)
    # se 0: every figure of both segments equal, so the shift is exact
    session_p = min(1.0, 2 * float(sps.t(df).sf(excess / se))) if se > 0 \
        else float(excess <= 0)
    # The boundary was put where the two sides differ most: of the places it could have
    # taken between its neighbours, the best one's p is the smallest of that many, so it is
    # multiplied by their number (Bonferroni; without it, 9 in 1000 flat docker-like series
    # were called, benchmarks/change_points.py)
    places = len(before) + len(after) - 2 * MIN_SEGMENT + 1
    return max(raw_p, min(1.0, session_p * places))


def _spread(logs: Sequence[float]) -> float:
    """The sd of a series' log figures from one result to the next, robustly (the median
    absolute difference of neighbours / 0.6745 / sqrt 2: a step moves one difference of
    many): the segments' own sd is smaller than the truth, as the boundary was put where it
    makes the segments most alike."""
    diffs = sorted(abs(b - a) for a, b in zip(logs, logs[1:], strict=False))
    if not diffs:
        return 0.0
    return _median(diffs) / (0.6745 * math.sqrt(2))


def _segments_medians(points: Sequence[Point]) -> float:
    return _median([x for p in points for x in p.samples])


def confirm(series: Series, floor: float = DEFAULT_FLOOR,
            min_segment: int = MIN_SEGMENT) -> list[Tested]:
    """The candidate boundaries of a series, each tested against its neighbouring segments.
    A boundary whose segment medians differ by less than the floor is dropped (the smallest
    first) and its neighbours are tested again over the merged segment."""
    points = series.points
    cuts = partition([math.log(p.value) for p in points], min_segment)
    while True:
        bounds = [0, *cuts, len(points)]
        found: list[tuple[float, int, float, float]] = []
        for i, cut in enumerate(cuts):
            before = _segments_medians(points[bounds[i]:cut])
            after = _segments_medians(points[cut:bounds[i + 2]])
            found.append((abs(math.log(after / before)), cut, before, after))
        small = [f for f in found if f[0] <= math.log1p(floor)]
        if not small:
            break
        cuts.remove(min(small)[1])
    bounds = [0, *cuts, len(points)]
    spread = _spread([math.log(p.value) for p in points])
    return [Tested(series, cut, before, after,
                   _segment_test(points[bounds[i]:cut], points[cut:bounds[i + 2]], floor,
                                 spread))
            for i, (_, cut, before, after) in enumerate(found)]


# --- the whole history ----------------------------------------------------------------------

def detect(series: Sequence[Series], *, floor: float = DEFAULT_FLOOR, alpha: float = ALPHA,
           acked: frozenset[str] = frozenset(), since_s: float | None = None) -> list[Change]:
    """The confirmed changes of ``series``, Benjamini-Hochberg corrected over all of them."""
    from forge_desktop.bench import stats

    tests: list[Tested | None] = []
    for one in series:
        found = confirm(one, floor)
        tests += found or [None]  # a series examined with no candidate: one test, p = 1
    if not tests:
        return []
    qs = stats.benjamini_hochberg([t.p_value if t else 1.0 for t in tests])
    changes = []
    for t, q in zip(tests, qs, strict=True):
        if t is None or q >= alpha:
            continue
        first = t.series.points[t.index]
        if since_s is not None and first.summary.created_ts < since_s:
            continue
        was, now = t.series.points[t.index - 1].facts(), first.facts()
        changed = tuple(Attribution(k, was.get(k, "-"), now.get(k, "-"))
                        for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k))
        changes.append(Change(
            machine_id(t.series.machine), t.series.runtime, t.series.metric, t.series.setup,
            first.summary.id, first.summary.created_at, t.before, t.after,
            100 * (t.after / t.before - 1), t.p_value, q, changed, first.summary.id in acked))
    changes.sort(key=lambda c: (c.at, c.runtime, c.metric))
    return changes


def find_changes(directory: Path | None = None, *, runtime: str | None = None,
                 metric: str | None = None, since_s: float | None = None,
                 floor: float = DEFAULT_FLOOR) -> list[Change]:
    """Every change point of the results in ``directory`` (default: the store), oldest first.
    ``since_s``: only changes whose first result is at least this recent (epoch seconds); the
    series are still judged over their whole history."""
    from forge_desktop.results.index import load, results_dir, scan

    if metric is not None:
        history.check_metric(metric)
    if not 0 < floor < 10:
        from forge_desktop.errors import UsageError

        raise UsageError(f"the floor must be a fraction between 0 and 10 (0.10 is 10%), "
                         f"got {floor:g}")
    found: Scan = scan(directory if directory is not None else results_dir())
    docs: dict[str, document.Doc] = {}

    def read(s: ResultSummary) -> document.Doc:
        if s.id not in docs:
            docs[s.id] = load(found, s)
        return docs[s.id]

    series = build_series(found.results, read, runtime=runtime,
                          metrics=(metric,) if metric else tuple(history.METRICS))
    return detect(series, floor=floor, acked=state.acked(), since_s=since_s)


def ack(result_id: str, directory: Path | None = None) -> None:
    """Mark the changes starting at a result as known: ``Change.acked`` becomes True, and the
    tray does not raise them again. The id may be a unique prefix or the file name."""
    from forge_desktop.results.index import find, results_dir, scan

    found = scan(directory if directory is not None else results_dir())
    summary = find(found.results, result_id)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    state.add_ack(summary.id, now)
