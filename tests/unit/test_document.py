"""results.document: the typed readers of result documents, and how the index parses files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forge_desktop.errors import StoreError, UsageError
from forge_desktop.results import document, index

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["runtime", "stats", "median_ms", "ci95_ms", "samples", "total_ms",
                         "per_container_bytes", "benchmark_image_bytes", "memory", "disk",
                         "daemon_pss_bytes", "comparison", "ratios", "ratio", "metric",
                         "kind", "runtimes", "parameters", "source"]), inner, max_size=6),
    max_leaves=30)


@pytest.mark.parametrize("value, expected", [
    (3, 3), (2.5, 2.5), (True, None), ("3", None), (None, None), (float("nan"), None),
    (float("inf"), None), (2**63, None), (-(2**63), None), (2**63 - 1, 2**63 - 1),
    (10**400, None), ([1], None)])
def test_number_is_finite_and_keeps_ints(value: Any, expected: Any) -> None:
    found = document.number(value)
    assert found == expected and type(found) is type(expected)


def test_figures_of_a_compare_entry() -> None:
    entry = {"runtime": "runc", "stats": {"median_ms": 40},
             "memory": {"daemon_pss_bytes": 5 * 2**20, "per_container_bytes": 2**20},
             "disk": {"benchmark_image_bytes": 1000, "per_container_bytes": 24}}
    assert document.metrics("compare", entry) == {
        "startup": 40.0, "daemon_memory": 5 * 2**20, "per_container_memory": 2**20,
        "disk": 1024.0}
    assert document.headline_value("compare", entry) == 40.0
    assert document.headline_value("memory", {"per_container_bytes": 3 * 2**20}) == 3.0
    assert document.headline_value("disk", {"per_container_bytes": 2048}) == 2.0
    # a figure of the wrong type is missing, the others are still read
    entry["stats"] = {"median_ms": "40"}
    entry["disk"] = "big"
    assert document.metrics("compare", entry) == {"daemon_memory": 5 * 2**20,
                                                  "per_container_memory": 2**20}


def test_headline_text_and_verdict() -> None:
    values = {"podman": 193.94, "runc": 40.31}
    assert document.headline_text(values, "ms") == "runc 40.3 · podman 193.9 ms"
    assert document.headline_text({"runc": 2.345}, "MiB") == "runc 2.35 MiB"
    assert document.headline_text({}, "ms") == "-"
    assert document.headline_text(values, "ms", digits=0, unit_each=True) \
        == "runc 40 ms · podman 194 ms"
    assert [document.size_verdict(r) for r in (None, 1.01, 1.5, 0.5)] == [
        "not applicable", "about the same", "smaller", "larger"]
    assert document.size_ratio(200, 100) == 2.0
    assert document.size_ratio(0, 100) is None


def test_notification() -> None:
    doc = {"kind": "startup", "runtimes": [
        {"runtime": "podman", "stats": {"median_ms": 150.2}},
        {"runtime": "runc", "stats": {"median_ms": 40.4}}, {"runtime": "crun"}, "junk"]}
    assert document.notification(doc) == "Startup finished: runc 40 ms, podman 150 ms"
    assert document.notification({"kind": "disk", "runtimes": [
        {"runtime": "runc", "per_container_bytes": 4096}]}) \
        == "Disk finished: runc 4 KiB per container"
    assert document.notification({"kind": "compare", "comparison": {
        "baseline": "docker", "ratios": [
            {"metric": "startup", "runtime": "runc", "ratio": 4.91},
            {"metric": "startup", "runtime": "crun", "ratio": "x"}]}}) \
        == "Compare finished: runc 4.91x faster than docker at startup"
    assert document.notification({"kind": 7}) == "7 finished"
    canary = {"kind": "canary", "runtimes": [
        {"runtime": "runc", "stats": {"median_ms": 52.14, "ci95_ms": [50.3, 54.0]}},
        {"runtime": "crun", "stats": {"median_ms": 40.0, "ci95_ms": "x"}}, {"runtime": "x"}]}
    assert document.notification(canary) == "Canary finished: crun 40 ms, runc 52 ms"
    assert document.verdicts(canary) == ["crun median 40.0 ms", "runc median 52.1 ms [50.3-54.0]"]
    assert document.verdicts({"kind": "memory", "runtimes": [
        {"runtime": "runc", "per_container_bytes": 3 * 1048576}]}) == [
        "runc 3.00 MiB per container"]
    assert document.verdicts({"kind": "profile"}) == []


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_readers_never_raise(doc: Any) -> None:
    """Every reader answers for any JSON value: missing or mistyped reads as None or empty."""
    doc = doc if isinstance(doc, dict) else {"runtimes": doc}
    document.notification(doc)
    document.verdicts(doc)
    for entry in document.entries(doc):
        for kind in ("startup", "compare", "memory", "disk", "image"):
            document.metrics(kind, entry)
            document.headline_value(kind, entry)
        document.sample_totals(entry)
        ci = document.ci95_ms(entry)
        assert ci is None or (len(ci) == 2 and all(isinstance(v, float) for v in ci))
    document.startup_samples(doc, "runc")


@pytest.mark.parametrize("stats, expected", [
    ({"ci95_ms": [28.5, 31]}, (28.5, 31.0)), ({"ci95_ms": [28.5]}, None),
    ({"ci95_ms": [28.5, "31"]}, None), ({"ci95_ms": [float("nan"), 31]}, None),
    ({"ci95_ms": "28-31"}, None), ({}, None), ("junk", None)])
def test_ci95_reader(stats: Any, expected: Any) -> None:
    assert document.ci95_ms({"stats": stats}) == expected


def test_resolve_id() -> None:
    ids = ["20261101T100000Z-aaaaaa", "20261101T110000Z-bbbbbb", "x"]

    def names(i: str) -> tuple[str, ...]:
        return (i,)

    assert document.resolve_id("20261101T11", ids, names) == ids[1]
    assert document.resolve_id(" x.json ", ids, names) == "x"
    with pytest.raises(UsageError, match=r"'2026' matches 2 results \(20261101T100000Z-aaaaaa, "
                                         r"20261101T110000Z-bbbbbb\); give more of the id"):
        document.resolve_id("2026", ids, names)
    with pytest.raises(StoreError, match="^no result with id zz; `forge results list`"):
        document.resolve_id("zz", ids, names)
    with pytest.raises(StoreError, match="^no result with id 'zz' in /d;"):
        document.resolve_id("zz", ids, names, where=Path("/d"))
    with pytest.raises(UsageError, match="empty"):
        document.resolve_id(" ", ids, names)


def test_the_index_reads_what_orjson_refuses_as_the_standard_library_does(
        tmp_path: Path) -> None:
    """NaN (orjson refuses it) parses as before, and the figure reads as missing; a broken
    file keeps the standard library's message."""
    doc = {"schema_version": 1, "id": "r1", "kind": "startup",
           "created_at": "2026-11-01T10:00:00Z", "environment": {"host": "h"},
           "parameters": {}, "runtimes": [{"runtime": "runc", "stats": {"median_ms": 1}}]}
    (tmp_path / "nan.json").write_text(
        json.dumps(doc).replace('"median_ms": 1', '"median_ms": NaN'))
    (tmp_path / "broken.json").write_text('{"a": }')
    found = index.scan(tmp_path, use_cache=False)
    assert [s.file for s in found.results] == ["nan.json"]
    assert found.results[0].metrics == {} and found.results[0].headline == {}
    assert [s.line() for s in found.skipped] == [
        "skipping broken.json: not valid JSON (Expecting value at line 1 column 7)"]
