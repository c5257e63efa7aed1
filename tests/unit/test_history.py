"""Results as history, on generated result files in a temporary FORGE_HOME: the index and its
cache, filters, --since, change points, the regression check, trends and machines.

The CLI runs in process (``forge_desktop.cli.main``) so exit codes and the stdout/stderr split
are checked as a user sees them, without a subprocess per case.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import sqlite3
import statistics
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from forge_desktop.bench import stats
from forge_desktop.cli import main
from forge_desktop.errors import StoreError, UsageError
from forge_desktop.results import index as index_mod
from forge_desktop.results import store
from forge_desktop.results.history import (
    CheckRow,
    change_points,
    decide,
    machines,
    parse_since,
    run_check,
    select,
    size_row,
    startup_row,
    trend,
)
from forge_desktop.results.index import INDEX_NAME, find, scan, summarize
from forge_desktop.results.schema import SCHEMA_VERSION

MIB = 1024 * 1024
T0 = dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.timezone.utc)
VM = {"host": "vm", "cpu_model": "AMD EPYC", "cpu_count": 2,
      "memory_total_bytes": 25_276_502_016}
LAPTOP = {"host": "laptop", "cpu_model": "Intel i7-1185G7", "cpu_count": 8,
          "memory_total_bytes": 16_505_540_608}


# --- generating results in the shapes real runs save ----------------------------------------

def _stats(xs: Sequence[float]) -> dict[str, Any]:
    return {"n": len(xs), "median_ms": statistics.median(xs), "mean_ms": statistics.fmean(xs),
            "stdev_ms": statistics.stdev(xs) if len(xs) > 1 else 0.0, "min_ms": min(xs),
            "max_ms": max(xs), "p95_ms": max(xs), "ci95_ms": [min(xs), max(xs)],
            "outliers": 0}


def _startup_entry(name: str, totals: Sequence[float], via: str = "api") -> dict[str, Any]:
    engine = name in ("docker", "podman")
    samples = []
    for t in totals:
        phases = ({"create": t * 0.05, "start": t * 0.7, "wait": t * 0.2, "remove": t * 0.05}
                  if engine else {"run": t})
        samples.append({"total_ms": round(t, 4), "phases_ms": phases,
                        **({"to_exec_ms": t * 0.75} if engine else {})})
    return {"runtime": name, "kind": "engine" if engine else "oci", "version": "1.0",
            "via": via if engine else "command", "samples": samples, "stats": _stats(totals),
            "phase_medians_ms": {}, "warnings": [], "errors": []}


def _memory_entry(name: str, daemon: int | None, per: int) -> dict[str, Any]:
    return {"runtime": name, "kind": "engine", "version": "1.0", "containers": 3,
            "warnings": [], "errors": [], "daemon_rss_bytes": daemon,
            "daemon_pss_bytes": daemon, "per_container_parts": {}, "per_container_bytes": per,
            "density": [{"containers": 0, "daemon_pss_bytes": daemon or 0,
                         "shims_pss_bytes": 0, "cgroups_bytes": 0, "total_bytes": daemon or 0}],
            "density_slope_bytes": per,
            "samples": [{"t_s": 0.0, "daemon_pss_bytes": daemon or 0, "shims_pss_bytes": per,
                         "cgroups_bytes": 0, "total_bytes": (daemon or 0) + per}]}


def _disk_entry(name: str, image: int, per: int) -> dict[str, Any]:
    return {"runtime": name, "kind": "engine", "version": "1.0", "images_bytes": image,
            "per_container_bytes": per, "benchmark_image_bytes": image,
            "store_path": f"/var/lib/{name}", "warnings": [], "errors": []}


def make_doc(kind: str, when: dt.datetime, *, machine: dict[str, Any] | None = None,
             startup: dict[str, Sequence[float]] | None = None,
             memory: dict[str, tuple[int | None, int]] | None = None,
             disk: dict[str, tuple[int, int]] | None = None, via: str = "api",
             run_id: str | None = None, complete: bool = True) -> dict[str, Any]:
    env = {**(machine or VM), "os": "Debian GNU/Linux 12", "kernel": "6.1", "arch": "x86_64",
           "cgroup_version": "v2", "python_version": "3.11.7", "forge_version": "0.1.0",
           "runtimes": {}, "network_mode": "none"}
    names = sorted({*(startup or {}), *(memory or {}), *(disk or {})})
    entries = []
    for name in names:
        if kind in ("startup", "compare"):
            entry = _startup_entry(name, (startup or {})[name], via)
            if kind == "compare":
                m, d = (memory or {}).get(name), (disk or {}).get(name)
                entry["memory"] = _memory_entry(name, *m) if m else None
                entry["disk"] = _disk_entry(name, *d) if d else None
        elif kind == "memory":
            entry = _memory_entry(name, *(memory or {})[name])
        else:
            entry = _disk_entry(name, *(disk or {})[name])
        entries.append(entry)
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "id": run_id or f"{stamp}-{kind[:3]}{len(names)}",
        "kind": kind,
        "created_at": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "complete": complete, "environment": env,
        "parameters": {"iterations": 10, "warmup": 2, "network": "none", "image": "busybox",
                       "via": via, "command": ["true"]},
        "runtimes": entries}
    if kind == "compare":
        doc["comparison"] = {"baseline": names[0], "alpha": 0.05, "ratios": []}
        doc["like_for_like_warnings"] = []
    return doc


def save(home: Path, doc: dict[str, Any]) -> Path:
    return store.save(doc, home / "benchmarks")


def normal(rng: random.Random, mu: float, sd: float, n: int = 10) -> list[float]:
    return [max(1.0, rng.gauss(mu, sd)) for _ in range(n)]


def forge(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else 0), out, err


def one_line_error(code: int, out: str, err: str, expected: int, *needles: str) -> None:
    assert code == expected, (code, out, err)
    assert out == ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("forge: error: "), err
    for needle in needles:
        assert needle.lower() in lines[0].lower(), lines[0]


@pytest.fixture
def history(forge_home: Path) -> dict[str, dict[str, Any]]:
    """Four kinds over four days on one machine."""
    rng = random.Random(1)
    docs = {
        "startup": make_doc("startup", T0, startup={"docker": normal(rng, 300, 10),
                                                    "podman": normal(rng, 200, 8)}),
        "memory": make_doc("memory", T0 + dt.timedelta(days=1),
                           memory={"docker": (130 * MIB, 12 * MIB)}),
        "disk": make_doc("disk", T0 + dt.timedelta(days=2),
                         disk={"runc": (2 * MIB, 8192)}),
        "compare": make_doc("compare", T0 + dt.timedelta(days=3),
                            startup={"docker": normal(rng, 310, 10),
                                     "runc": normal(rng, 40, 2)},
                            memory={"docker": (131 * MIB, 12 * MIB)},
                            disk={"docker": (2 * MIB, 100_000)}),
    }
    for doc in docs.values():
        save(forge_home, doc)
    return docs


# --- list and its filters -------------------------------------------------------------------

def ids(out: str) -> list[str]:
    return [row["id"] for row in json.loads(out)]


def test_list_newest_first_with_headlines(history: dict[str, dict[str, Any]],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = forge(capsys, "results", "list", "--json")
    assert code == 0 and err == ""
    rows = json.loads(out)
    assert [r["kind"] for r in rows] == ["compare", "disk", "memory", "startup"]
    by_kind = {r["kind"]: r for r in rows}
    startup = by_kind["startup"]["headline"]
    assert startup["unit"] == "ms" and set(startup["values"]) == {"docker", "podman"}
    assert startup["values"]["docker"] == pytest.approx(
        history["startup"]["runtimes"][0]["stats"]["median_ms"], abs=1e-3)
    assert by_kind["memory"]["headline"] == {"unit": "MiB", "values": {"docker": 12.0}}
    assert by_kind["disk"]["headline"] == {"unit": "KiB", "values": {"runc": 8.0}}
    assert by_kind["compare"]["runtimes"] == ["docker", "runc"]
    assert {r["host"] for r in rows} == {"vm"} and len({r["machine"] for r in rows}) == 1

    code, out, _ = forge(capsys, "results", "list")
    assert code == 0
    lines = out.splitlines()
    assert "Date" in out and "Headline" in out and "Machine" in out
    first = next(ln for ln in lines if history["compare"]["id"] in ln)
    last = next(ln for ln in lines if history["startup"]["id"] in ln)
    assert lines.index(first) < lines.index(last)  # newest first
    assert "podman 200" in out or "podman 19" in out or "podman 20" in out
    assert "12.0 MiB" in out and "KiB" in out and "complete" in out


@pytest.mark.parametrize("args, kinds", [
    (["--kind", "startup"], ["startup"]),
    (["--runtime", "runc"], ["compare", "disk"]),
    (["--runtime", "docker", "--kind", "memory"], ["memory"]),
    (["--since", "2026-10-03"], None),
    (["--limit", "2"], ["compare", "disk"]),
    (["--runtime", "crun"], []),
])
def test_list_filters(history: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str],
                      args: list[str], kinds: list[str] | None) -> None:
    code, out, _ = forge(capsys, "results", "list", "--json", *args)
    assert code == 0
    got = [r["kind"] for r in json.loads(out)]
    if kinds is None:  # --since a local date: the results on or after that local midnight
        since = dt.datetime(2026, 10, 3).astimezone().timestamp()
        kinds = [d["kind"] for d in sorted(history.values(), key=lambda d: d["created_at"],
                                           reverse=True)
                 if index_mod.parse_created(d["created_at"]) >= since]
    assert got == kinds


def test_table_limit_and_empty_store(forge_home: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = forge(capsys, "results", "list")
    assert code == 0 and "no results yet" in out and err == ""
    assert forge(capsys, "results", "list", "--json")[1] == "[\n]\n"
    assert not (forge_home / "benchmarks").exists()  # listing creates nothing
    for i in range(25):
        save(forge_home, make_doc("disk", T0 + dt.timedelta(hours=i),
                                  disk={"runc": (MIB, 4096 * (i + 1))}))
    code, out, _ = forge(capsys, "results", "list")
    assert "20 of 25" in out and out.count("runc") >= 20
    code, out, _ = forge(capsys, "results", "list", "--limit", "3")
    assert "3 of 25" in out
    assert len(json.loads(forge(capsys, "results", "list", "--json")[1])) == 25


def test_parse_since() -> None:
    now = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc)
    assert parse_since("7d", now) == (now - dt.timedelta(days=7)).timestamp()
    assert parse_since("24h", now) == (now - dt.timedelta(hours=24)).timestamp()
    assert parse_since("30m", now) == (now - dt.timedelta(minutes=30)).timestamp()
    assert parse_since("2w", now) == (now - dt.timedelta(weeks=2)).timestamp()
    assert parse_since("1.5d", now) == (now - dt.timedelta(hours=36)).timestamp()
    assert parse_since("2026-11-01") == dt.datetime(2026, 11, 1).astimezone().timestamp()
    assert parse_since("2026-11-01T08:30:00Z") == dt.datetime(
        2026, 11, 1, 8, 30, tzinfo=dt.timezone.utc).timestamp()
    for bad in ("yesterdayish", "7 days", "", "-3d", "2026-13-01", "d7"):
        with pytest.raises(UsageError, match="--since must be"):
            parse_since(bad, now)


@pytest.mark.parametrize("args, code, needle", [
    (["list", "--since", "yesterdayish"], 2, "--since must be a date"),
    (["list", "--limit", "0"], 2, "--limit must be at least 1"),
    (["list", "--kind", "speed"], 2, "--kind must be one of"),
    (["trend", "--metric", "speed"], 2, "--metric must be one of"),
    (["trend", "--limit", "-1"], 2, "--limit must be at least 1"),
    (["check", "--max-regression", "-5"], 2, "--max-regression must be a positive"),
    (["check", "--max-regression", "0"], 2, "--max-regression must be a positive"),
    (["check", "--last", "0"], 2, "--last must be at least 1"),
    (["check", "--last", "3", "--baseline", "x"], 2, "not both"),
    (["check", "--baseline", "nope"], 1, "no result with id nope"),
    (["show", "nope"], 1, "no result with id nope; `forge results list` shows the ids"),
    (["show", "2026"], 2, "matches 4 results"),
    (["list", "--from", "/nonexistent/forge"], 2, "no such directory"),
])
def test_bad_input_is_one_line(history: dict[str, dict[str, Any]],
                               capsys: pytest.CaptureFixture[str], args: list[str], code: int,
                               needle: str) -> None:
    one_line_error(*forge(capsys, "results", *args), code, needle)


@pytest.mark.parametrize("config, needle", [
    ("[check]\nalpha = 2\n", "check.alpha must be between 1e-09 and 0.5, got 2"),
    ("[check]\nfloor = 10\n", "[check] has no setting 'floor'"),
    ("check = 3\n", "[check] must be a table"),
])
def test_bad_check_config_is_one_line(history: dict[str, dict[str, Any]], forge_home: Path,
                                      capsys: pytest.CaptureFixture[str], config: str,
                                      needle: str) -> None:
    (forge_home / "config.toml").write_text(config)
    one_line_error(*forge(capsys, "results", "check"), 2, needle)


# --- the index ------------------------------------------------------------------------------

def test_index_picks_up_changed_added_and_removed_files(
        history: dict[str, dict[str, Any]], forge_home: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    bench = forge_home / "benchmarks"
    first = scan(bench)
    assert len(first.results) == 4 and first.cache == "rebuilt"
    assert (bench / INDEX_NAME).is_file()

    reads: list[Path] = []
    real = index_mod.read_document

    def counting(path: str | Path) -> Any:
        reads.append(Path(path))
        return real(path)

    monkeypatch.setattr(index_mod, "read_document", counting)
    warm = scan(bench)
    assert warm.cache == "used" and reads == []  # nothing re-read
    assert [s.id for s in warm.results] == [s.id for s in first.results]

    # modified: a new median, written the store's way (a new file renamed over the old)
    doc = history["memory"]
    doc["runtimes"][0]["per_container_bytes"] = 20 * MIB
    path = save(forge_home, doc)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    # added
    added = make_doc("startup", T0 + dt.timedelta(days=9), startup={"runc": [40, 41, 42]})
    save(forge_home, added)
    # removed
    (bench / f"{history['disk']['id']}.json").unlink()

    after = scan(bench)
    assert sorted(p.name for p in reads) == sorted([path.name, f"{added['id']}.json"])
    got = {s.id: s for s in after.results}
    assert set(got) == {history["startup"]["id"], history["memory"]["id"],
                        history["compare"]["id"], added["id"]}
    assert got[history["memory"]["id"]].headline == {"docker": 20.0}
    assert after.results[0].id == added["id"]
    rows = sqlite3.connect(bench / INDEX_NAME).execute("SELECT name FROM files").fetchall()
    assert sorted(r[0] for r in rows) == sorted(f"{i}.json" for i in got)


def test_same_size_rewrite_is_seen_by_mtime(forge_home: Path) -> None:
    doc = make_doc("disk", T0, disk={"runc": (MIB, 4096)})
    path = save(forge_home, doc)
    assert scan(path.parent).results[0].headline == {"runc": 4.0}
    path.write_text(path.read_text().replace('"per_container_bytes": 4096',
                                             '"per_container_bytes": 8192'))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000))
    assert scan(path.parent).results[0].headline == {"runc": 8.0}


def _bad_files(bench: Path) -> dict[str, str]:
    newer = {"schema_version": SCHEMA_VERSION + 1, "id": "x", "kind": "startup",
             "created_at": "2027-01-01T00:00:00Z", "runtimes": []}
    files = {
        "corrupt.json": '{"schema_version": 1, "id": "trunc',
        "foreign.json": json.dumps({"name": "some other tool", "version": 3}),
        "array.json": "[1, 2, 3]",
        "newer.json": json.dumps(newer),
        "baddate.json": json.dumps({"schema_version": 1, "id": "d", "kind": "startup",
                                    "created_at": "last tuesday", "runtimes": []}),
        "badentry.json": json.dumps({"schema_version": 1, "id": "e", "kind": "startup",
                                     "created_at": "2026-10-01T00:00:00Z",
                                     "runtimes": ["docker"]}),
        "binary.json": "\udcff",
    }
    for name, text in files.items():
        (bench / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    (bench / "notes.txt").write_text("not a result, not a .json: ignored silently")
    (bench / ".20261001T000000Z-abc.json.1234.tmp").write_text("{half")
    return {"corrupt.json": "not valid JSON", "foreign.json": "no schema_version",
            "array.json": "expected a JSON object",
            "newer.json": f"schema version {SCHEMA_VERSION + 1}, newer than this forge",
            "baddate.json": "not an ISO date", "badentry.json": "runtimes[0] has no runtime",
            "binary.json": "not valid JSON"}


def test_corrupt_foreign_and_newer_files_are_skipped_with_one_warning_each(
        history: dict[str, dict[str, Any]], forge_home: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    expected = _bad_files(forge_home / "benchmarks")
    for run in ("cold", "warm"):
        code, out, err = forge(capsys, "results", "list", "--json")
        assert code == 0, run
        assert len(json.loads(out)) == 4  # every good result still listed
        lines = err.splitlines()
        assert len(lines) == len(expected), (run, err)
        for name, reason in expected.items():
            (line,) = [ln for ln in lines if f"skipping {name}:" in ln]
            assert line.startswith("warning: skipping ") and reason in line, line
        assert "notes.txt" not in err and ".tmp" not in err


def test_corrupt_index_is_rebuilt(history: dict[str, dict[str, Any]], forge_home: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    bench = forge_home / "benchmarks"
    (bench / INDEX_NAME).write_bytes(b"this is not a database" * 100)
    code, out, err = forge(capsys, "results", "list", "--json")
    assert code == 0 and err == "" and len(json.loads(out)) == 4
    assert scan(bench).cache == "used"  # rebuilt by the listing above
    os.remove(bench / INDEX_NAME)
    with sqlite3.connect(bench / INDEX_NAME) as con:  # right version, no table
        con.execute(f"PRAGMA user_version = {index_mod._USER_VERSION}")
    assert len(scan(bench).results) == 4 and scan(bench).cache == "used"


def test_damaged_index_row_is_read_again(history: dict[str, dict[str, Any]],
                                         forge_home: Path) -> None:
    bench = forge_home / "benchmarks"
    scan(bench)
    with sqlite3.connect(bench / INDEX_NAME) as con:
        con.execute("UPDATE files SET row = NULL, created_ts = 'x'")
    assert len(scan(bench).results) == 4


def test_unusable_index_falls_back_to_the_files(history: dict[str, dict[str, Any]],
                                                forge_home: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bench = forge_home / "benchmarks"
    (bench / INDEX_NAME).mkdir()  # cannot be opened as a database at all
    code, out, err = forge(capsys, "results", "list", "--json")
    assert code == 0 and err == "" and len(json.loads(out)) == 4
    assert scan(bench).cache.startswith("not used")


def test_unwritable_index_falls_back_to_the_files(history: dict[str, dict[str, Any]],
                                                  forge_home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only FORGE_HOME (we run as root in CI, so chmod proves nothing): every write
    to the cache fails as SQLite fails on a read-only file."""
    bench = forge_home / "benchmarks"
    scan(bench)
    save(forge_home, make_doc("disk", T0 + dt.timedelta(days=30), disk={"runc": (MIB, 1)}))
    real_connect = sqlite3.connect

    class ReadOnly:
        def __init__(self, con: sqlite3.Connection) -> None:
            self.con = con

        def execute(self, sql: str, *args: Any) -> Any:
            if sql.split()[0].upper() in ("BEGIN", "INSERT", "DELETE", "CREATE", "DROP"):
                raise sqlite3.OperationalError("attempt to write a readonly database")
            return self.con.execute(sql, *args)

        def executemany(self, sql: str, *args: Any) -> Any:
            raise sqlite3.OperationalError("attempt to write a readonly database")

        def close(self) -> None:
            self.con.close()

    monkeypatch.setattr(sqlite3, "connect",
                        lambda *a, **k: ReadOnly(real_connect(*a, **k)))
    result = scan(bench)
    assert len(result.results) == 5 and result.cache.startswith("not updated")
    os.remove(bench / INDEX_NAME)  # and with no index at all, none can be created
    result = scan(bench)
    assert len(result.results) == 5 and result.cache.startswith("not used")


def test_find_by_prefix() -> None:
    docs = [make_doc("disk", T0 + dt.timedelta(minutes=i), disk={"runc": (1, 1)},
                     run_id=f"20261001T12{i:02d}00Z-abc{i}") for i in range(3)]
    results = [summarize(d, f"{d['id']}.json") for d in docs]
    assert find(results, "20261001T1201").id == "20261001T120100Z-abc1"
    assert find(results, "20261001T120200Z-abc2.json").id == "20261001T120200Z-abc2"
    with pytest.raises(UsageError, match="matches 3 results"):
        find(results, "2026")
    with pytest.raises(StoreError, match="no result with id zz"):
        find(results, "zz")


# --- change points --------------------------------------------------------------------------

def noisy(rng: random.Random, level: float, n: int, sd: float = 0.02) -> list[float]:
    return [level * (1 + rng.gauss(0, sd)) for _ in range(n)]


def test_change_points_on_synthetic_series() -> None:
    rng = random.Random(7)
    flat = noisy(rng, 100, 40)
    assert change_points(flat) == []
    step_up = noisy(rng, 100, 12) + noisy(rng, 130, 12)
    (cp,) = change_points(step_up)
    assert cp.index == 12 and 25 < cp.change_pct < 35 and cp.reference == pytest.approx(
        100, rel=0.05)
    step_down = noisy(rng, 200, 10) + noisy(rng, 150, 10)
    assert [c.index for c in change_points(step_down)] == [10]
    assert change_points(step_down)[0].change_pct < -20
    two_steps = noisy(rng, 100, 8) + noisy(rng, 140, 8) + noisy(rng, 100, 8)
    assert [c.index for c in change_points(two_steps)] == [8, 16]


def test_change_point_thresholds() -> None:
    quiet = [100.0, 100.1, 99.9, 100.0, 100.05, 103.0, 103.1, 102.9]
    assert change_points(quiet) == []  # far beyond 3 MADs, but only 3%: below the 10% floor
    noisy_series = [100, 60, 140, 80, 120, 90, 115, 85, 125]
    assert change_points([float(x) for x in noisy_series]) == []  # 3 MADs: noise, not change
    spike = [100.0] * 6 + [180.0] + [100.0] * 6
    assert [c.index for c in change_points(spike)] == [6]
    assert change_points([100.0, 100.0, 150.0]) == []  # too little history to judge
    assert [c.index for c in change_points([100.0, 100.0, 100.0, 150.0])] == [3]
    assert [c.index for c in change_points([0.0, 0.0, 0.0, 5.0])] == [3]


# --- trend ----------------------------------------------------------------------------------

def test_trend_series_per_machine_and_runtime(forge_home: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(3)
    for i in range(12):
        level = 100 if i < 6 else 140
        kind = "startup" if i % 3 else "compare"
        save(forge_home, make_doc(kind, T0 + dt.timedelta(days=i),
                                  startup={"docker": noisy(rng, level * 3, 5),
                                           "runc": noisy(rng, 40, 5)},
                                  memory={"docker": (130 * MIB, 12 * MIB)},
                                  disk={"docker": (2 * MIB, 4096)}))
        save(forge_home, make_doc("startup", T0 + dt.timedelta(days=i, hours=1),
                                  machine=LAPTOP, startup={"docker": noisy(rng, 90, 5)}))
    save(forge_home, make_doc("startup", T0 + dt.timedelta(days=20), via="cli",
                              startup={"docker": noisy(rng, 500, 5)}))
    code, out, err = forge(capsys, "results", "trend", "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["metric"] == "startup" and doc["unit"] == "ms" and "MAD" in doc["method"]
    keys = {(s["host"], s["runtime"], s["setup"]): s for s in doc["series"]}
    assert set(keys) == {("vm", "docker", "none/api"), ("vm", "runc", "none/command"),
                         ("laptop", "docker", "none/api"), ("vm", "docker", "none/cli")}
    vm_docker = keys[("vm", "docker", "none/api")]
    assert len(vm_docker["points"]) == 12
    assert {p["kind"] for p in vm_docker["points"]} == {"startup", "compare"}
    assert [p["change_point"] for p in vm_docker["points"]].index(True) == 6
    assert [c["index"] for c in vm_docker["change_points"]] == [6]
    assert keys[("vm", "runc", "none/command")]["change_points"] == []
    stamps = [p["created_at"] for p in vm_docker["points"]]
    assert stamps == sorted(stamps)  # oldest first

    code, out, _ = forge(capsys, "results", "trend", "--metric", "per_container_memory",
                         "--json")
    (series,) = json.loads(out)["series"]  # from the compare results only
    assert series["runtime"] == "docker" and len(series["points"]) == 4
    assert series["points"][0]["value"] == 12.0
    code, out, _ = forge(capsys, "results", "trend", "--runtime", "runc")
    assert code == 0 and "runc" in out and "docker" not in out
    code, out, _ = forge(capsys, "results", "trend", "--runtime", "docker")
    assert "▲ +" in out and "change point" in out and "laptop" in out


def test_trend_pure_function_uses_every_kind_with_the_metric() -> None:
    docs = [make_doc("memory", T0, memory={"docker": (100 * MIB, 10 * MIB)}),
            make_doc("compare", T0 + dt.timedelta(hours=1), startup={"docker": [300.0]},
                     memory={"docker": (110 * MIB, 11 * MIB)}),
            make_doc("disk", T0 + dt.timedelta(hours=2), disk={"docker": (2 * MIB, MIB)})]
    results = [summarize(d, f"{d['id']}.json") for d in docs]
    (daemon,) = trend(results, "daemon_memory")
    assert [p.value for p in daemon.points] == [100.0, 110.0]
    (disk,) = trend(results, "disk")
    assert [p.value for p in disk.points] == [3.0]
    (startup,) = trend(results, "startup")
    assert [p.kind for p in startup.points] == ["compare"]


# --- check ----------------------------------------------------------------------------------

def _history_with_current(forge_home: Path, current_mu: float, seed: int,
                          **extra: Any) -> None:
    rng = random.Random(seed)
    for i in range(6):
        save(forge_home, make_doc("startup", T0 + dt.timedelta(days=i),
                                  startup={"docker": normal(rng, 300, 9),
                                           "runc": normal(rng, 40, 1.2)}))
    save(forge_home, make_doc("startup", T0 + dt.timedelta(days=7), **extra,
                              startup={"docker": normal(rng, current_mu, current_mu * 0.03),
                                       "runc": normal(rng, 40, 1.2)}))


def test_check_flags_a_30_percent_startup_regression(forge_home: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    _history_with_current(forge_home, 390, seed=11)
    code, out, err = forge(capsys, "results", "check")
    assert code == 3, out + err
    assert "regression: startup on docker is" in out and "% slower" in out
    assert "runc" in out  # checked, not flagged
    code, out, _ = forge(capsys, "results", "check", "--json")
    assert code == 3
    report = json.loads(out)
    assert report["regressed"]
    # the whole distribution moved: its tail with it
    assert [(r["metric"], r["runtime"]) for r in report["regressions"]] == [
        ("startup", "docker"), ("startup_p95", "docker")]
    rows = {r["runtime"]: r for r in report["rows"] if r["metric"] == "startup"}
    docker = rows["docker"]
    assert docker["status"] == "regression" and 25 < docker["change_pct"] < 35
    assert docker["reason"] == "regression" and docker["p_adjusted"] < 0.001
    assert docker["ci"][0] > 1.1  # the 99.9% interval wholly beyond the 10% floor
    # BH over the four startup rows (median and p95 of two runtimes) together
    tested = [r for r in report["rows"] if r["p_value"] is not None]
    assert len(tested) == 4
    assert docker["p_adjusted"] == pytest.approx(stats.benjamini_hochberg(
        [r["p_value"] for r in tested])[tested.index(docker)])
    assert docker["drift_sessions"] == 6  # every earlier session measured the drift
    assert docker["n_current"] == 10 and docker["n_baseline"] == 50  # previous 5, pooled
    assert len(docker["baseline_ids"]) == 5
    assert rows["runc"]["status"] == "ok" and rows["runc"]["reason"] == "below floor"
    assert report["alpha"] == 0.001 and report["max_regression_pct"] == 10
    # a floor above the slowdown: not big enough to count
    code, out, _ = forge(capsys, "results", "check", "--max-regression", "40", "--json")
    assert code == 0 and json.loads(out)["rows"][0]["reason"] == "below floor"
    # the floor and alpha from config.toml; the command line wins
    (forge_home / "config.toml").write_text("[check]\nmax_regression_pct = 40\n")
    assert forge(capsys, "results", "check")[0] == 0
    assert forge(capsys, "results", "check", "--max-regression", "10")[0] == 3
    (forge_home / "config.toml").write_text("[check]\nalpha = 1e-9\n")
    code, out, _ = forge(capsys, "results", "check", "--json")
    assert code == 0 and json.loads(out)["rows"][0]["reason"] == "not significant"
    (forge_home / "config.toml").unlink()
    # only the previous 2 results as the baseline
    code, out, _ = forge(capsys, "results", "check", "--last", "2", "--json")
    assert code == 3 and json.loads(out)["rows"][0]["n_baseline"] == 20


def _tail_history(forge_home: Path, seed: int, slow_share: float) -> list[dict[str, Any]]:
    """Six sessions of 40 runs at 300 ms (3%), then one whose median is the same but whose
    slowest ``slow_share`` of runs take 1.8x as long (a stall one start in five). A p95 is
    poorly determined by a session's runs (its bootstrap sd on 20 runs with such stalls is
    ~0.35 in log, and the drift's t has 5 degrees of freedom at alpha 0.001): 40 runs make
    the call, at p ~1e-4 (1.6x stalls or 20 runs do not reach 0.001)."""
    rng = random.Random(seed)
    docs = []
    for i in range(7):
        totals = normal(rng, 300, 9, 40)
        if i == 6:
            k = round(slow_share * len(totals))
            totals = sorted(totals)[:len(totals) - k] + [1.8 * t for t in sorted(totals)[-k:]]
            rng.shuffle(totals)
        doc = make_doc("startup", T0 + dt.timedelta(days=i), startup={"docker": totals})
        save(forge_home, doc)
        docs.append(doc)
    return docs


def test_check_flags_a_slower_tail_with_the_same_median(forge_home: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    _tail_history(forge_home, seed=21, slow_share=0.2)
    code, out, _ = forge(capsys, "results", "check", "--json")
    assert code == 3, out
    report = json.loads(out)
    median, tail = report["rows"]
    assert (median["metric"], median["status"]) == ("startup", "ok")
    assert abs(median["change_pct"]) < 10
    assert (tail["metric"], tail["status"], tail["runtime"]) == (
        "startup_p95", "regression", "docker")
    assert tail["change_pct"] > 40 and tail["ci"][0] > 1.1 and tail["p_adjusted"] < 0.001
    assert tail["drift_sessions"] == 6 and tail["n_current"] == 40
    # corrected together with the median's row (m = 2)
    assert tail["p_adjusted"] == pytest.approx(stats.benjamini_hochberg(
        [median["p_value"], tail["p_value"]])[1])
    code, out, _ = forge(capsys, "results", "check")
    assert code == 3 and "regression: startup p95 on docker is" in out


def test_check_p95_needs_enough_runs(forge_home: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(22)
    for i in range(3):
        save(forge_home, make_doc("startup", T0 + dt.timedelta(days=i),
                                  startup={"runc": normal(rng, 40, 1, 5)}))
    code, out, _ = forge(capsys, "results", "check", "--json")
    median, tail = json.loads(out)["rows"]
    assert median["status"] == "ok" and median["n_current"] == 5
    assert (tail["status"], tail["reason"]) == ("not comparable", "p95 needs 10 runs a side")


def test_pinned_baseline_is_what_check_compares_with(forge_home: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    """A baseline pinned on the first day at 300 ms, then eleven sessions at 400 ms and the
    current at 410: within the floor of the previous results, 37% above the pinned one (the
    drift is measured on the ten sessions before the current, all at 400)."""
    rng = random.Random(23)
    docs = []
    for day, level in enumerate([300] + [400] * 11 + [410]):
        doc = make_doc("startup", T0 + dt.timedelta(days=day),
                       startup={"docker": normal(rng, level, 6)})
        save(forge_home, doc)
        docs.append(doc)
    code, out, _ = forge(capsys, "results", "check", "--last", "1", "--json")
    assert code == 0, out
    code, out, err = forge(capsys, "results", "baseline", "set", docs[0]["id"][:12])
    assert code == 0 and docs[0]["id"] in out, err
    code, out, _ = forge(capsys, "results", "baseline", "show", "--json")
    assert [(p["runtime"], p["result_id"]) for p in json.loads(out)] == [
        ("docker", docs[0]["id"])]
    code, out, _ = forge(capsys, "results", "check", "--json")
    assert code == 3, out
    report = json.loads(out)
    assert report["comparisons"][0]["pinned"] == ["docker"]
    median = report["rows"][0]
    assert median["baseline_ids"] == [docs[0]["id"]] and median["status"] == "regression"
    assert 30 < median["change_pct"] < 45
    code, out, _ = forge(capsys, "results", "check")
    assert f"docker vs its pinned baseline {docs[0]['id']}" in out
    # an explicit --baseline or --last wins over the pin
    code, out, _ = forge(capsys, "results", "check", "--last", "1", "--json")
    assert code == 0 and json.loads(out)["comparisons"][0]["pinned"] == []
    code, out, _ = forge(capsys, "results", "baseline", "clear")
    assert code == 0 and "unpinned 1" in out
    assert forge(capsys, "results", "check", "--last", "1")[0] == 0


def test_baseline_set_of_a_runtime_the_result_lacks(forge_home: Path,
                                                    capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    rng = random.Random(24)
    doc = make_doc("startup", T0, startup={"docker": normal(rng, 300, 6)})
    save(forge_home, doc)
    one_line_error(*forge(capsys, "results", "baseline", "set", doc["id"], "-r", "podman"), 2,
                   "no figures for podman", "measured docker")
    from forge_desktop.results.state import state_path

    assert not state_path().exists()


def test_check_passes_a_rerun_of_the_same_distribution(forge_home: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    _history_with_current(forge_home, 300, seed=12)
    code, out, err = forge(capsys, "results", "check")
    assert code == 0, out + err
    assert "regression:" not in out and "ok" in out
    report = json.loads(forge(capsys, "results", "check", "--json")[1])
    assert not report["regressed"] and all(r["status"] == "ok" for r in report["rows"])


def test_check_compares_timing_setups_like_with_like(forge_home: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    """A `--via cli` run is slower by nature: no regression against `--via api` runs."""
    _history_with_current(forge_home, 450, seed=13, via="cli")
    code, out, _ = forge(capsys, "results", "check", "--json")
    assert code == 0
    rows = {r["runtime"]: r for r in json.loads(out)["rows"]}
    assert rows["docker"]["status"] == "no baseline"
    assert rows["runc"]["status"] == "ok"  # runc is a command either way


def test_check_with_an_explicit_baseline(forge_home: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(5)
    base = make_doc("startup", T0, startup={"docker": normal(rng, 300, 9)})
    save(forge_home, base)
    save(forge_home, make_doc("startup", T0 + dt.timedelta(days=6),
                              startup={"docker": normal(rng, 420, 9)}))
    # two sessions and no history: the drift between them is assumed (30%), so a 40%
    # slowdown is not evidence enough
    code, out, _ = forge(capsys, "results", "check", "--baseline", base["id"][:12], "--json")
    assert code == 0, out
    row, tail = json.loads(out)["rows"]
    assert tail["metric"] == "startup_p95" and tail["status"] == "ok"
    assert row["reason"] == "not significant" and row["drift_sessions"] == 0
    assert row["drift_pct"] == pytest.approx(30.0) and row["ci"][0] < 1.1 < row["change_pct"]
    code, out, _ = forge(capsys, "results", "check", "--baseline", base["id"][:12])
    assert code == 0 and "30% (assumed)" in out and "not significant" in out
    for day in range(1, 5):  # four more sessions between them measure the drift (~1%)
        save(forge_home, make_doc("startup", T0 + dt.timedelta(days=day),
                                  startup={"docker": normal(rng, 300, 9)}))
    code, out, _ = forge(capsys, "results", "check", "--baseline", base["id"][:12], "--json")
    assert code == 3, out
    report = json.loads(out)
    assert report["comparisons"][0]["baseline"] == "given"
    row, _tail = report["rows"]
    assert row["baseline_ids"] == [base["id"]] and row["drift_sessions"] == 5
    assert row["drift_pct"] < 3 and row["status"] == "regression"
    code, out, _ = forge(capsys, "results", "check", "--baseline", base["id"][:12],
                         "--max-regression", "50")
    assert code == 0


def test_check_does_not_call_drift_between_sessions_a_regression(
        forge_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Sessions whose level moves by ~12% (sd) from one to the next, each tight (3%): a
    session 25% above the previous one is within that drift, though a rank test between the
    two sessions alone finds it (p < 0.001)."""
    rng = random.Random(31)
    sessions = [normal(rng, level, 0.03 * level, 20)
                for level in (300, 340, 270, 310, 355, 285, 300, 375)]
    for day, samples in enumerate(sessions):
        save(forge_home, make_doc("startup", T0 + dt.timedelta(days=day),
                                  startup={"docker": samples}))
    assert stats.mann_whitney_p(sessions[-1], sessions[-2]) < 0.001
    code, out, _ = forge(capsys, "results", "check", "--last", "1", "--json")
    assert code == 0, out
    row, tail = json.loads(out)["rows"]
    assert tail["metric"] == "startup_p95" and tail["status"] == "ok"
    assert 1.2 < 1 + row["change_pct"] / 100 < 1.3
    assert row["reason"] == "not significant" and row["drift_sessions"] == 7
    assert 8 < row["drift_pct"] < 14


def test_check_memory_and_disk_against_the_same_machine(forge_home: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    rng = random.Random(9)
    for i in range(4):
        save(forge_home, make_doc("compare", T0 + dt.timedelta(days=i),
                                  startup={"docker": normal(rng, 300, 9),
                                           "podman": normal(rng, 200, 6)},
                                  memory={"docker": (130 * MIB, 12 * MIB),
                                          "podman": (50 * MIB, MIB)},
                                  disk={"docker": (2 * MIB, 100_000),
                                        "podman": (2 * MIB, 50_000)}))
    # another machine, bigger and newer: checked against its own history only (it has none)
    save(forge_home, make_doc("compare", T0 + dt.timedelta(days=8), machine=LAPTOP,
                              startup={"docker": normal(rng, 900, 9)},
                              memory={"docker": (900 * MIB, 90 * MIB)},
                              disk={"docker": (9 * MIB, 100_000)}))
    save(forge_home, make_doc("compare", T0 + dt.timedelta(days=5),
                              startup={"docker": normal(rng, 300, 9),
                                       "podman": normal(rng, 200, 6)},
                              memory={"docker": (130 * MIB, 16 * MIB),
                                      "podman": (50 * MIB, MIB)},
                              disk={"docker": (2 * MIB, 100_000),
                                    "podman": (2 * MIB, 52_000)}))
    code, out, _ = forge(capsys, "results", "check", "--json")
    report = json.loads(out)
    assert code == 3, out
    assert [(r["metric"], r["runtime"], r["host"]) for r in report["regressions"]] == [
        ("per_container_memory", "docker", "vm")]
    laptop = [r for r in report["rows"] if r["host"] == "laptop"]
    assert laptop and all(r["status"] == "no baseline" for r in laptop)
    rows = {(r["metric"], r["runtime"]): r for r in report["rows"] if r["host"] == "vm"}
    assert rows[("per_container_memory", "docker")]["change_pct"] == pytest.approx(33.33,
                                                                                   abs=0.01)
    assert rows[("per_container_memory", "docker")]["p_value"] is None
    assert rows[("daemon_memory", "docker")]["status"] == "ok"
    assert rows[("disk", "podman")]["status"] == "ok"  # +1% on disk
    assert rows[("startup", "docker")]["status"] == "ok"
    code, out, _ = forge(capsys, "results", "check")
    assert "regression: per_container_memory on docker (vm) is 33.3% larger" in out
    assert "Machine" in out and "laptop" in out
    # an explicit baseline limits the check to its machine
    first = min((d for d in json.loads(forge(capsys, "results", "list", "--json")[1])
                 if d["host"] == "vm"), key=lambda d: d["created_at"])
    code, out, _ = forge(capsys, "results", "check", "--baseline", first["id"], "--json")
    report = json.loads(out)
    assert {r["host"] for r in report["rows"]} == {"vm"} and code == 3
    assert any("laptop" in n for n in report["notes"])


def test_check_with_nothing_to_compare(forge_home: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert forge(capsys, "results", "check")[0] == 0  # no results at all
    save(forge_home, make_doc("startup", T0, startup={"runc": [40.0, 41.0, 42.0]}))
    code, out, _ = forge(capsys, "results", "check")
    assert code == 0 and "no baseline" in out


def test_check_rows_are_pure_functions() -> None:
    rng = random.Random(21)
    base = normal(rng, 100, 3, 50)
    quiet = [100.0, 101.5, 99.0, 100.5, 99.5, 100.8]  # earlier sessions' medians: ~1% drift

    def row(current: list[float], history: Sequence[float] = quiet) -> CheckRow:
        return startup_row("docker", current, base, history=history, baseline_sessions=5)

    slower = row(normal(rng, 130, 4, 10))
    assert (slower.status, slower.reason) == ("regression", "regression")
    assert slower.ci is not None and slower.ci[0] > 1.1 and slower.drift_sessions == 6
    assert row(normal(rng, 100, 3, 10)).reason == "below floor"
    assert row(normal(rng, 75, 3, 10)).status == "improvement"
    # 5% slower, clearly significant, but under the 10% floor
    assert row(normal(rng, 105, 0.5, 40)).reason == "below floor"
    # a slower median from two samples, one of them among the baseline's: no evidence
    assert row([99.0, 131.0]).reason == "not significant"
    # too little history (2 sessions): the drift is assumed, 30%, and 30% slower is within it
    assumed = row(normal(rng, 130, 4, 10), history=quiet[:2])
    assert assumed.reason == "not significant" and assumed.drift_sessions == 0
    assert size_row("disk", "docker", 115.0, [100.0, 101.0, 99.0], 10.0).status == "regression"
    assert size_row("disk", "docker", 105.0, [100.0], 10.0).status == "ok"
    assert size_row("disk", "docker", 80.0, [100.0], 10.0).status == "improvement"


def test_decide_corrects_for_the_number_of_runtimes() -> None:
    """A p of 0.0008 is a regression alone; among four rows with nothing else it is not
    (BH: 0.0008 x 4 / 1), and it is again when the others are as strong."""
    rng = random.Random(4)
    one = startup_row("a", normal(rng, 130, 4, 10), normal(rng, 100, 3, 10))
    rows = [replace(one, runtime=name, p_value=p, change_pct=30.0)
            for name, p in (("a", 0.0008), ("b", 0.3), ("c", 0.5), ("d", 0.9))]
    alone = decide(rows[:1], 10.0)
    assert alone[0].status == "regression" and alone[0].p_adjusted == pytest.approx(0.0008)
    together = decide(rows, 10.0)
    assert together[0].p_adjusted == pytest.approx(0.0032)
    assert [r.reason for r in together] == ["not significant"] * 4
    strong = decide([replace(r, p_value=0.0008) for r in rows], 10.0)
    assert all(r.status == "regression" and r.p_adjusted == pytest.approx(0.0008)
               for r in strong)
    # memory and disk rows carry no p and are left out of the correction
    sized = size_row("disk", "docker", 115.0, [100.0], 10.0)
    assert decide([rows[0], sized], 10.0)[0].p_adjusted == pytest.approx(0.0008)
    assert size_row("disk", "docker", 115.0, [100.0, 101.0, 99.0], 10.0).status == "regression"
    assert size_row("disk", "docker", 105.0, [100.0], 10.0).status == "ok"
    assert size_row("disk", "docker", 80.0, [100.0], 10.0).status == "improvement"


def test_run_check_loads_only_what_it_compares() -> None:
    rng = random.Random(2)
    docs = [make_doc("startup", T0 + dt.timedelta(days=i),
                     startup={"runc": normal(rng, 40, 1)}) for i in range(14)]
    results = [summarize(d, f"{d['id']}.json") for d in docs]
    loaded: list[str] = []

    def load(s: Any) -> dict[str, Any]:
        loaded.append(s.id)
        return next(d for d in docs if d["id"] == s.id)

    report = run_check(results, load, last=3)
    # the current, and the previous 10 whose p95s measure the p95's drift (the 3 baselines
    # among them): not the 3 oldest
    assert sorted(loaded) == sorted(d["id"] for d in docs[3:]) and len(set(loaded)) == 11
    assert report.rows[0].n_baseline == 30 and report.rows[1].drift_sessions == 10


# --- machines -------------------------------------------------------------------------------

def test_machines_group_by_fingerprint_and_use_ratios(forge_home: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    collected = tmp_path / "collected"  # results copied from two machines into one folder
    rng = random.Random(4)
    docs = []
    for i in range(3):
        docs.append(make_doc("startup", T0 + dt.timedelta(days=i),
                             startup={"docker": [300.0] * 3, "podman": [150.0] * 3,
                                      "runc": [30.0] * 3}))
        docs.append(make_doc("compare", T0 + dt.timedelta(days=i, hours=2), machine=LAPTOP,
                             startup={"docker": [100.0] * 3, "podman": [80.0] * 3}))
    docs.append(make_doc("memory", T0 + dt.timedelta(days=5), machine=LAPTOP,
                         memory={"docker": (MIB, MIB)}))
    docs.append(make_doc("startup", T0 + dt.timedelta(days=6),
                         startup={"podman": normal(rng, 150, 3)}))  # no docker: no ratio
    for d in docs:
        store.save(d, collected)
    code, out, err = forge(capsys, "results", "machines", "--from", str(collected), "--json")
    assert code == 0 and err == ""
    rows = {r["host"]: r for r in json.loads(out)}
    assert set(rows) == {"vm", "laptop"}
    assert rows["vm"]["results"] == 4 and rows["laptop"]["results"] == 4
    assert rows["vm"]["startup_ratios"] == {"podman": {"ratio": 0.5, "results": 3},
                                            "runc": {"ratio": 0.1, "results": 3}}
    assert rows["laptop"]["startup_ratios"] == {"podman": {"ratio": 0.8, "results": 3}}
    assert rows["laptop"]["environment"]["cpu_count"] == 8
    assert rows["vm"]["machine"] != rows["laptop"]["machine"]

    code, out, _ = forge(capsys, "results", "machines", "--from", str(collected))
    assert "podman/docker" in out and "0.50x (n=3)" in out and "0.80x (n=3)" in out
    code, out, _ = forge(capsys, "results", "machines", "--from", str(collected),
                         "--baseline-runtime", "podman", "--json")
    vm = next(r for r in json.loads(out) if r["host"] == "vm")
    assert vm["startup_ratios"]["docker"]["ratio"] == 2.0
    assert vm["startup_ratios"]["docker"]["results"] == 4 - 1  # the podman-only run is 1.0
    # list and trend over the same folder: one series per machine
    assert len(json.loads(forge(capsys, "results", "list", "--from", str(collected),
                                "--json")[1])) == 8
    series = json.loads(forge(capsys, "results", "trend", "--from", str(collected),
                              "--runtime", "docker", "--json")[1])["series"]
    assert sorted(s["host"] for s in series) == ["laptop", "vm"]
    assert not (forge_home / "benchmarks").exists()


def test_machines_pure_function() -> None:
    docs = [make_doc("startup", T0, startup={"docker": [200.0], "podman": [100.0]}),
            make_doc("startup", T0 + dt.timedelta(hours=1),
                     startup={"docker": [200.0], "podman": [300.0]}),
            make_doc("startup", T0, machine=LAPTOP, startup={"podman": [10.0]})]
    rows = machines([summarize(d, "x.json") for d in docs])
    by_host = {r.host: r for r in rows}
    assert by_host["vm"].ratios == {"podman": (1.0, 2)}  # median of 0.5 and 1.5
    assert by_host["laptop"].ratios == {}


def test_select_is_order_preserving() -> None:
    docs = [make_doc("disk", T0 + dt.timedelta(days=i), disk={"runc": (1, 1)},
                     run_id=f"id{i}") for i in range(5)]
    results = sorted((summarize(d, f"{d['id']}.json") for d in docs),
                     key=lambda s: s.created_ts, reverse=True)
    assert [s.id for s in select(results, limit=2)] == ["id4", "id3"]
    assert [s.id for s in select(results, since_ts=(T0 + dt.timedelta(days=3)).timestamp())
            ] == ["id4", "id3"]


# --- show -----------------------------------------------------------------------------------

def test_show_full_detail(history: dict[str, dict[str, Any]],
                          capsys: pytest.CaptureFixture[str]) -> None:
    doc = history["compare"]
    code, out, err = forge(capsys, "results", "show", doc["id"][:17])
    assert code == 0 and err == ""
    for needle in (doc["id"], "Environment", "AMD EPYC", "Parameters", "iterations",
                   "Runtime comparison", "docker: 10 iterations (ms)", "create", "to exec",
                   "runc: 10 iterations", "memory while containers run"):
        assert needle in out, needle
    code, out, _ = forge(capsys, "results", "show", doc["id"], "--json")
    assert json.loads(out) == doc
    for kind in ("startup", "memory", "disk"):
        code, out, _ = forge(capsys, "results", "show", history[kind]["id"])
        assert code == 0 and history[kind]["id"] in out and "Environment" in out
    assert "[dim]" not in out


def test_show_a_kind_it_does_not_know(forge_home: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    doc = make_doc("disk", T0, disk={"runc": (MIB, 4096)}, run_id="20261001T120000Z-prof01")
    doc.update(kind="profile", runtimes=[], summary={"peak_rss_bytes": 123},
               target={"kind": "daemon", "names": ["dockerd"]})
    save(forge_home, doc)
    code, out, _ = forge(capsys, "results", "list")
    assert code == 0 and "profile" in out
    code, out, err = forge(capsys, "results", "show", "20261001T120000Z-prof")
    assert code == 0 and err == ""
    assert "peak_rss_bytes" in out and "dockerd" in out and "Environment" in out


def _cache_rows(bench: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(bench / INDEX_NAME) as con:
        return sorted(con.execute("SELECT * FROM files"))


def _scan_everything(bench: Path, workers: int) -> tuple[Any, ...]:
    (bench / INDEX_NAME).unlink(missing_ok=True)
    found = scan(bench, workers=workers)
    return ([(s.file, s.columns()) for s in found.results],
            [(k.file, k.reason) for k in found.skipped], found.cache, _cache_rows(bench))


def _zombies() -> list[str]:
    """This process's children that exited and were not reaped."""
    me = str(os.getpid())
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] == "Z":
            found.append(stat.parent.name)
    return found


def test_forked_cold_scan_reads_every_file_as_one_process_does(
        forge_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cold scan's workers (``_read_rows``) give the same summaries, skips and cache
    rows as reading in process, whatever the number of workers, and leave no child behind."""
    bench = forge_home / "benchmarks"
    rng = random.Random(12)
    for i in range(30):
        kind = ("startup", "compare", "memory", "disk")[i % 4]
        save(forge_home, make_doc(
            kind, T0 + dt.timedelta(hours=i), machine=(VM, LAPTOP)[i % 2],
            startup={"runc": normal(rng, 40, 2), "crun": normal(rng, 30, 2)},
            memory={"runc": (None, 3 * MIB), "crun": (40 * MIB, 2 * MIB)},
            disk={"runc": (4_000_000, 8192), "crun": (4_000_000, 4096)}))
    expected_skips = _bad_files(bench)
    monkeypatch.setattr(index_mod, "PARALLEL_FROM", 8)  # 37 files: worth forking here
    forks: list[int] = []
    real_fork = os.fork

    def counted_fork() -> int:
        pid = real_fork()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counted_fork)
    alone = _scan_everything(bench, 1)
    assert len(alone[0]) == 30 and {f for f, _ in alone[1]} == set(expected_skips)
    assert forks == []
    for workers in (2, 3):
        assert _scan_everything(bench, workers) == alone, workers
        assert len(forks) == workers
        forks.clear()
    assert _zombies() == []


def test_a_failed_scan_worker_costs_only_time(forge_home: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that dies (here: every file read in a child raises) leaves its share to the
    scanning process, which reads it and returns the same scan."""
    rng = random.Random(13)
    for i in range(12):
        save(forge_home, make_doc("startup", T0 + dt.timedelta(hours=i),
                                  startup={"runc": normal(rng, 40, 2)}))
    bench = forge_home / "benchmarks"
    monkeypatch.setattr(index_mod, "PARALLEL_FROM", 4)
    alone = _scan_everything(bench, 1)
    parent = os.getpid()
    real_row = index_mod._file_row

    def fails_in_a_child(directory: str, name: str) -> tuple[Any, ...]:
        if os.getpid() != parent:
            raise MemoryError("a worker that dies")
        return real_row(directory, name)

    monkeypatch.setattr(index_mod, "_file_row", fails_in_a_child)
    assert _scan_everything(bench, 2) == alone
    assert len(alone[0]) == 12
    assert _zombies() == []
