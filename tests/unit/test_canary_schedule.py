"""The tray's canary schedule as a pure unit, on an injected clock."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from forge_desktop.canary_schedule import (
    START_GRACE_S,
    Conditions,
    MonitorState,
    Schedule,
    period_label,
)

T0 = datetime(2026, 11, 30, 14, 0).timestamp()
QUIET = Conditions()


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_first_round_waits_the_grace_then_every_period() -> None:
    clock = Clock()
    schedule = Schedule(3600, MonitorState(), clock=clock)
    assert schedule.next_at() == T0 + START_GRACE_S
    clock.now = T0 + START_GRACE_S - 1
    assert schedule.decide(QUIET).verdict == "wait"
    clock.now = T0 + START_GRACE_S
    assert schedule.decide(QUIET).verdict == "run"
    schedule.ran()
    assert schedule.next_at() == T0 + START_GRACE_S + 3600
    clock.now += 3599
    assert schedule.decide(QUIET).verdict == "wait"
    clock.now += 1
    assert schedule.decide(QUIET).verdict == "run"


def test_a_short_period_shortens_the_grace() -> None:
    schedule = Schedule(5, MonitorState(), clock=Clock())
    assert schedule.next_at() == T0 + 5


def test_off_never_runs() -> None:
    clock = Clock()
    schedule = Schedule(0, MonitorState(), clock=clock)
    clock.now += 10 * 86400
    assert schedule.decide(QUIET).verdict == "wait" and schedule.next_at() is None
    assert schedule.describe() == ["Canary rounds: off"]


def test_a_restart_keeps_the_last_round() -> None:
    clock = Clock(T0 + 7200)
    state = MonitorState(last_round_at=T0)
    schedule = Schedule(3600, state, clock=clock)
    # overdue since T0 + 3600, but a tray that just started waits out the grace first
    assert schedule.next_at() == T0 + 7200 + START_GRACE_S
    state.last_round_at = T0 + 7000
    assert schedule.next_at() == T0 + 7000 + 3600


def test_each_reason_to_skip_and_the_next_round_a_period_later() -> None:
    cases = [
        (Conditions(paused=True), "monitoring paused"),
        (Conditions(on_battery=True), "on battery"),
        (Conditions(lock_holder="startup, pid 42, since 14:00:01"),
         "another benchmark is running (startup, pid 42, since 14:00:01)"),
        (Conditions(load_per_cpu=1.5), "machine busy (load 1.50 per CPU > 0.8)"),
    ]
    for conditions, reason in cases:
        clock = Clock()
        schedule = Schedule(900, MonitorState(), clock=clock)
        clock.now = schedule.next_at() or 0
        decision = schedule.decide(conditions)
        assert (decision.verdict, decision.reason) == ("skip", reason)
        schedule.skipped(decision.reason)
        assert schedule.next_at() == clock.now + 900
        assert schedule.decide(QUIET).verdict == "wait"
        assert f"Skipped 14:01: {reason}" in schedule.describe()
    # at the bound itself the machine is not busy
    clock = Clock()
    schedule = Schedule(900, MonitorState(), clock=clock)
    clock.now += START_GRACE_S
    assert schedule.decide(Conditions(load_per_cpu=0.8)).verdict == "run"


def test_describe_says_last_and_next() -> None:
    clock = Clock()
    schedule = Schedule(1800, MonitorState(), clock=clock)
    assert schedule.describe() == ["Last canary: none yet", "Next canary: 14:01 (every 30 min)"]
    clock.now = T0 + 120
    schedule.ran()
    assert schedule.describe() == ["Last canary: 14:02", "Next canary: 14:32 (every 30 min)"]
    clock.now = T0 + 120 + 1800
    schedule.skipped("on battery")
    assert schedule.describe() == ["Last canary: 14:02", "Skipped 14:32: on battery",
                                   "Next canary: 15:02 (every 30 min)"]
    # next day: the weekday says which 14:02
    clock.now = T0 + 86400
    assert schedule.describe()[0] == "Last canary: Mon 14:02"


def test_period_labels() -> None:
    assert [period_label(p) for p in (0, 900, 1800, 3600, 14400, 5)] == [
        "Off", "15 min", "30 min", "1 h", "4 h", "5 s"]


def test_state_round_trips_and_survives_junk(tmp_path: Path) -> None:
    state = MonitorState(last_round_at=T0, last_skip_at=T0 + 1, last_skip_reason="on battery",
                         notified=["a", "b"], watching_since=T0 - 5)
    state.save(tmp_path)
    assert MonitorState.load(tmp_path) == state
    MonitorState.path(tmp_path).write_text(json.dumps(
        {"last_round_at": "x", "last_skip_at": True, "notified": ["c", 3],
         "watching_since": None}))
    assert MonitorState.load(tmp_path) == MonitorState(notified=["c"])
    MonitorState.path(tmp_path).write_text("{")
    assert MonitorState.load(tmp_path) == MonitorState()
    MonitorState.path(tmp_path).write_text("[]")
    assert MonitorState.load(tmp_path) == MonitorState()
