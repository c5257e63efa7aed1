"""``forge benchmark profile``: memory, CPU and threads of a process, a command, or a container
engine's daemon over time, with a live view while sampling and a summary at the end.

Registered on the ``benchmark`` group by ``register`` (cli/app.py calls it). The work is
``profiling.memory.run_profile``; the renderables below never print.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Group
    from rich.text import Text

MIB = 1024 * 1024


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f} MiB"


def live_line(snap: dict[str, Any] | None, taken: int, total: int, what: str) -> Text:
    """The one line the live view shows while sampling."""
    from rich.text import Text

    text = Text(f"profiling {what} · sample {taken}/{total}", style="bold")
    if snap is not None:
        text.append(f" · RSS {_mib(snap['rss_bytes'])} · CPU {snap['cpu_percent']:.0f}% · "
                    f"{snap['threads']} threads", style="")
    return text


def summary_view(doc: dict[str, Any]) -> Group:
    """Target, RSS figures, growth per minute, and the tracemalloc top sites."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    s, params, target = doc["summary"], doc["parameters"], doc["target"]
    parts: list[Any] = [Text(f"Profile of {target['description']} · {s['samples']} samples "
                             f"every {params['interval_s']:g} s over {s['duration_s']:.1f} s",
                             style="bold")]
    if target["kind"] == "command":
        how = "terminated by forge" if target["terminated"] else \
            f"exited with status {target['exit_code']}"
        parts.append(Text(f"command {how}", style="dim"))
    table = Table(box=box.SIMPLE_HEAD, title_justify="left")
    for col in ("RSS avg", "peak", "min", "range", "growth/min", "CPU avg", "threads"):
        table.add_column(col, justify="right", no_wrap=True)
    growth = s["growth_bytes_per_min"]
    table.add_row(_mib(s["avg_rss_bytes"]), _mib(s["peak_rss_bytes"]), _mib(s["min_rss_bytes"]),
                  _mib(s["range_bytes"]),
                  "-" if growth is None else f"{'+' if growth >= 0 else '-'}"
                                             f"{_mib(abs(growth))}",
                  "-" if s["avg_cpu_percent"] is None else f"{s['avg_cpu_percent']:.1f}%",
                  "-" if s["peak_threads"] is None else str(s["peak_threads"]))
    parts.append(table)
    last = doc["snapshots"][-1] if doc["snapshots"] else None
    if last is not None:
        parts.append(Text(f"last sample: RSS {_mib(last['rss_bytes'])}, PSS "
                          f"{_mib(last['pss_bytes'])}, USS {_mib(last['uss_bytes'])}, VMS "
                          f"{_mib(last['vms_bytes'])}; system memory "
                          f"{last['system_memory_percent']:.0f}% used", style="dim"))
    top = doc.get("tracemalloc_top")
    if top is not None:
        tm = Table(title=f"Python allocations still alive in {doc['tracemalloc_scope']}",
                   title_justify="left", box=box.SIMPLE_HEAD)
        tm.add_column("Site", overflow="fold")
        tm.add_column("Size", justify="right", no_wrap=True)
        tm.add_column("Blocks", justify="right", no_wrap=True)
        for row in top:
            tm.add_row(row["site"], f"{row['size_bytes'] / 1024:.1f} KiB", str(row["count"]))
        parts.append(tm)
    return Group(*parts)


def register(benchmark_app: typer.Typer) -> None:
    @benchmark_app.command("profile")
    def benchmark_profile(
        command: Annotated[list[str] | None, typer.Argument(
            metavar="-- COMMAND", show_default=False,
            help="After --: a command to start (argv, no shell) and profile with its "
                 "children until it exits or the samples are done; it is terminated if "
                 "still running.")]
        = None,
        samples: Annotated[int, typer.Option("--samples", help="Samples to take "
                                             "(1-100000).")] = 20,
        interval: Annotated[float, typer.Option("--interval", help="Seconds between samples "
                                                "(more than 0, at most 3600).")] = 0.5,
        pid: Annotated[int | None, typer.Option("--pid", help="Profile this running process "
                                                "(default: the docker daemon, else the "
                                                "podman API service).")] = None,
        include_children: Annotated[bool, typer.Option(
            "--include-children", help="Count the target's child processes too (always on "
            "for a COMMAND).")] = False,
        trace_python: Annotated[bool, typer.Option(
            "--tracemalloc", help="Also trace Python allocations of forge's own process "
            "(not the target's) and list the top sites.")] = False,
        top: Annotated[int, typer.Option("--top", help="Allocation sites to list with "
                                         "--tracemalloc.")] = 10,
        as_json: Annotated[bool, typer.Option("--json", help="Print the profile JSON on "
                                              "stdout.")] = False,
        no_save: Annotated[bool, typer.Option("--no-save", help="Do not keep the profile.")]
        = False,
    ) -> None:
        """Sample RSS, PSS/USS, VMS, CPU and threads of a process tree over time; save the
        profile under $FORGE_HOME/profiles and print average, peak, range and growth."""
        from rich.console import Console
        from rich.live import Live

        from forge_desktop.config import Config, load_config
        from forge_desktop.errors import Interrupted
        from forge_desktop.profiling.memory import ProfileOptions, Target, run_profile

        opts = ProfileOptions(samples, interval, pid, tuple(command or ()), include_children,
                              trace_python, top, not no_save)
        opts.validate()
        # only the daemon lookup needs the config: a broken one must not block --pid
        config = load_config() if pid is None and not command else Config()
        err = Console(stderr=True)
        state: dict[str, Any] = {"what": "…"}
        with Live(live_line(None, 0, samples, "…"), console=err, transient=True,
                  refresh_per_second=8) as live:
            def on_target(target: Target) -> None:
                state["what"] = target.describe()
                if target.kind == "daemon":
                    err.print(f"[dim]profiling {state['what']}[/dim]", highlight=False)
                live.update(live_line(None, 0, samples, state["what"]))

            def on_sample(snap: dict[str, Any], taken: int, total: int) -> None:
                live.update(live_line(snap, taken, total, state["what"]))

            doc, path = run_profile(opts, config, on_sample=on_sample, on_target=on_target)
        for line in doc["warnings"]:
            err.print(f"[yellow]warning:[/yellow] {line}", highlight=False)
        if as_json:
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        else:
            out = Console(width=None if sys.stdout.isatty() else 120)
            out.print(summary_view(doc))
            if path:
                out.print(f"[dim]saved {path}[/dim]", highlight=False)
        if doc["interrupted"]:
            saved = f"; the partial profile was saved to {path}" if path else ""
            raise Interrupted(f"interrupted after {doc['summary']['samples']} samples{saved}")
