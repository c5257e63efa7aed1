"""``forge benchmark scale``: throughput and latency with many containers starting at once.

Registered on the ``benchmark`` group by ``register`` (cli/app.py calls it). Heavy modules are
imported inside the command; ``scale_table`` builds the human table and never prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from forge_desktop.actions import ACTIONS
from forge_desktop.cli.options import Wait
from forge_desktop.cli.params import registry_options

if TYPE_CHECKING:
    from rich.table import Table

MIB = 1024 * 1024


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _with_ci(value: float | None, ci: tuple[float, float] | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    # the interval on a line of its own: the table stays narrow enough for a terminal
    return f"{value:.{digits}f}" + (f"\n[dim]{ci[0]:.{digits}f}–{ci[1]:.{digits}f}[/dim]"
                                    if ci else "")


def scale_table(doc: dict[str, Any]) -> Table:
    from rich.table import Table

    from forge_desktop.results.document import level_ci, mapping, mappings, real, scale_levels

    params = mapping(doc.get("parameters"))
    levels_text = ",".join(str(c) for c in params.get("concurrency") or [])
    table = Table(title=f"Concurrency scaling · {params.get('image')} "
                        f"`{' '.join(params.get('command') or [])}` · {params.get('iterations')} "
                        f"lifecycles per level ({levels_text})", title_justify="left")
    table.add_column("Runtime")
    for col in ("In flight", "Per s", "p50 ms", "p90 ms", "p99 ms", "Failed", "Engine CPU %",
                "Engine MiB", "forge CPU ms"):
        table.add_column(col, justify="right")
    for entry in mappings(doc.get("runtimes")):
        name = f"{entry.get('runtime')} {entry.get('version') or ''}".strip()
        levels = scale_levels(entry)
        if not levels:
            table.add_row(name, "", "[red]unavailable[/red]" if entry.get("unavailable")
                          else "[red]failed[/red]", *[""] * 7)
            continue
        saturated = real(entry.get("saturation_concurrency"))
        for i, lv in enumerate(levels):
            c = real(lv.get("concurrency"))
            mark = " [bold yellow]◆[/bold yellow]" if c is not None and c == saturated else ""
            peak = real(lv.get("engine_peak_bytes"))
            tp = real(lv.get("throughput_per_s"))
            rate = _with_ci(tp, level_ci(lv, "throughput_ci95_per_s"),
                            2 if tp is not None and tp < 10 else 1)
            table.add_row(
                name if i == 0 else "", f"{c:.0f}{mark}" if c is not None else "-",
                f"[bold]{rate}[/bold]",
                _with_ci(real(lv.get("p50_ms")), level_ci(lv, "p50_ci95_ms")),
                _num(real(lv.get("p90_ms"))),
                _with_ci(real(lv.get("p99_ms")), level_ci(lv, "p99_ci95_ms")),
                _num(real(lv.get("failures")), 0), _num(real(lv.get("engine_cpu_percent"))),
                "-" if peak is None else f"{peak / MIB:.1f}",
                _num(real(lv.get("forge_cpu_ms_per_lifecycle")), 2))
    table.caption = ("Per s: lifecycles completed per second; under each figure its 95% CI. "
                     "◆ saturation: the first level after which throughput stops rising "
                     "significantly. Engine: CPU and peak memory of the daemon and shims "
                     f"(sampled every {params.get('sample_interval_s')} s) plus the runc/crun "
                     "forge ran. forge CPU: per lifecycle.")
    return table


def register(group: typer.Typer) -> None:
    @group.command("scale")
    @registry_options("scale")
    def benchmark_scale(
        given: dict[str, Any],
        image: Annotated[str | None, typer.Option("--image", help="Benchmark image.")] = None,
        min_throughput: Annotated[str | None, typer.Option(
            "--min-throughput", help="Target: the best level's lifecycles per second at "
            "least this (exit 3 if missed).")] = None,
        max_p99_ms: Annotated[str | None, typer.Option(
            "--max-p99-ms", help="Target: every level's p99 latency at most this many ms "
            "(exit 3 if missed).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result JSON on "
                                              "stdout.")] = False,
        no_save: Annotated[bool, typer.Option("--no-save", help="Do not keep the result.")]
        = False,
        wait: Wait = False,
    ) -> None:
        """For each concurrency level, N container lifecycles with that many in flight at
        all times: throughput, p50/p90/p99, failures, engine CPU and memory, saturation."""
        from forge_desktop.bench.scale import ScaleOptions, run_scale
        from forge_desktop.bench.targets import resolve_targets
        from forge_desktop.cli.app import _err_console, _finish, _with_progress
        from forge_desktop.config import load_config

        config = load_config()
        p = ACTIONS["scale"].resolve(given, config, cli=True)
        opts = ScaleOptions(p["runtime"], p["concurrency"], p["iterations"], p["warmup"],
                            image, not no_save)
        opts.validate()
        limits = resolve_targets(config, {"throughput_per_s": min_throughput,
                                          "p99_ms": max_p99_ms})
        err = _err_console()
        doc, path = _with_progress(err, lambda progress: run_scale(
            opts, config, progress=progress, log=lambda m: err.print(f"[dim]{m}[/dim]"),
            targets=limits, wait=wait))
        _finish(doc, path, as_json, scale_table)
