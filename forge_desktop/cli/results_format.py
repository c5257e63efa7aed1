"""What ``forge results list|show|trend|check|machines`` print: rich renderables built from
the index's summaries and the history's reports, beside ``cli/format.py`` (what the benchmark
commands print). Every function returns a renderable or text and never prints; rich is
imported inside them, so the CLI's start-up imports none of it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from forge_desktop.results import document
from forge_desktop.results.document import MIB

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from forge_desktop.results.changes import Change
    from forge_desktop.results.history import CheckReport, CheckRow, MachineRow, Series
    from forge_desktop.results.index import ResultSummary



def escape(text: str) -> str:
    """Text shown in a table cell, not read as rich markup (a "[x]" in a name stays), with
    control characters made visible (no escape sequence from a result file reaches the
    terminal: see index.printable)."""
    from rich.markup import escape as rich_escape

    from forge_desktop.results.index import printable

    return rich_escape(printable(text))


def _local(ts: float, seconds: bool = False) -> str:
    return dt.datetime.fromtimestamp(ts).astimezone().strftime(
        "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _amount(value: float, unit: str) -> str:
    return document.figure_text(value, unit)


def machine_labels(results: Sequence[ResultSummary]) -> dict[str, str]:
    """Machine key -> its host name, with the short machine id when two machines share it."""
    from forge_desktop.results.index import machine_id

    hosts: dict[str, set[str]] = {}
    for s in results:
        hosts.setdefault(s.host, set()).add(s.machine)
    return {s.machine: s.host if len(hosts[s.host]) == 1 else
            f"{s.host} ({machine_id(s.machine)})" for s in results}


def headline(s: ResultSummary) -> str:
    """Per runtime, best first: "runc 40.3 · podman 193.9 · docker 274.5 ms"."""
    return document.headline_text(s.headline, s.headline_unit)


def status(s: ResultSummary) -> str:
    parts = ["[green]complete[/green]" if s.complete else "[red]incomplete[/red]"]
    if s.warnings:
        parts.append(f"[yellow]{s.warnings} warning{'s' if s.warnings > 1 else ''}[/yellow]")
    return ", ".join(parts)


def list_table(rows: Sequence[ResultSummary], matched: int, total: int, where: str) -> Table:
    from rich import box
    from rich.table import Table

    shown = f"{len(rows)} of {matched}" if len(rows) < matched else f"{matched}"
    extra = f" (of {total} saved)" if matched < total else ""
    table = Table(title=f"Results · {shown}{extra} · newest first · {escape(where)}",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("Date", "ID", "Kind", "Runtimes", "Headline", "Machine", "Status"):
        table.add_column(col, no_wrap=col != "Headline")
    labels = machine_labels(rows)
    for s in rows:
        table.add_row(_local(s.created_ts), escape(s.id), escape(s.kind),
                      escape(", ".join(s.runtimes)), escape(headline(s)),
                      escape(labels[s.machine]), status(s))
    table.caption = ("Headline per runtime, best first: startup/compare/image median ms; "
                     "memory MiB per running container; disk KiB one container adds; scale "
                     "the best level's lifecycles per second. `forge results show ID` for the "
                     "detail.")
    table.caption_justify = "left"
    return table


def _pairs_table(title: str, pairs: Sequence[tuple[str, str]]) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE, show_header=False)
    table.add_column("Key", style="bold", no_wrap=True)
    table.add_column("Value")
    for k, v in pairs:
        table.add_row(escape(k), escape(v))
    return table


def _value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, list) and not any(isinstance(x, list | dict) for x in v):
        return " ".join(str(x) for x in v)
    if isinstance(v, list | dict):
        return json.dumps(v)
    return str(v)


def environment_table(env: dict[str, Any]) -> Table:
    pairs = [(k, _value(v)) for k, v in env.items() if k != "runtimes"]
    if isinstance(env.get("memory_total_bytes"), int):
        pairs = [(k, f"{env[k] / 1024 ** 3:.1f} GiB ({env[k]} bytes)")
                 if k == "memory_total_bytes" else (k, v) for k, v in pairs]
    for name, info in (env.get("runtimes") or {}).items():
        if isinstance(info, dict):
            pairs.append((f"runtime {name}", ", ".join(
                f"{k} {v}" for k, v in info.items() if v is not None)))
    return _pairs_table("Environment", pairs)


def samples_table(entry: dict[str, Any]) -> Table | None:
    """Per iteration: total and phases (ms), and when the process started (engines)."""
    from rich import box
    from rich.table import Table

    samples = [s for s in entry.get("samples") or []
               if isinstance(s, dict) and "total_ms" in s]
    if not samples:
        return None
    phases = list(dict.fromkeys(p for s in samples for p in s.get("phases_ms") or {}))
    to_exec = any(s.get("to_exec_ms") is not None for s in samples)
    title = f"{entry.get('runtime')}: {len(samples)} iterations (ms)"
    table = Table(title=escape(title), title_justify="left", box=box.SIMPLE_HEAD,
                  min_width=len(title) + 2)
    table.add_column("#", justify="right")
    table.add_column("Total", justify="right")
    for p in phases:
        table.add_column(p, justify="right")
    if to_exec:
        table.add_column("to exec", justify="right")
    for i, s in enumerate(samples, 1):
        cells = [str(i), f"{s['total_ms']:.1f}"]
        cells += [f"{s['phases_ms'][p]:.1f}" if p in (s.get("phases_ms") or {}) else "-"
                  for p in phases]
        if to_exec:
            cells.append("-" if s.get("to_exec_ms") is None else f"{s['to_exec_ms']:.1f}")
        table.add_row(*cells)
    return table


def memory_samples_table(entry: dict[str, Any]) -> Table | None:
    """Density (total after each container) and samples over time, MiB."""
    from rich import box
    from rich.table import Table

    density = entry.get("density") or []
    samples = entry.get("samples") or []
    if not density and not samples:
        return None
    title = f"{entry.get('runtime')}: memory while containers run (MiB)"
    table = Table(title=escape(title), title_justify="left", box=box.SIMPLE_HEAD,
                  min_width=len(title) + 2)
    for col in ("Point", "Containers / t", "Daemon PSS", "Shims PSS", "Cgroups", "Total"):
        table.add_column(col, justify="right" if col != "Point" else "left")
    for d in density:
        table.add_row("density", str(d.get("containers")), *[
            _mib(d.get(k)) for k in ("daemon_pss_bytes", "shims_pss_bytes", "cgroups_bytes",
                                     "total_bytes")])
    for s in samples:
        table.add_row("sample", f"{s.get('t_s', 0):.2f} s", *[
            _mib(s.get(k)) for k in ("daemon_pss_bytes", "shims_pss_bytes", "cgroups_bytes",
                                     "total_bytes")])
    return table


def _mib(v: Any) -> str:
    return "-" if not isinstance(v, int | float) else f"{v / MIB:.2f}"


def statistics_renderables(doc: dict[str, Any]) -> list[RenderableType]:
    """The kind's own table, as the benchmark command printed it."""
    from rich.text import Text

    from forge_desktop.cli import format as fmt

    kind = doc["kind"]
    notes = [Text(note, style="yellow") for note in fmt.notes_for(doc)]
    if kind in document.STARTUP_SHAPED:
        return [fmt.startup_table(doc), *[Text(f"phases (median) {ln}", style="dim")
                                          for r in doc["runtimes"]
                                          if (ln := fmt.phases_line(r))], *notes]
    if kind == "compare":
        return [fmt.compare_table(doc), *[Text(ln) for ln in fmt.comparison_lines(doc)],
                *notes]
    if kind == "memory":
        return [fmt.memory_table(doc)]
    if kind == "disk":
        from forge_desktop.cli.cmd_disk import disk_table

        return [disk_table(doc)]
    if kind == "image":
        from forge_desktop.cli.cmd_image import image_table

        return [image_table(doc)]
    if kind == "fleet":
        return [Text(line) for line in fleet_lines(doc)]
    if kind == "scale":
        from forge_desktop.cli.cmd_scale import scale_table

        return [scale_table(doc), *notes]
    return generic_renderables(doc)


def fleet_lines(doc: dict[str, Any]) -> list[str]:
    """A fleet result in words: its hosts, then one line per host ratio, engine ratio and
    effect (read through results/document: the file may come from anywhere)."""
    from forge_desktop.results.document import mapping, mappings

    comp = mapping(doc.get("comparison"))
    lines = [f"host {h.get('name')}: " + (f"result {h['result_id']}" if h.get("result_id")
                                          else f"no result ({h.get('error')})")
             for h in mappings(doc.get("hosts"))]
    lines.append(f"baseline host: {comp.get('baseline_host')}")
    for r in mappings(comp.get("ratios")):
        lines.append(_ratio_line(f"{r.get('host')} vs {comp.get('baseline_host')}", r))
    for r in mappings(comp.get("engine_ratios")):
        lines.append(_ratio_line(f"on {r.get('host')}: vs {r.get('baseline_runtime')}", r))
    for e in mappings(comp.get("engine_effect")):
        holds = "holds on every host" if e.get("holds_on_every_host") else \
            "does not hold on every host"
        lines.append(f"engine effect: {e.get('runtime')} vs {e.get('baseline_runtime')} "
                     f"({e.get('metric')}) {holds}")
    for e in mappings(comp.get("host_effect")):
        same = "the same for every runtime (a host effect)" if e.get(
            "same_for_every_runtime") else "differs by runtime"
        lines.append(f"host effect: {e.get('host')} vs {e.get('baseline_host')} "
                     f"({e.get('metric')}) {same}")
    return lines


def _ratio_line(label: str, r: Mapping[str, Any]) -> str:
    ratio, ci, p = r.get("ratio"), r.get("ci95"), r.get("p_value")
    text = f"{label}: {r.get('runtime')} {r.get('metric')} "
    text += "-" if not isinstance(ratio, int | float) else f"{ratio:.2f}x"
    if isinstance(ci, list) and len(ci) == 2:
        text += f" (95% CI {ci[0]:.2f}-{ci[1]:.2f}"
        text += f", p={p:.3g})" if isinstance(p, int | float) else ")"
    return f"{text} {r.get('verdict')}"


ENVELOPE = ("schema_version", "id", "kind", "created_at", "complete", "environment",
            "parameters", "runtimes", "targets", "timing")


def generic_renderables(doc: dict[str, Any]) -> list[RenderableType]:
    """A kind this command does not know: its other top-level fields, and the runtimes'."""
    extra = [(k, _short(v)) for k, v in doc.items() if k not in ENVELOPE]
    parts: list[RenderableType] = [_pairs_table("Result", extra)] if extra else []
    if any(isinstance(e, dict) for e in doc["runtimes"]):
        parts.append(generic_table(doc))
    return parts


def _short(value: Any, width: int = 160) -> str:
    text = _value(value)
    return text if len(text) <= width else text[:width - 1] + "…"


def generic_table(doc: dict[str, Any]) -> Table:
    """Any kind: the scalar fields of every runtime entry."""
    entries = [e for e in doc["runtimes"] if isinstance(e, dict)]
    keys = list(dict.fromkeys(k for e in entries for k, v in e.items()
                              if k != "runtime" and not isinstance(v, list | dict)))
    from rich.table import Table

    table = Table(title=escape(f"{doc['kind']} per runtime"), title_justify="left")
    table.add_column("Runtime")
    for k in keys:
        table.add_column(escape(k), justify="right")
    for e in entries:
        table.add_row(escape(str(e.get("runtime"))), *[escape(_value(e.get(k))) for k in keys])
    return table


def show_renderables(doc: dict[str, Any]) -> list[RenderableType]:
    from rich.text import Text

    from forge_desktop.cli import format as fmt
    from forge_desktop.results.index import parse_created

    try:
        when = _local(parse_created(doc["created_at"]), seconds=True)
    except ValueError:
        when = doc["created_at"]
    state = "[green]complete[/green]" if doc.get("complete") else "[red]incomplete[/red]"
    parts: list[RenderableType] = [
        Text.from_markup(f"[bold]{escape(doc['id'])}[/bold] · {escape(doc['kind'])} · {when} "
                         f"· {state} · schema {doc['schema_version']}"
                         + (f" · run on host {escape(doc['host'])}"
                            if isinstance(doc.get("host"), str) else "")),
        # a fleet's environments are its hosts' (in their own results): none of its own
        *([environment_table(doc["environment"])] if doc.get("environment") else []),
        _pairs_table("Parameters", [(k, _value(v)) for k, v in
                                    (doc.get("parameters") or {}).items()]),
    ]
    try:
        parts += statistics_renderables(doc)
    except (KeyError, TypeError, ValueError, AttributeError):
        parts += generic_renderables(doc)  # an older or foreign shape: show what is there
    for entry in doc["runtimes"]:
        if not isinstance(entry, dict):
            continue
        for table in (samples_table(entry), memory_samples_table(entry)
                      if doc["kind"] == "memory" else None,
                      memory_samples_table(entry.get("memory") or {})
                      if doc["kind"] == "compare" else None):
            if table is not None:
                parts.append(table)
    if doc.get("targets"):
        parts.append(fmt.targets_table(doc["targets"]))
    if doc.get("timing"):
        parts.append(_pairs_table("Timing", [(k, _value(v)) for k, v in
                                             doc["timing"].items()]))
    try:
        lines = fmt.warnings_for(doc)
    except (KeyError, TypeError):
        lines = []
    parts += [Text(f"warning: {ln}", style="yellow") for ln in lines]
    return parts


def printable_doc(value: Any) -> Any:
    """Every string of a document with its control characters made visible
    (index.printable): the tables below print some fields as they are."""
    from forge_desktop.results.index import printable

    if isinstance(value, str):
        return printable(value)
    if isinstance(value, list):
        return [printable_doc(v) for v in value]
    if isinstance(value, dict):
        return {printable(k): printable_doc(v) for k, v in value.items()}
    return value


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float]) -> str:
    lo, hi = min(values), max(values)
    if hi == lo:
        return SPARKS[3] * len(values)
    return "".join(SPARKS[min(7, int((v - lo) / (hi - lo) * 8))] for v in values)


def series_title(s: Series, unit: str, metric: str, label: str) -> str:
    setup = f" ({s.setup})" if s.setup else ""
    changes = f" · {len(s.changes)} change point{'s' if len(s.changes) != 1 else ''}"
    n = len(s.points)
    return f"{metric} ({unit}) · {s.runtime}{setup} · {label} · {n} result{'s' * (n != 1)}" \
        f"{changes}"


def trend_table(s: Series, unit: str, metric: str, label: str, limit: int) -> Table:
    from rich import box
    from rich.table import Table

    changed = {c.index: c for c in s.changes}
    start = max(0, len(s.points) - limit)
    shown = s.points[start:]
    table = Table(title=escape(series_title(s, unit, metric, label)), title_justify="left",
                  box=box.SIMPLE_HEAD)
    for col in ("Date", "ID", "Kind", unit, "Change point"):
        table.add_column(col, justify="right" if col == unit else "left", no_wrap=True)
    for i, p in enumerate(shown, start):
        c = changed.get(i)
        mark = "" if c is None else (
            f"[red]▲ {c.change_pct:+.1f}%[/red]" if c.change_pct > 0 else
            f"[green]▼ {c.change_pct:+.1f}%[/green]") + f" vs {_amount(c.reference, unit)}"
        table.add_row(_local(p.created_ts), escape(p.id), escape(p.kind), _amount(p.value, unit),
                      mark)
    older = [c for c in s.changes if c.index < start]
    caption = f"{sparkline([p.value for p in shown])}  (the {len(shown)} shown, oldest left)"
    if start:
        caption += f"; {start} older results not shown (--limit)"
    if older:
        caption += "; earlier change points: " + ", ".join(
            f"{_local(s.points[c.index].created_ts)} {c.change_pct:+.1f}%" for c in older)
    table.caption = caption
    table.caption_justify = "left"
    return table


METHOD = ("change point: a value more than 3 scaled MADs and more than 10% away from the "
          "median of the previous 5 points (never reaching back across the last change "
          "point; at least 3 points needed)")


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} ms" if unit == "ms" else f"{value / MIB:.2f} MiB"


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


_VERDICT = {"regression": "[red]regression[/red]", "improvement": "[green]improvement[/green]",
            "ok": "ok", "no baseline": "[dim]no baseline[/dim]",
            "not comparable": "[yellow]not comparable[/yellow]"}


def check_header(report: CheckReport) -> list[str]:
    lines = []
    for c in report.comparisons:
        ids = sorted({s.id for v in c.baselines.values() for s in v})
        if c.explicit:
            base = f"the given {ids[0]}" if ids else "the given baseline"
        else:
            n = max((len(v) for v in c.baselines.values()), default=0)
            base = (f"the previous {c.current.kind} result" if n == 1
                    else f"the previous {n} {c.current.kind} results (pooled)" if n
                    else "nothing (no earlier result)")
        if c.pinned:
            base += "; " + ", ".join(f"{n} vs its pinned baseline "
                                     f"{c.baselines[n][0].id}" for n in c.pinned)
        lines.append(f"{c.group} on {c.current.host}: {c.current.id} ({c.current.kind}, "
                     f"{_local(c.current.created_ts)}) vs {base}")
    return lines


def _drift(r: CheckRow) -> str:
    if r.drift_pct is None:
        return "-"
    return f"{r.drift_pct:.1f}% ({r.drift_sessions} results)" if r.drift_sessions \
        else f"{r.drift_pct:.0f}% (assumed)"


def check_table(report: CheckReport) -> Table:
    from rich import box
    from rich.table import Table

    hosts = list(dict.fromkeys(r.host for r in report.rows))
    several = len({r.machine for r in report.rows}) > 1
    on = "" if several else f" on {escape(hosts[0])}" if hosts else ""
    level = f"{100 * (1 - report.alpha):g}%"
    table = Table(title=f"Regression check{on} · floor {report.max_regression_pct:g}% · "
                        f"alpha {report.alpha:g}", title_justify="left", box=box.SIMPLE_HEAD)
    cols = ("Machine",) * several + ("Metric", "Runtime", "Baseline", "Current", "Ratio",
                                     f"{level} CI", "adj. p", "n", "Drift", "Verdict", "Why")
    for col in cols:
        table.add_column(col, justify="left" if col in ("Machine", "Metric", "Runtime",
                                                        "Verdict", "Why") else "right",
                         no_wrap=True)
    labels = {r.machine: r.host if len({x.machine for x in report.rows if x.host == r.host})
              == 1 else f"{r.host} ({r.machine})" for r in report.rows}
    for r in report.rows:
        ci = "-" if r.ci is None else f"{r.ci[0]:.2f}x–{r.ci[1]:.2f}x"
        ratio = "-" if r.change_pct is None else f"{1 + r.change_pct / 100:.2f}x"
        n = "-" if not r.n_baseline else f"{r.n_current} vs {r.n_baseline}" \
            if r.metric.startswith("startup") else f"{r.n_baseline} base"
        table.add_row(*[escape(labels[r.machine])] * several, r.metric, escape(r.runtime),
                      _figure(r.baseline, r.unit), _figure(r.current, r.unit), ratio, ci,
                      _p(r.p_adjusted), n, _drift(r), _VERDICT.get(r.status, r.status),
                      escape(r.reason))
    table.caption = (
        f"Startup: ratio of medians (current / baseline, pooled runs); a regression needs a "
        f"slowdown beyond the {report.max_regression_pct:g}% floor with its {level} interval "
        f"wholly beyond it: the interval allows for the drift between sessions (measured "
        f"over the earlier runs of the runtime, else assumed {report.drift_pct:g}%), and p is "
        f"Benjamini-Hochberg adjusted over the runtimes checked. startup_p95: the same test "
        f"on the p95 (bootstrap of the p95 ratio, drift of earlier p95s; 10 runs a side or "
        f"more), corrected with the medians. Memory and disk: one figure "
        f"per result against the baseline results' median, same machine only.")
    table.caption_justify = "left"
    return table


def regression_lines(report: CheckReport) -> list[str]:
    lines = []
    several = len({r.machine for r in report.rows}) > 1
    for r in report.regressions:
        where = f" ({r.host})" if several else ""
        if r.metric.startswith("startup") and r.ci is not None:
            what = "startup p95" if r.metric == "startup_p95" else "startup"
            lines.append(f"regression: {what} on {r.runtime}{where} is {r.change_pct:.1f}% "
                         "slower "
                         f"({_figure(r.current, r.unit)} vs {_figure(r.baseline, r.unit)}; "
                         f"{100 * (1 - report.alpha):g}% CI {r.ci[0]:.2f}x-{r.ci[1]:.2f}x; "
                         f"adjusted p{'' if _p(r.p_adjusted).startswith('<') else '='}"
                         f"{_p(r.p_adjusted)})")
        else:
            lines.append(f"regression: {r.metric} on {r.runtime}{where} is "
                         f"{r.change_pct:.1f}% larger ({_figure(r.current, r.unit)} vs "
                         f"{_figure(r.baseline, r.unit)})")
    return lines


def machines_table(rows: Sequence[MachineRow], baseline_runtime: str) -> Table:
    from rich import box
    from rich.table import Table

    from forge_desktop.results.index import machine_id

    others = sorted({k for r in rows for k in r.ratios})
    table = Table(title=f"Machines · startup relative to {escape(baseline_runtime)} on the "
                        "same machine", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("Machine", "Host", "CPU", "Memory", "Results", "Last result"):
        table.add_column(col, no_wrap=True, justify="right" if col in ("Memory", "Results")
                         else "left")
    for name in others:
        table.add_column(escape(f"{name}/{baseline_runtime}"), justify="right", no_wrap=True)
    for r in rows:
        env = r.environment
        mem = env.get("memory_total_bytes")
        cpu = f"{env.get('cpu_model') or '?'} × {env.get('cpu_count') or '?'}"
        cells = [machine_id(r.machine), escape(r.host), escape(cpu),
                 f"{mem / 1024 ** 3:.1f} GiB" if isinstance(mem, int | float) else "-",
                 str(r.results), _local(r.last_ts)]
        for name in others:
            cell = r.ratios.get(name)
            cells.append("-" if cell is None else f"{cell[0]:.2f}x (n={cell[1]})")
        table.add_row(*cells)
    # escape: the runtime name is the user's argument (markup, control characters)
    table.caption = (f"Ratio: the runtime's median startup / {escape(baseline_runtime)}'s in "
                     "the same result, median over that machine's results (0.50x: half the "
                     "time). Raw times are not compared across machines. n: results with both "
                     "runtimes.")
    table.caption_justify = "left"
    return table


def changes_table(changes: Sequence[Change]) -> Table:
    from rich import box
    from rich.table import Table

    from forge_desktop.results.index import parse_created

    table = Table(title="Change points", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("Since", "Machine", "Runtime", "Metric", "Setup", "Before", "After", "Change",
                "q", "What changed", "First result"):
        table.add_column(col, justify="right" if col in ("Before", "After", "Change", "q")
                         else "left", no_wrap=col not in ("Setup", "What changed"))
    for c in changes:
        unit = "ms" if c.metric == "startup" else "MiB"
        cause = "; ".join(f"{a.field} {a.before} → {a.after}" for a in c.attribution) or "-"
        first = escape(c.result_id) + (" [dim](acked)[/dim]" if c.acked else "")
        table.add_row(_local(parse_created(c.at)), c.machine, escape(c.runtime), c.metric,
                      escape(c.setup),
                      f"{document.figure_text(c.before, unit)} {unit}",
                      f"{document.figure_text(c.after, unit)} {unit}",
                      f"{c.change_pct:+.0f}%", _p(c.q_value), escape(cause), first)
    table.caption = ("Each series (machine, runtime, metric, setup) is partitioned on its "
                     "results' log figures; a boundary counts when the raw samples of its two "
                     "segments differ (Mann-Whitney) and the results' figures differ beyond "
                     "the 10% floor (t test), q Benjamini-Hochberg adjusted over every series "
                     "below 0.001. Before/after: segment medians. What changed: fingerprint "
                     "fields that differ between the last result before and the first after.")
    table.caption_justify = "left"
    return table
