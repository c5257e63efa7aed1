"""The Overview's figures (gui/views/overview_data.py), without Qt, on result files of the real
document shape read through the real index."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from forge_desktop.gui.views.history_data import HistoryRow, date_text, load_document, load_history
from forge_desktop.gui.views.overview_data import (
    RECENT,
    SPARK_POINTS,
    open_changes,
    open_changes_apart,
    overview,
    with_changes,
)
from forge_desktop.results.changes import ack
from forge_desktop.results.index import machine_id

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
VM = ("vm", "AMD EPYC", 2, 25_276_502_016)
LAPTOP = ("laptop", "Intel(R) Core(TM) i7-1185G7", 8, 16_505_540_608)


def _env(machine: tuple[str, str, int, int], names: list[str]) -> dict[str, Any]:
    host, cpu, cores, mem = machine
    return {"host": host, "os": "Debian GNU/Linux 12 (bookworm)", "kernel": "6.1.0-18-amd64",
            "arch": "x86_64", "cpu_model": cpu, "cpu_count": cores, "memory_total_bytes": mem,
            "cgroup_version": "hybrid", "python_version": "3.11.7", "forge_version": "0.1.0",
            "runtimes": {n: {"version": "1.0", "kind": "engine", "endpoint": None,
                             "storage_driver": None} for n in names},
            "noise_warnings": [], "network_mode": "none"}


def _timed(name: str, median: float, via: str = "api") -> dict[str, Any]:
    samples = [median - 1.0, median, median + 1.0]
    return {"runtime": name, "kind": "engine", "version": "1.0", "via": via,
            "samples": [{"total_ms": v, "phases_ms": {"run": v}} for v in samples],
            "stats": {"n": 3, "median_ms": median, "mean_ms": median, "stdev_ms": 1.0,
                      "min_ms": median - 1, "max_ms": median + 1, "p95_ms": median + 1,
                      "ci95_ms": [median - 2.0, median + 3.0], "outliers": 0},
            "warnings": [], "errors": []}


def _memory(name: str, per_bytes: int) -> dict[str, Any]:
    return {"runtime": name, "kind": "engine", "version": "1.0", "containers": 3,
            "warnings": [], "errors": [], "daemon_pss_bytes": 50_000_000,
            "per_container_bytes": per_bytes, "samples": []}


def write(directory: Path, n: int, kind: str, entries: list[dict[str, Any]],
          machine: tuple[str, str, int, int] = VM, via: str = "api") -> dict[str, Any]:
    """Result ``n`` (an hour apart from T0) of ``kind``; returns the document."""
    when = T0 + dt.timedelta(hours=n)
    doc = {"schema_version": 1, "id": f"{when:%Y%m%dT%H%M%SZ}-{n:06x}", "kind": kind,
           "created_at": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
           "complete": True, "environment": _env(machine, [e["runtime"] for e in entries]),
           "parameters": {"iterations": 3, "warmup": 0, "network": "none", "via": via},
           "runtimes": entries}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{doc['id']}.json").write_text(json.dumps(doc))
    return doc


def rows_of(directory: Path) -> list[HistoryRow]:
    return load_history([directory]).rows


class Reads:
    """The real document reader, counting what it reads."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, row: HistoryRow) -> Mapping[str, Any]:
        self.ids.append(row.id)
        return load_document(row)


def test_cards_of_the_newest_machine_with_median_ci_sparkline_memory_and_canary(
        tmp_path: Path) -> None:
    d = tmp_path / "benchmarks"
    for i in range(38):  # docker drifts up 1 ms a run; runc flat
        write(d, i, "startup", [_timed("docker", 100.0 + i), _timed("runc", 30.0)])
    write(d, 38, "canary", [_timed("docker", 150.0), _timed("runc", 31.0)])
    write(d, 40, "startup", [_timed("docker", 999.0, via="cli")])  # another set-up
    write(d, 41, "memory", [_memory("docker", 5 * 1048576), _memory("podman", 1048576)])
    write(d, 42, "memory", [_memory("docker", 7 * 1048576)], machine=LAPTOP)
    newest = write(d, 44, "compare", [{**_timed("runc", 33.0), "memory": _memory(
        "runc", 2 * 1048576)}])
    write(d, 5, "startup", [_timed("crun", 20.0)], machine=LAPTOP)
    reads = Reads()
    view = overview(rows_of(d), reads)

    assert view.machine.startswith("vm|") and view.host == "vm"
    assert view.title() == f"vm ({machine_id(view.machine)}): 3 runtimes"
    assert [c.runtime for c in view.cards] == ["docker", "podman", "runc"]  # not crun
    docker, podman, runc = view.cards
    assert docker.median_ms == 999.0 and docker.setup == "none/cli"
    assert docker.ci_ms == (997.0, 1002.0)
    assert runc.median_ms == 33.0 and runc.latest_id == newest["id"]
    assert runc.ci_ms == (31.0, 36.0)
    assert runc.median_text() == "33 ms [31–36]"
    assert runc.memory_mib == 2.0  # the compare's memory part, newer than the memory run
    assert docker.memory_mib == 5.0  # not the laptop's 7
    assert podman.memory_mib == 1.0 and podman.median_ms is None
    assert podman.median_text() == "no startup yet" and podman.sparkline == ()
    assert docker.canary_ms == 150.0 and runc.canary_ms == 31.0 and podman.canary_ms is None
    when = date_text((T0 + dt.timedelta(hours=38)).timestamp())
    assert docker.canary_text() == f"canary: 150 ms at {when}"
    assert podman.canary_text() == "canary: none yet"
    # runc's sparkline: one set-up (none/api), oldest first, the newest SPARK_POINTS
    assert runc.setup == "none/api"
    assert len(runc.sparkline) == SPARK_POINTS and runc.sparkline[-1] == 33.0
    # one document read per distinct result holding a runtime's latest startup figure
    assert docker.latest_id and runc.latest_id
    assert sorted(reads.ids) == sorted({docker.latest_id, runc.latest_id})


def test_docker_sparkline_keeps_to_the_set_up_of_its_latest_figure(tmp_path: Path) -> None:
    d = tmp_path / "benchmarks"
    for i in range(10):
        write(d, i, "startup", [_timed("docker", 100.0 + i)])
    write(d, 10, "startup", [_timed("docker", 999.0, via="cli")])
    docker = overview(rows_of(d)).cards[0]
    assert docker.median_ms == 999.0 and docker.setup == "none/cli"
    assert docker.sparkline == (999.0,)  # the api runs are another series
    assert docker.ci_ms == (997.0, 1002.0)
    write(d, 11, "startup", [_timed("docker", 120.0)])
    docker = overview(rows_of(d)).cards[0]
    assert docker.setup == "none/api"
    assert docker.sparkline == (*[100.0 + i for i in range(10)], 120.0)


def test_only_the_newest_results_are_read_whatever_the_history(tmp_path: Path) -> None:
    d = tmp_path / "benchmarks"
    write(d, 0, "startup", [_timed("old-runtime", 10.0)])
    for i in range(1, RECENT + 1):
        write(d, i, "startup", [_timed("runc", 30.0 + i % 3)])
    reads = Reads()
    view = overview(rows_of(d), reads)
    assert [c.runtime for c in view.cards] == ["runc"]  # not run among the newest RECENT
    assert view.results == RECENT
    assert len(reads.ids) == 1


def test_no_results_and_a_result_gone_since_the_scan(tmp_path: Path) -> None:
    d = tmp_path / "benchmarks"
    empty = overview(rows_of(d))
    assert empty.cards == () and empty.machine == ""
    assert empty.title().startswith("No results yet")
    doc = write(d, 0, "startup", [_timed("runc", 30.0)])
    rows = rows_of(d)
    (d / f"{doc['id']}.json").unlink()
    card = overview(rows).cards[0]
    assert card.median_ms == 30.0 and card.ci_ms is None
    assert card.median_text() == "30 ms"


def test_profiles_and_unreadable_rows_make_no_card(tmp_path: Path) -> None:
    d = tmp_path / "benchmarks"
    write(d, 0, "startup", [_timed("runc", 30.0)])
    (d / "20991231T000000Z-ffffff.json").write_text(json.dumps(
        {"schema_version": 99, "id": "20991231T000000Z-ffffff", "kind": "startup"}))
    rows = rows_of(d)
    assert any(r.summary is None for r in rows)
    assert [c.runtime for c in overview(rows).cards] == ["runc"]


@pytest.mark.parametrize("per", [None, 3 * 1048576])
def test_memory_text(tmp_path: Path, per: int | None) -> None:
    d = tmp_path / "benchmarks"
    write(d, 0, "startup", [_timed("runc", 30.0)])
    if per:
        write(d, 1, "memory", [_memory("runc", per)])
    card = overview(rows_of(d)).cards[0]
    assert card.memory_text() == ("memory: 3.0 MiB per container" if per else
                                  "memory: not measured")


def _versioned(entry: dict[str, Any], version: str) -> dict[str, Any]:
    return {**entry, "version": version}


def test_open_change_points_go_to_their_runtimes_card_until_acked(
        tmp_path: Path, forge_home: Path) -> None:
    """24 results: docker 50 -> 80 ms at the 13th with its version 1.0 -> 2.0, runc flat; the
    same step on another machine stays off this machine's cards; an acked change is gone."""
    d = tmp_path / "benchmarks"
    docs = []
    for i in range(24):
        after = i >= 12
        docker = _versioned(_timed("docker", (80.0 if after else 50.0) + i % 3 * 0.5),
                            "2.0" if after else "1.0")
        doc = write(d, i, "startup", [docker, _timed("runc", 30.0 + i % 3 * 0.3)])
        doc["environment"]["runtimes"]["docker"]["version"] = docker["version"]
        (d / f"{doc['id']}.json").write_text(json.dumps(doc))
        docs.append(doc)
        laptop = write(d, 100 + i, "startup", [_timed("docker", 50.0 if i < 12 else 80.0)],
                       machine=LAPTOP)
    assert laptop["environment"]["host"] == "laptop"
    view = overview(rows_of(d))
    assert view.host == "laptop"  # the newest results are the laptop's
    view = overview([r for r in rows_of(d) if r.host == "vm"])
    found = open_changes([d])
    assert sorted((c.runtime, c.machine == machine_id(view.machine)) for c in found) == [
        ("docker", False), ("docker", True)]  # the laptop's step, and this machine's
    cards = {c.runtime: c for c in with_changes(view, found).cards}
    assert cards["runc"].changes == ()
    (change,) = cards["docker"].changes
    assert change.result_id == docs[12]["id"]
    assert 50 <= change.change_pct <= 70
    assert [(a.field, a.before, a.after) for a in change.attribution
            if a.field == "version"] == [("version", "1.0", "2.0")]
    assert cards["docker"].change_lines() == [change.headline()]
    assert "1.0 → 2.0" in change.headline()

    # the window's way: in a forked child, the same answer
    assert open_changes_apart([d]) == found
    ack(change.result_id, d)
    assert all(c.result_id != change.result_id for c in open_changes([d]))
    assert with_changes(view, open_changes([d])).cards[0].changes == ()
