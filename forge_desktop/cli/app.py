"""Typer commands. Heavy modules (docker SDK, scipy, Qt) are imported inside commands only."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from forge_desktop import __version__
from forge_desktop.actions import ACTIONS
from forge_desktop.cli.options import Wait
from forge_desktop.cli.params import registry_options

app = typer.Typer(help="Measure container runtimes on your own machine.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)
benchmark_app = typer.Typer(help="Run a benchmark and save its result.", no_args_is_help=True)
image_app = typer.Typer(help="The benchmark image.", no_args_is_help=True)
results_app = typer.Typer(help="Saved results: history, detail, trends, regressions, "
                          "exports.", no_args_is_help=True)
app.add_typer(benchmark_app, name="benchmark")
app.add_typer(image_app, name="image")
app.add_typer(results_app, name="results")


def _version(value: bool) -> None:
    if value:
        print(f"forge {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False
         ) -> None:
    """Forge Desktop: container runtime benchmarks with statistics you can trust."""


def _err_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, width=None if sys.stderr.isatty() else 120)


def _out_console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 120)


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


@app.command("runtimes")
def runtimes_cmd(as_json: Annotated[bool, typer.Option("--json", help="JSON list on stdout.")]
                 = False) -> None:
    """List every known runtime, whether it is available, and why not."""
    from forge_desktop.config import load_config
    from forge_desktop.runtimes.registry import known_runtimes

    infos = []
    for r in known_runtimes(load_config()):
        try:
            infos.append(r.info().to_dict())
        finally:
            r.close()
    if as_json:
        _print_json(infos)
        return
    from forge_desktop.cli.format import runtimes_table

    _out_console().print(runtimes_table(infos))


@image_app.command("prepare")
def image_prepare(
    image: Annotated[str | None, typer.Option("--image", help="Image to prepare "
                                              "(default: config benchmark.image).")] = None,
    runtime: Annotated[list[str] | None, typer.Option("-r", "--runtime",
                                                      help="Only these runtimes.")] = None,
) -> None:
    """Make sure the benchmark image is on every available runtime."""
    from forge_desktop.config import load_config
    from forge_desktop.errors import ImageError
    from forge_desktop.image import prepare_each
    from forge_desktop.runtimes.base import new_run_context
    from forge_desktop.runtimes.registry import select_runtimes

    config = load_config()
    selected, _ = select_runtimes(config, runtime, kinds=("engine", "oci"))
    err = _err_console()
    ctx = new_run_context()
    try:
        ref, failed = prepare_each(selected, ctx, image or config.image,
                                   log=lambda m: err.print(f"[dim]{m}[/dim]"))
    finally:
        for r in selected:
            r.cleanup(ctx.run_id)
            r.close()
    names = ", ".join(r.name for r in selected if r.name not in failed)
    print(f"{ref} is ready on {names}")
    if failed:
        raise ImageError("not prepared: " + "; ".join(f"{n}: {why}" for n, why in failed.items()))


@benchmark_app.command("startup")
@registry_options("startup")
def benchmark_startup(
    given: dict[str, Any],
    image: Annotated[str | None, typer.Option("--image", help="Benchmark image.")] = None,
    via: Annotated[str, typer.Option("--via", help="api: through the engine API, with "
                                     "phases; cli: the docker/podman command end to end.")]
    = "api",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result JSON on stdout.")]
    = False,
    max_startup_ms: Annotated[str | None, typer.Option(
        "--max-startup-ms", help="Target: median startup (exit 3 if missed).")] = None,
    no_save: Annotated[bool, typer.Option("--no-save", help="Do not keep the result.")] = False,
    wait: Wait = False,
) -> None:
    """Time how long a fresh container running `true` takes, per runtime."""
    from forge_desktop.bench.startup import StartupOptions, run_startup
    from forge_desktop.bench.targets import resolve_targets
    from forge_desktop.cli.format import notes_for, phases_line, startup_table
    from forge_desktop.config import load_config

    config = load_config()
    p = ACTIONS["startup"].resolve(given, config, cli=True)
    opts = StartupOptions(p["runtime"], p["iterations"], p["warmup"], p["network"], image, via,
                          not no_save)
    opts.validate()
    limits = resolve_targets(config, {"startup_ms": max_startup_ms})
    err = _err_console()
    doc, path = _with_progress(err, lambda progress: run_startup(
        opts, config, progress=progress, log=lambda m: err.print(f"[dim]{m}[/dim]"),
        targets=limits, wait=wait))

    def table(d: dict[str, Any]) -> Any:
        from rich.console import Group
        from rich.text import Text

        lines = [Text(f"phases (median) {ln}", style="dim") for r in d["runtimes"]
                 if (ln := phases_line(r))]
        return Group(startup_table(d), *lines,
                     *[Text(note, style="yellow") for note in notes_for(d)])

    _finish(doc, path, as_json, table)


@registry_options("canary")
def canary_cmd(
    given: dict[str, Any],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result JSON on stdout.")]
    = False,
    no_save: Annotated[bool, typer.Option("--no-save", help="Do not keep the result.")] = False,
    wait: Wait = False,
) -> None:
    """A short startup round on each available runtime (what the tray repeats to watch for a
    slowdown), saved as kind canary."""
    from forge_desktop.bench.canary import CanaryOptions, run_canary
    from forge_desktop.cli.format import notes_for, startup_table
    from forge_desktop.config import load_config

    config = load_config()
    p = ACTIONS["canary"].resolve(given, config, cli=True)
    opts = CanaryOptions(p["runtime"], p["iterations"], p["warmup"], save=not no_save)
    opts.validate()
    err = _err_console()
    doc, path = _with_progress(err, lambda progress: run_canary(
        opts, config, progress=progress, log=lambda m: err.print(f"[dim]{m}[/dim]"),
        wait=wait))

    def table(d: dict[str, Any]) -> Any:
        from rich.console import Group
        from rich.text import Text

        return Group(startup_table(d), *[Text(note, style="yellow") for note in notes_for(d)])

    _finish(doc, path, as_json, table)


app.command("canary")(canary_cmd)
benchmark_app.command("canary")(canary_cmd)


def _with_progress(console: Any, work: Any) -> Any:
    """Run ``work(progress_callback)`` under a rich progress bar on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    tasks: dict[str, Any] = {}
    with Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True) as bar:
        def progress(name: str, done: int, total: int, warm: bool) -> None:
            label = f"{name} warmup" if warm else name
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done)

        return work(progress)


@benchmark_app.command("memory")
@registry_options("memory")
def benchmark_memory(
    given: dict[str, Any],
    interval: Annotated[float, typer.Option("--interval", help="Seconds between samples.")]
    = 0.2,
    image: Annotated[str | None, typer.Option("--image", help="Benchmark image.")] = None,
    max_memory_mb: Annotated[str | None, typer.Option(
        "--max-memory-mb", help="Target: daemon + one container, MiB (exit 3 if missed).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result JSON on stdout.")]
    = False,
    no_save: Annotated[bool, typer.Option("--no-save", help="Do not keep the result.")] = False,
    wait: Wait = False,
) -> None:
    """Idle daemon memory, memory per running container, and the density line."""
    from forge_desktop.bench.memory import MemoryOptions, run_memory
    from forge_desktop.bench.targets import resolve_targets
    from forge_desktop.cli.format import memory_table
    from forge_desktop.config import load_config

    config = load_config()
    p = ACTIONS["memory"].resolve(given, config, cli=True)
    opts = MemoryOptions(p["runtime"], p["containers"], p["samples"], interval, image=image,
                         save=not no_save)
    opts.validate()
    limits = resolve_targets(config, {"memory_mb": max_memory_mb})
    err = _err_console()
    doc, path = _with_progress(err, lambda progress: run_memory(
        opts, config, progress=progress, log=lambda m: err.print(f"[dim]{m}[/dim]"),
        targets=limits, wait=wait))
    _finish(doc, path, as_json, memory_table)


def _finish(doc: dict[str, Any], path: Any, as_json: bool, table: Any) -> None:
    """Print warnings, the document or its table, and exit 1 on errors, 3 on a missed target."""
    from forge_desktop.cli.format import targets_table, warnings_for

    err = _err_console()
    for line in warnings_for(doc):
        err.print(f"[yellow]warning:[/yellow] {line}", highlight=False)
    if as_json:
        _print_json(doc)
    else:
        out = _out_console()
        out.print(table(doc))
        if doc.get("targets"):
            out.print(targets_table(doc["targets"]))
        if path:
            out.print(f"[dim]saved {path}[/dim]", highlight=False)
    if not doc["complete"]:
        raise typer.Exit(1)
    if any(not t["met"] for t in doc.get("targets", [])):
        raise typer.Exit(3)


@benchmark_app.command("compare")
@registry_options("compare")
def benchmark_compare(
    given: dict[str, Any],
    image: Annotated[str | None, typer.Option("--image", help="Benchmark image.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the interleaving "
                                             "shuffle, to repeat an order.")] = None,
    max_startup_ms: Annotated[str | None, typer.Option("--max-startup-ms",
                                                       help="Target (exit 3 if missed).")]
    = None,
    max_memory_mb: Annotated[str | None, typer.Option("--max-memory-mb",
                                                      help="Target (exit 3 if missed).")]
    = None,
    max_disk_mb: Annotated[str | None, typer.Option("--max-disk-mb",
                                                    help="Target (exit 3 if missed).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result JSON on stdout.")]
    = False,
    no_save: Annotated[bool, typer.Option("--no-save", help="Do not keep the result.")] = False,
    wait: Wait = False,
) -> None:
    """Startup, memory and disk of several runtimes in one result, with ratios you can trust."""
    from forge_desktop.bench.compare import CompareOptions, run_compare
    from forge_desktop.bench.targets import resolve_targets
    from forge_desktop.cli.format import compare_table, comparison_lines, notes_for
    from forge_desktop.config import load_config

    config = load_config()
    p = ACTIONS["compare"].resolve(given, config, cli=True)
    opts = CompareOptions(p["runtime"], p["iterations"], p["warmup"], p["baseline"] or None,
                          p["network"], image, p["containers"], seed=seed, save=not no_save)
    opts.validate()
    limits = resolve_targets(config, {"startup_ms": max_startup_ms,
                                      "memory_mb": max_memory_mb, "disk_mb": max_disk_mb})
    err = _err_console()
    doc, path = _with_progress(err, lambda progress: run_compare(
        opts, config, progress=progress, log=lambda m: err.print(f"[dim]{m}[/dim]"),
        targets=limits, wait=wait))

    def table(d: dict[str, Any]) -> Any:
        from rich.console import Group
        from rich.text import Text

        return Group(compare_table(d), *[Text(line) for line in comparison_lines(d)],
                     *[Text(note, style="yellow") for note in notes_for(d)])

    _finish(doc, path, as_json, table)


def _register_commands() -> None:
    """Commands living in their own CLI modules (cheap to import: heavy imports are inside
    the commands). Each module has ``register(group)``."""
    import importlib

    for module, group in (("cmd_disk", benchmark_app), ("cmd_image", benchmark_app),
                          ("cmd_scale", benchmark_app),
                          ("cmd_profile", benchmark_app), ("cmd_resources", benchmark_app),
                          ("cmd_results", results_app), ("cmd_export", results_app),
                          ("cmd_desktop", app), ("cmd_hosts", app)):
        try:
            mod = importlib.import_module(f"forge_desktop.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"forge_desktop.cli.{module}":
                raise
            continue  # not written yet
        mod.register(group)


_register_commands()


@app.command("doctor")
def doctor_cmd(
    fix: Annotated[bool, typer.Option("--fix", help="Remove containers of dead forge runs.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON list on stdout.")] = False,
) -> None:
    """Check engines, sockets, image, OCI runtimes, tray host, notifications, leftovers and
    noise; exit 0 only when all is well."""
    from rich.table import Table

    from forge_desktop.config import load_config
    from forge_desktop.doctor import fix_leftovers, run_checks

    config = load_config()
    if fix:
        removed = fix_leftovers(config)
        _err_console().print(f"removed {removed} container(s) of dead forge runs")
    checks = run_checks(config)
    if as_json:
        _print_json([c.to_dict() for c in checks])
    else:
        table = Table(title="forge doctor", title_justify="left")
        for col in ("Check", "Status", "Detail", "Fix"):
            table.add_column(col)
        style = {"ok": "[green]ok[/green]", "warn": "[yellow]warn[/yellow]",
                 "fail": "[red]FAIL[/red]"}
        for c in checks:
            table.add_row(c.name, style[c.status], c.detail, c.fix)
        _out_console().print(table)
    if any(c.status != "ok" for c in checks):
        raise typer.Exit(1)


@app.command("tray")
def tray_cmd() -> None:
    """Start the system-tray indicator (a second start activates the first)."""
    from forge_desktop.cli.gui_entry import tray

    raise typer.Exit(tray())


@app.command("window")
def window_cmd(
    result: Annotated[str | None, typer.Option("--result", help="Show this result (id or "
                                               "unique prefix).")] = None,
    resources: Annotated[bool, typer.Option("--resources", help="Open on the live system "
                                            "resources panel.")] = False,
    runtime: Annotated[str | None, typer.Option("--runtime", "-r", help="Open on this "
                                                "runtime's trend, its newest open change "
                                                "(or --result) marked.")] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="The trend's metric: startup "
                                               "(default), daemon_memory, "
                                               "per_container_memory or disk.")] = None,
) -> None:
    """Open the results window: overview, history, detail, plots, compare, run and
    resources."""
    from forge_desktop.cli.gui_entry import window

    if metric is not None:
        from forge_desktop.results.history import check_metric

        check_metric(metric)
    if runtime is not None and not runtime.strip():
        from forge_desktop.errors import UsageError

        raise UsageError("--runtime must name a runtime, got an empty name")
    raise typer.Exit(window(result, resources, runtime, metric))
