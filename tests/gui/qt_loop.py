"""Driving the real Qt event loop from in-process GUI tests (pytest-qt is not used)."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QEventLoop, QTimer


def spin_until(done: Callable[[], bool], timeout_s: float) -> None:
    """Run the real Qt event loop until ``done()``; fail after ``timeout_s``."""
    loop = QEventLoop()
    check = QTimer()
    check.timeout.connect(lambda: loop.quit() if done() else None)
    check.start(20)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    check.stop()
    assert done(), f"not done within {timeout_s} s"


def _runqueue_wait_s() -> float:
    """How long the calling thread has waited for a CPU while runnable, in all (Linux
    schedstat, in ns)."""
    with open("/proc/thread-self/schedstat") as fh:
        return int(fh.read().split()[1]) / 1e9


class StallMeter:
    """A 10 ms timer on the GUI thread: the gaps between its ticks are the times the event
    loop did not run.

    On a machine shared with other test sessions (load 7-10 on 2 cores) a runnable thread can
    also wait over a second for a CPU, which a plain gap cannot tell from the GUI thread being
    blocked. So each tick also reads the GUI thread's run-queue wait (schedstat): the time it
    was blocked in a gap is the gap minus the time it spent waiting for a CPU. A GUI thread
    doing a benchmark's work (running) or waiting on an engine call (sleeping) counts whole;
    the machine not giving it a CPU does not."""

    def __init__(self) -> None:
        self.ticks: list[tuple[float, float]] = []
        """(perf_counter, run-queue wait so far), both in seconds, per tick."""
        self._timer = QTimer()
        self._timer.timeout.connect(self._tick)
        self._skips: list[float] = []

    def _tick(self) -> None:
        self.ticks.append((time.perf_counter(), _runqueue_wait_s()))

    def start(self) -> None:
        self.ticks = []
        self._tick()
        self._timer.start(10)

    def skip(self) -> None:
        """Do not count the gap up to now (the test's own blocking work, e.g. a screenshot)."""
        self._skips.append(time.perf_counter())

    def stop(self) -> None:
        self._timer.stop()

    @property
    def gaps(self) -> list[tuple[float, float]]:
        """(wall time, of which waiting for a CPU) between consecutive ticks, but for those
        spanning a ``skip()``."""
        return [(b - a, wb - wa) for (a, wa), (b, wb) in zip(self.ticks, self.ticks[1:],
                                                           strict=False)
                if not any(a < t < b for t in self._skips)]

    @property
    def longest_gap_ms(self) -> float:
        """The longest gap, whatever its cause (reported, not judged)."""
        return max((wall for wall, _wait in self.gaps), default=0.0) * 1000

    @property
    def longest_ms(self) -> float:
        """The longest time the GUI thread was blocked (running or sleeping, not waiting for a
        CPU) between two ticks."""
        return max((wall - wait for wall, wait in self.gaps), default=0.0) * 1000
