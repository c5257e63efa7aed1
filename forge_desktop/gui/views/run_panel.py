"""Run any benchmark of the action registry from the window: its parameters are rendered from
the ``Param`` specs (defaults as the user's config.toml sets them), the job runs in JobRunner's
thread, and its events (the benchmark's own log lines too) reach the GUI thread through the
bridge only. Runtimes are offered from ``known_runtimes``; which of them answer is
found out in a worker thread (asking an engine may take the engine's timeout)."""

from __future__ import annotations

import contextlib
import re
import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from forge_desktop.actions import ACTIONS, Action, Param
from forge_desktop.errors import ForgeError
from forge_desktop.gui.bridge import Bridge
from forge_desktop.gui.views.worker import in_thread
from forge_desktop.jobs import JobEvent, JobRunner

if TYPE_CHECKING:
    from forge_desktop.config import Config

_COUNT = re.compile(r"(\d+)/(\d+)$")


def discover_runtimes() -> list[tuple[str, str | None]]:
    """(name, why unavailable or None) of every known runtime. Talks to the engines: run it
    in a worker thread."""
    from forge_desktop.config import load_config
    from forge_desktop.runtimes.registry import known_runtimes

    found = []
    for runtime in known_runtimes(load_config()):
        try:
            reason = runtime.available()
        except Exception as exc:  # noqa: BLE001 - a broken adapter is one unavailable runtime
            reason = str(exc) or type(exc).__name__
        finally:
            with contextlib.suppress(Exception):  # closing is best effort
                runtime.close()
        found.append((runtime.name, reason))
    return found


class RunPanel(QWidget):
    result_saved = Signal(str)
    """The id of a result a run saved."""
    busy_changed = Signal(bool)

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.jobs = JobRunner(lambda ev: bridge.post(lambda: self.on_job_event(ev)))
        self.events: list[JobEvent] = []
        """Every job event seen (tests and the log read them)."""
        self.runtimes: list[tuple[str, str | None]] | None = None
        self.runtime_boxes: dict[str, QCheckBox] = {}
        self.inputs: dict[str, QWidget] = {}
        self.last_error = ""
        self._discovering = False
        self._wanted_runtimes: set[str] = set()

        self.action = QComboBox()
        self.action.setAccessibleName("Benchmark")
        for action in ACTIONS.values():
            if action.is_benchmark:
                self.action.addItem(action.title, action.id)
        self.description = QLabel("")
        self.description.setWordWrap(True)
        self.form = QFormLayout()
        self.runtime_row = QWidget()
        self.runtime_layout = QHBoxLayout(self.runtime_row)
        self.runtime_layout.setContentsMargins(0, 0, 0, 0)
        self.runtime_hint = QLabel("Looking for runtimes…")
        self.runtime_layout.addWidget(self.runtime_hint)
        self.runtime_layout.addStretch()
        self.run_button = QPushButton("&Run")
        self.run_button.setToolTip("Run the benchmark (Ctrl+R)")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("&Cancel")
        self.cancel_button.setToolTip("Stop after the current iteration; its containers are "
                                      "removed (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.progress.setFormat("%v / %m")
        self.state = QLabel("Ready")
        self.state.setObjectName("run-state")
        self.state.setWordWrap(True)
        self.error = QLabel("")
        self.error.setObjectName("run-error")
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        self.log = QPlainTextEdit()
        self.log.setObjectName("run-log")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setPlaceholderText("Progress of the run appears here.")

        top = QFormLayout()
        top.addRow("&Benchmark:", self.action)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.description)
        layout.addLayout(self.form)
        layout.addLayout(buttons)
        layout.addWidget(self.state)
        layout.addWidget(self.error)
        layout.addWidget(self.log, 1)
        self.action.currentIndexChanged.connect(lambda _i: self._build_form())
        self._build_form()

    # -- the form ---------------------------------------------------------------------------
    @property
    def current_action(self) -> Action:
        return ACTIONS[str(self.action.currentData())]

    def select_action(self, action_id: str) -> None:
        index = self.action.findData(action_id)
        if index < 0:
            raise KeyError(f"{action_id!r} is not a benchmark action")
        self.action.setCurrentIndex(index)

    def _build_form(self) -> None:
        while self.form.rowCount():
            row = self.form.takeRow(0)
            for item in (row.labelItem, row.fieldItem):
                if item is not None and (w := item.widget()) is not None \
                        and w is not self.runtime_row:
                    w.deleteLater()
        self.runtime_row.setParent(None)
        self.inputs = {}
        action = self.current_action
        self.description.setText(action.description)
        config = self._config()
        for param in action.params:
            if param.kind == "runtimes":
                self.form.addRow("Runt&imes:", self.runtime_row)
                self.runtime_row.show()  # hidden when taken out of the previous form
                self.runtime_row.setToolTip(param.help + ". None checked: every available "
                                            "runtime.")
                continue
            widget = self._input(param, param.default_for(config))
            widget.setToolTip(f"{param.help} (default: {param.default_text()})")
            widget.setAccessibleName(param.name)
            self.inputs[param.name] = widget
            self.form.addRow(f"{param.name.replace('_', ' ').capitalize()}:", widget)

    def _config(self) -> Config | None:
        """The user's config.toml for the defaults; a broken one is said once here (a run
        says it again) and the built-in defaults are shown."""
        from forge_desktop.config import load_config

        try:
            return load_config()
        except ForgeError as exc:
            self._show_error(str(exc))
            return None

    @staticmethod
    def _input(param: Param, default: Any) -> QWidget:
        if param.kind == "int":
            spin = QSpinBox()
            spin.setRange(int(param.minimum if param.minimum is not None else 0),
                          int(param.maximum if param.maximum is not None else 1_000_000))
            spin.setValue(int(default))
            return spin
        if param.kind == "float":
            dspin = QDoubleSpinBox()
            dspin.setRange(param.minimum if param.minimum is not None else 0.0,
                           param.maximum if param.maximum is not None else 1e9)
            dspin.setValue(float(default))
            return dspin
        if param.kind == "bool":
            check = QCheckBox()
            check.setChecked(bool(default))
            return check
        if param.choices:
            combo = QComboBox()
            combo.addItems(list(param.choices))
            combo.setCurrentText(str(default))
            return combo
        line = QLineEdit(",".join(map(str, default)) if param.kind == "ints" else str(default))
        line.setPlaceholderText(param.help)
        return line

    def set_value(self, name: str, value: Any) -> None:
        """Set a parameter's widget (runtimes: a list of names to check)."""
        if name == "runtime":
            names = set(value)
            for n, box in self.runtime_boxes.items():
                box.setChecked(n in names)
            self._wanted_runtimes = names
            return
        widget = self.inputs[name]
        if isinstance(widget, QSpinBox | QDoubleSpinBox):
            widget.setValue(value)
        elif isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, QComboBox):
            widget.setCurrentText(str(value))
        elif isinstance(widget, QLineEdit):
            widget.setText(str(value))

    def params(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, widget in self.inputs.items():
            if isinstance(widget, QSpinBox | QDoubleSpinBox):
                values[name] = widget.value()
            elif isinstance(widget, QCheckBox):
                values[name] = widget.isChecked()
            elif isinstance(widget, QComboBox):
                values[name] = widget.currentText()
            elif isinstance(widget, QLineEdit):
                values[name] = widget.text().strip()
        if any(p.kind == "runtimes" for p in self.current_action.params):
            checked = [n for n, b in self.runtime_boxes.items() if b.isChecked()]
            if not self.runtime_boxes and self._wanted_runtimes:  # before discovery answered
                checked = sorted(self._wanted_runtimes)
            values["runtime"] = checked
        return values

    # -- runtimes, found in a worker thread -------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        self.discover()

    def discover(self) -> None:
        if self.runtimes is not None or self._discovering:
            return
        self._discovering = True
        in_thread(self.bridge, "runtimes", discover_runtimes, self._set_runtimes,
                  lambda exc: self._set_runtimes([], str(exc)))

    def _set_runtimes(self, found: list[tuple[str, str | None]], error: str = "") -> None:
        self._discovering = False
        self.runtimes = found
        wanted = self._wanted_runtimes
        self.runtime_hint.setText(f"Runtimes unknown: {error}" if error else (
            "" if found else "No runtime known"))
        self.runtime_hint.setVisible(bool(error or not found))
        for name, reason in found:
            box = QCheckBox(name)
            box.setObjectName(f"runtime-{name}")
            box.setChecked(name in wanted)
            box.setToolTip(f"{name}: unavailable: {reason}" if reason else f"{name}: available")
            if reason:
                box.setText(f"{name} (unavailable)")
            self.runtime_boxes[name] = box
            self.runtime_layout.insertWidget(self.runtime_layout.count() - 1, box)

    # -- running ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.jobs.current is not None

    def run(self) -> bool:
        """Start the chosen benchmark; False (and the reason shown) when it cannot start."""
        self.error.setVisible(False)
        action = self.current_action
        try:
            self.jobs.submit(action.id, self.params())
        except ForgeError as exc:
            self._show_error(str(exc))
            return False
        self.log.appendPlainText(f"$ forge {' '.join(action.argv(self.params()))}")
        return True

    def cancel(self) -> bool:
        if not self.jobs.cancel():
            return False
        self.state.setText("Cancelling: the current iteration finishes and its containers "
                           "are removed…")
        self.cancel_button.setEnabled(False)
        return True

    def on_job_event(self, ev: JobEvent) -> None:
        self.events.append(ev)
        stamp = time.strftime("%H:%M:%S")
        if ev.kind == "log":  # the benchmark's own line: the log only, the state is unchanged
            self.log.appendPlainText(f"{stamp} {ev.text}")
            return
        busy = ev.kind in ("started", "progress")
        self.run_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy and not ev.job.cancel.is_set())
        self.action.setEnabled(not busy)
        for widget in (*self.inputs.values(), self.runtime_row):  # the run's values are set
            widget.setEnabled(not busy)
        if ev.kind == "started":
            self.progress.setRange(0, 0)  # busy until the first count
            self.state.setText(f"{ev.job.action.title}: starting…")
        elif ev.kind == "progress":
            m = _COUNT.search(ev.text)
            if m:
                self.progress.setRange(0, int(m[2]))
                self.progress.setValue(int(m[1]))
                self.progress.setTextVisible(True)
            if not ev.job.cancel.is_set():
                self.state.setText(ev.text)
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if ev.kind == "finished" else 0)
            self.progress.setTextVisible(False)
        if ev.kind == "finished":
            saved = f" Saved as {ev.path.name}." if ev.path else " Not saved."
            self.state.setText(f"{ev.text}.{saved}")
        elif ev.kind == "failed":
            self.state.setText(f"{ev.job.action.title} failed")
            self._show_error(ev.text)
        elif ev.kind == "cancelled":
            self.state.setText(f"{ev.job.action.title} cancelled: {ev.text}")
        self.log.appendPlainText(f"{stamp} {ev.kind}: {ev.text}")
        self.busy_changed.emit(busy)
        if ev.kind == "finished" and ev.doc and ev.path:
            self.result_saved.emit(str(ev.doc["id"]))

    def _show_error(self, text: str) -> None:
        self.last_error = text
        self.error.setText(f"Error: {text}")
        self.error.setVisible(True)

    def shutdown(self, timeout_s: float = 60) -> None:
        """Cancel a running job and wait for it: it removes its containers before we go."""
        if self.jobs.current is not None:
            self.jobs.cancel()
            self.jobs.wait(timeout_s)
