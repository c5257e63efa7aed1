"""Formatters build rich renderables and plain strings; they never print (commands do)."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def startup_table(doc: dict[str, Any]) -> Table:
    params = doc.get("parameters", {})
    title = (f"Container startup (ms) · {params.get('image')} "
             f"`{' '.join(params.get('command', []))}` · network {params.get('network')} "
             f"· n={params.get('iterations')}")
    table = Table(title=title, title_justify="left")
    table.add_column("Runtime")
    for col in ("Median", "Mean ± sd", "Min", "Max", "p95", "95% CI", "Outl.", "Ratio"):
        table.add_column(col, justify="right")
    measured = [r for r in doc["runtimes"] if r.get("stats")]
    fastest = min((r["stats"]["median_ms"] for r in measured), default=None)
    for r in doc["runtimes"]:
        name = f"{r['runtime']}{' (cli)' if r.get('via') == 'cli' else ''} {r.get('version') or ''}"
        s = r.get("stats")
        if not s:
            table.add_row(name.strip(), "[red]failed[/red]", *[""] * 7)
            continue
        ratio = s["median_ms"] / fastest if fastest else 1.0
        lo, hi = s["ci95_ms"]
        table.add_row(
            name.strip(), f"[bold]{s['median_ms']:.1f}[/bold]",
            f"{s['mean_ms']:.1f} ± {s['stdev_ms']:.1f}", f"{s['min_ms']:.1f}",
            f"{s['max_ms']:.1f}", f"{s['p95_ms']:.1f}", f"{lo:.1f}–{hi:.1f}",
            str(s["outliers"]), f"{ratio:.2f}x")
    table.caption = "Ratio: median / fastest median (1.00x is the fastest)."
    return table


def phases_line(r: dict[str, Any]) -> str:
    phases = r.get("phase_medians_ms") or {}
    if len(phases) <= 1:
        return ""
    line = f"{r['runtime']}: " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()) + " ms"
    if r.get("to_exec_stats"):
        line += f"; process started {r['to_exec_stats']['median_ms']:.1f} ms after create"
    return line


def warnings_for(doc: dict[str, Any]) -> list[str]:
    lines = []
    for r in doc["runtimes"]:
        lines += [f"{r['runtime']}: {w}" for w in r.get("warnings", [])]
        if r.get("errors"):
            more = f" (and {len(r['errors']) - 1} more)" if len(r["errors"]) > 1 else ""
            lines.append(f"{r['runtime']}: {r['errors'][0]}{more}")
    return lines


def runtimes_table(infos: list[dict[str, Any]]) -> Table:
    table = Table(title="Runtimes", title_justify="left")
    for col in ("Name", "Kind", "Available", "Version", "Endpoint / reason"):
        table.add_column(col)
    for i in infos:
        ok = "[green]yes[/green]" if i["available"] else "[red]no[/red]"
        table.add_row(i["name"], i["kind"], ok, i.get("version") or "-",
                      (i.get("endpoint") or "-") if i["available"] else (i.get("reason") or "-"))
    return table


def mib(value: float | None) -> str:
    return "-" if value is None else f"{value / (1024 * 1024):.1f}"


def memory_table(doc: dict[str, Any]) -> Table:
    params = doc.get("parameters", {})
    table = Table(title=f"Memory (MiB) · {params.get('containers')} × "
                        f"`{' '.join(params.get('command', []))}` on {params.get('image')}",
                  title_justify="left")
    table.add_column("Runtime")
    for col in ("Daemon RSS", "Daemon PSS", "Per container", "outside", "inside",
                "Added per extra"):
        table.add_column(col, justify="right")
    for r in doc["runtimes"]:
        parts = r.get("per_container_parts") or {}
        if r.get("per_container_bytes") is None:
            table.add_row(r["runtime"], "[red]failed[/red]", *[""] * 5)
            continue
        table.add_row(r["runtime"], mib(r.get("daemon_rss_bytes")),
                      mib(r.get("daemon_pss_bytes")), f"[bold]{mib(r['per_container_bytes'])}"
                      "[/bold]", mib(parts.get("outside_pss_bytes")),
                      mib(parts.get("inside_cgroup_bytes")), mib(r.get("density_slope_bytes")))
    table.caption = ("PSS: shared pages split among their users. Outside: containerd-shim or "
                     "conmon; inside: the container's cgroup. Added per extra: slope of the "
                     "density line.")
    return table


def targets_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Performance targets", title_justify="left")
    for col, justify in (("Runtime", "left"), ("Metric", "left"), ("Target", "right"),
                         ("Measured", "right"), ("Status", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for t in rows:
        status = "[green]met[/green]" if t["met"] else "[red]missed[/red]"
        table.add_row(t["runtime"], t["metric"], f"< {t['limit']:g}", f"{t['value']:.1f}",
                      status)
    return table
