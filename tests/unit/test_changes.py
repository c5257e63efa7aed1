"""Change points over the history (results/changes.py) on synthetic series with known steps,
including ones it must not flag, and ``forge results changes|ack`` in process.

Every series is drawn from a seeded generator, so each test is one fixed input: none can
flake. The noise model is the one benchmarks/change_points.py measures the false-alarm rate
with: each result has its own level (log-normal around the series' level, the drift between
sessions) and its samples scatter around that level.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from forge_desktop.results import changes, state
from forge_desktop.results.changes import Change, find_changes, partition
from forge_desktop.results.index import parse_created
from tests.unit.test_history import T0, forge, make_doc, one_line_error, save


def run_totals(rng: random.Random, level: float, drift: float = 0.03,
               noise: float = 0.05, n: float = 5) -> list[float]:
    session = level * math.exp(rng.gauss(0, drift))
    return [session * math.exp(rng.gauss(0, noise)) for _ in range(int(n))]


def save_series(home: Path, levels: list[float], *, runtime: str = "slow", seed: int = 1,
                versions: list[str] | None = None, kind: str = "startup",
                extra: dict[str, float] | None = None, **noise: float) -> list[dict[str, Any]]:
    """One result per level, an hour apart; ``versions``: the runtime's version per result;
    ``extra``: other runtimes measured in the same results, flat at their level."""
    rng = random.Random(seed)
    docs = []
    for i, level in enumerate(levels):
        startup: dict[str, Sequence[float]] = {runtime: run_totals(rng, level, **noise)}
        for name, flat in (extra or {}).items():
            startup[name] = run_totals(rng, flat, **noise)
        doc = make_doc(kind, T0 + dt.timedelta(hours=i), startup=startup,
                       run_id=f"r{i:03d}-{kind}")
        for entry in doc["runtimes"]:
            if versions is not None and entry["runtime"] == runtime:
                entry["version"] = versions[i]
        save(home, doc)
        docs.append(doc)
    return docs


def test_partition_finds_an_exact_step_and_nothing_in_a_constant_series() -> None:
    assert partition([1.0] * 12 + [2.0] * 12) == [12]
    assert partition([1.0] * 24) == []
    assert partition([1.0] * 5) == []  # too short for two segments of 3


def test_flat_series_of_24_has_no_change(forge_home: Path) -> None:
    save_series(forge_home, [50.0] * 24)
    assert find_changes() == []


def test_step_after_12_is_found_once_at_the_13th_with_its_cause(forge_home: Path) -> None:
    docs = save_series(forge_home, [50.0] * 12 + [80.0] * 12,
                       versions=["1.0"] * 12 + ["2.0"] * 12, extra={"flat": 50.0})
    found = find_changes()
    assert len(found) == 1, found
    c = found[0]
    assert (c.runtime, c.metric, c.result_id, c.at) == (
        "slow", "startup", docs[12]["id"], docs[12]["created_at"])
    assert c.setup == "busybox none/command"  # a command runtime: via "command"
    assert 50 <= c.change_pct <= 70 and 45 < c.before < 55 and 72 < c.after < 88
    assert c.attribution == (changes.Attribution("version", "1.0", "2.0"),)
    assert c.p_value <= c.q_value < changes.ALPHA
    assert not c.acked
    assert c.headline().startswith("slow startup +")
    assert c.headline().endswith("(slow 1.0 → 2.0)")


def test_small_steps_ramps_and_spikes_are_not_flagged(forge_home: Path) -> None:
    # 5%: below the 10% floor, however clear; a lone spike (3x, one result) and a slow ramp
    # of 0.5% per result are not a step either
    save_series(forge_home, [50.0] * 12 + [52.5] * 12, runtime="small", seed=2,
                drift=0.005, noise=0.01)
    save_series(forge_home, [50.0] * 11 + [150.0] + [50.0] * 12, runtime="spike", seed=3)
    save_series(forge_home, [50.0 * 1.005 ** i for i in range(24)], runtime="ramp", seed=4)
    assert find_changes() == []


def test_two_steps_are_two_changes_and_a_slowdown_back_counts_too(forge_home: Path) -> None:
    docs = save_series(forge_home, [50.0] * 8 + [80.0] * 8 + [50.0] * 8, seed=5)
    found = find_changes()
    assert [(c.result_id, round(c.change_pct / 10)) for c in found] == [
        (docs[8]["id"], 6), (docs[16]["id"], -4)]


def test_noisy_sessions_do_not_pass_for_a_shift(forge_home: Path) -> None:
    """Sessions that drift 10% from one to the next (this shared VM's quieter runtimes),
    with tight samples inside each: the raw samples of any two segments differ (p tiny),
    the results' figures do not differ beyond the floor."""
    save_series(forge_home, [50.0] * 24, seed=6, drift=0.10, noise=0.01)
    assert find_changes() == []


def test_series_are_like_for_like(forge_home: Path) -> None:
    """An image switch at the 13th result is two series, not a change."""
    docs = save_series(forge_home, [50.0] * 12 + [80.0] * 12, seed=7)
    for doc in docs[12:]:
        doc["parameters"]["image"] = "alpine"
        save(forge_home, doc)
    assert find_changes() == []


def test_filters_and_since(forge_home: Path) -> None:
    docs = save_series(forge_home, [50.0] * 12 + [80.0] * 12, seed=8,
                       versions=["1.0"] * 12 + ["2.0"] * 12)
    assert len(find_changes(runtime="slow")) == 1
    assert find_changes(runtime="docker") == []
    assert find_changes(metric="disk") == []
    at = parse_created(docs[12]["created_at"])
    assert len(find_changes(since_s=at)) == 1
    assert find_changes(since_s=at + 1) == []


def test_ack_marks_the_change_known(forge_home: Path) -> None:
    docs = save_series(forge_home, [50.0] * 12 + [80.0] * 12, seed=9)
    changes.ack(docs[12]["id"][:4])  # a unique prefix, as the CLI takes
    [c] = find_changes()
    assert c.acked
    assert state.acked() == {docs[12]["id"]}


def test_cli_changes_json_and_table(forge_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = save_series(forge_home, [50.0] * 12 + [80.0] * 12, seed=10,
                       versions=["1.0"] * 12 + ["2.0"] * 12)
    code, out, err = forge(capsys, "results", "changes", "--json")
    assert code == 0, err
    [c] = json.loads(out)["changes"]
    assert set(c) >= {"machine", "runtime", "metric", "result_id", "at", "before", "after",
                      "change_pct", "p_value", "q_value", "attribution"}
    assert c["result_id"] == docs[12]["id"]
    assert c["attribution"] == [{"field": "version", "before": "1.0", "after": "2.0"}]
    code, out, err = forge(capsys, "results", "changes", "-r", "slow")
    assert code == 0, err
    assert docs[12]["id"] in out and "version 1.0 → 2.0" in out
    code, out, err = forge(capsys, "results", "ack", docs[12]["id"])
    assert code == 0 and docs[12]["id"] in out, err
    code, out, err = forge(capsys, "results", "changes", "--json")
    assert json.loads(out)["changes"][0]["acked"] is True


@pytest.mark.parametrize(("args", "needle"), [
    (("--since", "yesterday"), "--since"),
    (("--metric", "speed"), "--metric"),
])
def test_cli_bad_input_is_one_line(forge_home: Path, capsys: pytest.CaptureFixture[str],
                                   args: tuple[str, ...], needle: str) -> None:
    one_line_error(*forge(capsys, "results", "changes", *args), 2, needle)


def test_ack_of_an_unknown_result_is_one_line(forge_home: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    save_series(forge_home, [50.0] * 3)
    one_line_error(*forge(capsys, "results", "ack", "nosuchid"), 1, "no result")
    assert not state.state_path().exists()


def test_a_damaged_state_file_is_an_error_not_forgotten_acks(
        forge_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_series(forge_home, [50.0] * 12 + [80.0] * 12, seed=11)
    state.state_path().write_text("{not json")
    one_line_error(*forge(capsys, "results", "changes"), 1, "history-state.json",
                   "move it aside")


def test_change_json_is_the_dataclass(forge_home: Path) -> None:
    save_series(forge_home, [50.0] * 12 + [80.0] * 12, seed=12)
    [c] = find_changes()
    again = c.to_json()
    assert isinstance(c, Change) and again["q_value"] == c.q_value
    assert json.loads(json.dumps(again)) == again


def test_one_figure_metrics_form_series_too(forge_home: Path) -> None:
    """Memory has one figure per result: the figures themselves are the raw samples. Daemon
    memory steps 100 -> 150 MiB at the 9th of 16 results (noise 2%); the memory per
    container stays put."""
    rng = random.Random(13)
    mib = 1024 * 1024
    docs = []
    for i in range(16):
        daemon = (100 if i < 8 else 150) * mib * math.exp(rng.gauss(0, 0.02))
        doc = make_doc("memory", T0 + dt.timedelta(hours=i),
                       memory={"docker": (round(daemon), round(12 * mib * math.exp(
                           rng.gauss(0, 0.02))))}, run_id=f"m{i:03d}")
        save(forge_home, doc)
        docs.append(doc)
    [c] = find_changes()
    assert (c.metric, c.runtime, c.result_id, c.setup) == (
        "daemon_memory", "docker", docs[8]["id"], "busybox")
    assert 95 < c.before < 105 and 140 < c.after < 160 and 40 < c.change_pct < 60
    assert c.headline().startswith("docker daemon memory +")
    assert find_changes(metric="per_container_memory") == []


def test_concurrent_acks_all_land(forge_home: Path) -> None:
    """Eight processes ack at once (the tray and the CLI may): the state file's lock makes
    each read-change-write whole, so none is lost."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=state.add_ack, args=(f"r{i}", "2026-11-30T00:00:00Z"))
             for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert state.acked() == {f"r{i}" for i in range(8)}
    assert not [p for p in state.state_path().parent.iterdir() if p.name.endswith(".tmp")]
