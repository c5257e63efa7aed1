"""The history the results window lists, without Qt: rows over the index, their display texts,
sort keys and the id lookup. Tests call these directly.

The history is read through :mod:`forge_desktop.results.index` (``scan``: a warm scan of
10,000 results lists and stats the files and reads none). Result files of a schema version
newer than this forge are kept as rows marked unreadable, with the index's reason, so the user
sees that they exist; any other file the index skipped (not JSON, not a result) is left out
and reported once in the status bar. What one document shows is ``document_data``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge_desktop.errors import ForgeError
from forge_desktop.results import document
from forge_desktop.results.index import ResultSummary, Skipped, machine_id, read_document, scan

COLUMNS = ("Date", "Kind", "Runtimes", "Headline", "Machine", "Warnings")
_NEWER = re.compile(r"schema version \d+, newer")
_ID_TIME = re.compile(r"^(\d{8}T\d{6}Z)")


# --- the history ------------------------------------------------------------------------------

@dataclass(eq=False, slots=True)
class HistoryRow:
    """One row of the history table: a summary from the index, or a file this forge cannot
    read (``unreadable`` says why). Display texts are made on first use only: a view asks for
    the rows on screen, not for 10,000."""

    directory: Path
    file: str
    summary: ResultSummary | None
    unreadable: str | None = None
    created_ts: float = 0.0
    _cells: tuple[str, ...] | None = field(default=None, repr=False)
    _search: str | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return self.summary.id if self.summary else self.file.removesuffix(".json")

    @property
    def path(self) -> Path:
        return self.directory / self.file

    @property
    def kind(self) -> str:
        return self.summary.kind if self.summary else "unreadable"

    @property
    def runtimes(self) -> tuple[str, ...]:
        return self.summary.runtimes if self.summary else ()

    @property
    def host(self) -> str:
        return self.summary.host if self.summary else ""

    @property
    def machine(self) -> str:
        """The machine key (host, CPU, cores, memory); "" when unreadable."""
        return self.summary.machine if self.summary else ""

    def headline_key(self) -> float:
        """Sort key of the headline column: the smallest figure; unreadable and empty last."""
        if self.summary is None:
            return math.inf
        values = self.summary.headline.values()
        return min(values) if values else math.inf

    def cells(self) -> tuple[str, ...]:
        if self._cells is None:
            self._cells = row_cells(self)
        return self._cells

    def search_text(self) -> str:
        if self._search is None:
            self._search = " ".join((self.id, *self.cells(), self.machine)).casefold()
        return self._search


def date_text(ts: float) -> str:
    """Local time, to the minute."""
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def headline_text(summary: ResultSummary) -> str:
    """"runc 28 ms · podman 159 ms": each runtime's headline figure, best first."""
    unit = summary.headline_unit
    return document.headline_text(summary.headline, unit, digits=1 if unit == "MiB" else 0,
                                  unit_each=True)


def warnings_text(summary: ResultSummary) -> str:
    parts = []
    if summary.warnings:
        parts.append(f"{summary.warnings} warning{'s' if summary.warnings != 1 else ''}")
    if summary.errors:
        parts.append(f"{summary.errors} error{'s' if summary.errors != 1 else ''}")
    if not summary.complete:
        parts.append("incomplete")
    return ", ".join(parts)


def machine_text(summary: ResultSummary) -> str:
    return f"{summary.host} ({machine_id(summary.machine)})"


def row_cells(row: HistoryRow) -> tuple[str, ...]:
    s = row.summary
    if s is None:
        return (date_text(row.created_ts), "unreadable", "", f"unreadable: {row.unreadable}",
                "", "unreadable")
    return (date_text(s.created_ts), s.kind, ", ".join(s.runtimes), headline_text(s),
            machine_text(s), warnings_text(s))


def sort_key(column: int) -> Any:
    """The key function sorting rows by a column of :data:`COLUMNS` (ties: date, id)."""
    keys: dict[int, Any] = {
        0: lambda r: (r.created_ts, r.id),
        1: lambda r: (r.kind, r.created_ts, r.id),
        2: lambda r: (", ".join(r.runtimes), r.created_ts, r.id),
        3: lambda r: (r.headline_key(), r.created_ts, r.id),
        4: lambda r: (r.host, r.machine, r.created_ts, r.id),
        5: lambda r: ((r.summary.warnings + r.summary.errors) if r.summary else math.inf,
                      r.created_ts, r.id),
    }
    return keys.get(column, keys[0])


@dataclass
class History:
    rows: list[HistoryRow]
    skipped: list[Skipped]
    """Files the index skipped that are not shown (not JSON, not a forge result)."""
    cache_notes: list[str]

    def find(self, text: str) -> HistoryRow | None:
        """A row by id, unique id prefix or file name."""
        wanted = text.strip().removesuffix(".json")
        if not wanted:
            return None
        exact = [r for r in self.rows if r.id == wanted or r.file == f"{wanted}.json"]
        if exact:
            return exact[0]
        matches = [r for r in self.rows if r.id.startswith(wanted)]
        return matches[0] if len(matches) == 1 else None

    def skipped_line(self) -> str:
        """The status bar's warning; "" when nothing was skipped."""
        if not self.skipped:
            return ""
        n = len(self.skipped)
        first = self.skipped[0].line()
        more = f" (and {n - 1} more)" if n > 1 else ""
        return f"{n} file{'s' if n != 1 else ''} skipped: {first}{more}"


def _unreadable_ts(directory: Path, name: str) -> float:
    m = _ID_TIME.match(name)
    if m:
        try:
            return dt.datetime.strptime(m[1], "%Y%m%dT%H%M%SZ").replace(
                tzinfo=dt.timezone.utc).timestamp()
        except ValueError:
            pass
    try:
        return os.stat(directory / name).st_mtime
    except OSError:
        return 0.0


def load_history(directories: Iterable[Path]) -> History:
    """Scan each results directory (a missing one is empty); newest first."""
    rows: list[HistoryRow] = []
    skipped: list[Skipped] = []
    notes: list[str] = []
    for directory in directories:
        if not directory.is_dir():
            continue
        try:
            found = scan(directory)
        except ForgeError as exc:  # cannot list it: say so, show the other directories
            skipped.append(Skipped(str(directory), str(exc)))
            continue
        if found.cache not in ("used", "rebuilt"):
            notes.append(f"{directory}: index {found.cache}")
        rows += [HistoryRow(directory, s.file, s, None, s.created_ts) for s in found.results]
        for skip in found.skipped:
            if _NEWER.search(skip.reason):
                rows.append(HistoryRow(directory, skip.file, None, skip.reason,
                                       _unreadable_ts(directory, skip.file)))
            else:
                skipped.append(skip)
    rows.sort(key=sort_key(0), reverse=True)
    return History(rows, skipped, notes)


def load_document(row: HistoryRow) -> dict[str, Any]:
    """The full result behind a row; StoreError says why it cannot be read."""
    doc, _key = read_document(row.path)
    return doc
