"""``forge results list|show|trend|check|machines``: saved results as a history.

Registered on the ``results`` group by ``register`` (cli/app.py calls it). The work lives in
``results/index.py`` (the cached index of the files) and ``results/history.py`` (filters,
change points, regression checks, machines); what the commands print is built by
``cli/results_format.py``; only the commands here do I/O. scipy is
imported by ``check`` alone, through ``bench.stats``.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import RenderableType

    from forge_desktop.results.index import Scan

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


# --- list -----------------------------------------------------------------------------------


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
    from forge_desktop.cli.results_format import list_table
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

    from forge_desktop.cli.results_format import printable_doc, show_renderables
    from forge_desktop.errors import StoreError
    from forge_desktop.results.index import find, load

    scan = _open(from_dir)
    summary = find(scan.results, result_id)
    doc = load(scan, summary)
    if as_json:
        _print_json(doc)
        return
    try:  # a file from elsewhere may hold anything: one clear line, not an internal error
        _print_fitted(Group(*show_renderables(printable_doc(doc))))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
            RecursionError, MarkupError) as exc:
        raise StoreError(f"cannot show {summary.file}: a field holds a value forge does not "
                         f"expect ({type(exc).__name__}); `forge results show {summary.id} "
                         "--json` prints it as saved") from None


# --- trend ----------------------------------------------------------------------------------


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

    from forge_desktop.cli.results_format import METHOD, machine_labels, trend_table
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
    """Did the newest results regress against a baseline (the pinned one, `forge results
    baseline set`, else the previous results)? Startup by median and p95. Exit 3 if one did
    significantly."""
    from rich.console import Group
    from rich.text import Text

    from forge_desktop.cli.results_format import check_header, check_table, regression_lines
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
    from forge_desktop.results.state import baselines

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
        drift_pct=settings.get("session_drift_pct", DEFAULT_DRIFT_PCT),
        pinned=baselines() if base is None and last is None else None)
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


def results_machines(
    baseline_runtime: Annotated[str, typer.Option("--baseline-runtime", help="Runtime every "
                                                  "other one is divided by, per machine.")]
    = "docker",
    as_json: AsJson = False,
    from_dir: From = None,
) -> None:
    """One row per machine: its results and each runtime's startup relative to a baseline."""
    from forge_desktop.cli.results_format import machines_table
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


# --- changes, ack, baseline -------------------------------------------------------------------


def results_changes(
    runtime: Runtime = None,
    metric: Annotated[str | None, typer.Option("--metric", help="Only this metric: startup, "
                                               "daemon_memory, per_container_memory or disk "
                                               "(default: all).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only changes since this date "
                                              "(2026-11-01, local time) or this age (30d, "
                                              "24h); series are judged over their whole "
                                              "history.")] = None,
    as_json: AsJson = False,
    from_dir: From = None,
) -> None:
    """Where each series shifted over the whole history, with what changed at that point."""
    from forge_desktop.cli.results_format import changes_table
    from forge_desktop.results.changes import find_changes
    from forge_desktop.results.history import check_metric, parse_since

    if metric is not None:
        check_metric(metric)
    since_s = parse_since(since) if since is not None else None
    where = _open(from_dir).directory  # the skipped files' warnings; the index is warm after
    found = find_changes(where, runtime=runtime, metric=metric, since_s=since_s)
    if as_json:
        _print_json({"changes": [c.to_json() for c in found]})
        return
    if not found:
        print(f"no change points in {where}")
        return
    _print_fitted(changes_table(found))


def results_ack(
    result_id: Annotated[str, typer.Argument(metavar="RESULT_ID", help="The first result "
                                             "after the change (id or unique prefix), as "
                                             "`forge results changes` shows it.")],
    from_dir: From = None,
) -> None:
    """Mark the changes starting at a result as known: the tray does not raise them again."""
    from forge_desktop.results.changes import ack
    from forge_desktop.results.index import find, results_dir, scan

    where = results_dir(from_dir)
    summary = find(scan(where).results, result_id)
    ack(summary.id, where)
    print(f"acknowledged the changes starting at {summary.id}")


baseline_app = typer.Typer(help="Pin the baseline `forge results check` compares with, per "
                           "machine and runtime.", no_args_is_help=True)


@baseline_app.command("set")
def baseline_set(
    result_id: Annotated[str, typer.Argument(metavar="ID", help="A result id or a unique "
                                             "prefix of one.")],
    runtime: Annotated[list[str] | None, typer.Option(
        "-r", "--runtime", help="Pin it for this runtime only (repeatable; default: every "
        "runtime the result measured).")] = None,
    from_dir: From = None,
) -> None:
    """Pin a result as the baseline of its machine, for each of its runtimes."""
    from forge_desktop.errors import UsageError
    from forge_desktop.results.index import find
    from forge_desktop.results.state import set_baselines

    scan = _open(from_dir)
    summary = find(scan.results, result_id)
    measured = list(summary.metrics)
    chosen = list(dict.fromkeys(runtime)) if runtime else measured
    missing = [r for r in chosen if r not in measured]
    if missing or not chosen:
        raise UsageError(f"{summary.id} has no figures for {', '.join(missing) or 'any runtime'}"
                         f"; it measured {', '.join(measured) or 'nothing comparable'}")
    set_baselines(summary.machine, chosen, summary.id)
    print(f"baseline of {', '.join(chosen)} on {summary.host}: {summary.id}")


@baseline_app.command("show")
def baseline_show(as_json: AsJson = False) -> None:
    """The pinned baselines."""
    from forge_desktop.results.index import machine_id, printable
    from forge_desktop.results.state import baselines

    pins = baselines()
    if as_json:
        _print_json([{"machine": machine_id(m), "machine_key": m, "runtime": r, "result_id": i}
                     for (m, r), i in sorted(pins.items())])
        return
    if not pins:
        print("no baseline pinned: `forge results check` compares with the previous results")
    for (m, r), i in sorted(pins.items()):
        print(printable(f"{machine_id(m)}  {r}  {i}"))


@baseline_app.command("clear")
def baseline_clear(runtime: Runtime = None) -> None:
    """Unpin the baselines (of one runtime with -r): check compares with the previous results."""
    from forge_desktop.results.state import clear_baselines

    print(f"unpinned {clear_baselines(runtime=runtime)} baseline(s)")


def register(results_app: typer.Typer) -> None:
    """Add list, show, trend, check, machines, changes, ack and baseline to the ``results``
    group (once)."""
    have = {c.name for c in results_app.registered_commands}
    for name, fn in (("list", results_list), ("show", results_show), ("trend", results_trend),
                     ("check", results_check), ("machines", results_machines),
                     ("changes", results_changes), ("ack", results_ack)):
        if name not in have:
            results_app.command(name)(fn)
    if not any(g.name == "baseline" for g in results_app.registered_groups):
        results_app.add_typer(baseline_app, name="baseline")
