"""``forge results list|show|trend|check|machines``: saved results as a history.

Registered on the ``results`` group by ``register`` (cli/app.py calls it). The work lives in
``results/index.py`` (the cached index of the files) and ``results/history.py`` (filters,
change points, regression checks, machines); the functions here ending in ``_table`` or
``_renderables`` build rich renderables and never print; only the commands do I/O. scipy is
imported by ``check`` alone, through ``bench.stats``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from forge_desktop.results.history import CheckReport, CheckRow, MachineRow, Series
    from forge_desktop.results.index import ResultSummary, Scan

MIB = 1024 * 1024
LIST_DEFAULT = 20
"""Rows in the table unless --limit says otherwise (--json lists every match)."""
TREND_DEFAULT = 20

From = Annotated[str | None, typer.Option(
    "--from", help="Read results from this folder (e.g. results copied from several "
    "machines) instead of $FORGE_HOME/benchmarks; an index, .index.sqlite, is kept there "
    "when the folder is writable.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON on stdout, nothing else.")]
Runtime = Annotated[str | None, typer.Option("-r", "--runtime", help="Only this runtime.")]


# --- shared helpers -------------------------------------------------------------------------

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


def _num(value: float, unit: str) -> str:
    return f"{value:.2f}" if unit == "MiB" and value < 10 else f"{value:.1f}"


def _open(from_dir: str | None) -> Scan:
    """Scan the store (or --from), printing one warning line per skipped file on stderr."""
    from forge_desktop.results.index import results_dir, scan

    result = scan(results_dir(from_dir))
    for skipped in result.skipped:
        sys.stderr.write(f"warning: {skipped.line()}\n")
    return result


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


def _print_fitted(renderable: Any) -> None:
    """Print a wide table whole: a pipe or a file gets as wide a line as the table needs
    (like ``forge benchmark disk``); a terminal folds to its width."""
    from rich.console import Console

    out = Console()
    if not out.is_terminal:
        needed = out.measure(renderable, options=out.options.update_width(400)).maximum
        out = Console(width=max(80, needed))
    out.print(renderable)


def machine_labels(results: Sequence[ResultSummary]) -> dict[str, str]:
    """Machine key -> its host name, with the short machine id when two machines share it."""
    from forge_desktop.results.index import machine_id

    hosts: dict[str, set[str]] = {}
    for s in results:
        hosts.setdefault(s.host, set()).add(s.machine)
    return {s.machine: s.host if len(hosts[s.host]) == 1 else
            f"{s.host} ({machine_id(s.machine)})" for s in results}


# --- list -----------------------------------------------------------------------------------

def headline(s: ResultSummary) -> str:
    """Per runtime, best first: "runc 40.3 · podman 193.9 · docker 274.5 ms"."""
    if not s.headline:
        return "-"
    ranked = sorted(s.headline.items(), key=lambda kv: kv[1])
    return " · ".join(f"{k} {_num(v, s.headline_unit)}" for k, v in ranked) \
        + f" {s.headline_unit}"


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
                     "memory MiB per running container; disk KiB one container adds. "
                     "`forge results show ID` for the detail.")
    table.caption_justify = "left"
    return table


def results_list(
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind (startup, "
                                             "memory, disk, image, compare, profile).")]
    = None,
    runtime: Runtime = None,
    since: Annotated[str | None, typer.Option("--since", help="Only results from this date "
                                              "(2026-11-01, local time) or this age (7d, "
                                              "24h).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help=f"Show the newest N (default "
                                              f"{LIST_DEFAULT} in the table, all with "
                                              "--json).")] = None,
    as_json: AsJson = False,
    from_dir: From = None,
) -> None:
    """List saved results, newest first, with each one's headline figure."""
    from forge_desktop.results.history import check_kind, check_limit, parse_since, select

    check_kind(kind)
    check_limit(limit)
    since_ts = parse_since(since) if since is not None else None
    scan = _open(from_dir)
    matched = select(scan.results, kind=kind, runtime=runtime, since_ts=since_ts)
    if as_json:
        chosen = matched if limit is None else matched[:limit]
        # One result per line, as the index keeps it (ResultSummary.row_json): still one
        # JSON array, and 10,000 results are copied text rather than encoded again.
        sys.stdout.write("[\n" + ",\n".join(s.row_json for s in chosen)
                         + ("\n]\n" if chosen else "]\n"))
        return
    if not matched:
        what = "no results match" if scan.results else "no results yet"
        print(f"{what} in {scan.directory}" + ("" if scan.results else
                                                "; run `forge benchmark startup`"))
        return
    _print_fitted(list_table(matched[:limit or LIST_DEFAULT], len(matched),
                             len(scan.results), str(scan.directory)))


# --- show -----------------------------------------------------------------------------------

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
    if kind == "startup":
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
    return generic_renderables(doc)


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
                         f"· {state} · schema {doc['schema_version']}"),
        environment_table(doc.get("environment") or {}),
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


def results_show(
    result_id: Annotated[str, typer.Argument(metavar="ID", help="A result id or a unique "
                                             "prefix of one.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result document on "
                                          "stdout.")] = False,
    from_dir: From = None,
) -> None:
    """Everything about one result: environment, parameters, statistics, every iteration."""
    from rich.console import Group
    from rich.errors import MarkupError

    from forge_desktop.errors import StoreError
    from forge_desktop.results.index import find, load

    scan = _open(from_dir)
    summary = find(scan.results, result_id)
    doc = load(scan, summary)
    if as_json:
        _print_json(doc)
        return
    try:  # a file from elsewhere may hold anything: one clear line, not an internal error
        _print_fitted(Group(*show_renderables(_printable_doc(doc))))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
            RecursionError, MarkupError) as exc:
        raise StoreError(f"cannot show {summary.file}: a field holds a value forge does not "
                         f"expect ({type(exc).__name__}); `forge results show {summary.id} "
                         "--json` prints it as saved") from None


def _printable_doc(value: Any) -> Any:
    """Every string of a document with its control characters made visible
    (index.printable): the tables below print some fields as they are."""
    from forge_desktop.results.index import printable

    if isinstance(value, str):
        return printable(value)
    if isinstance(value, list):
        return [_printable_doc(v) for v in value]
    if isinstance(value, dict):
        return {printable(k): _printable_doc(v) for k, v in value.items()}
    return value


# --- trend ----------------------------------------------------------------------------------

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
            f"[green]▼ {c.change_pct:+.1f}%[/green]") + f" vs {_num(c.reference, unit)}"
        table.add_row(_local(p.created_ts), escape(p.id), escape(p.kind), _num(p.value, unit),
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


def results_trend(
    runtime: Runtime = None,
    metric: Annotated[str, typer.Option("--metric", help="startup (ms; from startup and "
                                        "compare results), daemon_memory or "
                                        "per_container_memory (MiB; memory and compare), "
                                        "disk (image + one container, MiB; disk and "
                                        "compare).")] = "startup",
    limit: Annotated[int | None, typer.Option("--limit", help=f"Points shown per series "
                                              f"(default the newest {TREND_DEFAULT}; "
                                              "--json has all).")] = None,
    as_json: AsJson = False,
    from_dir: From = None,
) -> None:
    """A metric over time: one series per machine and runtime, change points marked."""
    from rich.console import Group
    from rich.text import Text

    from forge_desktop.results.history import METRICS, check_limit, check_metric, trend

    spec = check_metric(metric)
    check_limit(limit)
    scan = _open(from_dir)
    series = trend(scan.results, metric, runtime)
    if as_json:
        _print_json({"metric": metric, "unit": spec.unit, "title": METRICS[metric].title,
                     "method": METHOD, "series": [s.to_json() for s in series]})
        return
    if not series:
        what = f" for {runtime}" if runtime else ""
        print(f"no {metric} figures{what} in {scan.directory}")
        return
    labels = machine_labels(scan.results)
    parts: list[RenderableType] = [trend_table(s, spec.unit, metric, labels[s.machine],
                                               limit or TREND_DEFAULT) for s in series]
    parts.append(Text(METHOD + ".", style="dim"))
    _print_fitted(Group(*parts))


# --- check ----------------------------------------------------------------------------------

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
            if r.metric == "startup" else f"{r.n_baseline} base"
        table.add_row(*[escape(labels[r.machine])] * several, r.metric, escape(r.runtime),
                      _figure(r.baseline, r.unit), _figure(r.current, r.unit), ratio, ci,
                      _p(r.p_adjusted), n, _drift(r), _VERDICT.get(r.status, r.status),
                      escape(r.reason))
    table.caption = (
        f"Startup: ratio of medians (current / baseline, pooled runs); a regression needs a "
        f"slowdown beyond the {report.max_regression_pct:g}% floor with its {level} interval "
        f"wholly beyond it: the interval allows for the drift between sessions (measured "
        f"over the earlier runs of the runtime, else assumed {report.drift_pct:g}%), and p is "
        f"Benjamini-Hochberg adjusted over the runtimes checked. Memory and disk: one figure "
        f"per result against the baseline results' median, same machine only.")
    table.caption_justify = "left"
    return table


def regression_lines(report: CheckReport) -> list[str]:
    lines = []
    several = len({r.machine for r in report.rows}) > 1
    for r in report.regressions:
        where = f" ({r.host})" if several else ""
        if r.metric == "startup" and r.ci is not None:
            lines.append(f"regression: startup on {r.runtime}{where} is {r.change_pct:.1f}% "
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


def results_check(
    baseline: Annotated[str | None, typer.Option("--baseline", help="Compare with this result "
                                                 "(id or unique prefix).")] = None,
    last: Annotated[int | None, typer.Option("--last", help="Baseline: the pooled previous N "
                                             "results of the same kind and machine (default "
                                             "5).")] = None,
    max_regression: Annotated[float | None, typer.Option(
        "--max-regression", help="The floor: smallest slowdown or growth, in percent, that "
        "counts as a regression (default 10; config: check.max_regression_pct).")] = None,
    alpha: Annotated[float | None, typer.Option(
        "--alpha", help="Significance level after the Benjamini-Hochberg correction over the "
        "runtimes checked (default 0.001; config: check.alpha).")] = None,
    as_json: AsJson = False,
    from_dir: From = None,
) -> None:
    """Did the newest results regress against a baseline? Exit 3 if one did significantly."""
    from rich.console import Group
    from rich.text import Text

    from forge_desktop.config import load_config
    from forge_desktop.errors import UsageError
    from forge_desktop.results.history import (
        DEFAULT_ALPHA,
        DEFAULT_DRIFT_PCT,
        DEFAULT_LAST,
        DEFAULT_MAX_REGRESSION_PCT,
        check_alpha,
        check_last,
        check_max_regression,
        run_check,
    )
    from forge_desktop.results.index import find, load

    if max_regression is not None:
        check_max_regression(max_regression)
    if alpha is not None:
        check_alpha(alpha)
    if baseline is not None and last is not None:
        raise UsageError("give --baseline ID or --last N, not both")
    if last is not None:
        check_last(last)
    settings = load_config().check
    scan = _open(from_dir)
    base = find(scan.results, baseline) if baseline is not None else None
    report = run_check(
        scan.results, lambda s: load(scan, s), baseline=base, last=last or DEFAULT_LAST,
        max_regression_pct=max_regression if max_regression is not None
        else settings.get("max_regression_pct", DEFAULT_MAX_REGRESSION_PCT),
        alpha=alpha if alpha is not None else settings.get("alpha", DEFAULT_ALPHA),
        drift_pct=settings.get("session_drift_pct", DEFAULT_DRIFT_PCT))
    if as_json:
        _print_json(report.to_json())
    else:
        parts: list[RenderableType] = [Text(ln) for ln in check_header(report)]
        if report.rows:
            parts.append(check_table(report))
        else:
            parts.append(Text("nothing to compare yet: run the benchmark again to get a "
                              "result to compare with"))
        parts += [Text(ln, style="bold red") for ln in regression_lines(report)]
        parts += [Text(f"note: {n}", style="dim") for n in report.notes]
        _print_fitted(Group(*parts))
    if report.regressions:
        raise typer.Exit(3)


# --- machines -------------------------------------------------------------------------------

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


def results_machines(
    baseline_runtime: Annotated[str, typer.Option("--baseline-runtime", help="Runtime every "
                                                  "other one is divided by, per machine.")]
    = "docker",
    as_json: AsJson = False,
    from_dir: From = None,
) -> None:
    """One row per machine: its results and each runtime's startup relative to a baseline."""
    from forge_desktop.results.history import machines

    scan = _open(from_dir)
    rows = machines(scan.results, baseline_runtime)
    if as_json:
        _print_json([r.to_json() for r in rows])
        return
    if not rows:
        print(f"no results yet in {scan.directory}")
        return
    _print_fitted(machines_table(rows, baseline_runtime))


def register(results_app: typer.Typer) -> None:
    """Add list, show, trend, check and machines to the ``results`` group (once)."""
    have = {c.name for c in results_app.registered_commands}
    for name, fn in (("list", results_list), ("show", results_show), ("trend", results_trend),
                     ("check", results_check), ("machines", results_machines)):
        if name not in have:
            results_app.command(name)(fn)
