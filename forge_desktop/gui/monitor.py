"""The tray as a runtime health monitor: canary rounds on a schedule, and one notification
per new change point.

``CanaryMonitor`` asks the schedule (forge_desktop/canary_schedule.py, pure) on a timer
whether a round is due, reads the machine's conditions (battery, load, the benchmark lock,
the user's pause), and runs a due round through the tray's JobRunner (the background thread
the menu's benchmarks use). After any run completes it asks ``results.changes.find_changes``
in a thread for change points not yet notified and not acked, and notifies each once, with an
action that opens the window at the result where the series shifted; what was notified is
kept in ``$FORGE_HOME/monitor.json`` so a restart does not notify again.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer

from forge_desktop.canary_schedule import MonitorState, Schedule, read_conditions
from forge_desktop.config import forge_home
from forge_desktop.errors import Busy, ForgeError, StoreError

if TYPE_CHECKING:
    from forge_desktop.gui.bridge import Bridge
    from forge_desktop.gui.settings import TraySettings
    from forge_desktop.jobs import Job, JobEvent, JobRunner
    from forge_desktop.notify import Notifier
    from forge_desktop.results.changes import Change

MAX_TICK_S = 30.0
"""The timer looks at the schedule at least this often (a suspended laptop's timer does not
fire on time; the schedule's wall clock says whether a round is due on resume)."""


def change_key(change: Change) -> str:
    """A change point, once: its series and the first result after the shift."""
    return f"{change.machine}/{change.runtime}/{change.metric}/{change.setup}@{change.result_id}"


def change_body(change: Change) -> str:
    unit = " ms" if change.metric == "startup" else ""
    return (f"median {change.before:.1f}{unit} → {change.after:.1f}{unit} "
            f"(q = {change.q_value:.2g})")


def _timestamp(iso: str) -> float:
    from forge_desktop.results.schema import parse_iso

    try:
        return parse_iso(iso).timestamp()
    except ValueError:
        return float("inf")  # unreadable time: rather notified than lost


class CanaryMonitor:
    def __init__(self, settings: TraySettings, jobs: JobRunner, notifier: Notifier,
                 bridge: Bridge, on_changed: Callable[[], None],
                 clock: Callable[[], float] | None = None) -> None:
        self.settings = settings
        self.jobs = jobs
        self.notifier = notifier
        self.bridge = bridge
        self.on_changed = on_changed
        self.home = forge_home()
        self.state = MonitorState.load(self.home)
        kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
        self.schedule = Schedule(settings.canary_period_s, self.state,
                                 busy_load=settings.canary_busy_load, **kwargs)
        self.round: Job | None = None
        self._checking = threading.Lock()
        self.timer = QTimer()
        self.timer.timeout.connect(self.tick)

    def start(self) -> None:
        self._arm()
        if self.state.watching_since is None:
            self.state.watching_since = self.schedule.clock()
            self._save()

    def stop(self) -> None:
        self.timer.stop()

    def _arm(self) -> None:
        if not self.schedule.enabled:
            self.timer.stop()
            return
        self.timer.start(int(max(0.5, min(MAX_TICK_S, self.schedule.period_s / 4)) * 1000))

    def set_period(self, seconds: float) -> None:
        self.schedule.period_s = seconds
        self._arm()
        self.on_changed()

    def lines(self) -> list[str]:
        return self.schedule.describe()

    def owns(self, job: Job) -> bool:
        return self.round is not None and job.id == self.round.id

    # -- rounds ---------------------------------------------------------------------------
    def tick(self) -> None:
        if self.jobs.current is not None:  # this tray is running something: not due yet
            return
        decision = self.schedule.decide(read_conditions(self.settings.paused))
        if decision.verdict == "wait":
            return
        if decision.verdict == "skip":
            self.schedule.skipped(decision.reason)
        else:
            params: dict[str, Any] = {}
            if self.settings.runtimes:
                params["runtime"] = list(self.settings.runtimes)
            try:
                self.round = self.jobs.submit("canary", params)
                self.schedule.ran()
            except Busy as exc:  # another process took the lock since the conditions read
                self.schedule.skipped(f"another benchmark is running ({exc})")
            except ForgeError as exc:
                self.schedule.skipped(str(exc))
        self._save()
        self.on_changed()

    def on_job_end(self, ev: JobEvent) -> None:
        """Any run of this tray ended (a round or a menu benchmark): look for new changes."""
        if self.owns(ev.job):
            self.round = None
        if ev.kind == "finished":
            self.check_changes()

    # -- change points --------------------------------------------------------------------
    def check_changes(self) -> None:
        """In a thread: the index scan (and scipy) are not for the GUI thread."""
        threading.Thread(target=self._check, daemon=True, name="forge-changes").start()

    def _check(self) -> None:
        """`forge results changes --json` in a child process: the search reads every result
        of the history and loads scipy (10,000 results: 15 s and 540 MiB), which the tray
        would otherwise keep for the rest of its life."""
        with self._checking:  # two runs ending together: one search at a time
            try:
                found = [c for c in search_changes() if not c.acked]
            except (ForgeError, OSError) as exc:
                print(f"forge tray: change points not checked: {exc}", file=sys.stderr)
                return
            self.bridge.post(lambda: self._found(found))

    def _found(self, found: list[Change]) -> None:
        known = set(self.state.notified)
        since = self.state.watching_since or 0.0
        for change in (c for c in found if change_key(c) not in known):
            if _timestamp(change.at) >= since:  # older ones were history when we started
                self.notifier.notify(change.headline(), change_body(change),
                                     result_id=change.result_id,
                                     series=(change.runtime, change.metric))
            self.state.notified.append(change_key(change))
        self._save()

    def _save(self) -> None:
        try:
            self.state.save(self.home)
        except (OSError, StoreError) as exc:
            print(f"forge tray: {MonitorState.path(self.home)} not saved: {exc}", file=sys.stderr)


CHANGES_TIMEOUT_S = 300.0
"""A change-point search of a big history takes seconds (10,000 results: 15 s here)."""


def search_changes(timeout_s: float = CHANGES_TIMEOUT_S) -> list[Change]:
    """The history's change points, found by a `forge results changes --json` child (same
    FORGE_HOME, through the environment)."""
    import json
    import subprocess

    from forge_desktop.desktop import forge_command
    from forge_desktop.results.changes import Change

    try:
        proc = subprocess.run([*forge_command(), "results", "changes", "--json"],
                              capture_output=True, text=True, timeout=timeout_s, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ForgeError(f"the change-point search took over {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        said = proc.stderr.strip().splitlines()
        raise ForgeError(said[-1] if said else f"forge results changes exited "
                         f"{proc.returncode}")
    try:
        return [Change.from_json(c) for c in json.loads(proc.stdout)["changes"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ForgeError(f"forge results changes answered no change list ({exc})") from None
