"""Formatters build rich renderables and plain strings; they never print (commands do)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from forge_desktop.bench.targets import FLOORS


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
            table.add_row(name.strip(), "[red]unavailable[/red]" if r.get("unavailable")
                          else "[red]failed[/red]", *[""] * 7)
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


def notes_for(doc: dict[str, Any]) -> list[str]:
    """What ssh adds to a transport-mode runtime, and the result's like-for-like warnings, as
    printed under its table ("note: ...")."""
    from forge_desktop.results.document import entries, transport_text

    return [*(f"{e.get('runtime')}: {line}" for e in entries(doc)
              if (line := transport_text(e))),
            *(f"note: {w}" for w in doc.get("like_for_like_warnings") or [])]


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
        where = (i.get("endpoint") or "-") + (f" ({i['note']})" if i.get("note") else "")
        table.add_row(i["name"], i["kind"], ok, i.get("version") or "-",
                      where if i["available"] else (i.get("reason") or "-"))
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
        floor = t["metric"] in FLOORS
        table.add_row(t["runtime"], t["metric"], f"{'≥' if floor else '<'} {t['limit']:g}",
                      f"{t['value']:.1f}", status)
    return table


_METRIC_WORDS = {"startup": ("faster", "slower"), "daemon_memory": ("leaner", "heavier"),
                 "per_container_memory": ("leaner", "heavier"), "disk": ("smaller", "larger")}
_METRIC_TITLES = {"startup": "Startup", "daemon_memory": "Daemon memory",
                  "per_container_memory": "Memory per container", "disk": "Disk"}


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def comparison_lines(doc: dict[str, Any]) -> list[str]:
    """Sentences like the seed's: "Startup: podman 176 ms vs docker 308 ms, 1.75x faster
    [1.6x-1.9x], p<0.001"."""
    comp = doc["comparison"]
    base = comp["baseline"]
    lines = []
    for row in comp["ratios"]:
        metric, ratio = row["metric"], row["ratio"]
        title = _METRIC_TITLES[metric]
        if ratio is None:
            lines.append(f"{title}: {row['runtime']} vs {base}: not applicable")
            continue
        better, worse = _METRIC_WORDS[metric]
        factor, word = (ratio, better) if ratio >= 1 else (1 / ratio, worse)
        if metric == "startup":
            lo, hi = row["ci95"]
            ci = (f"[{lo:.2f}x-{hi:.2f}x]" if ratio >= 1 else f"[{1 / hi:.2f}x-{1 / lo:.2f}x]")
            verdict = "" if row["verdict"] != "no significant difference" else \
                " — no significant difference"
            lines.append(f"{title}: {row['runtime']} {row['median_ms']:.0f} ms vs {base} "
                         f"{row['baseline_median_ms']:.0f} ms, {factor:.2f}x {word} {ci}, "
                         f"{_p(row['p_value'])}{verdict}")
        else:
            lines.append(f"{title}: {row['runtime']} {mib(row['value_bytes'])} MiB vs {base} "
                         f"{mib(row['baseline_bytes'])} MiB, {factor:.2f}x {word}")
    return lines


def compare_table(doc: dict[str, Any]) -> Table:
    params = doc.get("parameters", {})
    table = Table(title=f"Runtime comparison · {params.get('image')} · network "
                        f"{params.get('network')} · n={params.get('iterations')} interleaved · "
                        f"baseline {doc['comparison']['baseline']}", title_justify="left")
    table.add_column("Runtime")
    for col in ("Startup median (ms)", "95% CI", "to exec (ms)", "Daemon PSS (MiB)",
                "Per container (MiB)", "Disk (MiB)", "Startup vs baseline"):
        table.add_column(col, justify="right")
    ratios = {r["runtime"]: r for r in doc["comparison"]["ratios"] if r["metric"] == "startup"}
    for e in doc["runtimes"]:
        s = e.get("stats")
        mem, disk = e.get("memory") or {}, e.get("disk") or {}
        image, per = disk.get("benchmark_image_bytes"), disk.get("per_container_bytes")
        ratio = ratios.get(e["runtime"])
        table.add_row(
            e["runtime"], f"[bold]{s['median_ms']:.1f}[/bold]" if s else "[red]failed[/red]",
            f"{s['ci95_ms'][0]:.1f}–{s['ci95_ms'][1]:.1f}" if s else "",
            f"{e['to_exec_stats']['median_ms']:.1f}" if e.get("to_exec_stats") else "-",
            mib(mem.get("daemon_pss_bytes")), mib(mem.get("per_container_bytes")),
            mib(image + per) if image is not None and per is not None else "-",
            "baseline" if ratio is None else f"{ratio['ratio']:.2f}x ({ratio['verdict']})")
    return table
