"""`forge benchmark scale` for real: runc at two levels, docker and podman through the CLI,
targets, bad input, and the saved result in `forge results list/show/export`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import assert_one_line_error, run_forge
from tests.integration.conftest import DOCKER, oci_leftovers, sh


def _results(home: Path) -> list[Path]:
    return sorted((home / "benchmarks").glob("*.json")) if (home / "benchmarks").exists() \
        else []


def _check_levels(entry: dict[str, object], levels: list[int], n: int) -> None:
    got = entry["levels"]
    assert isinstance(got, list)
    assert [lv["concurrency"] for lv in got] == levels
    for lv in got:
        assert lv["completed"] == n and lv["failures"] == 0, lv
        assert len(lv["latencies_ms"]) == n
        lo, hi = lv["throughput_ci95_per_s"]
        assert 0 < lo <= lv["throughput_per_s"] <= hi
        for q in ("p50", "p90", "p99"):
            clo, chi = lv[f"{q}_ci95_ms"]
            assert 0 < clo <= lv[f"{q}_ms"] <= chi, (q, lv)
        assert lv["p50_ms"] <= lv["p90_ms"] <= lv["p99_ms"]
        assert lv["forge_cpu_ms_per_lifecycle"] > 0
        # runc has no daemon: its CPU is the runc processes forge ran, never missing
        assert lv["engine_cpu_s"] is not None and lv["engine_cpu_s"] > 0


def test_scale_runc_two_levels_json(forge_home: Path) -> None:
    proc = run_forge("benchmark", "scale", "-r", "runc", "--concurrency", "1,4", "-n", "12",
                     "--json", check=True)
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "scale" and doc["complete"] is True
    assert doc["parameters"]["concurrency"] == [1, 4]
    (entry,) = doc["runtimes"]
    assert entry["runtime"] == "runc" and entry["errors"] == []
    _check_levels(entry, [1, 4], 12)
    assert entry["saturation_concurrency"] in (None, 1)  # the rule itself: unit tests
    assert "noise check before measuring" in proc.stderr
    token = doc["id"].rsplit("-", 1)[-1]  # in every runc id of the run: forge-P-S-TOKEN-N
    assert [c for c in oci_leftovers() if f"-{token}-" in c] == []
    (saved,) = _results(forge_home)
    assert json.loads(saved.read_text())["id"] == doc["id"]

    listed = run_forge("results", "list", "--json", check=True)
    rows = [r for r in json.loads(listed.stdout) if r["id"] == doc["id"]]
    assert rows and rows[0]["kind"] == "scale"
    shown = run_forge("results", "show", doc["id"], check=True)
    assert "Concurrency scaling" in shown.stdout and "runc" in shown.stdout
    out = forge_home / "scale.csv"
    run_forge("results", "export", doc["id"], "-o", str(out), check=True)
    assert out.read_text().strip()


def test_scale_docker_and_podman(forge_home: Path) -> None:
    proc = run_forge("benchmark", "scale", "-r", "docker", "-r", "podman", "--concurrency",
                     "1,2", "-n", "4", "--warmup", "0", "--json", check=True)
    doc = json.loads(proc.stdout)
    assert [e["runtime"] for e in doc["runtimes"]] == ["docker", "podman"]
    for entry in doc["runtimes"]:
        assert [lv["concurrency"] for lv in entry["levels"]] == [1, 2]
        for lv in entry["levels"]:
            assert lv["completed"] == 4 and lv["failures"] == 0, lv
            # a daemon (and its shims, or conmon) was there and was read
            assert lv["engine_cpu_s"] > 0 and lv["engine_peak_bytes"] > 1_000_000, lv
    for engine in ("docker", "podman"):  # this run's containers, by its run id: none left
        binary = DOCKER if engine == "docker" else "podman"
        left = sh(binary, "ps", "-a", "-q", "--filter", f"label=io.forge.benchmark={doc['id']}")
        assert left.returncode == 0 and left.stdout.split() == [], (engine, left.stdout)
    shown = run_forge("results", "show", doc["id"], check=True)
    assert "Concurrency scaling" in shown.stdout
    assert "docker" in shown.stdout and "podman" in shown.stdout


def test_scale_targets_exit_3(forge_home: Path) -> None:
    proc = run_forge("benchmark", "scale", "-r", "runc", "--concurrency", "1", "-n", "3",
                     "--warmup", "0", "--no-save", "--min-throughput", "100000",
                     "--max-p99-ms", "100000")
    assert proc.returncode == 3, proc.stderr
    assert "missed" in proc.stdout and "met" in proc.stdout


def test_scale_bad_levels_one_line(forge_home: Path) -> None:
    for bad, needle in (("4,2", "increasing"), ("1,x", "whole numbers"), ("0,4", "between"),
                        ("", "at least one")):
        proc = run_forge("benchmark", "scale", "-r", "runc", "--concurrency", bad)
        assert proc.returncode == 2, (bad, proc.stderr)
        assert_one_line_error(proc, needle)
    assert _results(forge_home) == []
