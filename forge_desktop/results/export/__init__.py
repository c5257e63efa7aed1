"""Saved results as JSON, CSV, Markdown tables, or one self-contained HTML report.

Builders return strings and never print; ``forge results export`` does the I/O. A result file
may come from anywhere (a colleague's laptop, a CI artifact), so every string taken from one
is escaped for the format it lands in, and a field of the wrong type reads as missing instead
of crashing the export (``results.document`` reads every figure).

This module finds the results and writes the export; each format is a module of its own:
``csv``, ``markdown`` and ``html``, the last two rendering one model, ``report``, so both say
the same thing in the same words; the HTML plots come from ``results/svg.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forge_desktop.config import benchmarks_dir
from forge_desktop.errors import StoreError, UsageError
from forge_desktop.results import store
from forge_desktop.results.document import resolve_id
from forge_desktop.results.export.csv import CSV_ID_COLUMNS, csv_table, to_csv
from forge_desktop.results.export.html import to_html
from forge_desktop.results.export.markdown import md_escape, to_markdown
from forge_desktop.results.export.report import (
    Report,
    Section,
    Table,
    Trend,
    build_report,
    section,
    trends,
)

__all__ = ["CSV_ID_COLUMNS", "FORMATS", "Report", "Section", "Table", "Trend",
           "atomic_write_bytes", "build_report", "csv_table", "default_report_name",
           "destination", "find_results", "json_payload", "md_escape", "render",
           "resolve_format", "section", "to_csv", "to_html", "to_markdown", "trends", "write"]

FORMATS = ("json", "csv", "md", "html")
_ALIASES = {"markdown": "md", "htm": "html"}
_SUFFIXES = {".json": "json", ".csv": "csv", ".md": "md", ".markdown": "md", ".html": "html",
             ".htm": "html"}

# ------------------------------------------------------------------ finding and writing


def find_results(ids: Sequence[str], directory: Path | None = None) -> list[dict[str, Any]]:
    """The saved results named by ``ids`` (whole ids or unique prefixes of their file names),
    in the order given, each once."""
    directory = directory or benchmarks_dir()
    try:
        names = sorted(p.name[:-5] for p in directory.iterdir()
                       if p.name.endswith(".json") and not p.name.startswith(".")
                       and p.is_file())
    except (FileNotFoundError, NotADirectoryError):
        names = []
    except OSError as exc:
        raise StoreError(f"cannot read {directory}: {store.why_failed(exc)}") from None
    docs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for wanted in ids:
        match = resolve_id(wanted, names, lambda name: (name,), where=directory)
        if match not in seen:
            seen.add(match)
            docs.append(store.load(directory / f"{match}.json"))
    return docs


def resolve_format(fmt: str | None, output: str | None) -> str:
    """``--format`` as given, else guessed from the ``-o`` file's suffix, else json."""
    if fmt is not None:
        name = _ALIASES.get(fmt.strip().lower(), fmt.strip().lower())
        if name not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        return name
    if output and output != "-":
        suffix = Path(output).suffix.lower()
        if suffix not in _SUFFIXES:
            raise UsageError(f"cannot tell the format from {output!r}; pass --format with one "
                             f"of {', '.join(FORMATS)}")
        return _SUFFIXES[suffix]
    return "json"


def default_report_name(docs: Sequence[dict[str, Any]]) -> str:
    # The id comes from inside a file: keep it to a plain file name (no "/" nor "..").
    first = re.sub(r"[^A-Za-z0-9_.-]", "_", str(docs[0].get("id", "report")))[:80].lstrip(".")
    more = f"-and-{len(docs) - 1}-more" if len(docs) > 1 else ""
    return f"forge-report-{first or 'report'}{more}.html"


def destination(fmt: str, output: str | None, docs: Sequence[dict[str, Any]],
                cwd: Path | None = None) -> Path | None:
    """Where the export goes; None means standard output."""
    if output == "-":
        return None
    if output is None:
        return (cwd or Path.cwd()) / default_report_name(docs) if fmt == "html" else None
    try:
        path = Path(output).expanduser()
        is_dir = path.is_dir()
    except RuntimeError:  # "~nosuchuser/..."
        raise UsageError(f"-o {output}: no such user's home") from None
    except OSError as exc:  # is_dir() raises for a name too long (ENAMETOOLONG)
        raise UsageError(f"-o {output}: {exc.strerror}") from None
    if is_dir:
        raise UsageError(f"-o {output}: is a directory; give a file name")
    return path


def _umask() -> int:
    # Read rather than set-and-restore: os.umask() changes it for every thread meanwhile.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _target_mode(path: Path) -> int:
    """An existing file keeps its mode; a new one gets what open() would give it (mkstemp
    makes 0600, too private for a report meant to be shared)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    store.atomic_write_bytes(path, data, _target_mode(path))


def json_payload(docs: Sequence[dict[str, Any]]) -> Any:
    return docs[0] if len(docs) == 1 else list(docs)


def render(docs: Sequence[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":  # json.dumps escapes control characters and surrogates itself
        return json.dumps(json_payload(docs), indent=2) + "\n"
    if fmt == "csv":
        return _plain_text(to_csv(docs))
    if fmt == "md":
        return _plain_text(to_markdown(docs))
    if fmt == "html":
        return _plain_text(to_html(docs))
    raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _plain_text(text: str) -> str:
    """An export holds strings from a file from anywhere: control characters are written
    \\xNN (an ESC would start an escape sequence when the export goes to a terminal: OSC 52
    sets the clipboard), and a lone surrogate (a JSON "\\udc80" decodes to one) becomes
    U+FFFD, since UTF-8 cannot carry it. Tab and newlines stay: CSV cells may hold them."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)
    return _SURROGATE.sub("\ufffd", text)


def write(path: Path, fmt: str, docs: Sequence[dict[str, Any]]) -> None:
    """Render completely first, then write atomically: a failure leaves no partial file."""
    if fmt == "json":
        mode = _target_mode(path)
        store.atomic_write_json(path, json_payload(docs))
        with contextlib.suppress(OSError):
            os.chmod(path, mode)
        return
    atomic_write_bytes(path, render(docs, fmt).encode("utf-8"))
