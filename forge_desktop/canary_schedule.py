"""When the tray runs its next canary round, and why it skipped one: pure logic over an
injected clock (no Qt), so it is tested as a unit. The tray's monitor (gui/monitor.py) asks
``decide`` on a timer with the machine's ``Conditions`` read by ``read_conditions``.

A round is due ``period_s`` after the last one (run or skipped); a round that is due is skipped
on battery, when the machine is busy (load average per CPU above a bound, or another
benchmark holds FORGE_HOME's lock) or while the user paused monitoring, and the next one is a
period later: a skipped round is not retried sooner, so a busy machine is not polled by
benchmarks. The first round after the tray starts waits at least ``START_GRACE_S`` (not in the
middle of a login), and the last round's time survives a restart (``MonitorState``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

PERIOD_CHOICES_S: tuple[float, ...] = (0, 15 * 60, 30 * 60, 3600, 4 * 3600)
"""What the tray's Settings menu offers; 0 is off."""
DEFAULT_PERIOD_S = 3600.0
DEFAULT_BUSY_LOAD = 0.8
"""1-minute load average per CPU above which the machine is busy: a canary would measure the
other work as much as the runtime (the session's noise check says the same, after the fact)."""
START_GRACE_S = 60.0
STATE_NAME = "monitor.json"

Verdict = Literal["run", "skip", "wait"]


def period_label(seconds: float) -> str:
    if seconds <= 0:
        return "Off"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def clock_text(at: float, now: float) -> str:
    """14:02, or "Mon 14:02" when not today."""
    when, today = datetime.fromtimestamp(at), datetime.fromtimestamp(now)
    return when.strftime("%H:%M") if when.date() == today.date() else \
        when.strftime("%a %H:%M")


@dataclass(frozen=True)
class Conditions:
    """What the machine is doing when a round is due."""
    on_battery: bool = False
    load_per_cpu: float = 0.0
    lock_holder: str | None = None
    """``lock.Holder.describe()`` of another benchmark, None when the lock is free."""
    paused: bool = False


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str = ""


@dataclass
class MonitorState:
    """What the tray remembers across restarts in ``$FORGE_HOME/monitor.json``: the last
    round, the last skip and why, and the change points it already notified."""
    last_round_at: float | None = None
    last_skip_at: float | None = None
    last_skip_reason: str = ""
    notified: list[str] = field(default_factory=list)
    watching_since: float | None = None
    """When the tray first watched this FORGE_HOME: a change point whose first result after
    the shift is older was in the history already, and is remembered without a notification
    (it is not news; finding it needs no scan at start)."""

    @staticmethod
    def path(home: Path) -> Path:
        return home / STATE_NAME

    @classmethod
    def load(cls, home: Path) -> MonitorState:
        """A missing or malformed file is an empty state (it only avoids repeats)."""
        try:
            raw = json.loads(cls.path(home).read_text())
        except (OSError, ValueError):
            return cls()
        if not isinstance(raw, dict):
            return cls()
        state = cls()
        for name in ("last_round_at", "last_skip_at", "watching_since"):
            value = raw.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                setattr(state, name, float(value))
        if isinstance(raw.get("last_skip_reason"), str):
            state.last_skip_reason = raw["last_skip_reason"]
        notified = raw.get("notified")
        if isinstance(notified, list):
            state.notified = [n for n in notified if isinstance(n, str)]
        return state

    def save(self, home: Path) -> None:
        """Atomically (results/store.py); OSError/StoreError to the caller."""
        from forge_desktop.results.store import atomic_write_json

        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_json(self.path(home), {
            "last_round_at": self.last_round_at, "last_skip_at": self.last_skip_at,
            "last_skip_reason": self.last_skip_reason, "notified": self.notified[-1000:],
            "watching_since": self.watching_since})


class Schedule:
    def __init__(self, period_s: float, state: MonitorState, *,
                 clock: Callable[[], float] = time.time, busy_load: float = DEFAULT_BUSY_LOAD
                 ) -> None:
        self.period_s = period_s
        self.state = state
        self.clock = clock
        self.busy_load = busy_load
        self.started_at = clock()

    @property
    def enabled(self) -> bool:
        return self.period_s > 0

    def next_at(self) -> float | None:
        """When the next round is due; None when monitoring is off."""
        if not self.enabled:
            return None
        last = max((t for t in (self.state.last_round_at, self.state.last_skip_at)
                    if t is not None), default=None)
        earliest = self.started_at + min(START_GRACE_S, self.period_s)
        return earliest if last is None else max(last + self.period_s, earliest)

    def decide(self, conditions: Conditions) -> Decision:
        """Run now, skip this round (with why), or wait (not due, or off)."""
        due = self.next_at()
        if due is None or self.clock() < due:
            return Decision("wait")
        if conditions.paused:
            return Decision("skip", "monitoring paused")
        if conditions.on_battery:
            return Decision("skip", "on battery")
        if conditions.lock_holder is not None:
            return Decision("skip", f"another benchmark is running ({conditions.lock_holder})")
        if conditions.load_per_cpu > self.busy_load:
            return Decision("skip", f"machine busy (load {conditions.load_per_cpu:.2f} per "
                                    f"CPU > {self.busy_load:g})")
        return Decision("run")

    def ran(self) -> None:
        """A round started now (whatever its end: a failed round is not retried at once)."""
        self.state.last_round_at = self.clock()

    def skipped(self, reason: str) -> None:
        self.state.last_skip_at = self.clock()
        self.state.last_skip_reason = reason

    def describe(self) -> list[str]:
        """The menu's and tooltip's lines: last round, next round, last skip and why."""
        now = self.clock()
        if not self.enabled:
            return ["Canary rounds: off"]
        s = self.state
        lines = [f"Last canary: {clock_text(s.last_round_at, now)}"
                 if s.last_round_at is not None else "Last canary: none yet"]
        if s.last_skip_at is not None and (s.last_round_at is None
                                           or s.last_skip_at > s.last_round_at):
            lines.append(f"Skipped {clock_text(s.last_skip_at, now)}: {s.last_skip_reason}")
        due = self.next_at()
        assert due is not None
        lines.append(f"Next canary: {clock_text(max(due, now), now)} "
                     f"(every {period_label(self.period_s)})")
        return lines


def read_conditions(paused: bool) -> Conditions:
    """The machine now: battery (psutil; no battery reads as plugged in), the 1-minute load
    average per CPU, and who holds FORGE_HOME's benchmark lock."""
    import psutil

    from forge_desktop import lock

    battery = None
    with contextlib.suppress(OSError, RuntimeError):  # no power supply readable: no battery
        battery = psutil.sensors_battery()
    holder = lock.current_holder()
    return Conditions(on_battery=battery is not None and battery.power_plugged is False,
                      load_per_cpu=os.getloadavg()[0] / (os.cpu_count() or 1),
                      lock_holder=holder.describe() if holder is not None else None,
                      paused=paused)
