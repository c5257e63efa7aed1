"""``forge results export``: CSV shape and units, Markdown tables, the offline HTML report with
hostile strings in it, atomic writes, id lookup, and the command's errors."""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from forge_desktop.errors import StoreError, UsageError
from forge_desktop.results import export, svg
from forge_desktop.results.schema import SCHEMA_VERSION
from tests.conftest import assert_one_line_error, run_forge

HOSTILE = "<script>alert(1)</script>"
ENV = {"host": "lab-1", "os": "Debian GNU/Linux 12", "kernel": "6.1.0", "arch": "x86_64",
       "cpu_model": "AMD EPYC", "cpu_count": 4, "memory_total_bytes": 16 * 1024**3,
       "cgroup_version": "2", "runtimes": {"docker": {"version": "20.10", "kind": "engine",
                                                       "endpoint": "unix:///run/docker.sock",
                                                       "storage_driver": "overlay2"}}}
STATS = {"n": 4, "median_ms": 100.0, "mean_ms": 101.0, "stdev_ms": 2.0, "min_ms": 98.0,
         "max_ms": 104.0, "p95_ms": 103.7, "ci95_ms": [98.0, 104.0], "outliers": 0}


def _doc(kind: str, run_id: str, runtimes: list[dict[str, Any]], created: str =
         "2026-11-01T10:00:00.000Z", **extra: Any) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "id": run_id, "kind": kind, "created_at": created,
            "complete": True, "environment": ENV, "parameters": {"iterations": 4,
                                                                 "image": "busybox"},
            "runtimes": runtimes, **extra}


def _engine_samples(base: float, n: int = 4) -> list[dict[str, Any]]:
    return [{"total_ms": base + i, "phases_ms": {"create": 5.0, "start": base - 20 + i,
                                                 "wait": 10.0, "remove": 5.0},
             "to_exec_ms": base - 15 + i} for i in range(n)]


def _timing_entry(name: str, base: float, n: int = 4, oci: bool = False) -> dict[str, Any]:
    samples = ([{"total_ms": base + i, "phases_ms": {"run": base + i}} for i in range(n)]
               if oci else _engine_samples(base, n))
    phases = {"run": base} if oci else {"create": 5.0, "start": base - 20, "wait": 10.0,
                                        "remove": 5.0}
    entry = {"runtime": name, "kind": "oci" if oci else "engine", "version": "1.0",
             "via": "command" if oci else "api", "samples": samples,
             "stats": {**STATS, "n": n, "median_ms": base + 1.5}, "phase_medians_ms": phases,
             "warnings": [], "errors": []}
    if not oci:
        entry["to_exec_stats"] = {**STATS, "median_ms": base - 13.5}
    return entry


def _memory_entry(name: str, containers: int = 2, samples: int = 3) -> dict[str, Any]:
    def point(k: int) -> dict[str, int]:
        return {"daemon_pss_bytes": 50 << 20, "shims_pss_bytes": k << 20,
                "cgroups_bytes": k << 19, "total_bytes": (50 << 20) + k * (3 << 19)}

    return {"runtime": name, "kind": "engine", "version": "4.3", "containers": containers,
            "warnings": [], "errors": [], "daemon_rss_bytes": 52 << 20,
            "daemon_pss_bytes": 50 << 20,
            "per_container_parts": {"outside_pss_bytes": 1 << 20, "outside_rss_bytes": 2 << 20,
                                    "inside_cgroup_bytes": 1 << 19},
            "per_container_bytes": 3 << 19, "density_slope_bytes": 3 << 19,
            "density": [{"containers": k, **point(k)} for k in range(containers + 1)],
            "samples": [{"t_s": i * 0.2, **point(containers)} for i in range(samples)]}


def _disk_entry(name: str) -> dict[str, Any]:
    return {"runtime": name, "kind": "engine", "version": "20.10", "images_bytes": 4 << 20,
            "containers_bytes": 0, "volumes_bytes": 0, "build_cache_bytes": None,
            "per_container_bytes": 106496, "store_path": "/var/lib/docker",
            "store_fs_bytes": 5 << 20, "reclaimable_bytes": 1 << 20,
            "benchmark_image_bytes": 2 << 20, "warnings": [], "errors": []}


def startup_doc(run_id: str = "20261101T100000Z-aaaaaa", created: str =
                "2026-11-01T10:00:00.000Z", docker_ms: float = 300.0) -> dict[str, Any]:
    return _doc("startup", run_id, [_timing_entry("docker", docker_ms),
                                    _timing_entry("podman", 180.0, n=5),
                                    _timing_entry("runc", 40.0, n=3, oci=True)], created)


def compare_doc() -> dict[str, Any]:
    entries = []
    for name, base in (("docker", 300.0), ("podman", 200.0)):
        e = _timing_entry(name, base)
        e["memory"] = _memory_entry(name, containers=1, samples=5)
        e["disk"] = _disk_entry(name)
        entries.append(e)
    ratios = [{"runtime": "podman", "metric": "startup", "ratio": 1.5, "ci95": [1.2, 1.8],
               "p_value": 0.0004, "verdict": "faster", "median_ms": 201.5,
               "baseline_median_ms": 301.5},
              {"runtime": "podman", "metric": "daemon_memory", "ratio": None, "ci95": None,
               "p_value": None, "verdict": "not applicable", "value_bytes": None,
               "baseline_bytes": 50 << 20}]
    return _doc("compare", "20261101T110000Z-bbbbbb", entries, "2026-11-01T11:00:00.000Z",
                comparison={"baseline": "docker", "alpha": 0.05, "ratios": ratios},
                like_for_like_warnings=["no warmup | cold caches"], timing={"wall_s": 12.5})


def memory_doc() -> dict[str, Any]:
    return _doc("memory", "20261101T120000Z-cccccc", [_memory_entry("docker"),
                                                      _memory_entry("podman", 3, 4)])


def disk_doc() -> dict[str, Any]:
    runc = {**_disk_entry("runc"), "containers_bytes": None, "reclaimable_bytes": None}
    return _doc("disk", "20261101T130000Z-dddddd", [_disk_entry("docker"), runc])


def image_doc() -> dict[str, Any]:
    entry = {"runtime": "docker", "kind": "engine", "version": "20.10", "source": "pull",
             "samples": [{"total_ms": 90.0 + i, "phases_ms": {"pull": 90.0 + i}}
                         for i in range(3)], "stats": STATS, "transfer_bytes": 2_000_000,
             "warnings": [], "errors": [], "not_applicable": None}
    return _doc("image", "20261101T140000Z-eeeeee", [entry])


def hostile_doc() -> dict[str, Any]:
    doc = startup_doc("20261101T150000Z-ffffff")
    doc["runtimes"][0]["runtime"] = HOSTILE
    doc["runtimes"][1]["runtime"] = "=HYPERLINK(\"x\")|pipe"
    doc["runtimes"][1]["version"] = "1.0 | <b>bold</b> & https://evil.example/x.js"
    doc["runtimes"][2]["errors"] = ['<img src="https://evil.example/p.png">']
    doc["environment"] = {**ENV, "host": "<iframe src=//evil.example>"}
    doc["parameters"] = {"image": "javascript:alert(1)//<svg onload=alert(1)>"}
    doc["runtimes"][0]["samples"][0]["phases_ms"]["evil,phase\"\n"] = 1.0
    return doc


ALL = [startup_doc, compare_doc, memory_doc, disk_doc, image_doc]


def _sample_rows(doc: dict[str, Any]) -> int:
    """What the CSV must hold for a document: a row per sample."""
    n = 0
    for e in doc["runtimes"]:
        if doc["kind"] == "memory":
            n += len(e["density"]) + len(e["samples"])
        elif doc["kind"] == "disk":
            n += 1
        else:
            n += len(e["samples"])
            if doc["kind"] == "compare":
                n += len(e["memory"]["density"]) + len(e["memory"]["samples"]) + 1
    return n


# ------------------------------------------------------------------ CSV

UNITS = ("_ms", "_bytes", "_s", "_count")
TEXT_COLUMNS = {"result_id", "kind", "created_at", "host", "runtime", "version", "series"}


def _read_csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


@pytest.mark.parametrize("make", ALL, ids=lambda f: f.__name__)
def test_csv_one_row_per_sample_and_units_in_every_numeric_name(make: Any) -> None:
    doc = make()
    columns, rows = _read_csv(export.to_csv([doc]))
    assert len(rows) == _sample_rows(doc)
    assert columns[:8] == list(export.CSV_ID_COLUMNS)
    for column in columns:
        if column in TEXT_COLUMNS or column == "iteration":  # iteration: an ordinal
            continue
        assert column.endswith(UNITS), column
        for row in rows:
            if row[column] != "":
                float(row[column])  # every value of a unit column is a number
    assert all(r["result_id"] == doc["id"] and r["kind"] == doc["kind"] for r in rows)


def test_csv_columns_are_those_present_across_the_results() -> None:
    columns, rows = _read_csv(export.to_csv([startup_doc(), compare_doc(), memory_doc(),
                                             disk_doc(), image_doc()]))
    phases = [c for c in columns if c.endswith("_ms") and c not in ("total_ms", "to_exec_ms")]
    assert phases == ["create_ms", "start_ms", "wait_ms", "remove_ms", "run_ms", "pull_ms"]
    assert "load_ms" not in columns  # no load result exported
    assert {"containers_count", "t_s", "total_bytes", "store_fs_bytes",
            "per_container_bytes"} <= set(columns)
    assert len(rows) == sum(_sample_rows(f()) for f in ALL)
    only_startup, _ = _read_csv(export.to_csv([startup_doc()]))
    assert not [c for c in only_startup if c.endswith("_bytes")]


def test_csv_values_match_the_document() -> None:
    doc = startup_doc()
    _, rows = _read_csv(export.to_csv([doc]))
    docker = [r for r in rows if r["runtime"] == "docker"]
    assert [float(r["total_ms"]) for r in docker] == [s["total_ms"]
                                                       for s in doc["runtimes"][0]["samples"]]
    assert [int(r["iteration"]) for r in docker] == [1, 2, 3, 4]
    runc = [r for r in rows if r["runtime"] == "runc"]
    assert all(r["create_ms"] == "" and float(r["run_ms"]) > 0 for r in runc)
    assert {r["host"] for r in rows} == {"lab-1"}


def test_csv_memory_series_and_disk_rows() -> None:
    _, rows = _read_csv(export.to_csv([memory_doc(), disk_doc()]))
    density = [r for r in rows if r["series"] == "memory_density" and r["runtime"] == "podman"]
    assert [int(r["containers_count"]) for r in density] == [0, 1, 2, 3]
    timed = [r for r in rows if r["series"] == "memory_time" and r["runtime"] == "podman"]
    assert len(timed) == 4 and all(r["containers_count"] == "3" for r in timed)
    disk = [r for r in rows if r["series"] == "disk"]
    assert [r["runtime"] for r in disk] == ["docker", "runc"]
    assert disk[0]["store_fs_bytes"] == str(5 << 20) and disk[1]["containers_bytes"] == ""


def test_csv_hostile_strings_stay_data() -> None:
    columns, rows = _read_csv(export.to_csv([hostile_doc()]))
    assert "evil_phase_ms" in columns  # a phase name becomes a safe column name
    names = {r["runtime"] for r in rows}
    assert HOSTILE in names
    assert "'=HYPERLINK(\"x\")|pipe" in names  # a spreadsheet shows it, does not run it


# ------------------------------------------------------------------ Markdown

_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _md_tables(text: str) -> list[list[list[str]]]:
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            assert line.rstrip().endswith("|") and not line.rstrip().endswith("\\|"), line
            current.append([c.strip() for c in _CELL_SPLIT.split(line.strip())[1:-1]])
        elif current:
            tables.append(current)
            current = []
    return tables


@pytest.mark.parametrize("docs", [[f()] for f in ALL] + [[f() for f in ALL],
                                                          [hostile_doc()]],
                         ids=[f.__name__ for f in ALL] + ["all", "hostile"])
def test_md_tables_have_consistent_column_counts(docs: list[dict[str, Any]]) -> None:
    text = export.to_markdown(docs)
    tables = _md_tables(text)
    assert len(tables) >= 2 * len(docs)  # a header table and a figures table per result
    for table in tables:
        widths = {len(row) for row in table}
        assert len(widths) == 1, table
        assert all(re.fullmatch(r":?-{3,}:?", c) for c in table[1]), table[1]


def test_md_header_per_result_and_comparison_verdicts() -> None:
    text = export.to_markdown([startup_doc(), compare_doc()])
    assert text.count("\n## ") == 2
    for needle in ("| Machine |", "| Parameters |", "| Date | 2026-11-01 10:00:00 UTC |",
                   "| Runtime | Version | Median (ms) | Mean ± sd (ms) | p95 (ms) | 95% CI (ms) "
                   "| n |", "| podman | Startup | 201.5 ms | 301.5 ms | 1.50× | 1.20–1.80× | "
                   "\\<0.001 | faster |", "| not applicable |", "no warmup \\| cold caches"):
        assert needle in text, needle


def test_md_escapes_hostile_strings() -> None:
    text = export.to_markdown([hostile_doc()])
    assert not re.search(r"(?<!\\)[<>]", text)  # no raw HTML for a renderer to run
    assert "\\<script\\>alert(1)\\</script\\>" in text
    assert "1.0 \\| \\<b\\>bold\\</b\\> \\& https://evil.example/x.js" in text


def test_md_memory_and_disk_key_figures() -> None:
    text = export.to_markdown([memory_doc(), disk_doc()])
    assert "| docker | 4.3 | 52.0 | 50.0 | 1.5 | 1.0 | 0.5 | 1.5 |" in text
    assert "| Images (MiB) |" in text and "| docker | 20.10 | 4.0 | 0.0 | 0.0 | - |" in text


def test_trend_table_when_a_kind_is_exported_twice() -> None:
    docs = [startup_doc(), startup_doc("20261102T100000Z-a2", "2026-11-02T10:00:00Z", 250.0)]
    (trend,) = export.trends(list(reversed(docs)))
    assert trend.labels == ("docker", "podman", "runc")
    assert [p[0] for p in trend.points] == [docs[0]["id"], docs[1]["id"]]  # oldest first
    assert trend.points[1][3]["docker"] == 251.5
    assert "## Container startup: median startup over time (ms)" in export.to_markdown(docs)
    assert export.trends([startup_doc(), compare_doc()]) == ()


# ------------------------------------------------------------------ HTML


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(text: str) -> _Collector:
    parser = _Collector()
    parser.feed(text)
    parser.close()
    return parser


@pytest.mark.parametrize("docs", [[f() for f in ALL] + [hostile_doc()], [hostile_doc()]],
                         ids=["all", "hostile"])
def test_html_is_self_contained(docs: list[dict[str, Any]]) -> None:
    text = export.to_html(docs)
    lower = text.lower()
    for needle in ("http://", "https://", "src=", "<script", "<iframe", "<link", "@import",
                   "url(", "<img", "<object", "<embed", "onload="):
        assert needle not in lower, needle
    assert "<svg" in text and "<style>" in text
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    parsed = _parse(text)
    assert "script" not in parsed.tags and "iframe" not in parsed.tags
    assert not [k for k, _ in parsed.attrs if k.startswith("on")]
    assert not [v for k, v in parsed.attrs if k in ("href", "xlink:href") and v
                and not v.startswith("#")]


def test_html_shows_hostile_strings_as_text() -> None:
    text = export.to_html([hostile_doc()])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    body = "".join(_parse(text).text)
    assert HOSTILE in body  # what a reader sees: the name, as text
    assert '<img src="https://evil.example/p.png">' in body
    assert "1.0 | <b>bold</b> & https://evil.example/x.js" in body


def test_html_plots_distribution_per_runtime_and_trend() -> None:
    one = export.to_html([startup_doc()])
    assert one.count("<svg") == 1
    assert one.count("<circle") == 4 + 5 + 3  # a dot per iteration
    docs = [startup_doc(), startup_doc("20261102T100000Z-a2", "2026-11-02T10:00:00Z", 250.0),
            memory_doc(), disk_doc(), compare_doc(), image_doc()]
    text = export.to_html(docs)
    # trend + a distribution per timing result + the density line + the disk bars
    assert text.count("<svg") == 1 + 4 + 1 + 1
    assert "median startup over time" in text
    assert text.count("<h2") == 1 + len(docs)
    for table in ("Startup time (ms)", "Against the baseline, docker", "Memory (MiB)",
                  "Disk use (MiB; per container KiB)", "Transfer"):
        assert f"<h3>{table}</h3>" in text


def test_html_survives_malformed_fields() -> None:
    doc = startup_doc()
    doc["runtimes"][0]["samples"] = [{"total_ms": "fast"}, {"total_ms": float("nan")},
                                     "junk", {"total_ms": 10**400}, {"total_ms": 3.0}]
    doc["runtimes"][0]["stats"] = {"median_ms": "x", "ci95_ms": "y"}
    doc["runtimes"][1]["stats"] = None
    doc["runtimes"].append("not an entry")
    doc["environment"] = "nowhere"
    doc["parameters"] = ["odd"]
    doc["created_at"] = "yesterday"
    for fmt in ("csv", "md", "html"):
        assert export.render([doc, copy.deepcopy(doc)], fmt)
    assert "| docker | 1.0 | failed |" in export.to_markdown([doc])


def test_ticks_are_round_and_cover_the_range() -> None:
    assert svg.axis_ticks(0, 316.4) == [0, 100, 200, 300, 400]
    assert svg.axis_ticks(0, 1.9) == [0, 0.5, 1, 1.5, 2]
    assert svg.axis_ticks(0, 1.9)[-1] >= 1.9
    assert svg.axis_ticks(5, 5)[0] <= 5 <= svg.axis_ticks(5, 5)[-1]
    ticks = svg.axis_ticks(0, 1e300)
    assert len(ticks) < 12 and ticks[-1] >= 1e300


# ------------------------------------------------------------------ writing


def test_atomic_write_leaves_no_temp_file_on_failure(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    for fmt in ("html", "csv", "json"):
        with pytest.raises(StoreError, match="disk is full"):
            export.write(target, fmt, [startup_doc()])
        assert target.read_text() == "old"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_atomic_write_cleans_up_on_interrupt(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.atomic_write_bytes(tmp_path / "x.csv", b"a,b\n")
    assert list(tmp_path.iterdir()) == []


def test_write_gives_a_shareable_mode_and_keeps_an_existing_one(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        export.write(tmp_path / "a.md", "md", [startup_doc()])
        assert (tmp_path / "a.md").stat().st_mode & 0o777 == 0o644
        kept = tmp_path / "b.json"
        kept.write_text("{}")
        kept.chmod(0o600)
        export.write(kept, "json", [startup_doc()])
        assert kept.stat().st_mode & 0o777 == 0o600
        assert json.loads(kept.read_text())["id"] == startup_doc()["id"]
    finally:
        os.umask(old)


def test_unwritable_destination_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot write"):
        export.write(tmp_path / "missing" / "x.csv", "csv", [startup_doc()])
    assert not (tmp_path / "missing").exists()


# ------------------------------------------------------------------ ids, formats, names


def _save(directory: Path, *docs: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        (directory / f"{doc['id']}.json").write_text(json.dumps(doc))


def test_find_results_by_prefix_in_the_order_given(tmp_path: Path) -> None:
    a, b = startup_doc(), compare_doc()
    _save(tmp_path, a, b)
    (tmp_path / f".{a['id']}.json.x.tmp").write_text("partial")
    assert [d["id"] for d in export.find_results(["20261101T11", a["id"], "20261101T10"],
                                                 tmp_path)] == [b["id"], a["id"]]
    with pytest.raises(UsageError, match=r"matches 2 results \(20261101T100000Z-aaaaaa, "
                                         r"20261101T110000Z-bbbbbb\)"):
        export.find_results(["2026"], tmp_path)
    with pytest.raises(StoreError, match="no result with id 'zzz'"):
        export.find_results(["zzz"], tmp_path)
    with pytest.raises(StoreError, match="no result with id"):
        export.find_results(["x"], tmp_path / "absent")
    with pytest.raises(UsageError, match="empty"):
        export.find_results([" "], tmp_path)


def test_find_results_never_leaves_the_store(tmp_path: Path) -> None:
    store_dir = tmp_path / "benchmarks"
    _save(store_dir, startup_doc())
    _save(tmp_path, {**startup_doc(), "id": "outside"})
    with pytest.raises(StoreError):
        export.find_results(["../outside"], store_dir)


@pytest.mark.parametrize("fmt, output, expected", [
    (None, None, "json"), ("CSV", None, "csv"), ("markdown", "x.txt", "md"),
    (None, "r.HTML", "html"), (None, "t.csv", "csv"), (None, "-", "json")])
def test_resolve_format(fmt: str | None, output: str | None, expected: str) -> None:
    assert export.resolve_format(fmt, output) == expected


def test_resolve_format_refuses_the_unknown() -> None:
    with pytest.raises(UsageError, match="unknown format 'pdf'"):
        export.resolve_format("pdf", None)
    with pytest.raises(UsageError, match="pass --format"):
        export.resolve_format(None, "report.pdf")


def test_default_html_name_is_a_plain_file_name(tmp_path: Path) -> None:
    doc = {**startup_doc(), "id": "../../etc/x"}
    path = export.destination("html", None, [doc, compare_doc()], tmp_path)
    assert path is not None and path.parent == tmp_path
    assert path.name == "forge-report-_.._etc_x-and-1-more.html"
    assert export.destination("csv", None, [doc]) is None
    assert export.destination("html", "-", [doc]) is None
    with pytest.raises(UsageError, match="is a directory"):
        export.destination("csv", str(tmp_path), [doc])


# ------------------------------------------------------------------ the command


def test_cli_stdout_holds_only_the_export(forge_home: Path) -> None:
    a, b = startup_doc(), memory_doc()
    _save(forge_home / "benchmarks", a, b)
    one = run_forge("results", "export", a["id"][:18], check=True)
    assert json.loads(one.stdout) == a
    both = run_forge("results", "export", a["id"], b["id"], "--format", "json", check=True)
    assert json.loads(both.stdout) == [a, b]
    table = run_forge("results", "export", a["id"], "-f", "csv", "-o", "-", check=True)
    assert len(_read_csv(table.stdout)[1]) == _sample_rows(a)
    md = run_forge("results", "export", b["id"], "-f", "md", check=True)
    assert md.stdout.startswith("# Forge results\n")


def test_cli_html_default_name_in_the_current_dir(forge_home: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    doc = startup_doc()
    _save(forge_home / "benchmarks", doc)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    proc = run_forge("results", "export", doc["id"], "--format", "html", check=True)
    expected = work / f"forge-report-{doc['id']}.html"
    assert proc.stdout.strip() == str(expected)
    assert expected.read_text().startswith("<!DOCTYPE html>")
    out = tmp_path / "r.csv"
    proc = run_forge("results", "export", doc["id"], "-o", str(out), check=True)
    assert proc.stdout.strip() == str(out) and out.read_text().startswith("result_id,")


@pytest.mark.parametrize("args, needles, code", [
    (["nope"], ["no result with id 'nope'"], 1),
    (["2026"], ["matches 2 results"], 2),
    (["20261101T10", "--format", "pdf"], ["unknown format 'pdf'"], 2),
    (["20261101T10", "-o", "/proc/forbidden/x.csv"], ["cannot write /proc/forbidden/x.csv"],
     1),
    (["20261101T10", "-o", "out.pdf"], ["pass --format"], 2),
    ([], ["missing argument"], 2),
])
def test_cli_errors_are_one_line(forge_home: Path, args: list[str], needles: list[str],
                                 code: int) -> None:
    _save(forge_home / "benchmarks", startup_doc(), compare_doc())
    proc = run_forge("results", "export", *args)
    assert_one_line_error(proc, *needles)
    assert proc.returncode == code
    assert not Path("out.pdf").exists()
