"""One self-contained HTML report that opens offline: inline CSS, inline SVG plots
(``results/svg.py``), no script at all, and a Content-Security-Policy that forbids every
fetch, should an escape ever be missed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from forge_desktop import __version__
from forge_desktop.results.document import MIB, STARTUP_KINDS
from forge_desktop.results.document import entries as _entries
from forge_desktop.results.document import mapping as _dict
from forge_desktop.results.document import mappings as _dicts
from forge_desktop.results.document import number as _num
from forge_desktop.results.document import sample_totals as _totals
from forge_desktop.results.document import text as _text
from forge_desktop.results.export.report import Table, Trend, build_report, entry_label
from forge_desktop.results.svg import (
    Palette,
    axis_ticks,
    bars_svg,
    distribution_svg,
    h,
    line_chart_svg,
    tick_label,
    time_axis_ticks,
)


def trend_svg(trend: Trend, palette: Palette) -> str:
    timed = [(t.timestamp(), rid, date, values) for rid, t, date, values in trend.points if t]
    if len(timed) < 2:  # dates unreadable: one step per result, in the order given
        timed = [(float(i), rid, date, values)
                 for i, (rid, _t, date, values) in enumerate(trend.points)]
        ticks = [(float(i), date[:16]) for i, (_r, _t, date, _v) in enumerate(trend.points)]
    else:
        ticks = time_axis_ticks([t for t, *_ in timed])
    series = []
    for label in trend.labels:
        pts = [(t, values[label], f"{label} · {date} · {rid}: {values[label]:,.1f} {trend.unit}")
               for t, rid, date, values in timed if label in values]
        series.append((label, palette(label), pts))
    return line_chart_svg(series, ticks, "date (UTC)", f"{trend.axis} ({trend.unit})")


def section_plots(doc: dict[str, Any], palette: Palette) -> list[tuple[str, str]]:
    """(svg, caption) pairs for one result."""
    kind = _text(doc.get("kind"))
    entries = _entries(doc)
    plots = []
    if any(_dicts(e.get("samples")) and "total_ms" in _dicts(e.get("samples"))[0]
           for e in entries):
        what = "startup" if kind in STARTUP_KINDS else (
            f"image {_text(_dict(doc.get('parameters')).get('source')) or 'load'}"
            if kind == "image" else "iteration")
        lanes = [(entry_label(e), _totals(e), palette(entry_label(e))) for e in entries]
        plots.append((distribution_svg(lanes, f"{what} time per iteration (ms)"),
                      "Every iteration as a dot; box: quartiles; whiskers: 1.5 IQR; dark "
                      "line and figure on the right: median."))
    if kind == "memory":
        series = []
        for e in entries:
            pts = [(c, t / MIB, f"{entry_label(e)}: {c:g} containers, {t / MIB:,.1f} MiB")
                   for d in _dicts(e.get("density"))
                   if (c := _num(d.get("containers"))) is not None
                   and (t := _num(d.get("total_bytes"))) is not None]
            series.append((entry_label(e), palette(entry_label(e)), pts))
        top = max([p[0] for _, _, pts in series for p in pts] or [1.0])
        ticks = [(t, tick_label(t, [0.0, 1.0])) for t in axis_ticks(0.0, top, min(int(top), 8) or 1)
                 if t == int(t)]
        plots.append((line_chart_svg(series, ticks, "running containers",
                                     "daemon + containers (MiB)"),
                      "The density line: memory of the daemon and the running containers "
                      "(shims + cgroups, PSS) as containers are added."))
    if kind == "disk":
        rows = [(entry_label(e), None if (v := _num(e.get("store_fs_bytes"))) is None else v / MIB,
                 palette(entry_label(e))) for e in entries]
        plots.append((bars_svg(rows, "on disk (MiB)", "MiB"),
                      "The runtime's store directory as the filesystem counts it."))
    return plots


# ------------------------------------------------------------------ HTML

CSS = """
:root { --fg: #1d2330; --muted: #5b6474; --line: #dfe3ea; --alt: #f5f7fa; --accent: #2f5d9b; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header, main, footer { max-width: 1120px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 22px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h1 { font-size: 24px; margin: 0 0 2px; }
h2 { font-size: 19px; margin: 30px 0 8px; padding-top: 10px; border-top: 3px solid var(--accent); }
h3 { font-size: 15px; margin: 18px 0 4px; }
.sub, .caption, footer { color: var(--muted); }
.caption { font-size: 12.5px; margin: 2px 0 10px; max-width: 90ch; }
nav ul { margin: 6px 0 10px; padding-left: 18px; }
a { color: var(--accent); }
.wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: 4px 0; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
thead th { background: var(--alt); font-weight: 600; }
td.n, th.n { text-align: right; }
td.n { white-space: nowrap; }
table.facts th { font-weight: 500; color: var(--muted); width: 8em; }
figure { margin: 12px 0 4px; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12.5px; }
ul.notes li { color: #8a5300; }
footer { margin-top: 36px; padding-top: 10px; padding-bottom: 24px;
  border-top: 1px solid var(--line); font-size: 12px; }
@media print { h2 { break-before: page; } figure, table { break-inside: avoid; } }
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""Nothing is fetched and no script runs, even if a string slipped through unescaped."""


def _html_table(table: Table) -> str:
    def cell(tag: str, i: int, text: str) -> str:
        return f'<{tag} class="n">{h(text)}</{tag}>' if i in table.numeric \
            else f"<{tag}>{h(text)}</{tag}>"

    head = "".join(cell("th", i, c) for i, c in enumerate(table.columns))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>"
                   for row in table.rows)
    out = [f"<h3>{h(table.title)}</h3>"] if table.title else []
    out.append(f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
               "</table></div>")
    if table.caption:
        out.append(f'<p class="caption">{h(table.caption)}</p>')
    return "\n".join(out)


def _facts_html(facts: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{h(k)}</th><td>{h(v)}</td></tr>" for k, v in facts)
    return f'<div class="wrap"><table class="facts"><tbody>{rows}</tbody></table></div>'


def to_html(docs: Sequence[dict[str, Any]]) -> str:
    report = build_report(docs)
    palette = Palette()
    titles = ", ".join(_text(d.get("id")) for d in docs[:3]) + (" …" if len(docs) > 3 else "")
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>Forge report · {h(titles)}</title>", f"<style>{CSS}</style>", "</head>",
           "<body>", "<header>", "<h1>Forge report</h1>",
           f'<p class="sub">{len(docs)} result{"s" if len(docs) != 1 else ""} · '
           f"exported by forge-desktop {h(__version__)}</p>"]
    if len(report.sections) > 1:
        out.append("<nav><ul>" + "".join(
            f'<li><a href="#{h(s.anchor)}">{h(s.heading)}</a> '
            f'<span class="sub">{h(s.doc.get("id"))}</span></li>' for s in report.sections)
            + "</ul></nav>")
    out += ["</header>", "<main>"]
    for trend in report.trends:
        out += ["<section>", f"<h2>{h(trend.title)} ({h(trend.unit)})</h2>",
                f"<figure>{trend_svg(trend, palette)}<figcaption>One line per runtime; hover "
                "a dot for its result.</figcaption></figure>",
                _html_table(replace(trend.table(), title="")),
                "</section>"]
    for sec in report.sections:
        out += [f'<section id="{h(sec.anchor)}">', f"<h2>{h(sec.heading)}</h2>",
                _facts_html(sec.facts)]
        for svg, caption in section_plots(sec.doc, palette):
            out.append(f"<figure>{svg}<figcaption>{h(caption)}</figcaption></figure>")
        out += [_html_table(t) for t in sec.tables]
        if sec.notes:
            out.append('<ul class="notes">' + "".join(f"<li>{h(n)}</li>" for n in sec.notes)
                       + "</ul>")
        out.append("</section>")
    out += ["</main>", f"<footer>forge-desktop {h(__version__)} · times in milliseconds, "
            "sizes in MiB (1024×1024 bytes) unless marked.</footer>", "</body>", "</html>", ""]
    return "\n".join(out)
