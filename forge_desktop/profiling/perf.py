"""How long forge's own operations take: benchmark phases, window load, tray refresh.

``PERF`` is the instance forge uses; tests and embedders make their own with an injected
clock. Thread-safe: the GUI thread and job threads record into the same instance.

    with PERF.measure("tray.refresh"):
        ...

    @PERF.timed("window.load")
    def load() -> None: ...

    doc = with_self_timing(doc)   # doc["self_timing_ms"] = PERF.summary()
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from forge_desktop.bench import stats

P = ParamSpec("P")
R = TypeVar("R")

MAX_KEPT = 10_000
"""Latencies kept per operation for the median and p95: a tray refreshing every second for
days must not grow without bound. Count, total and max stay exact over every measurement."""


@dataclass
class _Operation:
    count: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    recent_ms: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_KEPT))

    def add(self, elapsed_ms: float) -> None:
        self.count += 1
        self.total_ms += elapsed_ms
        self.max_ms = max(self.max_ms, elapsed_ms)
        self.recent_ms.append(elapsed_ms)

    def summary(self) -> dict[str, float | int]:
        recent = list(self.recent_ms)
        return {"count": self.count, "total_ms": round(self.total_ms, 4),
                "mean_ms": round(self.total_ms / self.count, 4),
                "median_ms": round(stats.median(recent), 4),
                "p95_ms": round(stats.percentile(recent, 95), 4),
                "max_ms": round(self.max_ms, 4)}


class PerformanceProfiler:
    """Latency of named operations. ``clock`` returns seconds (default
    ``time.perf_counter``); a failed operation is timed too (its time was spent)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._ops: dict[str, _Operation] = {}

    def record(self, name: str, elapsed_ms: float) -> None:
        with self._lock:
            self._ops.setdefault(name, _Operation()).add(float(elapsed_ms))

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        start = self.clock()
        try:
            yield
        finally:
            self.record(name, (self.clock() - start) * 1000.0)

    def timed(self, name: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorator; the operation is named after the function unless ``name`` is given."""

        def wrap(func: Callable[P, R]) -> Callable[P, R]:
            label = name or f"{func.__module__}.{func.__qualname__}"

            @functools.wraps(func)
            def inner(*args: P.args, **kwargs: P.kwargs) -> R:
                with self.measure(label):
                    return func(*args, **kwargs)

            return inner

        return wrap

    def summary(self) -> dict[str, dict[str, float | int]]:
        """Per operation: count, total_ms, mean_ms, median_ms, p95_ms, max_ms."""
        with self._lock:
            return {name: op.summary() for name, op in sorted(self._ops.items())}

    def to_dict(self) -> dict[str, Any]:
        return {"operations": self.summary(), "recent_kept_per_operation": MAX_KEPT}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def reset(self) -> None:
        with self._lock:
            self._ops.clear()


PERF = PerformanceProfiler()
"""forge's own instance."""


def with_self_timing(doc: dict[str, Any],
                     profiler: PerformanceProfiler | None = None) -> dict[str, Any]:
    """Attach ``self_timing_ms`` (the profiler's summary, ``{}`` when nothing was measured)
    to a result document; returns the document."""
    doc["self_timing_ms"] = (profiler or PERF).summary()
    return doc
