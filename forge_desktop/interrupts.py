"""Holding Ctrl-C and SIGTERM while something must finish: a cleanup, or an engine request
whose answer (a container id) is what the cleanup needs."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from forge_desktop.errors import Interrupted


@contextlib.contextmanager
def signals_deferred(
        message: str = "interrupted; the run's containers were removed") -> Iterator[None]:
    """Hold SIGINT/SIGTERM while the block runs; if one came, raise ``Interrupted`` after it.

    A no-op off the main thread (Python delivers signals to the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda num, _frame: pending.append(num))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if pending:
        raise Interrupted(message)
