"""The CSV export: one row per sample (timing iteration, density step, memory sample over
time) or per runtime for disk figures; every number in its unit, as the file holds it."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from typing import Any

from forge_desktop.results.document import entries as _entries
from forge_desktop.results.document import mapping as _dict
from forge_desktop.results.document import mappings as _dicts
from forge_desktop.results.document import number as _num
from forge_desktop.results.document import text as _text

# ------------------------------------------------------------------ CSV

CSV_ID_COLUMNS = ("result_id", "kind", "created_at", "host", "runtime", "version", "series",
                  "iteration")
"""Identify a row; ``iteration`` is an ordinal (1, 2, ...), every other number has a unit."""
_PHASE_ORDER = ("create", "start", "wait", "remove", "run", "load", "pull")
_MEMORY_BYTES = ("daemon_pss_bytes", "shims_pss_bytes", "cgroups_bytes", "total_bytes")
_MEMORY_COLUMNS = ("containers_count", "t_s", *_MEMORY_BYTES)
_DISK_COLUMNS = ("images_bytes", "containers_bytes", "volumes_bytes", "build_cache_bytes",
                 "reclaimable_bytes", "store_fs_bytes", "benchmark_image_bytes",
                 "per_container_bytes")

Row = dict[str, Any]


def _phase_column(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40] or "phase"
    column = f"{slug}_ms"
    return f"phase_{column}" if column in ("total_ms", "to_exec_ms") else column


def _timing_rows(entry: dict[str, Any], ident: Row, series: str) -> Iterator[Row]:
    samples = [s for s in _dicts(entry.get("samples")) if "total_ms" in s or "phases_ms" in s]
    for i, s in enumerate(samples, 1):
        row = {**ident, "series": series, "iteration": i, "total_ms": _num(s.get("total_ms"))}
        for name, value in _dict(s.get("phases_ms")).items():
            row[_phase_column(str(name))] = _num(value)
        if "to_exec_ms" in s:
            row["to_exec_ms"] = _num(s.get("to_exec_ms"))
        yield row


def _memory_rows(entry: dict[str, Any], ident: Row) -> Iterator[Row]:
    """One row per step of the density line, then one per sample over time."""
    for i, d in enumerate(_dicts(entry.get("density")), 1):
        yield {**ident, "series": "memory_density", "iteration": i,
               "containers_count": _num(d.get("containers")),
               **{k: _num(d.get(k)) for k in _MEMORY_BYTES}}
    running = _num(entry.get("containers"))
    for i, s in enumerate(_dicts(entry.get("samples")), 1):
        yield {**ident, "series": "memory_time", "iteration": i, "containers_count": running,
               "t_s": _num(s.get("t_s")), **{k: _num(s.get(k)) for k in _MEMORY_BYTES}}


def _disk_row(entry: dict[str, Any], ident: Row) -> Row:
    return {**ident, "series": "disk", "iteration": None,
            **{k: _num(entry.get(k)) for k in _DISK_COLUMNS}}


def _entry_rows(kind: str, entry: dict[str, Any], ident: Row) -> Iterator[Row]:
    if kind == "memory":
        yield from _memory_rows(entry, ident)
    elif kind == "disk":
        yield _disk_row(entry, ident)
    elif kind == "compare":
        yield from _timing_rows(entry, ident, "startup")
        if _dict(entry.get("memory")):
            yield from _memory_rows(_dict(entry.get("memory")), ident)
        if _dict(entry.get("disk")):
            yield _disk_row(_dict(entry.get("disk")), ident)
    else:  # startup, image, and kinds newer than this module: what the entry holds
        yield from _timing_rows(entry, ident, kind)
        if "density" in entry:
            yield from _memory_rows(entry, ident)
        if "store_fs_bytes" in entry or "images_bytes" in entry:
            yield _disk_row(entry, ident)


def csv_table(docs: Sequence[dict[str, Any]]) -> tuple[list[str], list[Row]]:
    """The columns and rows of the CSV export: one row per sample (timing iteration, density
    step, memory sample over time) or per runtime for disk figures."""
    rows: list[Row] = []
    for doc in docs:
        kind = _text(doc.get("kind"))
        base = {"result_id": _text(doc.get("id")), "kind": kind,
                "created_at": _text(doc.get("created_at")),
                "host": _text(_dict(doc.get("environment")).get("host"))}
        for entry in _entries(doc):
            ident = {**base, "runtime": _text(entry.get("runtime")),
                     "version": _text(entry.get("version"))}
            rows.extend(_entry_rows(kind, entry, ident))
    present: dict[str, None] = {}
    for row in rows:
        present.update(dict.fromkeys(row))
    known = [_phase_column(p) for p in _PHASE_ORDER]
    fixed = {*CSV_ID_COLUMNS, "total_ms", "to_exec_ms", *_MEMORY_COLUMNS, *_DISK_COLUMNS}
    phases = [c for c in known if c in present] + \
        [c for c in present if c not in fixed and c not in known]
    columns = [*CSV_ID_COLUMNS, *(["total_ms"] if "total_ms" in present else []), *phases,
               *(["to_exec_ms"] if "to_exec_ms" in present else []),
               *[c for c in _MEMORY_COLUMNS if c in present],
               *[c for c in _DISK_COLUMNS if c in present]]
    return columns, rows


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    # A spreadsheet runs a cell starting with = + - @ as a formula: a hostile runtime name
    # must stay text there (numbers are never strings here, so "-3" is not touched).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(docs: Sequence[dict[str, Any]]) -> str:
    columns, rows = csv_table(docs)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _csv_cell(row.get(c)) for c in columns})
    return buf.getvalue()
