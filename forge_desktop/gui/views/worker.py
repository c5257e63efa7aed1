"""Work off the GUI thread: ``in_thread`` runs a function in a named daemon thread and hands
its value (or its error) to the GUI thread through the bridge. The only way the window's views
start threads, so none of them touches a widget from a worker."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

from forge_desktop.gui.bridge import Bridge

T = TypeVar("T")


def in_thread(bridge: Bridge, name: str, work: Callable[[], T], done: Callable[[T], object],
              failed: Callable[[BaseException], object] | None = None) -> threading.Thread:
    """Start ``work()`` in thread ``forge-window-<name>``; ``done(value)`` or
    ``failed(error)`` then runs on the GUI thread."""

    def run() -> None:
        try:
            value = work()
        except Exception as exc:  # noqa: BLE001 - handed to the GUI thread, which says it
            error = exc
            if failed is not None:
                post(bridge, lambda: failed(error))
            else:
                import traceback

                traceback.print_exception(error)
            return
        post(bridge, lambda: done(value))

    thread = threading.Thread(target=run, daemon=True, name=f"forge-window-{name}")
    thread.start()
    return thread


def post(bridge: Bridge, fn: Callable[[], object]) -> None:
    """``bridge.post``, except that a window closed meanwhile is not an error: its bridge is
    gone and there is nothing left to show the value in."""
    with contextlib.suppress(RuntimeError):  # "Internal C++ object already deleted."
        bridge.post(fn)
