"""A fast index of the saved results: one summary per JSON file, cached beside the files.

The JSON files stay the source of truth. The cache, ``.index.sqlite`` in the results
directory, maps a file name to the ``(mtime_ns, size)`` it had when it was read and to what
was learnt from it: a :class:`ResultSummary` (everything ``forge results list``, ``trend`` and
``machines`` need) or the reason the file was skipped. Each scan lists the directory and stats
every file (no reads); a file whose mtime or size changed is read again, new files are read,
rows of removed files are dropped, all in one SQLite transaction, so a crash or a concurrent
scan leaves the old index or the new one, never a mix (the same promise as
``store.atomic_write_json`` gives result files).

The cache is an optimisation only: if it is corrupt it is rebuilt; if it cannot be opened or
written (a read-only directory, a lock held by another forge, a full disk) the scan reads the
files and carries on. A file that is not a forge result, is not valid JSON or has a newer schema
version is skipped with a reason, never fatal; skips are cached too (their reason is printed on
every scan), and the cache is dropped whenever this forge's schema version or the summary
format changes, so an upgraded forge re-reads what an older one had to skip.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - a dependency; without it the stdlib parses alone
    orjson = None  # type: ignore[assignment]

from forge_desktop.errors import ForgeError, StoreError, UsageError
from forge_desktop.results import document
from forge_desktop.results.document import Doc
from forge_desktop.results.schema import SCHEMA_VERSION, parse_iso, validate

INDEX_NAME = ".index.sqlite"
INDEX_FORMAT = 6  # 6: a fleet row names its hosts and their runtimes
"""Bump when :class:`ResultSummary` or :func:`summarize` changes: old caches are rebuilt.
4: non-finite or huge figures read as missing, control characters refused or made visible
(a cache of 3 may hold a NaN median that ``trend`` cannot draw). 5: figures read through
``results.document`` (an int beyond 64 bits reads as missing, as in the exports)."""
_USER_VERSION = INDEX_FORMAT * 1000 + SCHEMA_VERSION



def printable(text: str) -> str:
    """``text`` from a result file (or a file name) as a terminal may print it: every control
    or other non-printable character (ESC starts sequences that retitle the terminal or set the
    clipboard, OSC 52; U+202E reverses the text; a lone surrogate is not UTF-8) written as its
    Python escape, so a result from elsewhere shows what it holds and does nothing else."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True)
class ResultSummary:
    """What the index keeps of one result file.

    The scalar fields are columns of the cache; ``row_json`` (the result as ``forge results
    list --json`` prints it, headline included) and ``detail_json`` (``metrics``, ``setups``,
    ``environment``) stay JSON text until first used, so listing 10,000 results decodes only
    the rows it shows, and ``--json`` copies text. ``metrics`` holds, per runtime, the
    figures history works with: ``startup`` (median ms), ``daemon_memory`` (daemon PSS
    bytes), ``per_container_memory`` (bytes per running container) and ``disk`` (benchmark
    image plus one created container, bytes: the ``disk_mb`` target's figure)."""

    file: str
    id: str
    kind: str
    created_at: str
    created_ts: float
    complete: bool
    warnings: int
    errors: int
    host: str
    machine: str
    """``environment.machine_key``: host, CPU model, core count, memory size."""
    runtimes: tuple[str, ...]
    headline_unit: str
    row_json: str = field(repr=False, compare=False)
    detail_json: str = field(repr=False, compare=False)

    @cached_property
    def row(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.row_json)
        return value

    @property
    def headline(self) -> dict[str, float]:
        """Runtime -> the kind's headline figure in ``headline_unit``."""
        return self.row["headline"]["values"]  # type: ignore[no-any-return]

    @cached_property
    def _detail(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.detail_json)
        return value

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        return self._detail["metrics"]  # type: ignore[no-any-return]

    @property
    def setups(self) -> dict[str, str]:
        """Per runtime, how startup was timed (``network/via``): like is compared with like."""
        return self._detail["setups"]  # type: ignore[no-any-return]

    @property
    def environment(self) -> dict[str, Any]:
        """The fingerprint without the per-runtime part: os, kernel, arch, cpu_model,
        cpu_count, memory_total_bytes, cgroup_version."""
        return self._detail["environment"]  # type: ignore[no-any-return]

    def columns(self) -> tuple[Any, ...]:
        return (self.id, self.kind, self.created_at, self.created_ts, int(self.complete),
                self.warnings, self.errors, self.host, self.machine, _SEP.join(self.runtimes),
                self.headline_unit, self.row_json, self.detail_json)

    @classmethod
    def from_columns(cls, file: str, row: Sequence[Any]) -> ResultSummary:
        """Rebuild from the cache. Fills ``__dict__`` directly: a frozen dataclass's
        ``__init__`` costs one ``object.__setattr__`` per field, a third of a warm scan of
        10,000 rows."""
        (id_, kind, created_at, created_ts, complete, warnings, errors, host, machine,
         runtimes, unit, public, detail) = row
        if not (isinstance(id_, str) and isinstance(public, str)
                and isinstance(detail, str) and isinstance(created_ts, float)):
            raise ValueError("damaged index row")
        obj = object.__new__(cls)
        obj.__dict__.update(
            file=file, id=id_, kind=kind, created_at=created_at, created_ts=created_ts,
            complete=bool(complete), warnings=warnings, errors=errors, host=host,
            machine=machine, runtimes=tuple(runtimes.split(_SEP)) if runtimes else (),
            headline_unit=unit, row_json=public, detail_json=detail)
        return obj


_SEP = "\x1f"
_COLUMNS = ("id TEXT, kind TEXT, created_at TEXT, created_ts REAL, complete INTEGER, "
            "warnings INTEGER, errors INTEGER, host TEXT, machine TEXT, runtimes TEXT, "
            "headline_unit TEXT, row TEXT, detail TEXT")


@dataclass(frozen=True)
class Skipped:
    file: str
    reason: str

    def line(self) -> str:
        """The one warning line a command prints for this file."""
        return printable(f"skipping {self.file}: {self.reason}".replace("\n", " "))


@dataclass(frozen=True)
class Scan:
    directory: Path
    results: list[ResultSummary]
    """Newest first."""
    skipped: list[Skipped]
    cache: str
    """"used", "rebuilt" or why the cache could not be used (the scan read the files)."""

    def path_of(self, summary: ResultSummary) -> Path:
        return self.directory / summary.file


@functools.lru_cache(maxsize=256)
def machine_id(key: str) -> str:
    """A short stable name for a machine key (a hash: the key itself is long)."""
    return hashlib.sha1(key.encode()).hexdigest()[:8]


def results_dir(from_dir: str | Path | None = None) -> Path:
    """The default store, or a folder given with ``--from`` (which must exist)."""
    if from_dir is None:
        from forge_desktop.config import benchmarks_dir

        return benchmarks_dir()
    try:
        path = Path(from_dir).expanduser()
        is_dir = path.is_dir()
    except RuntimeError:  # "~nosuchuser/..."
        raise UsageError(f"--from {from_dir}: no such user's home") from None
    except OSError as exc:  # is_dir() raises for a name too long (ENAMETOOLONG), or EACCES
        raise UsageError(f"--from {from_dir}: {exc.strerror}") from None
    if not is_dir:
        raise UsageError(f"--from {from_dir}: no such directory")
    return path


# --- reading one document -------------------------------------------------------------------

def parse_created(text: str) -> float:
    """Epoch seconds of an ISO 8601 time; one without a zone is taken as UTC."""
    stamp = parse_iso(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    return stamp.timestamp()


def summarize(doc: Doc, file: str) -> ResultSummary:
    """The index row of a validated document; ValueError names what is malformed."""
    return ResultSummary.from_columns(file, summary_columns(doc, file))


def summary_columns(doc: Doc, file: str) -> tuple[Any, ...]:
    """:meth:`ResultSummary.columns` of a validated document, made without the summary (a
    cold scan stores the columns, and a warm one rebuilds summaries from them)."""
    from forge_desktop.results.environment import machine_key  # psutil: not on warm scans

    kind = doc["kind"]
    for key in ("id", "kind"):  # shown and typed everywhere: no escape sequence in them
        if not doc[key].isprintable():
            raise ValueError(f"{key} {printable(doc[key][:40])!r} holds control characters")
    try:
        created_ts = parse_created(doc["created_at"])
        # every list shows it in local time: a date datetime cannot show there (year 1 at
        # UTC-12 is year 0) is as unreadable as no date
        dt.datetime.fromtimestamp(created_ts).astimezone()
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"created_at {doc['created_at'][:40]!r} is not an ISO date in "
                         "range") from None
    env = document.mapping(doc.get("environment"))
    params = document.mapping(doc.get("parameters"))
    network = str(params.get("network") or "none")
    names: list[str] = []
    headline: dict[str, float] = {}
    metrics: dict[str, dict[str, float]] = {}
    setups: dict[str, str] = {}
    warnings = document.count(doc.get("like_for_like_warnings"))
    errors = 0
    for i, entry in enumerate(doc["runtimes"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("runtime"), str):
            raise ValueError(f"runtimes[{i}] has no runtime name")
        name = entry["runtime"]
        if not name.isprintable():
            raise ValueError(f"runtimes[{i}] name {printable(name[:40])!r} holds control "
                             "characters")
        names.append(name)
        warnings += document.count(entry.get("warnings"))
        if kind == "compare":
            for part in ("memory", "disk"):
                warnings += document.count(document.mapping(entry.get(part)).get("warnings"))
        errors += document.count(entry.get("errors"))
        if (value := document.headline_value(kind, entry)) is not None:
            headline[name] = value
        if found := document.metrics(kind, entry):
            metrics[name] = found
        if "startup" in found:
            setups[name] = f"{network}/{entry.get('via') or params.get('via') or 'api'}"
    brief = {k: env.get(k) for k in ("os", "kernel", "arch", "cpu_model", "cpu_count",
                                     "memory_total_bytes", "cgroup_version")}
    host, machine, unit = printable(str(env.get("host") or "unknown")), machine_key(env), \
        document.HEADLINE_UNITS.get(kind, "ms")
    if isinstance(remote := doc.get("host"), str):  # run there by `--host NAME`: its own row
        host, machine = printable(f"{remote} ({host})"), f"{machine}|{remote}"
    if kind == "fleet":  # its figures are its hosts' results; the row says who and what
        hosts = document.fleet_hosts(doc)
        host = printable("fleet: " + ", ".join(str(h.get("name")) for h in hosts))
        names = list(dict.fromkeys(str(rt) for h in hosts for rt in h.get("runtimes") or []
                                   if isinstance(rt, str) and rt.isprintable()))
    complete = doc.get("complete") is True
    public = {"id": doc["id"], "kind": kind, "created_at": doc["created_at"],
              "runtimes": names, "headline": {"unit": unit, "values": {
                  k: round(v, 4) for k, v in headline.items()}},
              "host": host, "machine": machine_id(machine), "complete": complete,
              "warnings": warnings, "errors": errors, "file": file}
    return (doc["id"], kind, doc["created_at"], created_ts, int(complete), warnings, errors,
            host, machine, _SEP.join(names), unit, json.dumps(public),
            _internal_json({"metrics": metrics, "setups": setups, "environment": brief}))


def _internal_json(value: dict[str, Any]) -> str:
    """JSON text only forge reads back (``detail_json``): orjson writes it several times
    faster; what it refuses (an int beyond 64 bits, a lone surrogate in a fingerprint read by
    the standard library) the standard library writes. ``row_json`` is printed by ``--json``
    and stays the standard library's text (ASCII, spaced)."""
    if orjson is not None:
        try:
            return orjson.dumps(value).decode()
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
    return json.dumps(value)


class Unreadable(StoreError):
    """The file could not be read (permissions, I/O): not its content's fault, not cached."""


def _read_all(fd: int, size: int) -> bytes:
    """Every byte of the file: one read of the size fstat saw, then on to the end should the
    file have grown meanwhile (its key then differs next time, and it is read again)."""
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return data
    chunks = [data]
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def read_document(path: str | Path) -> tuple[dict[str, Any], tuple[int, int]]:
    """Parse and validate one file; StoreError says why it is not a usable result. Also
    returns the ``(mtime_ns, size)`` of the bytes that were read (fstat on the same fd), so a
    file rewritten while we read it is read again next time."""
    try:  # os.read of the size fstat gives: no buffered reader, one read call
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            data = _read_all(fd, st.st_size)
        finally:
            os.close(fd)
    except OSError as exc:
        raise Unreadable(f"cannot read it ({exc.strerror or exc})") from None
    return validate(decode(data), "it"), (st.st_mtime_ns, st.st_size)


def decode(data: bytes) -> Any:
    """The JSON in ``data``; StoreError says why it is not JSON. orjson parses 2-3x faster
    than the standard library (README, dependency notes) but is stricter (no NaN, no lone
    surrogate, no int beyond 64 bits, UTF-8 only): what it refuses is parsed again by the
    standard library, so a file reads exactly as it always did, and a broken one gets the
    standard library's message."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise StoreError(f"not valid JSON ({exc.msg} at line {exc.lineno} column "
                         f"{exc.colno})") from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise StoreError(f"not valid JSON ({type(exc).__name__})") from None
    except ValueError as exc:  # an int of more than 4300 digits (sys.int_info): one bad file
        raise StoreError(f"not valid JSON ({str(exc).split(':')[0]})") from None


_Row = tuple[Any, ...]
"""name, mtime_ns, size, reason, then :meth:`ResultSummary.columns` (NULL when skipped)."""
_FIELDS = len(_COLUMNS.split(","))


def _file_row(directory: str, name: str) -> _Row:
    """The cache row of one file read now: name, mtime_ns, size, reason, then the summary's
    columns (NULL when skipped); mtime_ns and size None when it could not be read (I/O
    trouble: not cached, read again next time)."""
    path = os.path.join(directory, name)  # a str: no Path object made per file read
    try:
        doc, key = read_document(path)
    except Unreadable as exc:
        return (name, None, None, str(exc), *_NO_SUMMARY)
    except StoreError as exc:
        try:
            st = os.stat(path)
        except OSError:
            return (name, None, None, str(exc), *_NO_SUMMARY)
        return (name, st.st_mtime_ns, st.st_size, str(exc), *_NO_SUMMARY)
    try:
        return (name, *key, None, *summary_columns(doc, name))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return (name, *key, f"it is not a valid forge result: {exc}", *_NO_SUMMARY)


_NO_SUMMARY = (None,) * _FIELDS


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Reading thousands of files allocates millions of objects, and each few hundred
    allocations start a cyclic collection walking everything kept so far (a seventh of a
    cold scan). Nothing here makes a cycle (parsed JSON and rows are trees, freed by their
    reference counts), so the collector pauses until the rows are built."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


MAX_WORKERS = 2
"""More processes than this gain nothing on the machines forge measures (a laptop, a 2-4
core VM) while they start, and each pickles its rows back."""
PARALLEL_FROM = 256
"""Files to read before forking pays: a fork and a pickled answer cost a few ms."""


def _read_rows(where: str, names: list[str], workers: int | None) -> list[_Row]:
    """The rows of ``names``, read in ``workers`` forked processes when there are many.

    A cold index is parse-bound Python (orjson, then each summary): one interpreter uses one
    core, and in the window it also competes for the GIL with the Qt thread. So the files are
    shared out to forked children (no interpreter start, no import; the parent only waits on
    the pipes, the GIL free) that send their rows back pickled. The rows are the cache's, so
    the parent rebuilds each summary as a warm scan does. A child that fails (killed, out of
    memory) costs nothing but time: its share is read here."""
    if workers is None:
        workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if workers < 2 or len(names) < PARALLEL_FROM or not hasattr(os, "fork"):
        return [_file_row(where, n) for n in names]
    import pickle  # only on a cold scan: not on the CLI's start-up path

    # imported once here, not in each child, nor there while another thread of the window
    # may hold an import lock the fork would copy
    import forge_desktop.results.environment  # noqa: F401

    shares = [names[i::workers] for i in range(workers)]
    children: list[tuple[int, int, list[str]]] = []
    for share in shares:
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            children.append((-1, -1, share))
            continue
        if pid == 0:  # the child: read its share, write it, leave without cleanup handlers
            code = 1
            try:
                os.close(read_end)
                with os.fdopen(write_end, "wb") as out:
                    pickle.dump([_file_row(where, n) for n in share], out,
                                protocol=pickle.HIGHEST_PROTOCOL)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        children.append((pid, read_end, share))
    rows: list[_Row] = []
    for pid, read_end, share in children:
        got: list[_Row] | None = None
        if pid > 0:
            with os.fdopen(read_end, "rb") as pipe:
                data = pipe.read()
            _, status = os.waitpid(pid, 0)
            if status == 0:
                with contextlib.suppress(pickle.UnpicklingError, EOFError, ValueError):
                    got = pickle.loads(data)
        rows += got if got is not None else [_file_row(where, n) for n in share]
    return rows


# --- the cache ------------------------------------------------------------------------------



class _Cache:
    """The SQLite file. Every method swallows sqlite errors: callers fall back to files."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    @classmethod
    def open(cls, path: Path) -> tuple[_Cache | None, dict[str, _Row], str]:
        for attempt in (1, 2):
            con: sqlite3.Connection | None = None
            try:
                con = sqlite3.connect(path, timeout=0.5, isolation_level=None)
                version = con.execute("PRAGMA user_version").fetchone()[0]
                if version != _USER_VERSION:
                    cls._create(con)
                    with contextlib.suppress(OSError):
                        os.chmod(path, 0o600)  # like the result files
                    note = "rebuilt"
                else:
                    note = "used"
                rows = {r[0]: r for r in con.execute("SELECT * FROM files")}
                return cls(con), rows, note
            except sqlite3.DatabaseError as exc:
                if con is not None:
                    con.close()
                # Corrupt, foreign, half-created: it is only a cache, so start it again.
                # Not when another forge holds the lock: that one is rebuilding it.
                if attempt == 1 and "locked" not in str(exc) and path.is_file():
                    try:
                        path.unlink()
                    except OSError:
                        pass
                    else:
                        continue
                return None, {}, f"not used ({exc})"
        return None, {}, "not used"  # pragma: no cover - the loop always returns

    @staticmethod
    def _create(con: sqlite3.Connection) -> None:
        con.execute("BEGIN IMMEDIATE")
        con.execute("DROP TABLE IF EXISTS files")
        con.execute("CREATE TABLE files (name TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, "
                    f"size INTEGER NOT NULL, reason TEXT, {_COLUMNS})")
        con.execute(f"PRAGMA user_version = {_USER_VERSION}")
        con.execute("COMMIT")

    def update(self, rows: Iterable[_Row], removed: Iterable[str]) -> str | None:
        try:
            self.con.execute("BEGIN IMMEDIATE")
            marks = ", ".join("?" * (4 + _FIELDS))
            self.con.executemany(f"INSERT OR REPLACE INTO files VALUES ({marks})", rows)
            self.con.executemany("DELETE FROM files WHERE name = ?", ((n,) for n in removed))
            self.con.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self.con.execute("ROLLBACK")
            return f"not updated ({exc})"
        return None

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.con.close()


def _list_files(directory: Path) -> dict[str, tuple[int, int]]:
    """Result files (``*.json``, not hidden: the store's temp files start with a dot)."""
    found: dict[str, tuple[int, int]] = {}
    try:
        entries = os.scandir(directory)
    except FileNotFoundError:
        return found
    except OSError as exc:
        raise StoreError(f"cannot list {directory}: {exc.strerror or exc}") from None
    with entries:
        for e in entries:
            if not e.name.endswith(".json") or e.name.startswith("."):
                continue
            try:
                if not e.is_file():
                    continue
                st = e.stat()
            except OSError:
                continue  # removed while we list
            found[e.name] = (st.st_mtime_ns, st.st_size)
    return found


def scan(directory: Path, *, use_cache: bool = True, workers: int | None = None) -> Scan:
    """Every result in ``directory`` (newest first) and every file skipped, with the reason.
    ``workers``: processes that read the files the cache does not know (None: one per CPU,
    at most :data:`MAX_WORKERS`); see :func:`_read_rows`."""
    files = _list_files(directory)
    cache: _Cache | None = None
    cached: dict[str, _Row] = {}
    note = "not used"
    if use_cache and files:
        cache, cached, note = _Cache.open(directory / INDEX_NAME)
    results: list[ResultSummary] = []
    skipped: list[Skipped] = []
    fresh: list[_Row] = []
    unread: list[str] = []
    for name, key in files.items():
        try:  # a name that is not UTF-8 (surrogate-escaped) cannot go into SQLite, nor out
            name.encode()
        except UnicodeEncodeError:
            skipped.append(Skipped(name, "its name is not valid UTF-8; rename it"))
            continue
        row = cached.get(name)
        if row is not None and (row[1], row[2]) == key:
            if row[3] is not None:
                skipped.append(Skipped(name, row[3]))
                continue
            try:
                results.append(ResultSummary.from_columns(name, row[4:]))
                continue
            except (ValueError, TypeError, AttributeError):
                pass  # a damaged row: read the file again
        unread.append(name)
    with _no_cyclic_gc():
        for row in _read_rows(str(directory), unread, workers):
            name, reason = row[0], row[3]
            if reason is None:
                results.append(ResultSummary.from_columns(name, row[4:]))
            else:
                skipped.append(Skipped(name, reason))
            if row[1] is not None:  # no key: an I/O error, not the content's fault: not cached
                fresh.append(row)
    if cache is not None:
        removed = [n for n in cached if n not in files]
        if fresh or removed:
            note = cache.update(fresh, removed) or note
        cache.close()
    results.sort(key=lambda s: (s.created_ts, s.id), reverse=True)
    skipped.sort(key=lambda s: s.file)
    return Scan(directory, results, skipped, note)


# --- finding one result ---------------------------------------------------------------------

def find(results: Iterable[ResultSummary], text: str) -> ResultSummary:
    """A result by id, a unique id prefix, or its file name."""
    return document.resolve_id(text, list(results), _names)


def _names(summary: ResultSummary) -> tuple[str, ...]:
    return summary.id, summary.file.removesuffix(".json")


def load(scan_: Scan, summary: ResultSummary) -> dict[str, Any]:
    """The full document behind a summary."""
    try:
        doc, _key = read_document(scan_.path_of(summary))
    except ForgeError as exc:
        raise StoreError(f"cannot read {summary.file}: {exc}") from None
    return doc
