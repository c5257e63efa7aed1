"""``forge benchmark resources``: the machine at a glance before benchmarking: CPU, memory,
disks of FORGE_HOME and the engines' stores, containers per engine, and the noise check.

Registered on the ``benchmark`` group by ``register`` (cli/app.py calls it). The facts come
from ``profiling.system.SystemAnalyzer``; ``resources_view`` builds panels and never prints.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Group

GIB = 1024 ** 3


def _gib(value: int | None) -> str:
    return "-" if value is None else f"{value / GIB:.1f} GiB"


def _pct_style(percent: float) -> str:
    return "red" if percent >= 90 else "yellow" if percent >= 70 else "green"


def resources_view(data: dict[str, Any]) -> Group:
    """Five panels: CPU, Memory, Disk, Containers, Noise."""
    from rich import box
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    cpu, mem, swap, disk = data["cpu"], data["memory"], data["swap"], data["disk"]

    def bar(percent: float | None, width: int = 30) -> Text:
        # characters, not rich's ProgressBar: its empty part vanishes without colours (a pipe)
        if percent is None:
            return Text("-")
        full = round(max(0.0, min(100.0, percent)) / 100 * width)
        return Text.assemble(("█" * full, _pct_style(percent)), ("░" * (width - full), "dim"))

    cores = Table.grid(padding=(0, 1))
    cores.add_column(no_wrap=True)
    cores.add_column()
    cores.add_column(justify="right", no_wrap=True)
    for i, pct in enumerate(cpu["per_core_percent"]):
        cores.add_row(f"cpu{i}", bar(pct), f"{pct:5.1f}%")
    cores.add_row("total", bar(cpu["percent"]),
                  "-" if cpu["percent"] is None else f"{cpu['percent']:5.1f}%")
    load = cpu["load_avg"]
    physical = cpu["physical_count"] if cpu["physical_count"] is not None else "?"
    cpu_panel = Panel(Group(
        Text(f"{cpu['model']}"),
        Text(f"{cpu['count']} logical cores, {physical} physical · load "
             + (" ".join(f"{x:.2f}" for x in load) if load else "-") + " (1, 5, 15 min)"),
        cores), title="CPU", title_align="left")

    mem_text = Text(
        f"total {_gib(mem['total_bytes'])} · available {_gib(mem['available_bytes'])} · "
        f"used {mem['used_percent']:.1f}%\n"
        f"swap {_gib(swap['total_bytes'])} total, {_gib(swap['used_bytes'])} used"
        if swap["total_bytes"] else
        f"total {_gib(mem['total_bytes'])} · available {_gib(mem['available_bytes'])} · "
        f"used {mem['used_percent']:.1f}%\nswap: none")
    mem_panel = Panel(Group(mem_text, bar(mem["used_percent"])), title="Memory",
                      title_align="left")

    disks = Table(box=box.SIMPLE_HEAD, padding=(0, 1))
    for col, justify in (("What", "left"), ("Path", "left"), ("Total", "right"),
                         ("Free", "right"), ("Used", "right")):
        if col == "Path":  # the one column that may fold when the terminal is narrow
            disks.add_column(col, overflow="fold")
        else:
            disks.add_column(col, justify=justify, no_wrap=True,  # type: ignore[arg-type]
                             min_width=len("docker store") if col == "What" else None)
    rows = [("FORGE_HOME", disk["forge_home"])] + [
        (f"{s['engine']} store", s) for s in disk["stores"]]
    for what, d in rows:
        used = d.get("used_percent")
        disks.add_row(what, d["path"], _gib(d.get("total_bytes")), _gib(d.get("free_bytes")),
                      "-" if used is None else f"[{_pct_style(used)}]{used:.1f}%[/]")
    disk_panel = Panel(disks, title="Disk", title_align="left")

    ctr = Table(box=box.SIMPLE_HEAD, padding=(0, 1))
    ctr.add_column("Engine", no_wrap=True)
    ctr.add_column("Running", justify="right", no_wrap=True)
    ctr.add_column("Total", justify="right", no_wrap=True)
    ctr.add_column("Note", overflow="fold")
    for name, c in data["containers"].items():
        if c["total"] is None:
            ctr.add_row(name, "-", "-", f"[yellow]{c.get('reason') or 'unavailable'}[/yellow]")
        else:
            ctr.add_row(name, str(c["running"]), str(c["total"]), "")
    ctr_panel = Panel(ctr if data["containers"] else Text("no container engine known"),
                      title="Containers", title_align="left")

    noise = data["noise_warnings"]
    noise_panel = Panel(
        Group(*[Text(f"• {w}", style="yellow") for w in noise]) if noise
        else Text("quiet: nothing here should disturb a benchmark", style="green"),
        title="Noise", title_align="left")
    return Group(cpu_panel, mem_panel, disk_panel, ctr_panel, noise_panel)


def register(benchmark_app: typer.Typer) -> None:
    @benchmark_app.command("resources")
    def benchmark_resources(
        as_json: Annotated[bool, typer.Option("--json", help="Print the facts as JSON on "
                                              "stdout.")] = False,
    ) -> None:
        """CPU, memory, disks (FORGE_HOME and the engines' stores), containers per engine,
        and whether the machine is quiet enough to benchmark (noise check)."""
        from rich.console import Console

        from forge_desktop.config import load_config
        from forge_desktop.profiling.system import SystemAnalyzer

        data = SystemAnalyzer(load_config()).analyze()
        if as_json:
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            return
        Console(width=None if sys.stdout.isatty() else 120).print(resources_view(data))
