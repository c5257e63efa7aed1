"""Driving the real Qt event loop from in-process GUI tests (pytest-qt is not used)."""

from __future__ import annotations

import os
import threading
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


def _others_runqueue_wait_s() -> dict[str, float]:
    """The same for every other thread of this process, by thread id."""
    me = str(threading.get_native_id())
    waits: dict[str, float] = {}
    for task in os.listdir("/proc/self/task"):
        if task == me:
            continue
        try:
            with open(f"/proc/self/task/{task}/schedstat") as fh:
                waits[task] = int(fh.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            continue  # the thread ended
    return waits


class StallMeter:
    """A 10 ms timer on the GUI thread: the gaps between its ticks are the times the event
    loop did not run.

    On a machine shared with other test sessions (load 7-10 on 2 cores) a runnable thread can
    also wait over a second for a CPU, which a plain gap cannot tell from the GUI thread being
    blocked. So each tick also reads the GUI thread's run-queue wait (schedstat): the time it
    was blocked in a gap is the gap minus the time it spent waiting for a CPU. A GUI thread
    doing a benchmark's work (running) or waiting on an engine call (sleeping) counts whole;
    the machine not giving it a CPU does not. Likewise when the GUI thread waits for the GIL
    while the thread holding it waits for a CPU: each tick also reads the other threads'
    run-queue waits, and the longest of those in a gap is the machine's, not forge's (a thread
    waiting for the GIL sleeps and adds nothing; one holding it in C code runs and adds
    nothing either, so a real stall still counts)."""

    def __init__(self) -> None:
        self.ticks: list[tuple[float, float, dict[str, float]]] = []
        """(perf_counter, run-queue wait so far, the other threads' so far), in seconds."""
        self._timer = QTimer()
        self._timer.timeout.connect(self._tick)
        self._skips: list[float] = []

    def _tick(self) -> None:
        self.ticks.append((time.perf_counter(), _runqueue_wait_s(), _others_runqueue_wait_s()))

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
        """(wall time, of which the machine's: the GUI thread's wait for a CPU plus the longest
        wait of another thread) between consecutive ticks, but for those spanning a
        ``skip()``."""
        return [(b - a, (wb - wa) + max((ob[k] - oa[k] for k in ob.keys() & oa.keys()),
                                        default=0.0))
                for (a, wa, oa), (b, wb, ob) in zip(self.ticks, self.ticks[1:], strict=False)
                if not any(a < t < b for t in self._skips)]

    @property
    def longest_gap_ms(self) -> float:
        """The longest gap, whatever its cause (reported, not judged)."""
        return max((wall for wall, _wait in self.gaps), default=0.0) * 1000

    @property
    def longest_ms(self) -> float:
        """The longest time the GUI thread was blocked (running or sleeping, not waiting for a
        CPU) between two ticks."""
        return max((max(0.0, wall - wait) for wall, wait in self.gaps), default=0.0) * 1000
