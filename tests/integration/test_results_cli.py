"""`forge results` over real results: two real startup runs on runc, then list, show, trend and
check as a user runs them; and the one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_one_line_error, run_forge


@pytest.fixture
def two_runs(forge_home: Path) -> list[dict[str, Any]]:
    docs = []
    for _ in range(2):
        proc = run_forge("benchmark", "startup", "-r", "runc", "-n", "8", "--json", check=True)
        docs.append(json.loads(proc.stdout))
    return docs


def test_history_of_two_real_runs(forge_home: Path, two_runs: list[dict[str, Any]]) -> None:
    first, second = two_runs
    assert sorted(p.name for p in (forge_home / "benchmarks").glob("*.json")) == sorted(
        f"{d['id']}.json" for d in two_runs)

    proc = run_forge("results", "list", check=True)
    assert proc.stderr == ""
    assert first["id"] in proc.stdout and second["id"] in proc.stdout
    assert proc.stdout.index(second["id"]) < proc.stdout.index(first["id"])  # newest first
    assert "runc" in proc.stdout and " ms" in proc.stdout and "complete" in proc.stdout
    assert (forge_home / "benchmarks" / ".index.sqlite").is_file()

    rows = json.loads(run_forge("results", "list", "--json", check=True).stdout)
    assert [r["id"] for r in rows] == [second["id"], first["id"]]
    median = second["runtimes"][0]["stats"]["median_ms"]
    assert rows[0]["headline"] == {"unit": "ms", "values": {"runc": round(median, 4)}}
    assert rows[0]["kind"] == "startup" and rows[0]["host"] == second["environment"]["host"]

    proc = run_forge("results", "show", second["id"][:-2], check=True)
    for needle in (second["id"], "Environment", second["environment"]["kernel"], "Parameters",
                   "Container startup", "runc: 8 iterations (ms)", "run"):
        assert needle in proc.stdout, needle
    assert json.loads(run_forge("results", "show", first["id"], "--json",
                                check=True).stdout) == first

    trend = json.loads(run_forge("results", "trend", "--runtime", "runc", "--json",
                                 check=True).stdout)
    (series,) = trend["series"]
    assert series["runtime"] == "runc" and series["setup"] == "none/command"
    assert [p["id"] for p in series["points"]] == [first["id"], second["id"]]
    proc = run_forge("results", "trend", check=True)
    assert "startup (ms) · runc" in proc.stdout and second["id"] in proc.stdout

    # the same runtime twice: `check` compares them (runc starts in ~30 ms, and two real runs
    # on a shared 2-core VM differed by up to 40%: whether that is flagged is not asserted
    # here; the exact detection on real runs is the sleep-based test below)
    proc = run_forge("results", "check", "--max-regression", "35")
    assert proc.returncode in (0, 3), proc.stdout + proc.stderr
    assert "runc" in proc.stdout
    report = json.loads(run_forge("results", "check", "--json", "--max-regression",
                                  "35").stdout)
    (row,) = report["rows"]
    assert row["metric"] == "startup" and row["runtime"] == "runc"
    assert row["current_id"] == second["id"] and row["baseline_ids"] == [first["id"]]
    assert row["n_current"] == 8 and row["n_baseline"] == 8
    assert (row["status"] == "regression") == (proc.returncode == 3)
    assert 0 <= row["p_value"] <= 1 and row["ci"][0] <= row["ci"][1]

    machines = json.loads(run_forge("results", "machines", "--json", check=True).stdout)
    assert len(machines) == 1 and machines[0]["results"] == 2


@pytest.mark.parametrize("args, code, needle", [
    (("results", "show", "20991231T000000Z-ffffff"), 1,
     "no result with id 20991231T000000Z-ffffff; `forge results list` shows the ids"),
    (("results", "list", "--since", "yesterdayish"), 2, "--since must be a date"),
    (("results", "list", "--limit", "0"), 2, "--limit must be at least 1"),
    (("results", "check", "--max-regression", "-5"), 2,
     "--max-regression must be a positive percentage"),
])
def test_bad_input(forge_home: Path, args: tuple[str, ...], code: int, needle: str) -> None:
    proc = run_forge(*args)
    assert_one_line_error(proc, needle)
    assert proc.returncode == code and proc.stdout == ""


def test_a_damaged_store_still_lists(forge_home: Path) -> None:
    bench = forge_home / "benchmarks"
    bench.mkdir(parents=True)
    (bench / "broken.json").write_text('{"schema_version": 1, "id": ')
    (bench / ".index.sqlite").write_text("garbage")
    proc = run_forge("results", "list", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout) == []
    assert proc.stderr.splitlines() == [
        "warning: skipping broken.json: not valid JSON (Expecting value at line 1 column 29)"]


def _sleeper_run(home: Path, seconds: float) -> dict[str, Any]:
    (home / "config.toml").write_text(f'[runtimes.sleeper]\nrun = ["sleep", "{seconds}"]\n')
    return json.loads(run_forge("benchmark", "startup", "-r", "sleeper", "-n", "12",
                                "--warmup", "1", "--json", check=True).stdout)


def test_real_runs_a_30_percent_regression_is_flagged_and_a_rerun_is_not(
        forge_home: Path) -> None:
    """Real runs of a command runtime whose cost is known: `sleep 0.05` twice (the same
    distribution, ~55 ms with process start), then `sleep 0.067` (~72 ms: 30% slower)."""
    forge_home.mkdir(parents=True, exist_ok=True)
    _sleeper_run(forge_home, 0.05)
    _sleeper_run(forge_home, 0.05)
    same = run_forge("results", "check", "--last", "1")
    assert same.returncode == 0, same.stdout + same.stderr
    _sleeper_run(forge_home, 0.067)
    slower = run_forge("results", "check", "--last", "1", "--json")
    assert slower.returncode == 3, slower.stdout + slower.stderr
    (row,) = [r for r in json.loads(slower.stdout)["rows"] if r["metric"] == "startup"]
    assert row["runtime"] == "sleeper" and row["status"] == "regression"
    assert 1.2 < row["current"] / row["baseline"] < 1.45 and row["p_value"] < 0.05
