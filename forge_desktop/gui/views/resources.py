"""Live figures of the machine (``SystemAnalyzer``): CPU, memory, swap, disks, containers per
engine and what would make timings noisy now. Measured in a worker thread every few seconds
while the panel is on screen (the CPU window and the engines' answers take a while); the GUI
thread only shows the readings."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from forge_desktop.gui.bridge import Bridge
from forge_desktop.gui.views.worker import post

REFRESH_S = 3.0
GIB = 1024 ** 3


def _gib(value: Any) -> str:
    return "-" if not isinstance(value, int | float) else f"{value / GIB:,.1f} GiB"


def _percent(value: Any) -> int:
    return int(round(value)) if isinstance(value, int | float) else 0


class ResourcesPanel(QWidget):
    def __init__(self, bridge: Bridge, interval_s: float = REFRESH_S,
                 analyze: Callable[[], dict[str, Any]] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.interval_s = interval_s
        self.analyze = analyze
        self.readings = 0
        """How many readings were shown (tests wait for it)."""
        self.last: dict[str, Any] | None = None
        self._stop: threading.Event | None = None
        grid = QGridLayout()
        self.bars: dict[str, QProgressBar] = {}
        self.texts: dict[str, QLabel] = {}
        for row, (key, title) in enumerate((("cpu", "CPU"), ("memory", "Memory"),
                                            ("swap", "Swap"), ("disk", "Disk (FORGE_HOME)"))):
            bar = QProgressBar()
            bar.setRange(0, 100)
            bar.setAccessibleName(f"{title} used")
            text = QLabel("…")
            text.setObjectName(f"resources-{key}")
            grid.addWidget(QLabel(title), row, 0)
            grid.addWidget(bar, row, 1)
            grid.addWidget(text, row, 2)
            self.bars[key], self.texts[key] = bar, text
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(2, 2)
        self.cores = QLabel("")
        self.stores = QLabel("")
        self.stores.setWordWrap(True)
        self.containers = QLabel("")
        self.containers.setObjectName("resources-containers")
        self.containers.setWordWrap(True)
        self.noise = QListWidget()
        self.noise.setObjectName("resources-noise")
        self.updated = QLabel("Measuring…")
        self.updated.setObjectName("resources-updated")
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.cores)
        layout.addWidget(QLabel("Engine stores:"))
        layout.addWidget(self.stores)
        layout.addWidget(QLabel("Containers:"))
        layout.addWidget(self.containers)
        layout.addWidget(QLabel("What would make timings noisy now:"))
        layout.addWidget(self.noise, 1)
        layout.addWidget(self.updated)

    # -- the worker -------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        self.start()

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802
        super().hideEvent(event)
        self.stop()

    def start(self) -> None:
        if self._stop is not None:
            return
        stop = self._stop = threading.Event()
        analyze = self.analyze or _default_analyzer()

        def hand_over(reading: dict[str, Any] | None, error: str) -> None:
            def show() -> None:
                if stop.is_set():  # stopped (hidden, closed) since: not ours to show
                    return
                if reading is None:
                    self.show_error(error)
                else:
                    self.show_reading(reading)

            if not stop.is_set():
                post(self.bridge, show)

        def loop() -> None:
            while not stop.is_set():
                try:
                    hand_over(analyze(), "")
                except Exception as exc:  # noqa: BLE001 - shown, and tried again later
                    hand_over(None, f"{type(exc).__name__}: {exc}")
                stop.wait(self.interval_s)

        threading.Thread(target=loop, daemon=True, name="forge-window-resources").start()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None

    # -- showing ----------------------------------------------------------------------------
    def show_error(self, text: str) -> None:
        self.updated.setText(f"Could not measure at {time.strftime('%H:%M:%S')}: {text}")

    def show_reading(self, r: Mapping[str, Any]) -> None:
        self.last = dict(r)
        cpu, mem, swap = r.get("cpu") or {}, r.get("memory") or {}, r.get("swap") or {}
        disk = (r.get("disk") or {}).get("forge_home") or {}
        load = cpu.get("load_avg")
        self.bars["cpu"].setValue(_percent(cpu.get("percent")))
        self.texts["cpu"].setText(
            f"{cpu.get('percent', 0) or 0:.0f}% of {cpu.get('count') or '?'} cores"
            + (f" · load {' '.join(f'{x:.2f}' for x in load)}" if load else ""))
        cores = cpu.get("per_core_percent") or []
        self.cores.setText("Per core: " + " ".join(f"{c:.0f}%" for c in cores)
                           + (f" · {cpu['model']}" if cpu.get("model") else ""))
        self.bars["memory"].setValue(_percent(mem.get("used_percent")))
        total, avail = mem.get("total_bytes"), mem.get("available_bytes")
        used = total - avail if isinstance(total, int) and isinstance(avail, int) else None
        self.texts["memory"].setText(f"{_gib(used)} used of {_gib(total)} · {_gib(avail)} "
                                     "available")
        self.bars["swap"].setValue(_percent(swap.get("used_percent")))
        self.texts["swap"].setText(f"{_gib(swap.get('used_bytes'))} used of "
                                   f"{_gib(swap.get('total_bytes'))}")
        self.bars["disk"].setValue(_percent(disk.get("used_percent")))
        self.texts["disk"].setText(f"{_gib(disk.get('free_bytes'))} free of "
                                   f"{_gib(disk.get('total_bytes'))} · {disk.get('path', '')}")
        stores = (r.get("disk") or {}).get("stores") or []
        self.stores.setText("\n".join(
            f"{s.get('engine')}: {_gib(s.get('free_bytes'))} free of "
            f"{_gib(s.get('total_bytes'))} at {s.get('path')}"
            + (f" ({s['reason']})" if s.get("reason") else "") for s in stores) or "none found")
        lines = []
        for engine, c in (r.get("containers") or {}).items():
            if c.get("running") is None:
                lines.append(f"{engine}: not answering ({c.get('reason') or 'unknown'})")
            else:
                lines.append(f"{engine}: {c['running']} running, {c.get('total')} in all")
        self.containers.setText("\n".join(lines) or "no engine known")
        self.noise.clear()
        self.noise.addItems(list(r.get("noise_warnings") or [])
                            or ["Nothing: the machine is quiet"])
        self.updated.setText(f"Updated {time.strftime('%H:%M:%S')} (every "
                             f"{self.interval_s:g} s)")
        self.readings += 1


def _default_analyzer() -> Callable[[], dict[str, Any]]:
    from forge_desktop.profiling.system import SystemAnalyzer

    return SystemAnalyzer(cpu_interval_s=0.5).analyze
