"""``forge benchmark image``: cold image load or pull times on docker and podman.

``register(benchmark_app)`` adds the command; heavy modules are imported inside it only.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from forge_desktop.actions import ACTIONS
from forge_desktop.cli.options import Wait
from forge_desktop.cli.params import registry_options


def image_table(doc: dict[str, Any]) -> Any:
    """A rich table of one image result (a formatter: builds, never prints)."""
    from rich.table import Table

    p = doc.get("parameters", {})
    where = f" from {p['registry']}" if p.get("registry") else " from a saved tar"
    size = f"{p['image_bytes'] / 1e6:.1f} MB layer" if p.get("image_bytes") else ""
    table = Table(title=f"Cold image {p.get('source')}{where} (ms) · {size} · "
                        f"n={p.get('iterations')}", title_justify="left")
    table.add_column("Runtime")
    for col in ("Median", "Mean ± sd", "Min", "Max", "95% CI", "Outl.", "Transfer", "MB/s"):
        table.add_column(col, justify="right")
    for r in doc["runtimes"]:
        name = f"{r['runtime']} {r.get('version') or ''}".strip()
        s = r.get("stats")
        if r.get("not_applicable"):
            table.add_row(name, "[dim]n/a[/dim]", *[""] * 7)
            continue
        if not s:
            table.add_row(name, "[red]failed[/red]", *[""] * 7)
            continue
        nbytes = r.get("transfer_bytes")
        rate = f"{nbytes / 1e3 / s['median_ms']:.1f}" if nbytes and s["median_ms"] > 0 else "-"
        lo, hi = s["ci95_ms"]
        table.add_row(
            name, f"[bold]{s['median_ms']:.1f}[/bold]", f"{s['mean_ms']:.1f} ± {s['stdev_ms']:.1f}",
            f"{s['min_ms']:.1f}", f"{s['max_ms']:.1f}", f"{lo:.1f}–{hi:.1f}", str(s["outliers"]),
            f"{nbytes / 1e6:.2f} MB" if nbytes else "-", rate)
    table.caption = ("Only the load or pull is timed; the image is removed by ID before each "
                     "one, so every iteration is cold.")
    return table


def not_applicable_lines(doc: dict[str, Any]) -> list[str]:
    return [f"{r['runtime']}: not applicable: {r['not_applicable']}"
            for r in doc["runtimes"] if r.get("not_applicable")]


@registry_options("image")
def benchmark_image(
    given: dict[str, Any],
    registry: Annotated[str | None, typer.Option(
        "--registry", help="HOST:PORT of a registry v2 for --source pull (default: "
        "$FORGE_REGISTRY, else 127.0.0.1:5000).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result JSON on stdout.")]
    = False,
    no_save: Annotated[bool, typer.Option("--no-save", help="Do not keep the result.")] = False,
    wait: Wait = False,
) -> None:
    """Time a cold image load (from a tar) or pull (from a registry), per engine."""
    from forge_desktop.bench.images import ImageOptions, run_image_bench
    from forge_desktop.cli.app import _err_console, _out_console, _print_json, _with_progress
    from forge_desktop.cli.format import warnings_for
    from forge_desktop.config import load_config

    config = load_config()
    p = ACTIONS["image"].resolve(given, config, cli=True)
    opts = ImageOptions(p["runtime"], p["source"], registry, p["iterations"], p["warmup"],
                        not no_save)
    opts.validate()
    err = _err_console()
    doc, path = _with_progress(err, lambda progress: run_image_bench(
        opts, config, progress=progress, log=lambda m: err.print(f"[dim]{m}[/dim]",
                                                                  highlight=False),
        wait=wait))
    for line in warnings_for(doc):
        err.print(f"[yellow]warning:[/yellow] {line}", highlight=False)
    if as_json:
        _print_json(doc)
    else:
        out = _out_console()
        out.print(image_table(doc))
        for line in not_applicable_lines(doc):
            out.print(f"[dim]{line}[/dim]", highlight=False)
        if path:
            out.print(f"[dim]saved {path}[/dim]", highlight=False)
    if not doc["complete"]:
        raise typer.Exit(1)


def register(benchmark_app: typer.Typer) -> None:
    """Add ``image`` to the ``benchmark`` group (once, however often it is called)."""
    if not any(c.name == "image" for c in benchmark_app.registered_commands):
        benchmark_app.command("image")(benchmark_image)
