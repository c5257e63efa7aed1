"""``forge results export``: saved results as JSON, CSV, Markdown or one offline HTML report.

Registered on the ``results`` group by ``register`` (cli/app.py calls it); the export module
is imported inside the command only. On standard output the export is all there is.
"""

from __future__ import annotations

from typing import Annotated

import typer


def register(results_app: typer.Typer) -> None:
    @results_app.command("export")
    def results_export(
        ids: Annotated[list[str], typer.Argument(
            metavar="ID", show_default=False,
            help="Result ids, or unique prefixes of them (`forge results list` shows them).")],
        fmt: Annotated[str | None, typer.Option(
            "--format", "-f", metavar="FORMAT", show_default=False,
            help="json, csv, md or html (default: from the -o file's suffix, else json).")]
        = None,
        output: Annotated[str | None, typer.Option(
            "-o", "--output", metavar="FILE", show_default=False,
            help="Write to FILE ('-': standard output). Default: standard output; for html "
            "forge-report-<id>.html in the current directory.")] = None,
    ) -> None:
        """Export saved results: JSON, CSV (one row per sample), Markdown tables, or a
        self-contained HTML report with plots that opens offline."""
        import sys

        from forge_desktop.results import export

        name = export.resolve_format(fmt, output)
        docs = export.find_results(ids)
        path = export.destination(name, output, docs)
        if path is None:
            sys.stdout.write(export.render(docs, name))
            return
        export.write(path, name, docs)
        print(path)
