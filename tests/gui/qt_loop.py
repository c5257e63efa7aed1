"""Driving the real Qt event loop from in-process GUI tests (pytest-qt is not used)."""

from __future__ import annotations

import bisect
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


class StallMeter:
    """A 10 ms timer on the GUI thread: the gaps between its ticks are the times the event
    loop did not run.

    On a machine shared with other test sessions (load 7-10 on 2 cores) the whole process is
    also descheduled for up to 1.4 s at a time, which a plain gap cannot tell from the GUI
    thread being blocked. So a reference thread of the same process ticks every 10 ms too:
    the time the GUI thread was blocked is, within each of its gaps, the span between the
    first and last reference tick (the process demonstrably ran while the loop did not). A
    GUI thread waiting on an engine call or doing a benchmark's work counts whole; the
    process not being scheduled does not count. (A GUI thread holding the GIL still lets the
    reference thread in every 5 ms: the interpreter's switch interval.)"""

    def __init__(self) -> None:
        self.ticks: list[float] = []
        self.reference: list[float] = []
        self._timer = QTimer()
        self._timer.timeout.connect(self._tick)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._skips: list[float] = []

    def _tick(self) -> None:
        self.ticks.append(time.perf_counter())

    def _reference(self) -> None:
        while not self._stop.wait(0.01):
            self.reference.append(time.perf_counter())

    def start(self) -> None:
        self.ticks = [time.perf_counter()]
        self._thread = threading.Thread(target=self._reference, daemon=True,
                                        name="stall-meter-reference")
        self._thread.start()
        self._timer.start(10)

    def skip(self) -> None:
        """Do not count the gap up to now (the test's own blocking work, e.g. a screenshot)."""
        self._skips.append(time.perf_counter())

    def stop(self) -> None:
        self._timer.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def gaps(self) -> list[tuple[float, float]]:
        """Between consecutive ticks, but for those spanning a ``skip()``."""
        return [(a, b) for a, b in zip(self.ticks, self.ticks[1:], strict=False)
                if not any(a < t < b for t in self._skips)]

    @property
    def longest_gap_ms(self) -> float:
        """The longest gap, whatever its cause (reported, not judged)."""
        return max((b - a for a, b in self.gaps), default=0.0) * 1000

    @property
    def longest_ms(self) -> float:
        """The longest time the GUI thread was blocked while its process ran."""
        longest = 0.0
        for a, b in self.gaps:
            lo = bisect.bisect_right(self.reference, a)
            hi = bisect.bisect_left(self.reference, b)
            if hi - lo >= 2:
                longest = max(longest, self.reference[hi - 1] - self.reference[lo])
        return longest * 1000
