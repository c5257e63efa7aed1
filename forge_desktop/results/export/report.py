"""The report model: one result as sections of facts, tables and notes, several as trends.

Markdown, HTML and the window's detail view render this one model (``Report``), so all three
say the same thing in the same words. Every figure is read through ``results.document`` (the
readers keep their short local names here): a field of the wrong type reads as missing
instead of crashing the export.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from forge_desktop.results.document import KIB, MIB, STARTUP_KINDS, STARTUP_SHAPED
from forge_desktop.results.document import entries as _entries
from forge_desktop.results.document import items as _list
from forge_desktop.results.document import mapping as _dict
from forge_desktop.results.document import mappings as _dicts
from forge_desktop.results.document import number as _num
from forge_desktop.results.document import sample_totals as _totals
from forge_desktop.results.document import text as _text
from forge_desktop.results.schema import parse_iso

# ------------------------------------------------------------------ reading a result


def entry_label(entry: dict[str, Any]) -> str:
    name = _text(entry.get("runtime")) or "?"
    return f"{name} (cli)" if entry.get("via") == "cli" else name


def _time(doc: dict[str, Any]) -> dt.datetime | None:
    try:
        t = parse_iso(_text(doc.get("created_at")))
    except ValueError:
        return None
    return t.astimezone(dt.timezone.utc) if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def _date(doc: dict[str, Any]) -> str:
    t = _time(doc)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if t else _text(doc.get("created_at"))


# ------------------------------------------------------------------ the report model


@dataclass(frozen=True)
class Table:
    """Raw text cells (escaping is the renderer's job); ``numeric``: right-aligned columns."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: frozenset[int] = frozenset()
    caption: str = ""

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.title!r}: a row of {len(row)} cells for "
                                 f"{len(self.columns)} columns")


@dataclass(frozen=True)
class Section:
    """One exported result."""

    doc: dict[str, Any] = field(compare=False)
    anchor: str
    heading: str
    facts: tuple[tuple[str, str], ...]
    tables: tuple[Table, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Trend:
    """One metric of several results of the same kind, oldest first."""

    kind: str
    title: str
    axis: str
    unit: str
    labels: tuple[str, ...]
    points: tuple[tuple[str, dt.datetime | None, str, dict[str, float]], ...]
    """(result id, time, date text, value per label)."""

    def table(self) -> Table:
        rows = tuple((date, rid, *[_fmt(values.get(label)) for label in self.labels])
                     for rid, _t, date, values in self.points)
        return Table(self.title, ("Date", "Result", *[f"{lb} ({self.unit})"
                                                      for lb in self.labels]),
                     rows, frozenset(range(2, 2 + len(self.labels))))


@dataclass(frozen=True)
class Report:
    sections: tuple[Section, ...]
    trends: tuple[Trend, ...]


KIND_TITLES = {"startup": "Container startup", "canary": "Canary startup round",
               "compare": "Runtime comparison", "memory": "Memory", "disk": "Disk use",
               "image": "Cold image load or pull", "profile": "Profile", "fleet": "Fleet"}


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / MIB:,.1f}"


def _unit(text: str, unit: str) -> str:
    return text if text == "-" else f"{text} {unit}"


def _facts(doc: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    env = _dict(doc.get("environment"))
    machine = [_text(env.get(k)) for k in ("host", "os") if env.get(k)]
    if env.get("kernel"):
        machine.append(f"kernel {_text(env.get('kernel'))}")
    if env.get("arch"):
        machine.append(_text(env.get("arch")))
    if env.get("cpu_model"):
        cpus = _num(env.get("cpu_count"))
        machine.append(_text(env.get("cpu_model")) + (f" ({cpus:g} CPUs)" if cpus else ""))
    mem = _num(env.get("memory_total_bytes"))
    if mem:
        machine.append(f"{mem / 1024**3:.1f} GiB RAM")
    if env.get("cgroup_version"):
        machine.append(f"cgroup {_text(env.get('cgroup_version'))}")
    engines = []
    for name, info in _dict(env.get("runtimes")).items():
        info = _dict(info)
        driver = f" ({_text(info.get('storage_driver'))})" if info.get("storage_driver") else ""
        engines.append(f"{name} {_text(info.get('version'))}".strip() + driver)
    facts = [("Kind", _text(doc.get("kind"))), ("Result", _text(doc.get("id"))),
             ("Date", _date(doc)), ("Machine", " · ".join(machine) or "-"),
             ("Runtimes", ", ".join(engines) or "-"),
             ("Parameters", _params(_dict(doc.get("parameters"))) or "-"),
             ("Complete", "yes" if doc.get("complete") is not False
              else "no: some runtimes failed (see the notes)")]
    wall = _num(_dict(doc.get("timing")).get("wall_s"))
    if wall is not None:
        facts.append(("Wall time", f"{wall:.1f} s"))
    return tuple(facts)


def _params(params: dict[str, Any]) -> str:
    parts = []
    for key, value in params.items():
        if value is None or value == []:
            continue
        if isinstance(value, list):
            text = " ".join(_text(v) for v in value)
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, dict):
            text = json.dumps(value, sort_keys=True)
        else:
            text = _text(value)
        parts.append(f"{key}={text}")
    return ", ".join(parts)


def _stats_table(doc: dict[str, Any], title: str) -> Table:
    rows = []
    for e in _entries(doc):
        s = _dict(e.get("stats"))
        median = _num(s.get("median_ms"))
        name, version = entry_label(e), _text(e.get("version"))
        if median is None:
            status = "n/a" if e.get("not_applicable") else "failed"
            rows.append((name, version, status, "-", "-", "-", str(len(_totals(e)))))
            continue
        mean, sd = _num(s.get("mean_ms")), _num(s.get("stdev_ms"))
        ci = _list(s.get("ci95_ms"))
        lo, hi = (_num(ci[0]), _num(ci[1])) if len(ci) == 2 else (None, None)
        n = _num(s.get("n"))
        rows.append((name, version, _fmt(median),
                     f"{_fmt(mean)} ± {_fmt(sd)}" if mean is not None else "-",
                     _fmt(_num(s.get("p95_ms"))),
                     f"{_fmt(lo)}–{_fmt(hi)}" if lo is not None and hi is not None else "-",
                     f"{n:g}" if n is not None else str(len(_totals(e)))))
    return Table(title, ("Runtime", "Version", "Median (ms)", "Mean ± sd (ms)", "p95 (ms)",
                         "95% CI (ms)", "n"), tuple(rows), frozenset(range(2, 7)),
                 "95% CI: bootstrap confidence interval of the median. n: measured "
                 "iterations.")


def _phases_table(doc: dict[str, Any]) -> Table | None:
    entries = _entries(doc)
    phases: dict[str, None] = {}
    for e in entries:
        phases.update(dict.fromkeys(str(k) for k in _dict(e.get("phase_medians_ms"))))
    to_exec = any(_dict(e.get("to_exec_stats")) for e in entries)
    if len(phases) <= 1 and not to_exec:
        return None
    rows = []
    for e in entries:
        medians = _dict(e.get("phase_medians_ms"))
        row = [entry_label(e), *[_fmt(_num(medians.get(p))) for p in phases]]
        if to_exec:
            row.append(_fmt(_num(_dict(e.get("to_exec_stats")).get("median_ms"))))
        rows.append(tuple(row))
    columns = ("Runtime", *[f"{p} (ms)" for p in phases], *(["to exec (ms)"] if to_exec else []))
    return Table("Phase medians (ms)", columns, tuple(rows), frozenset(range(1, len(columns))),
                 "to exec: from the create request until the container's process started."
                 if to_exec else "")


_METRIC_TITLES = {"startup": "Startup", "daemon_memory": "Daemon memory",
                  "per_container_memory": "Memory per container", "disk": "Disk"}


def _comparison_table(doc: dict[str, Any]) -> Table | None:
    comp = _dict(doc.get("comparison"))
    ratios = _dicts(comp.get("ratios"))
    if not ratios:
        return None
    base = _text(comp.get("baseline"))
    rows = []
    for r in ratios:
        metric = _text(r.get("metric"))
        if metric == "startup":
            value, baseline = (_unit(_fmt(_num(r.get(k))), "ms")
                               for k in ("median_ms", "baseline_median_ms"))
        else:
            value, baseline = (_unit(_mib(_num(r.get(k))), "MiB")
                               for k in ("value_bytes", "baseline_bytes"))
        ratio = _num(r.get("ratio"))
        ci = _list(r.get("ci95"))
        lo, hi = (_num(ci[0]), _num(ci[1])) if len(ci) == 2 else (None, None)
        p = _num(r.get("p_value"))
        rows.append((_text(r.get("runtime")), _METRIC_TITLES.get(metric, metric), value,
                     baseline, "-" if ratio is None else f"{ratio:.2f}×",
                     f"{lo:.2f}–{hi:.2f}×" if lo is not None and hi is not None else "-",
                     "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}"),
                     _text(r.get("verdict"))))
    return Table(f"Against the baseline, {base}",
                 ("Runtime", "Metric", "Value", "Baseline", "Ratio", "95% CI", "p", "Verdict"),
                 tuple(rows), frozenset({2, 3, 4, 5, 6}),
                 "Ratio: the baseline's figure divided by the runtime's; above 1 the runtime "
                 "is faster, leaner or smaller. Startup: bootstrap CI of the ratio of medians "
                 "and a Mann-Whitney p-value.")


def _compare_figures_table(doc: dict[str, Any]) -> Table:
    rows = []
    for e in _entries(doc):
        mem, disk = _dict(e.get("memory")), _dict(e.get("disk"))
        image, per = _num(disk.get("benchmark_image_bytes")), _num(disk.get("per_container_bytes"))
        rows.append((entry_label(e), _mib(_num(mem.get("daemon_pss_bytes"))),
                     _mib(_num(mem.get("per_container_bytes"))),
                     _mib(image + per) if image is not None and per is not None else "-"))
    return Table("Memory and disk (MiB)", ("Runtime", "Daemon PSS (MiB)",
                                           "Per container (MiB)", "Image + container (MiB)"),
                 tuple(rows), frozenset({1, 2, 3}),
                 "MiB = 1024×1024 bytes. PSS: shared pages split among their users.")


def _memory_table(doc: dict[str, Any]) -> Table:
    rows = []
    for e in _entries(doc):
        parts = _dict(e.get("per_container_parts"))
        rows.append((entry_label(e), _text(e.get("version")), _mib(_num(e.get("daemon_rss_bytes"))),
                     _mib(_num(e.get("daemon_pss_bytes"))),
                     _mib(_num(e.get("per_container_bytes"))),
                     _mib(_num(parts.get("outside_pss_bytes"))),
                     _mib(_num(parts.get("inside_cgroup_bytes"))),
                     _mib(_num(e.get("density_slope_bytes")))))
    return Table("Memory (MiB)", ("Runtime", "Version", "Daemon RSS (MiB)", "Daemon PSS (MiB)",
                                  "Per container (MiB)", "Outside (MiB)", "Inside (MiB)",
                                  "Added per extra (MiB)"), tuple(rows),
                 frozenset(range(2, 8)),
                 "PSS: shared pages split among their users. Outside: containerd-shim or "
                 "conmon; inside: the container's cgroup. Added per extra: slope of the "
                 "density line.")


def _disk_table(doc: dict[str, Any]) -> Table:
    rows = []
    for e in _entries(doc):
        per = _num(e.get("per_container_bytes"))
        rows.append((entry_label(e), _text(e.get("version")),
                     *[_mib(_num(e.get(k))) for k in ("images_bytes", "containers_bytes",
                                                      "volumes_bytes", "build_cache_bytes",
                                                      "reclaimable_bytes", "store_fs_bytes")],
                     "-" if per is None else f"{per / KIB:,.1f}",
                     _text(e.get("store_path")) or "-"))
    return Table("Disk use (MiB; per container KiB)",
                 ("Runtime", "Version", "Images (MiB)", "Containers (MiB)", "Volumes (MiB)",
                  "Build cache (MiB)", "Reclaimable (MiB)", "On disk (MiB)",
                  "Per container (KiB)", "Store path"), tuple(rows), frozenset(range(2, 9)),
                 "On disk: the store directory as the filesystem counts it (du -sx). Per "
                 "container: what one created container adds on disk.")


def _image_table(doc: dict[str, Any]) -> Table:
    rows = []
    for e in _entries(doc):
        nbytes = _num(e.get("transfer_bytes"))
        median = _num(_dict(e.get("stats")).get("median_ms"))
        rate = f"{nbytes / 1e3 / median:,.1f}" if nbytes and median and median > 0 else "-"
        rows.append((entry_label(e), _text(e.get("source")) or "-",
                     "-" if nbytes is None else f"{nbytes / 1e6:,.2f}", rate))
    return Table("Transfer", ("Runtime", "Source", "Transfer (MB)", "Rate (MB/s)"),
                 tuple(rows), frozenset({2, 3}), "MB = 10^6 bytes; rate at the median time.")


def _targets_table(doc: dict[str, Any]) -> Table | None:
    targets = _dicts(doc.get("targets"))
    if not targets:
        return None
    rows = []
    for t in targets:
        met = t.get("met")
        rows.append((_text(t.get("runtime")), _text(t.get("metric")),
                     f"< {_fmt(_num(t.get('limit')))}", _fmt(_num(t.get("value"))),
                     "unknown" if met is None else ("met" if met else "missed")))
    return Table("Performance targets", ("Runtime", "Metric", "Target", "Measured", "Status"),
                 tuple(rows), frozenset({2, 3}))


def _notes(doc: dict[str, Any]) -> tuple[str, ...]:
    notes = [f"note: {_text(w)}" for w in _list(doc.get("like_for_like_warnings"))]
    for e in _entries(doc):
        name = entry_label(e)
        if e.get("not_applicable"):
            notes.append(f"{name}: not applicable: {_text(e.get('not_applicable'))}")
        notes += [f"{name}: warning: {_text(w)}" for w in _list(e.get("warnings"))]
        errors = _list(e.get("errors"))
        notes += [f"{name}: error: {_text(err)}" for err in errors[:5]]
        if len(errors) > 5:
            notes.append(f"{name}: and {len(errors) - 5} more errors")
    return tuple(notes)


def _figure(metric: str, value: float | None) -> str:
    return _unit(_fmt(value), "ms") if metric == "startup" else _unit(_mib(value), "MiB")


def _ratio_cells(r: dict[str, Any]) -> tuple[str, str, str, str]:
    ratio, ci, p = _num(r.get("ratio")), _list(r.get("ci95")), _num(r.get("p_value"))
    lo, hi = (_num(ci[0]), _num(ci[1])) if len(ci) == 2 else (None, None)
    return ("-" if ratio is None else f"{ratio:.2f}×",
            f"{lo:.2f}–{hi:.2f}×" if lo is not None and hi is not None else "-",
            "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}"),
            _text(r.get("verdict")))


def _fleet_tables(doc: dict[str, Any]) -> list[Table]:
    """A fleet (issue 14): hosts x runtimes, each host against the baseline host, the
    runtimes within each host, and whether a difference is the host's or the engine's."""
    comp = _dict(doc.get("comparison"))
    base_host, base_rt = _text(comp.get("baseline_host")), _text(comp.get("baseline_runtime"))
    ratios, engines = _dicts(comp.get("ratios")), _dicts(comp.get("engine_ratios"))
    hosts = _dicts(doc.get("hosts"))
    runtimes = sorted({_text(r) for h in hosts for r in _list(h.get("runtimes"))})
    first = _text(ratios[0].get("metric")) if ratios else "startup"
    grid: dict[tuple[str, str], float | None] = {}
    for r in ratios:
        if _text(r.get("metric")) == first:
            grid[(_text(r.get("host")), _text(r.get("runtime")))] = _num(r.get("value"))
            grid[(base_host, _text(r.get("runtime")))] = _num(r.get("baseline_value"))
    overview = Table(
        f"Hosts × runtimes ({_METRIC_TITLES.get(first, first)})",
        ("Host", "Result", *runtimes),
        tuple((_text(h.get("name")) + (" (baseline)" if _text(h.get("name")) == base_host
                                       else ""),
               _text(h.get("result_id")) or f"failed: {_text(h.get('error'))}",
               *(_figure(first, grid.get((_text(h.get("name")), rt))) for rt in runtimes))
              for h in hosts),
        frozenset(range(2, 2 + len(runtimes))),
        "Medians as each host measured them (forge ran there); compared only in this result.")
    against = Table(
        f"Against the baseline host, {base_host}",
        ("Host", "Runtime", "Metric", "Value", "Baseline", "Ratio", "95% CI", "p", "Verdict"),
        tuple((_text(r.get("host")), _text(r.get("runtime")),
               _METRIC_TITLES.get(_text(r.get("metric")), _text(r.get("metric"))),
               _figure(_text(r.get("metric")), _num(r.get("value"))),
               _figure(_text(r.get("metric")), _num(r.get("baseline_value"))),
               *_ratio_cells(r)) for r in ratios),
        frozenset({3, 4, 5, 6, 7}),
        "Ratio: the baseline host's figure divided by the host's; above 1 the host is faster.")
    within = Table(
        f"Runtimes within each host, against {base_rt}",
        ("Host", "Runtime", "Metric", "Ratio", "95% CI", "p", "Verdict"),
        tuple((_text(r.get("host")), _text(r.get("runtime")),
               _METRIC_TITLES.get(_text(r.get("metric")), _text(r.get("metric"))),
               *_ratio_cells(r)) for r in engines),
        frozenset({3, 4, 5}))
    effects = Table(
        "Host effect or engine effect",
        ("Effect", "Of", "Metric", "Verdicts", "Holds"),
        tuple([("engine", f"{_text(e.get('runtime'))} vs {_text(e.get('baseline_runtime'))}",
                _text(e.get("metric")),
                ", ".join(f"{k}: {_text(v)}" for k, v in _dict(e.get("verdicts")).items()),
                "on every host" if e.get("holds_on_every_host") is True else "no")
               for e in _dicts(comp.get("engine_effect"))]
              + [("host", f"{_text(e.get('host'))} vs {_text(e.get('baseline_host'))}",
                  _text(e.get("metric")),
                  ", ".join(f"{k}: {_text(v)}" for k, v in _dict(e.get("verdicts")).items()),
                  "for every runtime" if e.get("same_for_every_runtime") is True else "no")
                 for e in _dicts(comp.get("host_effect"))]),
        caption="An engine effect holds when a runtime gets the same verdict on every host; a "
                "host effect when a host gets the same verdict for every runtime.")
    return [overview, against, within, effects]


def section(doc: dict[str, Any], anchor: str = "") -> Section:
    kind = _text(doc.get("kind"))
    tables: list[Table | None] = []
    if kind == "memory":
        tables.append(_memory_table(doc))
    elif kind == "disk":
        tables.append(_disk_table(doc))
    elif kind == "image":
        source = _text(_dict(doc.get("parameters")).get("source")) or "load"
        tables += [_stats_table(doc, f"Cold image {source} time (ms)"), _image_table(doc)]
    elif kind == "fleet":
        tables += _fleet_tables(doc)
    elif kind == "compare":
        tables += [_stats_table(doc, "Startup time (ms)"), _comparison_table(doc),
                   _compare_figures_table(doc), _phases_table(doc)]
    elif kind in STARTUP_SHAPED or any(_dict(e.get("stats")) for e in _entries(doc)):
        tables += [_stats_table(doc, "Startup time (ms)" if kind in STARTUP_SHAPED
                                else "Time (ms)"),
                   _phases_table(doc)]
    else:  # a kind newer than this module, without timings: at least who ran and how
        tables.append(Table("Runtimes", ("Runtime", "Version"),
                            tuple((entry_label(e), _text(e.get("version")))
                                  for e in _entries(doc))))
    tables.append(_targets_table(doc))
    heading = f"{KIND_TITLES.get(kind, kind.capitalize() or 'Result')} · {_date(doc)}"
    return Section(doc, anchor, heading, _facts(doc), tuple(t for t in tables if t),
                   _notes(doc))


_TREND_METRICS: dict[str, tuple[str, str, str, Callable[[dict[str, Any]], float | None]]] = {
    "memory": ("Memory per container over time", "per container", "MiB",
               lambda e: None if (v := _num(e.get("per_container_bytes"))) is None
               else v / MIB),
    "disk": ("On disk over time", "on disk", "MiB",
             lambda e: None if (v := _num(e.get("store_fs_bytes"))) is None else v / MIB),
}
_MEDIAN_TREND = ("", "", "ms",
                 lambda e: _num(_dict(e.get("stats")).get("median_ms")))


def trends(docs: Sequence[dict[str, Any]]) -> tuple[Trend, ...]:
    """For every kind exported more than once, the headline figure per runtime over time."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(_text(doc.get("kind")), []).append(doc)
    out = []
    for kind, group in by_kind.items():
        if len(group) < 2:
            continue
        title, axis, unit, value_of = _TREND_METRICS.get(kind, _MEDIAN_TREND)
        if kind not in _TREND_METRICS:
            what = "startup" if kind in STARTUP_KINDS else "time"
            title = f"{KIND_TITLES.get(kind, kind.capitalize())}: median {what} over time"
            axis = f"median {what}"
        hosts = {_text(_dict(d.get("environment")).get("host")) for d in group}
        oldest = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
        group = sorted(group, key=lambda d: (_time(d) or oldest, _text(d.get("id"))))
        labels: dict[str, None] = {}
        points = []
        for doc in group:
            host = _text(_dict(doc.get("environment")).get("host"))
            values: dict[str, float] = {}
            for e in _entries(doc):
                label = entry_label(e)
                if kind == "image":  # a load and a pull are different measurements
                    label += f" ({_text(e.get('source')) or 'load'})"
                if len(hosts) > 1:  # the same runtime on two machines: two lines
                    label = f"{host}: {label}"
                value = value_of(e)
                if value is not None:
                    values[label] = value
                    labels[label] = None
            points.append((_text(doc.get("id")), _time(doc), _date(doc), values))
        if labels:
            out.append(Trend(kind, title, axis, unit, tuple(labels), tuple(points)))
    return tuple(out)


def build_report(docs: Sequence[dict[str, Any]]) -> Report:
    anchors: set[str] = set()
    sections = []
    for i, doc in enumerate(docs):
        anchor = "r-" + re.sub(r"[^A-Za-z0-9_-]", "-", _text(doc.get("id")))[:80]
        if anchor in anchors:
            anchor += f"-{i}"
        anchors.add(anchor)
        sections.append(section(doc, anchor))
    return Report(tuple(sections), trends(docs))
