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


class StallMeter:
    """A 10 ms timer on the GUI thread: the longest gap between its ticks is the longest
    time the event loop was blocked."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start(10)

    def skip(self) -> None:
        """Do not count the gap up to now (the test's own blocking work, e.g. a screenshot)."""
        self._last = time.perf_counter()

    def stop(self) -> None:
        self._timer.stop()

    @property
    def longest_ms(self) -> float:
        return max(self.gaps, default=0.0) * 1000
