"""The Markdown export (GitHub-flavoured): the report model as headings and tables."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from forge_desktop import __version__
from forge_desktop.results.export.report import Table, build_report

# ------------------------------------------------------------------ Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#&!])")


def md_escape(text: str) -> str:
    """Literal text in GFM, also inside a table cell: one line, punctuation backslashed."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _md_table(table: Table) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(md_escape(c) or " " for c in cells) + " |"

    align = ["---:" if i in table.numeric else ":---" for i in range(len(table.columns))]
    return [line(table.columns), "| " + " | ".join(align) + " |",
            *[line(row) for row in table.rows]]


def to_markdown(docs: Sequence[dict[str, Any]]) -> str:
    report = build_report(docs)
    out = ["# Forge results", "",
           md_escape(f"{len(docs)} result{'s' if len(docs) != 1 else ''} exported by "
                     f"forge-desktop {__version__}."), ""]
    for trend in report.trends:
        out += [f"## {md_escape(trend.title)} ({md_escape(trend.unit)})", "",
                *_md_table(trend.table()), ""]
    for sec in report.sections:
        out += [f"## {md_escape(sec.heading)}", "",
                *_md_table(Table("", ("Field", "Value"), sec.facts)), ""]
        for table in sec.tables:
            out += [f"### {md_escape(table.title)}", "", *_md_table(table), ""]
            if table.caption:
                out += [f"*{md_escape(table.caption)}*", ""]
        if sec.notes:
            out += [*[f"- {md_escape(n)}" for n in sec.notes], ""]
    return "\n".join(out)
