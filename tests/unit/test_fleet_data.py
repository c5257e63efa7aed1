"""The window's Fleet page without Qt (gui/views/fleet_data.py), on fleet documents made by
forge_desktop.fleet.fleet_document from host results built as forge builds them
(bench/startup.runtime_entry over runner samples, results/schema.new_document)."""

from __future__ import annotations

import statistics
from typing import Any

from forge_desktop.bench import stats
from forge_desktop.bench.runner import RuntimeRun
from forge_desktop.bench.startup import runtime_entry
from forge_desktop.fleet import HostRun, fleet_document
from forge_desktop.gui.views.fleet_data import effect_sentences, fleet_rows, read_fleet
from forge_desktop.gui.views.history_data import load_history
from forge_desktop.hosts import Host
from forge_desktop.models import RuntimeInfo, Sample
from forge_desktop.results.document import MIB
from forge_desktop.results.schema import new_document, validate
from tests.unit.fakes import FakeRuntime

ALPHA = Host("alpha", "ssh://root@127.0.0.1:2201", "127.0.0.1", "root", 2201)
BETA = Host("beta", "ssh://root@127.0.0.1:2202", "127.0.0.1", "root", 2202)
GAMMA = Host("gamma", "ssh://root@127.0.0.1:2203", "127.0.0.1", "root", 2203)


def _startup(run_id: str, host: str, levels: dict[str, list[float]]) -> dict[str, Any]:
    entries = []
    for name, totals in levels.items():
        runtime = FakeRuntime(name)
        run = RuntimeRun(runtime, RuntimeInfo(name, "engine", True, version="1.0"),
                         [Sample(t, {"create": t * 0.2, "start": t * 0.8}) for t in totals])
        entries.append(runtime_entry(run, "api"))
    doc = new_document("startup", run_id, {"host": host, "cpu_count": 2}, {"iterations": 20},
                       entries, True)
    return validate(doc)


def _series(level: float, n: int = 20) -> list[float]:
    return [level + 0.05 * level * ((i * 7) % n) / n for i in range(n)]


def _fleet() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """alpha slow (runc 40, docker 200 ms), beta twice as fast for both, gamma failed."""
    docs = {"alpha": _startup("20261130T090000Z-aaaaaa", "alpha",
                              {"runc": _series(40.0), "docker": _series(200.0)}),
            "beta": _startup("20261130T090001Z-bbbbbb", "beta",
                             {"runc": _series(20.0), "docker": _series(100.0)})}
    runs = [HostRun(ALPHA, docs["alpha"]), HostRun(BETA, docs["beta"]),
            HostRun(GAMMA, reason="host gamma: cannot connect (Connection refused)")]
    return fleet_document(runs, "startup", {"iterations": 20}, None), docs


def test_a_fleet_reads_as_hosts_runtimes_and_cells() -> None:
    doc, docs = _fleet()
    fleet = read_fleet(doc)
    assert fleet.id == doc["id"] and fleet.fleet_kind == "startup"
    assert fleet.baseline_host == "alpha" and fleet.baseline_runtime == "docker"
    assert [(h.name, h.url, h.result_id, h.failed, h.baseline) for h in fleet.hosts] == [
        ("alpha", ALPHA.url, docs["alpha"]["id"], False, True),
        ("beta", BETA.url, docs["beta"]["id"], False, False),
        ("gamma", GAMMA.url, None, True, False)]
    assert fleet.hosts[2].error == "host gamma: cannot connect (Connection refused)"
    assert fleet.runtimes == ("docker", "runc") and fleet.metrics == ("startup",)
    grid = fleet.grid("startup")
    assert [h.name for h, _ in grid] == ["alpha", "beta", "gamma"]
    medians = {h: {e["runtime"]: e["stats"]["median_ms"] for e in d["runtimes"]}
               for h, d in docs.items()}
    # the baseline host: its own medians, in ms
    alpha_cells = grid[0][1]
    assert [c.value for c in alpha_cells if c] == [medians["alpha"]["docker"],
                                                   medians["alpha"]["runc"]]
    assert [c.text() for c in alpha_cells if c] == [
        f"{medians['alpha']['docker']:,.1f} ms", f"{medians['alpha']['runc']:,.1f} ms"]
    # beta: the ratio against alpha with its CI, p and verdict, as the document says
    rows = {r["runtime"]: r for r in doc["comparison"]["ratios"]}
    for cell in grid[1][1]:
        assert cell is not None
        row = rows[cell.runtime]
        assert cell.ratio == row["ratio"] == round(
            medians["alpha"][cell.runtime] / medians["beta"][cell.runtime], 4)
        assert cell.ci95 == tuple(row["ci95"]) and cell.p_value == row["p_value"]
        assert cell.verdict == "faster" and cell.value == medians["beta"][cell.runtime]
        assert cell.text() == f"{row['ratio']:.2f}× [{row['ci95'][0]:.2f}–{row['ci95'][1]:.2f}]"
    assert 1.9 < grid[1][1][0].ratio < 2.1  # type: ignore[union-attr,operator]
    assert grid[2][1] == [None, None]  # gamma: no result, nothing to show


def test_engine_ratios_are_read_per_host() -> None:
    doc, docs = _fleet()
    fleet = read_fleet(doc)
    assert [(e.host, e.runtime, e.baseline_runtime, e.verdict) for e in fleet.engine_ratios] == [
        ("alpha", "runc", "docker", "faster"), ("beta", "runc", "docker", "faster")]
    for e, host in zip(fleet.engine_ratios, ("alpha", "beta"), strict=True):
        xs = [s["total_ms"] for s in docs[host]["runtimes"][0]["samples"]]
        ys = [s["total_ms"] for s in docs[host]["runtimes"][1]["samples"]]
        # baseline (docker) / runc: above 1, runc is faster
        assert e.ratio == round(statistics.median(ys) / statistics.median(xs), 4)
        lo, hi = stats.ratio_of_medians_ci(xs, ys)[1]  # seeded: the document's interval
        assert e.ci95 == (round(lo, 4), round(hi, 4))


def test_effects_in_plain_words() -> None:
    doc, _ = _fleet()
    assert read_fleet(doc).effects == (
        "runc faster than docker on every host (median startup)",
        "beta faster than alpha for every runtime (median startup)")
    mixed = {"engine_effect": [{"runtime": "crun", "baseline_runtime": "docker",
                                "metric": "startup", "holds_on_every_host": False,
                                "verdicts": {"alpha": "faster",
                                             "beta": "no significant difference"}}],
             "host_effect": [{"host": "beta", "baseline_host": "alpha", "metric": "disk",
                              "same_for_every_runtime": False,
                              "verdicts": {"runc": "smaller", "docker": "larger"}},
                             {"host": "gamma", "baseline_host": "alpha", "metric": "startup",
                              "same_for_every_runtime": False,
                              "verdicts": {"runc": "no significant difference"}}]}
    assert effect_sentences(mixed) == [
        "crun against docker (median startup) differs by host: alpha faster, "
        "beta no significant difference",
        "beta against alpha (disk: benchmark image + one container) differs by runtime: "
        "runc smaller, docker larger",
        "gamma against alpha: no significant difference for every runtime (median startup)"]


def test_baseline_host_chosen_and_memory_in_mib() -> None:
    """--baseline-host beta: beta's cells are its figures, alpha's the ratios (slower); a
    memory fleet shows MiB on the baseline host and size verdicts elsewhere."""
    doc, docs = _fleet()
    runs = [HostRun(ALPHA, docs["alpha"]), HostRun(BETA, docs["beta"])]
    fleet = read_fleet(fleet_document(runs, "startup", {}, "beta"))
    grid = {h.name: cells for h, cells in fleet.grid("startup")}
    assert [c.baseline for c in grid["beta"] if c] == [True, True]
    assert {c.verdict for c in grid["alpha"] if c} == {"slower"}

    def memory(run_id: str, per: dict[str, int]) -> dict[str, Any]:
        return validate(new_document(
            "memory", run_id, {"host": run_id[-1]}, {"containers": 3},
            [{"runtime": n, "version": "1", "errors": [], "daemon_pss_bytes": 50 * MIB,
              "per_container_bytes": b} for n, b in per.items()], True))

    mem = read_fleet(fleet_document(
        [HostRun(ALPHA, memory("20261130T090000Z-a", {"podman": 3 * MIB, "docker": 6 * MIB})),
         HostRun(BETA, memory("20261130T090000Z-b", {"podman": 2 * MIB, "docker": 6 * MIB}))],
        "memory", {}, "alpha"))
    assert mem.metrics == ("daemon_memory", "per_container_memory")
    per = {h.name: cells for h, cells in mem.grid("per_container_memory")}
    assert [c.text() for c in per["alpha"] if c] == ["6.0 MiB", "3.0 MiB"]
    assert [(c.ratio, c.verdict, c.ci95) for c in per["beta"] if c] == [
        (1.0, "about the same", None), (1.5, "smaller", None)]
    assert [c.text() for c in per["beta"] if c] == ["1.00×", "1.50×"]


def test_the_fleet_list_is_the_historys_fleets_newest_first(tmp_path: Any) -> None:
    import json

    store = tmp_path / "benchmarks"
    store.mkdir()
    first, docs = _fleet()
    second, _ = _fleet()
    second["id"] = "20991231T000000Z-ffffff"
    second["created_at"] = "2099-12-31T00:00:00.000Z"
    for d in (first, second, *docs.values()):
        (store / f"{d['id']}.json").write_text(json.dumps(d))
    rows = fleet_rows(load_history([store]).rows)
    assert [r.id for r in rows] == [second["id"], first["id"]]


def test_a_hostile_fleet_document_reads_as_far_as_it_goes() -> None:
    fleet = read_fleet({"kind": "fleet", "hosts": [{"name": 3}, "x", {"name": "a",
                                                                      "result_id": 7}],
                        "comparison": {"baseline_host": "a", "ratios": [
                            {"host": "b", "runtime": "runc", "metric": "startup",
                             "ratio": "1.5", "ci95": [1, float("nan")], "value": True}]}})
    assert [(h.name, h.result_id, h.failed) for h in fleet.hosts] == [("3", None, True),
                                                                       ("a", None, True)]
    (cell,) = fleet.cells.values()
    assert (cell.ratio, cell.ci95, cell.value, cell.text()) == (None, None, None, "-")


def test_results_show_of_a_fleet_prints_no_empty_environment() -> None:
    """A fleet has no environment of its own (its hosts' are in their results): `results show`
    printed an empty, terminal-wide Environment table for it."""
    from rich.console import Console

    from forge_desktop.cli.results_format import show_renderables

    fleet, _ = _fleet()
    console = Console(width=100, record=True)
    for part in show_renderables(fleet):
        console.print(part)
    text = console.export_text()
    assert "Environment" not in text
    assert f"host alpha: result {fleet['hosts'][0]['result_id']}" in text


def test_a_fleet_index_row_names_its_hosts_and_their_runtimes() -> None:
    from forge_desktop.results.index import summarize

    fleet, _ = _fleet()
    row = summarize(fleet, f"{fleet['id']}.json")
    assert row.host == "fleet: " + ", ".join(h["name"] for h in fleet["hosts"])
    assert row.runtimes == tuple(dict.fromkeys(
        rt for h in fleet["hosts"] for rt in h.get("runtimes", [])))
    assert row.runtimes  # the hosts ran something: the row is not blank
