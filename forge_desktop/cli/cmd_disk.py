"""``forge benchmark disk``: what each runtime keeps on disk and what one container adds.

Registered on the ``benchmark`` group by ``register`` (cli/app.py calls it). Heavy modules are
imported inside the command; ``disk_table`` builds the human table and never prints.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from forge_desktop.actions import ACTIONS
from forge_desktop.cli.options import Wait
from forge_desktop.cli.params import registry_options

if TYPE_CHECKING:
    from rich.table import Table

MIB = 1024 * 1024
KIB = 1024


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f}"


def _kib(value: int | None) -> str:
    return "-" if value is None else f"{value / KIB:.1f}"


def target_cell(target: dict[str, Any] | None) -> str:
    if target is None or target["met"] is None:
        return "[yellow]unknown[/yellow]"
    return "[green]met[/green]" if target["met"] else "[red]missed[/red]"


def disk_table(doc: dict[str, Any], with_path: bool = True) -> Table:
    """One row per runtime: the engine's accounting and the filesystem's in MiB, what one
    container adds in KiB (tens of kB would all read 0.0 MiB), and the store path (left out
    with ``with_path=False``, for a terminal too narrow for it: see ``store_lines``)."""
    from rich import box
    from rich.table import Table

    params = doc.get("parameters", {})
    targets = {t["runtime"]: t for t in doc.get("targets") or []}
    table = Table(title=f"Disk use (MiB; per container KiB) · {params.get('image')}",
                  title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1))
    table.add_column("Runtime", no_wrap=True)
    for col in ("Images", "Ctrs", "Vols", "Cache", "Reclaim", "On disk", "Per ctr"):
        table.add_column(col, justify="right", no_wrap=True)
    if targets:
        table.add_column("Target", no_wrap=True)
    if with_path:
        table.add_column("Store path", no_wrap=True)
    for r in doc["runtimes"]:
        row = [r["runtime"], _mib(r.get("images_bytes")), _mib(r.get("containers_bytes")),
               _mib(r.get("volumes_bytes")), _mib(r.get("build_cache_bytes")),
               _mib(r.get("reclaimable_bytes")), _mib(r.get("store_fs_bytes")),
               _kib(r.get("per_container_bytes"))]
        if r.get("errors") and all(v == "-" for v in row[1:]):
            row[1] = "[red]failed[/red]"
        if targets:
            row.append(target_cell(targets.get(r["runtime"])))
        if with_path:
            row.append(r.get("store_path") or "-")
        table.add_row(*row)
    caption = ("MiB = 1024*1024 bytes, KiB = 1024; '-': does not apply or not measured. "
               "Ctrs: containers' writable layers; Vols: volumes; Reclaim: what a prune could "
               "free; On disk: the store directory as the filesystem counts it (du -sx); Per "
               "ctr: what one created container adds on disk.")
    if targets:
        limit = next(iter(targets.values()))["limit"]
        caption += (f" Target: the benchmark image plus one container at most {limit:g} MiB "
                    "(disk_mb).")
    table.caption = caption
    table.caption_justify = "left"
    return table


def store_lines(doc: dict[str, Any]) -> list[str]:
    return [f"{r['runtime']} store: {r.get('store_path') or '-'}" for r in doc["runtimes"]]


def register(benchmark_app: typer.Typer) -> None:
    @benchmark_app.command("disk")
    @registry_options("disk")
    def benchmark_disk(
        given: dict[str, Any],
        image: Annotated[str | None, typer.Option("--image", help="Benchmark image.")] = None,
        max_disk_mb: Annotated[str | None, typer.Option(
            "--max-disk-mb", help="Target: the benchmark image plus one container at most "
            "this many MiB (1024*1024 bytes); exit code 3 when missed.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result JSON on "
                                              "stdout.")] = False,
        no_save: Annotated[bool, typer.Option("--no-save", help="Do not keep the result.")]
        = False,
        wait: Wait = False,
    ) -> None:
        """Measure image store, containers, volumes, build cache and what one container adds
        on disk, per runtime, as the engine and as the filesystem report them."""
        from rich.console import Console

        from forge_desktop.bench.disk import DiskOptions, run_disk
        from forge_desktop.bench.targets import resolve_targets
        from forge_desktop.cli.format import warnings_for
        from forge_desktop.config import load_config

        config = load_config()
        p = ACTIONS["disk"].resolve(given, config, cli=True)
        opts = DiskOptions(p["runtime"], image, not no_save)
        opts.validate()
        limits = resolve_targets(config, {"disk_mb": max_disk_mb})
        err = Console(stderr=True)
        doc, path = run_disk(opts, config, log=lambda m: err.print(f"[dim]{m}[/dim]",
                                                                   highlight=False),
                             targets=limits, wait=wait)
        for line in warnings_for(doc):
            err.print(f"[yellow]warning:[/yellow] {line}", highlight=False)
        if as_json:
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        else:
            out = Console()
            table = disk_table(doc)
            needed = out.measure(table, options=out.options.update_width(1000)).maximum
            if not out.is_terminal:  # a pipe or a file: whole lines, nothing folded
                out = Console(width=max(80, needed))
            if needed <= out.width:
                out.print(table)
            else:  # the paths go below the figures rather than fold them away
                out.print(disk_table(doc, with_path=False))
                for line in store_lines(doc):
                    out.print(line, highlight=False, soft_wrap=True)
            if path:
                out.print(f"[dim]saved {path}[/dim]", highlight=False)
        if not doc["complete"]:
            raise typer.Exit(1)
        missed = [t for t in doc.get("targets", []) if t["met"] is False]
        if missed:
            names = ", ".join(f"{t['runtime']} {t['value']:.1f} MiB" for t in missed)
            err.print(f"[red]target missed:[/red] disk over {missed[0]['limit']:g} MiB "
                      f"on {names}", highlight=False)
            raise typer.Exit(3)
