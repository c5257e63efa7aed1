"""`forge results` over real results: two real startup runs on runc, then list, show, trend and
check as a user runs them; the regression check on real sessions (identical ones are not a
regression, a real 30% slowdown is); and the one-line errors for bad input."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from forge_desktop.results.document import startup_samples
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

    # the same runtime twice: `check` compares them (whether two sessions of 8 runs agree is
    # test_two_identical_sessions_are_not_a_regression's business, with 20 runs and sized)
    report = json.loads(run_forge("results", "check", "--json").stdout)
    row, tail = report["rows"]
    assert (tail["metric"], tail["status"]) == ("startup_p95", "not comparable")  # 8 runs
    assert row["metric"] == "startup" and row["runtime"] == "runc"
    assert row["current_id"] == second["id"] and row["baseline_ids"] == [first["id"]]
    assert row["n_current"] == 8 and row["n_baseline"] == 8
    # the check pools the samples as saved (rounded), so its median is theirs
    assert row["baseline"] == pytest.approx(statistics.median(startup_samples(first, "runc")))
    assert row["current"] == pytest.approx(statistics.median(startup_samples(second, "runc")))
    assert row["drift_sessions"] == 0  # one earlier session: the drift is assumed
    assert 0 <= row["p_value"] <= row["p_adjusted"] <= 1 and row["ci"][0] <= row["ci"][1]

    machines = json.loads(run_forge("results", "machines", "--json", check=True).stdout)
    assert len(machines) == 1 and machines[0]["results"] == 2


@pytest.mark.parametrize("args, code, needle", [
    (("results", "show", "20991231T000000Z-ffffff"), 1,
     "no result with id 20991231T000000Z-ffffff; `forge results list` shows the ids"),
    (("results", "list", "--since", "yesterdayish"), 2, "--since must be a date"),
    (("results", "list", "--limit", "0"), 2, "--limit must be at least 1"),
    (("results", "check", "--max-regression", "-5"), 2,
     "--max-regression must be a positive percentage"),
    (("results", "check", "--alpha", "1.5"), 2, "--alpha must be a probability"),
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


def _startup(*runtimes: str, n: int, warmup: int = 2) -> dict[str, Any]:
    args = [a for r in runtimes for a in ("-r", r)]
    doc: dict[str, Any] = json.loads(run_forge("benchmark", "startup", *args, "-n", str(n),
                                               "--warmup", str(warmup), "--json",
                                               check=True).stdout)
    return doc


def test_two_identical_sessions_are_not_a_regression(forge_home: Path) -> None:
    """Two consecutive real sessions of runc and docker, 20 runs each, then
    `forge results check --last 1`: exit 0, exactly.

    Sized on this machine (docs/BENCHMARKING.md, "Regression checks"): 10 back-to-back
    sessions of runc, docker (and a sleep runtime), 20 runs each, while seven other test
    suites shared the 2 cores (load 8-9): consecutive medians moved by up to 2.3x (docker,
    234 -> 544 ms) and 1.6x (runc). With no earlier session to measure the drift, the check
    assumes 30% (log sd) per session, and calls a change a regression only when its 99.9%
    interval, after the Benjamini-Hochberg correction over the 2 runtimes, lies beyond the 10%
    floor: 0 of 9 consecutive pairs and 0 of 90 ordered pairs flagged (smallest adjusted p
    0.024, against alpha 0.001), and 0 of 450 pairs resampled from them. Under the assumed
    drift the model's false-alarm rate for a pair is below 3 in 10,000 per runtime even
    with docker's measured session spread (0.27)."""
    first = _startup("runc", "docker", n=20)
    second = _startup("runc", "docker", n=20)
    proc = run_forge("results", "check", "--last", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for needle in ("runc", "docker", "99.9% CI", "adj. p", "30% (assumed)"):
        assert needle in proc.stdout, needle
    report = json.loads(run_forge("results", "check", "--last", "1", "--json",
                                  check=True).stdout)
    rows = {r["runtime"]: r for r in report["rows"] if r["metric"] == "startup"}
    assert set(rows) == {"runc", "docker"} and not report["regressed"]
    tails = [r for r in report["rows"] if r["metric"] == "startup_p95"]
    assert [r["status"] for r in tails] == ["ok", "ok"], tails
    for name, row in rows.items():
        assert row["current_id"] == second["id"] and row["baseline_ids"] == [first["id"]]
        assert row["n_current"] == row["n_baseline"] == 20
        assert row["status"] == "ok" and row["p_adjusted"] >= 0.001, (name, row)
        within = abs(math.log1p(row["change_pct"] / 100)) <= math.log(1.1)
        assert row["reason"] == ("below floor" if within else "not significant"), row


def _sleeper(home: Path, seconds: float) -> dict[str, Any]:
    (home / "config.toml").write_text(f'[runtimes.sleeper]\nrun = ["sleep", "{seconds}"]\n')
    return _startup("sleeper", n=5, warmup=0)


def test_a_real_30_percent_slowdown_is_a_regression(forge_home: Path) -> None:
    """Real sessions of a command runtime whose cost is known: `sleep 1` six times (~1008 ms
    with process start), then `sleep 1.3` (30% slower); `forge results check` against the
    pooled previous 5 sessions, the drift measured over all 6: exit 3, exactly.

    Sized (docs/BENCHMARKING.md, "Regression checks"; benchmarks/regression_check.py): what
    a loaded machine adds to a process start moves from session to session by a few ms, up to
    8% of the old test's `sleep 0.05` (53 -> 65 ms as the load rose), 1.8% of `sleep 0.5`,
    0.4% of `sleep 1` (10 sessions each, load 8-10). The rule calls a regression when
    (|log ratio| - log 1.1) / (s x sqrt(1 + 1/5)) exceeds the t quantile for alpha 0.001 with
    5 degrees of freedom (6.87), s the sd of the 6 sessions' log medians: 0.167 / (s x 1.095)
    clears it while s < 2.2%, 7x the drift measured over 10 sessions (0.3%). The chance of a
    miss (a noncentral t with that drift) is below 1e-9; resampling the measured sessions
    (runs and all, which adds noise), 300 of 300 trials called, largest adjusted p 8.6e-05."""
    forge_home.mkdir(parents=True, exist_ok=True)
    for _ in range(6):
        _sleeper(forge_home, 1.0)
    _sleeper(forge_home, 1.3)
    slower = run_forge("results", "check", "--json")
    assert slower.returncode == 3, slower.stdout + slower.stderr
    row, tail = json.loads(slower.stdout)["rows"]
    assert tail["metric"] == "startup_p95" and tail["reason"] == "p95 needs 10 runs a side"
    assert row["runtime"] == "sleeper" and row["status"] == "regression"
    assert row["reason"] == "regression" and row["drift_sessions"] == 6
    assert 1.25 < row["current"] / row["baseline"] < 1.35 and row["p_adjusted"] < 0.001
    assert row["ci"][0] > 1.1 and len(row["baseline_ids"]) == 5
    proc = run_forge("results", "check")
    assert proc.returncode == 3 and "regression: startup on sleeper is" in proc.stdout
    assert "(6 results)" in proc.stdout  # the drift column: measured over 6 sessions
