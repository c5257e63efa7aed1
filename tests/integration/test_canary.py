"""`forge canary`: a short startup round on the real runtimes, saved as kind canary and read
by everything that reads startup results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forge_desktop import lock
from forge_desktop.actions import ACTIONS
from forge_desktop.bench.canary import CanaryOptions
from tests.conftest import assert_one_line_error, run_forge
from tests.integration.conftest import oci_leftovers


def saved(home: Path) -> list[Path]:
    return sorted((home / "benchmarks").glob("*.json")) if (home / "benchmarks").exists() \
        else []


def test_canary_on_runc_is_a_canary_result_with_a_median(forge_home: Path) -> None:
    proc = run_forge("canary", "-r", "runc", "--json", check=True)
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "canary" and doc["complete"]
    assert doc["parameters"]["iterations"] == 5 and doc["parameters"]["warmup"] == 1
    (entry,) = doc["runtimes"]
    assert entry["runtime"] == "runc" and entry["stats"]["n"] == 5 and not entry["errors"]
    assert 0 < entry["stats"]["median_ms"] < 30_000
    for key in ("kernel", "cpu_model", "cgroup_version", "forge_version", "runtimes"):
        assert doc["environment"][key], key  # the usual fingerprint
    (path,) = saved(forge_home)
    assert json.loads(path.read_text())["id"] == doc["id"]
    assert oci_leftovers(True) == []

    # read as a startup result is: the list, the detail, the exports
    listed = json.loads(run_forge("results", "list", "--json", check=True).stdout)
    (row,) = listed
    assert row["id"] == doc["id"] and row["kind"] == "canary"
    assert row["headline"]["values"]["runc"] == pytest.approx(entry["stats"]["median_ms"],
                                                              abs=1e-3)
    shown = run_forge("results", "show", doc["id"], check=True).stdout
    assert "runc" in shown and f"{entry['stats']['median_ms']:.1f}" in shown
    markdown = run_forge("results", "export", doc["id"], "-f", "md", check=True).stdout
    assert "Canary startup round" in markdown and "Startup time (ms)" in markdown
    csv = run_forge("results", "export", doc["id"], "-f", "csv", check=True).stdout
    assert sum(1 for line in csv.splitlines() if ",canary," in line) == 5


def test_benchmark_canary_without_saving(forge_home: Path) -> None:
    proc = run_forge("benchmark", "canary", "-r", "runc", "-n", "2", "--warmup", "0",
                     "--json", "--no-save", check=True)
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "canary" and doc["runtimes"][0]["stats"]["n"] == 2
    assert saved(forge_home) == []


@pytest.mark.parametrize(("args", "needle"), [
    (["-n", "0"], "between 1 and 1000"),
    (["--warmup", "-1"], "warmup"),
    (["-r", "nosuch"], "unknown runtime 'nosuch'"),
])
def test_bad_input(forge_home: Path, args: list[str], needle: str) -> None:
    assert_one_line_error(run_forge("canary", *args), needle)
    assert saved(forge_home) == []


def test_canary_takes_the_benchmark_lock(forge_home: Path) -> None:
    forge_home.mkdir(parents=True)
    hold = lock.try_acquire("startup")
    assert hold is not None
    try:
        proc = run_forge("canary", "-r", "runc")
    finally:
        hold.release()
    assert proc.returncode == 75, proc.stderr
    assert "a benchmark is already running (startup" in proc.stderr
    assert saved(forge_home) == []


def test_the_registry_and_the_options_agree_on_the_defaults() -> None:
    params = ACTIONS["canary"].coerce({})
    defaults = CanaryOptions()
    assert (params["iterations"], params["warmup"]) == (defaults.iterations, defaults.warmup)
