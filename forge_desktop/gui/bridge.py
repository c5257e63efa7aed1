"""The one place worker threads hand work to the Qt thread.

``Bridge.post(fn)`` may be called from any thread; ``fn`` runs soon after on the thread that
owns the bridge (the GUI thread), through a queued signal. Nothing else in forge touches a
widget from another thread.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal, Slot


class Bridge(QObject):
    _call = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self._call.connect(self._run, Qt.ConnectionType.QueuedConnection)

    def post(self, fn: Callable[[], object]) -> None:
        self._call.emit(fn)

    @Slot(object)
    def _run(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception:  # noqa: BLE001 - one bad handler must not take the GUI down
            import traceback

            traceback.print_exc()
