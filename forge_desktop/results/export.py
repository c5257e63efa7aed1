"""Saved results as JSON, CSV, Markdown tables, or one self-contained HTML report.

Builders return strings and never print; ``forge results export`` does the I/O. A result file
may come from anywhere (a colleague's laptop, a CI artifact), so every string taken from one
is escaped for the format it lands in, and a field of the wrong type reads as missing instead
of crashing the export. The HTML report opens offline: inline CSS, inline SVG plots drawn
here (no plotting library), no script at all, and a Content-Security-Policy that forbids every
fetch, should an escape ever be missed.

Markdown and HTML render one model (``Report``: sections of facts, tables and notes, plus
trends), so both say the same thing in the same words.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import html
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from forge_desktop import __version__
from forge_desktop.bench.stats import percentile
from forge_desktop.config import benchmarks_dir
from forge_desktop.errors import StoreError, UsageError
from forge_desktop.results import store
from forge_desktop.results.schema import parse_iso

FORMATS = ("json", "csv", "md", "html")
_ALIASES = {"markdown": "md", "htm": "html"}
_SUFFIXES = {".json": "json", ".csv": "csv", ".md": "md", ".markdown": "md", ".html": "html",
             ".htm": "html"}
MIB = 1024 * 1024
KIB = 1024

# ------------------------------------------------------------------ finding and writing


def find_results(ids: Sequence[str], directory: Path | None = None) -> list[dict[str, Any]]:
    """The saved results named by ``ids`` (whole ids or unique prefixes), in the order given,
    each once. The one place mapping ids to files, so the history index can replace it."""
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
        key = wanted.strip()
        if not key:
            raise UsageError("an empty result id; `forge results list` shows the saved ones")
        if key in names:
            match = key
        else:
            candidates = [n for n in names if n.startswith(key)]
            if not candidates:  # StoreError, as the history index says it (exit 1)
                raise StoreError(f"no result with id {key!r} in {directory}; `forge results "
                                 "list` shows the ids")
            if len(candidates) > 1:
                shown = ", ".join(candidates[:8])
                more = f" and {len(candidates) - 8} more" if len(candidates) > 8 else ""
                raise UsageError(f"{key!r} matches {len(candidates)} results ({shown}{more}); "
                                 "give more of the id")
            match = candidates[0]
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


# ------------------------------------------------------------------ reading untrusted fields


def _num(value: Any) -> float | None:
    """A finite number, else None (a string, NaN or a 400-digit int in a file is missing)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 2**63 else None
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in _list(value) if isinstance(v, dict)]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _entries(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return _dicts(doc.get("runtimes"))


def _totals(entry: dict[str, Any]) -> list[float]:
    return [v for s in _dicts(entry.get("samples")) if (v := _num(s.get("total_ms"))) is not None]


def _label(entry: dict[str, Any]) -> str:
    name = _text(entry.get("runtime")) or "?"
    return f"{name} (cli)" if entry.get("via") == "cli" else name


def _time(doc: dict[str, Any]) -> dt.datetime | None:
    try:
        t = parse_iso(_text(doc.get("created_at")))
    except ValueError:
        return None
    return t.astimezone(dt.timezone.utc) if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def _date(doc: dict[str, Any]) -> str:
    t = _time(doc)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if t else _text(doc.get("created_at"))


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


# ------------------------------------------------------------------ the report model


@dataclass(frozen=True)
class Table:
    """Raw text cells (escaping is the renderer's job); ``numeric``: right-aligned columns."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: frozenset[int] = frozenset()
    caption: str = ""

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.title!r}: a row of {len(row)} cells for "
                                 f"{len(self.columns)} columns")


@dataclass(frozen=True)
class Section:
    """One exported result."""

    doc: dict[str, Any] = field(compare=False)
    anchor: str
    heading: str
    facts: tuple[tuple[str, str], ...]
    tables: tuple[Table, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Trend:
    """One metric of several results of the same kind, oldest first."""

    kind: str
    title: str
    axis: str
    unit: str
    labels: tuple[str, ...]
    points: tuple[tuple[str, dt.datetime | None, str, dict[str, float]], ...]
    """(result id, time, date text, value per label)."""

    def table(self) -> Table:
        rows = tuple((date, rid, *[_fmt(values.get(label)) for label in self.labels])
                     for rid, _t, date, values in self.points)
        return Table(self.title, ("Date", "Result", *[f"{lb} ({self.unit})"
                                                      for lb in self.labels]),
                     rows, frozenset(range(2, 2 + len(self.labels))))


@dataclass(frozen=True)
class Report:
    sections: tuple[Section, ...]
    trends: tuple[Trend, ...]


KIND_TITLES = {"startup": "Container startup", "compare": "Runtime comparison",
               "memory": "Memory", "disk": "Disk use", "image": "Cold image load or pull",
               "profile": "Profile"}


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / MIB:,.1f}"


def _unit(text: str, unit: str) -> str:
    return text if text == "-" else f"{text} {unit}"


def _facts(doc: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    env = _dict(doc.get("environment"))
    machine = [_text(env.get(k)) for k in ("host", "os") if env.get(k)]
    if env.get("kernel"):
        machine.append(f"kernel {_text(env.get('kernel'))}")
    if env.get("arch"):
        machine.append(_text(env.get("arch")))
    if env.get("cpu_model"):
        cpus = _num(env.get("cpu_count"))
        machine.append(_text(env.get("cpu_model")) + (f" ({cpus:g} CPUs)" if cpus else ""))
    mem = _num(env.get("memory_total_bytes"))
    if mem:
        machine.append(f"{mem / 1024**3:.1f} GiB RAM")
    if env.get("cgroup_version"):
        machine.append(f"cgroup {_text(env.get('cgroup_version'))}")
    engines = []
    for name, info in _dict(env.get("runtimes")).items():
        info = _dict(info)
        driver = f" ({_text(info.get('storage_driver'))})" if info.get("storage_driver") else ""
        engines.append(f"{name} {_text(info.get('version'))}".strip() + driver)
    facts = [("Kind", _text(doc.get("kind"))), ("Result", _text(doc.get("id"))),
             ("Date", _date(doc)), ("Machine", " · ".join(machine) or "-"),
             ("Runtimes", ", ".join(engines) or "-"),
             ("Parameters", _params(_dict(doc.get("parameters"))) or "-"),
             ("Complete", "yes" if doc.get("complete") is not False
              else "no: some runtimes failed (see the notes)")]
    wall = _num(_dict(doc.get("timing")).get("wall_s"))
    if wall is not None:
        facts.append(("Wall time", f"{wall:.1f} s"))
    return tuple(facts)


def _params(params: dict[str, Any]) -> str:
    parts = []
    for key, value in params.items():
        if value is None or value == []:
            continue
        if isinstance(value, list):
            text = " ".join(_text(v) for v in value)
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, dict):
            text = json.dumps(value, sort_keys=True)
        else:
            text = _text(value)
        parts.append(f"{key}={text}")
    return ", ".join(parts)


def _stats_table(doc: dict[str, Any], title: str) -> Table:
    rows = []
    for e in _entries(doc):
        s = _dict(e.get("stats"))
        median = _num(s.get("median_ms"))
        name, version = _label(e), _text(e.get("version"))
        if median is None:
            status = "n/a" if e.get("not_applicable") else "failed"
            rows.append((name, version, status, "-", "-", "-", str(len(_totals(e)))))
            continue
        mean, sd = _num(s.get("mean_ms")), _num(s.get("stdev_ms"))
        ci = _list(s.get("ci95_ms"))
        lo, hi = (_num(ci[0]), _num(ci[1])) if len(ci) == 2 else (None, None)
        n = _num(s.get("n"))
        rows.append((name, version, _fmt(median),
                     f"{_fmt(mean)} ± {_fmt(sd)}" if mean is not None else "-",
                     _fmt(_num(s.get("p95_ms"))),
                     f"{_fmt(lo)}–{_fmt(hi)}" if lo is not None and hi is not None else "-",
                     f"{n:g}" if n is not None else str(len(_totals(e)))))
    return Table(title, ("Runtime", "Version", "Median (ms)", "Mean ± sd (ms)", "p95 (ms)",
                         "95% CI (ms)", "n"), tuple(rows), frozenset(range(2, 7)),
                 "95% CI: bootstrap confidence interval of the median. n: measured "
                 "iterations.")


def _phases_table(doc: dict[str, Any]) -> Table | None:
    entries = _entries(doc)
    phases: dict[str, None] = {}
    for e in entries:
        phases.update(dict.fromkeys(str(k) for k in _dict(e.get("phase_medians_ms"))))
    to_exec = any(_dict(e.get("to_exec_stats")) for e in entries)
    if len(phases) <= 1 and not to_exec:
        return None
    rows = []
    for e in entries:
        medians = _dict(e.get("phase_medians_ms"))
        row = [_label(e), *[_fmt(_num(medians.get(p))) for p in phases]]
        if to_exec:
            row.append(_fmt(_num(_dict(e.get("to_exec_stats")).get("median_ms"))))
        rows.append(tuple(row))
    columns = ("Runtime", *[f"{p} (ms)" for p in phases], *(["to exec (ms)"] if to_exec else []))
    return Table("Phase medians (ms)", columns, tuple(rows), frozenset(range(1, len(columns))),
                 "to exec: from the create request until the container's process started."
                 if to_exec else "")


_METRIC_TITLES = {"startup": "Startup", "daemon_memory": "Daemon memory",
                  "per_container_memory": "Memory per container", "disk": "Disk"}


def _comparison_table(doc: dict[str, Any]) -> Table | None:
    comp = _dict(doc.get("comparison"))
    ratios = _dicts(comp.get("ratios"))
    if not ratios:
        return None
    base = _text(comp.get("baseline"))
    rows = []
    for r in ratios:
        metric = _text(r.get("metric"))
        if metric == "startup":
            value, baseline = (_unit(_fmt(_num(r.get(k))), "ms")
                               for k in ("median_ms", "baseline_median_ms"))
        else:
            value, baseline = (_unit(_mib(_num(r.get(k))), "MiB")
                               for k in ("value_bytes", "baseline_bytes"))
        ratio = _num(r.get("ratio"))
        ci = _list(r.get("ci95"))
        lo, hi = (_num(ci[0]), _num(ci[1])) if len(ci) == 2 else (None, None)
        p = _num(r.get("p_value"))
        rows.append((_text(r.get("runtime")), _METRIC_TITLES.get(metric, metric), value,
                     baseline, "-" if ratio is None else f"{ratio:.2f}×",
                     f"{lo:.2f}–{hi:.2f}×" if lo is not None and hi is not None else "-",
                     "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}"),
                     _text(r.get("verdict"))))
    return Table(f"Against the baseline, {base}",
                 ("Runtime", "Metric", "Value", "Baseline", "Ratio", "95% CI", "p", "Verdict"),
                 tuple(rows), frozenset({2, 3, 4, 5, 6}),
                 "Ratio: the baseline's figure divided by the runtime's; above 1 the runtime "
                 "is faster, leaner or smaller. Startup: bootstrap CI of the ratio of medians "
                 "and a Mann-Whitney p-value.")


def _compare_figures_table(doc: dict[str, Any]) -> Table:
    rows = []
    for e in _entries(doc):
        mem, disk = _dict(e.get("memory")), _dict(e.get("disk"))
        image, per = _num(disk.get("benchmark_image_bytes")), _num(disk.get("per_container_bytes"))
        rows.append((_label(e), _mib(_num(mem.get("daemon_pss_bytes"))),
                     _mib(_num(mem.get("per_container_bytes"))),
                     _mib(image + per) if image is not None and per is not None else "-"))
    return Table("Memory and disk (MiB)", ("Runtime", "Daemon PSS (MiB)",
                                           "Per container (MiB)", "Image + container (MiB)"),
                 tuple(rows), frozenset({1, 2, 3}),
                 "MiB = 1024×1024 bytes. PSS: shared pages split among their users.")


def _memory_table(doc: dict[str, Any]) -> Table:
    rows = []
    for e in _entries(doc):
        parts = _dict(e.get("per_container_parts"))
        rows.append((_label(e), _text(e.get("version")), _mib(_num(e.get("daemon_rss_bytes"))),
                     _mib(_num(e.get("daemon_pss_bytes"))),
                     _mib(_num(e.get("per_container_bytes"))),
                     _mib(_num(parts.get("outside_pss_bytes"))),
                     _mib(_num(parts.get("inside_cgroup_bytes"))),
                     _mib(_num(e.get("density_slope_bytes")))))
    return Table("Memory (MiB)", ("Runtime", "Version", "Daemon RSS (MiB)", "Daemon PSS (MiB)",
                                  "Per container (MiB)", "Outside (MiB)", "Inside (MiB)",
                                  "Added per extra (MiB)"), tuple(rows),
                 frozenset(range(2, 8)),
                 "PSS: shared pages split among their users. Outside: containerd-shim or "
                 "conmon; inside: the container's cgroup. Added per extra: slope of the "
                 "density line.")


def _disk_table(doc: dict[str, Any]) -> Table:
    rows = []
    for e in _entries(doc):
        per = _num(e.get("per_container_bytes"))
        rows.append((_label(e), _text(e.get("version")),
                     *[_mib(_num(e.get(k))) for k in ("images_bytes", "containers_bytes",
                                                      "volumes_bytes", "build_cache_bytes",
                                                      "reclaimable_bytes", "store_fs_bytes")],
                     "-" if per is None else f"{per / KIB:,.1f}",
                     _text(e.get("store_path")) or "-"))
    return Table("Disk use (MiB; per container KiB)",
                 ("Runtime", "Version", "Images (MiB)", "Containers (MiB)", "Volumes (MiB)",
                  "Build cache (MiB)", "Reclaimable (MiB)", "On disk (MiB)",
                  "Per container (KiB)", "Store path"), tuple(rows), frozenset(range(2, 9)),
                 "On disk: the store directory as the filesystem counts it (du -sx). Per "
                 "container: what one created container adds on disk.")


def _image_table(doc: dict[str, Any]) -> Table:
    rows = []
    for e in _entries(doc):
        nbytes = _num(e.get("transfer_bytes"))
        median = _num(_dict(e.get("stats")).get("median_ms"))
        rate = f"{nbytes / 1e3 / median:,.1f}" if nbytes and median and median > 0 else "-"
        rows.append((_label(e), _text(e.get("source")) or "-",
                     "-" if nbytes is None else f"{nbytes / 1e6:,.2f}", rate))
    return Table("Transfer", ("Runtime", "Source", "Transfer (MB)", "Rate (MB/s)"),
                 tuple(rows), frozenset({2, 3}), "MB = 10^6 bytes; rate at the median time.")


def _targets_table(doc: dict[str, Any]) -> Table | None:
    targets = _dicts(doc.get("targets"))
    if not targets:
        return None
    rows = []
    for t in targets:
        met = t.get("met")
        rows.append((_text(t.get("runtime")), _text(t.get("metric")),
                     f"< {_fmt(_num(t.get('limit')))}", _fmt(_num(t.get("value"))),
                     "unknown" if met is None else ("met" if met else "missed")))
    return Table("Performance targets", ("Runtime", "Metric", "Target", "Measured", "Status"),
                 tuple(rows), frozenset({2, 3}))


def _notes(doc: dict[str, Any]) -> tuple[str, ...]:
    notes = [f"note: {_text(w)}" for w in _list(doc.get("like_for_like_warnings"))]
    for e in _entries(doc):
        name = _label(e)
        if e.get("not_applicable"):
            notes.append(f"{name}: not applicable: {_text(e.get('not_applicable'))}")
        notes += [f"{name}: warning: {_text(w)}" for w in _list(e.get("warnings"))]
        errors = _list(e.get("errors"))
        notes += [f"{name}: error: {_text(err)}" for err in errors[:5]]
        if len(errors) > 5:
            notes.append(f"{name}: and {len(errors) - 5} more errors")
    return tuple(notes)


def section(doc: dict[str, Any], anchor: str = "") -> Section:
    kind = _text(doc.get("kind"))
    tables: list[Table | None] = []
    if kind == "memory":
        tables.append(_memory_table(doc))
    elif kind == "disk":
        tables.append(_disk_table(doc))
    elif kind == "image":
        source = _text(_dict(doc.get("parameters")).get("source")) or "load"
        tables += [_stats_table(doc, f"Cold image {source} time (ms)"), _image_table(doc)]
    elif kind == "compare":
        tables += [_stats_table(doc, "Startup time (ms)"), _comparison_table(doc),
                   _compare_figures_table(doc), _phases_table(doc)]
    elif kind == "startup" or any(_dict(e.get("stats")) for e in _entries(doc)):
        tables += [_stats_table(doc, "Startup time (ms)" if kind == "startup" else "Time (ms)"),
                   _phases_table(doc)]
    else:  # a kind newer than this module, without timings: at least who ran and how
        tables.append(Table("Runtimes", ("Runtime", "Version"),
                            tuple((_label(e), _text(e.get("version"))) for e in _entries(doc))))
    tables.append(_targets_table(doc))
    heading = f"{KIND_TITLES.get(kind, kind.capitalize() or 'Result')} · {_date(doc)}"
    return Section(doc, anchor, heading, _facts(doc), tuple(t for t in tables if t),
                   _notes(doc))


_TREND_METRICS: dict[str, tuple[str, str, str, Callable[[dict[str, Any]], float | None]]] = {
    "memory": ("Memory per container over time", "per container", "MiB",
               lambda e: None if (v := _num(e.get("per_container_bytes"))) is None
               else v / MIB),
    "disk": ("On disk over time", "on disk", "MiB",
             lambda e: None if (v := _num(e.get("store_fs_bytes"))) is None else v / MIB),
}
_MEDIAN_TREND = ("", "", "ms",
                 lambda e: _num(_dict(e.get("stats")).get("median_ms")))


def trends(docs: Sequence[dict[str, Any]]) -> tuple[Trend, ...]:
    """For every kind exported more than once, the headline figure per runtime over time."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(_text(doc.get("kind")), []).append(doc)
    out = []
    for kind, group in by_kind.items():
        if len(group) < 2:
            continue
        title, axis, unit, value_of = _TREND_METRICS.get(kind, _MEDIAN_TREND)
        if kind not in _TREND_METRICS:
            what = "startup" if kind in ("startup", "compare") else "time"
            title = f"{KIND_TITLES.get(kind, kind.capitalize())}: median {what} over time"
            axis = f"median {what}"
        hosts = {_text(_dict(d.get("environment")).get("host")) for d in group}
        oldest = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
        group = sorted(group, key=lambda d: (_time(d) or oldest, _text(d.get("id"))))
        labels: dict[str, None] = {}
        points = []
        for doc in group:
            host = _text(_dict(doc.get("environment")).get("host"))
            values: dict[str, float] = {}
            for e in _entries(doc):
                label = _label(e)
                if kind == "image":  # a load and a pull are different measurements
                    label += f" ({_text(e.get('source')) or 'load'})"
                if len(hosts) > 1:  # the same runtime on two machines: two lines
                    label = f"{host}: {label}"
                value = value_of(e)
                if value is not None:
                    values[label] = value
                    labels[label] = None
            points.append((_text(doc.get("id")), _time(doc), _date(doc), values))
        if labels:
            out.append(Trend(kind, title, axis, unit, tuple(labels), tuple(points)))
    return tuple(out)


def build_report(docs: Sequence[dict[str, Any]]) -> Report:
    anchors: set[str] = set()
    sections = []
    for i, doc in enumerate(docs):
        anchor = "r-" + re.sub(r"[^A-Za-z0-9_-]", "-", _text(doc.get("id")))[:80]
        if anchor in anchors:
            anchor += f"-{i}"
        anchors.add(anchor)
        sections.append(section(doc, anchor))
    return Report(tuple(sections), trends(docs))


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


# ------------------------------------------------------------------ SVG plots

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759", "#76b7b2", "#edc948",
           "#9c755f", "#ff9da7", "#bab0ac")
_INK, _MUTED, _GRID = "#1d2330", "#5b6474", "#dfe3ea"


def h(text: Any) -> str:
    """Escape for HTML text and attribute values. "/" after ":" and "=" are written as
    entities too (they render the same), so no text from a result file forms "https://" or
    "src=" in the source: a plain grep for external references stays meaningful."""
    return html.escape(_text(text), quote=True).replace("://", ":&#47;&#47;") \
        .replace("=", "&#61;")


class Palette:
    """A colour per series label, the same in every plot of one report."""

    def __init__(self) -> None:
        self._colors: dict[str, str] = {}

    def __call__(self, label: str) -> str:
        if label not in self._colors:
            self._colors[label] = PALETTE[len(self._colors) % len(PALETTE)]
        return self._colors[label]


def _ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round axis ticks (1, 2, 2.5, 5 × 10^k) covering [lo, hi]."""
    if not hi > lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / target
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    start = math.floor(lo / step + 1e-9) * step
    count = math.ceil((hi - start) / step - 1e-9)
    return [start + k * step for k in range(count + 1)]


def _tick_text(value: float, ticks: Sequence[float]) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    digits = 0
    while digits < 6 and abs(round(step * 10**digits) - step * 10**digits) > 1e-6:
        digits += 1
    return f"{value:,.{digits}f}"


def _clip(label: str, size: int = 24) -> str:
    return label if len(label) <= size else label[:size - 1] + "…"


class Svg:
    """A few SVG elements, every attribute value and text escaped."""

    def __init__(self, width: float, height: float, label: str) -> None:
        self.width, self.height, self.label = width, height, label
        self.parts: list[str] = []

    @staticmethod
    def _attrs(**attrs: Any) -> str:
        out = []
        for key, value in attrs.items():
            if value is None:
                continue
            text = f"{value:.1f}" if isinstance(value, float) else h(value)
            out.append(f'{key.rstrip("_").replace("_", "-")}="{text}"')
        return " ".join(out)

    def add(self, tag: str, title: str | None = None, text: str | None = None,
            **attrs: Any) -> None:
        inner = (f"<title>{h(title)}</title>" if title else "") + (h(text) if text else "")
        self.parts.append(f"<{tag} {self._attrs(**attrs)}>{inner}</{tag}>")

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = _GRID,
             width: float = 1.0) -> None:
        self.add("line", x1=x1, y1=y1, x2=x2, y2=y2, stroke=stroke, stroke_width=width)

    def text(self, x: float, y: float, text: str, anchor: str = "start", size: int = 12,
             fill: str = _INK, title: str | None = None, weight: str | None = None) -> None:
        self.add("text", title=title, text=text, x=x, y=y, text_anchor=anchor,
                 font_size=size, fill=fill, font_weight=weight)

    def render(self) -> str:
        return (f'<svg viewBox="0 0 {self.width:.0f} {self.height:.0f}" '
                f'width="{self.width:.0f}" height="{self.height:.0f}" role="img" '
                f'aria-label="{h(self.label)}" font-family="system-ui, sans-serif">'
                + "".join(self.parts) + "</svg>")


def _x_axis(svg: Svg, ticks: Sequence[float], x: Callable[[float], float], top: float,
            bottom: float, label: str) -> None:
    for t in ticks:
        svg.line(x(t), top, x(t), bottom)
        svg.text(x(t), bottom + 16, _tick_text(t, ticks), anchor="middle", size=11,
                 fill=_MUTED)
    svg.line(x(ticks[0]), bottom, x(ticks[-1]), bottom, stroke=_MUTED)
    svg.text((x(ticks[0]) + x(ticks[-1])) / 2, bottom + 34, label, anchor="middle", size=12,
             fill=_MUTED)


def distribution_svg(lanes: Sequence[tuple[str, Sequence[float], str]], axis_label: str,
                     unit: str = "ms") -> str:
    """A box plot over a strip of every iteration, one lane per runtime, on one axis from 0
    (so lanes compare at a glance). Box: quartiles; whiskers: Tukey's 1.5 IQR; line: median."""
    width, left, right, top, lane_h, bottom_h = 900.0, 180.0, 110.0, 10.0, 46.0, 48.0
    height = top + lane_h * max(len(lanes), 1) + bottom_h
    svg = Svg(width, height, axis_label)
    values = [v for _, vs, _ in lanes for v in vs]
    ticks = _ticks(min([0.0, *values]), max([0.0, *values]) or 1.0)
    span = ticks[-1] - ticks[0]

    def x(v: float) -> float:
        return left + (width - left - right) * (v - ticks[0]) / span

    bottom = top + lane_h * max(len(lanes), 1)
    for i in range(1, len(lanes), 2):
        svg.add("rect", x=left, y=top + lane_h * i, width=width - left - right, height=lane_h,
                fill="#f5f7fa")
    _x_axis(svg, ticks, x, top, bottom, axis_label)
    for i, (label, vs, color) in enumerate(lanes):
        cy = top + lane_h * i + lane_h / 2
        svg.text(left - 10, cy + 4, _clip(label), anchor="end", size=12, title=label)
        if not vs:
            svg.text(left + 6, cy + 4, "no samples", size=12, fill=_MUTED)
            continue
        q1, med, q3 = (percentile(vs, q) for q in (25, 50, 75))
        iqr = q3 - q1
        lo = min(v for v in vs if v >= q1 - 1.5 * iqr)
        hi = max(v for v in vs if v <= q3 + 1.5 * iqr)
        for a, b in ((lo, q1), (q3, hi)):
            svg.line(x(a), cy, x(b), cy, stroke=color, width=1.5)
        for end in (lo, hi):
            svg.line(x(end), cy - 7, x(end), cy + 7, stroke=color, width=1.5)
        svg.add("rect", x=x(q1), y=cy - 12, width=max(x(q3) - x(q1), 1.0), height=24.0,
                fill=color, fill_opacity="0.22", stroke=color, stroke_width="1.5",
                title=f"{label}: quartiles {q1:,.1f}–{q3:,.1f} {unit}")
        for k, v in enumerate(vs):
            jitter = ((k * 0.6180339887) % 1.0 - 0.5) * 26  # deterministic, evenly spread
            svg.add("circle", cx=x(v), cy=cy + jitter, r=3.0, fill=color, fill_opacity="0.7",
                    title=f"{label} #{k + 1}: {v:,.1f} {unit}")
        svg.line(x(med), cy - 14, x(med), cy + 14, stroke=_INK, width=2.5)
        svg.text(width - right + 10, cy + 4, f"{med:,.1f} {unit}", size=12, weight="600",
                 title=f"{label}: median {med:,.1f} {unit}")
    return svg.render()


def line_chart_svg(series: Sequence[tuple[str, str, Sequence[tuple[float, float, str]]]],
                   x_ticks: Sequence[tuple[float, str]], x_label: str, y_label: str) -> str:
    """Lines with dots (hover: the dot's title), y from 0, a legend on the right."""
    width, left, right, top, plot_h, bottom_h = 900.0, 70.0, 210.0, 14.0, 240.0, 52.0
    height = max(top + plot_h + bottom_h, top + 20.0 * len(series) + 10)
    svg = Svg(width, height, y_label)
    xs = [p[0] for _, _, pts in series for p in pts] + [t for t, _ in x_ticks]
    ys = [p[1] for _, _, pts in series for p in pts]
    x_lo, x_hi = min(xs, default=0.0), max(xs, default=1.0)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    pad = (x_hi - x_lo) * 0.04
    x_lo, x_hi = x_lo - pad, x_hi + pad
    y_ticks = _ticks(min([0.0, *ys]), max([0.0, *ys]) or 1.0, 5)
    bottom = top + plot_h

    def x(v: float) -> float:
        return left + (width - left - right) * (v - x_lo) / (x_hi - x_lo)

    def y(v: float) -> float:
        return bottom - plot_h * (v - y_ticks[0]) / (y_ticks[-1] - y_ticks[0])

    for t in y_ticks:
        svg.line(left, y(t), width - right, y(t))
        svg.text(left - 8, y(t) + 4, _tick_text(t, y_ticks), anchor="end", size=11,
                 fill=_MUTED)
    svg.add("text", text=y_label, x=16.0, y=top + plot_h / 2, text_anchor="middle",
            font_size=12, fill=_MUTED, transform=f"rotate(-90 16 {top + plot_h / 2:.1f})")
    for t, text in x_ticks:
        svg.line(x(t), bottom, x(t), bottom + 5, stroke=_MUTED)
        svg.text(x(t), bottom + 18, text, anchor="middle", size=11, fill=_MUTED)
    svg.line(left, bottom, width - right, bottom, stroke=_MUTED)
    svg.text((left + width - right) / 2, bottom + 38, x_label, anchor="middle", size=12,
             fill=_MUTED)
    for i, (label, color, pts) in enumerate(series):
        pts = sorted(pts)
        if len(pts) > 1:
            svg.add("polyline", points=" ".join(f"{x(px):.1f},{y(py):.1f}" for px, py, _ in pts),
                    fill="none", stroke=color, stroke_width="2")
        for px, py, tip in pts:
            svg.add("circle", cx=x(px), cy=y(py), r=4.0, fill=color, title=tip)
        ly = top + 20.0 * i + 6
        svg.add("rect", x=width - right + 16, y=ly - 9, width=14.0, height=10.0, fill=color)
        svg.text(width - right + 36, ly, _clip(label, 26), size=12, title=label)
    return svg.render()


def bars_svg(rows: Sequence[tuple[str, float | None, str]], axis_label: str,
             unit: str) -> str:
    """Horizontal bars from 0, one per runtime."""
    width, left, right, top, lane_h, bottom_h = 900.0, 180.0, 110.0, 10.0, 34.0, 48.0
    height = top + lane_h * max(len(rows), 1) + bottom_h
    svg = Svg(width, height, axis_label)
    values = [v for _, v, _ in rows if v is not None]
    ticks = _ticks(min([0.0, *values]), max([0.0, *values]) or 1.0)
    span = ticks[-1] - ticks[0]

    def x(v: float) -> float:
        return left + (width - left - right) * (v - ticks[0]) / span

    bottom = top + lane_h * max(len(rows), 1)
    _x_axis(svg, ticks, x, top, bottom, axis_label)
    for i, (label, value, color) in enumerate(rows):
        cy = top + lane_h * i + lane_h / 2
        svg.text(left - 10, cy + 4, _clip(label), anchor="end", size=12, title=label)
        if value is None:
            svg.text(left + 6, cy + 4, "not measured", size=12, fill=_MUTED)
            continue
        svg.add("rect", x=min(x(0), x(value)), y=cy - 10, width=max(abs(x(value) - x(0)), 1.0),
                height=20.0, fill=color, title=f"{label}: {value:,.1f} {unit}")
        svg.text(width - right + 10, cy + 4, f"{value:,.1f} {unit}", size=12, weight="600")
    return svg.render()


def _time_ticks(times: Sequence[float]) -> list[tuple[float, str]]:
    lo, hi = min(times), max(times)
    fmt = "%H:%M:%S" if hi - lo < 2 * 3600 else "%m-%d %H:%M" if hi - lo < 2 * 86400 \
        else "%Y-%m-%d"
    count = 1 if hi == lo else min(5, len(set(times)))
    marks = [lo] if count == 1 else [lo + (hi - lo) * k / (count - 1) for k in range(count)]
    return [(t, dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime(fmt)) for t in marks]


def trend_svg(trend: Trend, palette: Palette) -> str:
    timed = [(t.timestamp(), rid, date, values) for rid, t, date, values in trend.points if t]
    if len(timed) < 2:  # dates unreadable: one step per result, in the order given
        timed = [(float(i), rid, date, values)
                 for i, (rid, _t, date, values) in enumerate(trend.points)]
        ticks = [(float(i), date[:16]) for i, (_r, _t, date, _v) in enumerate(trend.points)]
    else:
        ticks = _time_ticks([t for t, *_ in timed])
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
        what = "startup" if kind in ("startup", "compare") else (
            f"image {_text(_dict(doc.get('parameters')).get('source')) or 'load'}"
            if kind == "image" else "iteration")
        lanes = [(_label(e), _totals(e), palette(_label(e))) for e in entries]
        plots.append((distribution_svg(lanes, f"{what} time per iteration (ms)"),
                      "Every iteration as a dot; box: quartiles; whiskers: 1.5 IQR; dark "
                      "line and figure on the right: median."))
    if kind == "memory":
        series = []
        for e in entries:
            pts = [(c, t / MIB, f"{_label(e)}: {c:g} containers, {t / MIB:,.1f} MiB")
                   for d in _dicts(e.get("density"))
                   if (c := _num(d.get("containers"))) is not None
                   and (t := _num(d.get("total_bytes"))) is not None]
            series.append((_label(e), palette(_label(e)), pts))
        top = max([p[0] for _, _, pts in series for p in pts] or [1.0])
        ticks = [(t, _tick_text(t, [0.0, 1.0])) for t in _ticks(0.0, top, min(int(top), 8) or 1)
                 if t == int(t)]
        plots.append((line_chart_svg(series, ticks, "running containers",
                                     "daemon + containers (MiB)"),
                      "The density line: memory of the daemon and the running containers "
                      "(shims + cgroups, PSS) as containers are added."))
    if kind == "disk":
        rows = [(_label(e), None if (v := _num(e.get("store_fs_bytes"))) is None else v / MIB,
                 palette(_label(e))) for e in entries]
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
