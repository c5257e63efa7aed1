"""Change points on real runs (issue 13, "Must show"): 24 real `forge benchmark startup`
sessions of a user runtime `sh -c "sleep $(cat FILE)"` whose delay goes 0.05 -> 0.08 s and
whose version command goes 1.0 -> 2.0 at session 13, beside a flat `sleep 0.05` runtime
measured in the same sessions; `forge results changes --json` finds exactly one change, on
the first, at the 13th session, +35..90%, attributed to 1.0 -> 2.0.

Sized: the stepping runtime's real cost moves from ~53 to ~83 ms (+55%, sleep plus a shell
and process start); the detector calls a boundary when the raw samples of its two segments
differ (Mann-Whitney) and the sessions' medians differ beyond the 10% floor by a t test, both
at q < 0.001 after Benjamini-Hochberg over the 2 series. For the step, 12 sessions against 12
with a session-to-session spread of a few percent give p far below 1e-6. For the flat runtime
a false call needs its sessions' medians to move by more than 10% in a sustained way (a load
change that lasts over 3 or more sessions while the other half stay put), sized on synthetic
series in docs/BENCHMARKING.md ("Change points": false-alarm rate on flat series with each
session's level drifting by 10%, 0 in 1000) and measured here as the spread of the flat
runtime's session medians (the assertion message prints them when it fails). Both runtimes
are measured in the same sessions, so a burst of load hits both series alike.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from tests.conftest import assert_one_line_error, run_forge

SESSIONS = 24
STEP_AT = 12  # 0-based: the 13th session is the first after the step


def test_a_real_step_with_a_version_change_is_one_change_with_its_cause(
        forge_home: Path, tmp_path: Path) -> None:
    delay, version = tmp_path / "delay", tmp_path / "version"
    forge_home.mkdir(parents=True, exist_ok=True)
    (forge_home / "config.toml").write_text(
        "[runtimes.stepper]\n"
        f'run = ["sh", "-c", "sleep $(cat {delay})"]\n'
        f'version = ["cat", "{version}"]\n'
        "[runtimes.flat]\n"
        'run = ["sleep", "0.05"]\n')
    ids: list[str] = []
    medians: dict[str, list[float]] = {"stepper": [], "flat": []}
    for i in range(SESSIONS):
        delay.write_text("0.08\n" if i >= STEP_AT else "0.05\n")
        version.write_text("2.0\n" if i >= STEP_AT else "1.0\n")
        doc = json.loads(run_forge("benchmark", "startup", "-r", "stepper", "-r", "flat",
                                   "-n", "5", "--warmup", "0", "--json", check=True).stdout)
        ids.append(doc["id"])
        for entry in doc["runtimes"]:
            medians[entry["runtime"]].append(round(entry["stats"]["median_ms"], 1))
            assert entry["version"] == (None if entry["runtime"] == "flat"
                                        else "2.0" if i >= STEP_AT else "1.0"), entry

    proc = run_forge("results", "changes", "--json")
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)["changes"]
    assert len(found) == 1, (found, medians)
    (change,) = found
    assert change["runtime"] == "stepper" and change["metric"] == "startup", medians
    assert change["result_id"] == ids[STEP_AT], (change, ids)
    assert 35 <= change["change_pct"] <= 90, (change, medians)
    assert change["attribution"] == [{"field": "version", "before": "1.0", "after": "2.0"}]
    assert change["q_value"] < 0.001 and not change["acked"]
    # the medians each side are the segments' (5 x 12 samples each)
    assert 0.8 < change["before"] / statistics.median(medians["stepper"][:STEP_AT]) < 1.25
    assert 0.8 < change["after"] / statistics.median(medians["stepper"][STEP_AT:]) < 1.25

    proc = run_forge("results", "changes", "-r", "stepper")
    assert proc.returncode == 0 and ids[STEP_AT] in proc.stdout and "1.0 → 2.0" in proc.stdout
    assert run_forge("results", "changes", "-r", "flat").stdout.startswith("no change points")
    assert json.loads(run_forge("results", "changes", "--since", "1s", "--json",
                                check=True).stdout) == {"changes": []}

    run_forge("results", "ack", ids[STEP_AT][:-2], check=True)
    (again,) = json.loads(run_forge("results", "changes", "--json", check=True).stdout)[
        "changes"]
    assert again["acked"] is True and again["result_id"] == ids[STEP_AT]

    bad = run_forge("results", "changes", "--since", "last tuesday")
    assert bad.returncode == 2
    assert_one_line_error(bad, "--since must be a date")
    print(f"session medians (ms): {json.dumps(medians)}; change: {json.dumps(change)}")
