"""Compare two results (the older is the baseline; Swap turns it round), or the runtimes of
one result against a baseline runtime: ratios of medians with bootstrap confidence intervals,
Mann-Whitney p-values and verdicts from ``forge_desktop.bench.stats``. scipy's bootstrap takes
a moment, so the figures are computed in a worker thread."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from forge_desktop.gui.bridge import Bridge
from forge_desktop.gui.views.detail import table_view
from forge_desktop.gui.views.document_data import (
    COMPARE_COLUMNS,
    CompareRow,
    compare_cells,
    compare_results,
    compare_runtimes,
    default_baseline,
)
from forge_desktop.gui.views.history_data import HistoryRow, load_document
from forge_desktop.gui.views.table import RowsModel
from forge_desktop.gui.views.worker import in_thread

HINT = ("Select one result to compare its runtimes, or two results (Ctrl+click) to compare "
        "them.")


class CompareView(QWidget):
    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.selection: list[HistoryRow] = []
        self.result_rows: list[CompareRow] = []
        self.computed = 0
        """How many comparisons were shown (tests wait for it)."""
        self._generation = 0
        self._dirty = False
        self._swapped = False
        self.title = QLabel(HINT)
        self.title.setObjectName("compare-title")
        self.title.setWordWrap(True)
        self.baseline = QComboBox()
        self.baseline.setAccessibleName("Baseline runtime")
        self.baseline_label = QLabel("&Baseline runtime:")
        self.baseline_label.setBuddy(self.baseline)
        self.swap = QPushButton("S&wap baseline and candidate")
        self.swap.clicked.connect(self._swap)
        bar = QHBoxLayout()
        bar.addWidget(self.baseline_label)
        bar.addWidget(self.baseline)
        bar.addWidget(self.swap)
        bar.addStretch()
        self.model = RowsModel(COMPARE_COLUMNS)
        self.view = table_view(self.model, "comparison")
        self.notes = QLabel("")
        self.notes.setObjectName("compare-notes")
        self.notes.setWordWrap(True)
        legend = QLabel("Ratio: baseline / value; above 1 the value is faster (or smaller) "
                        "than the baseline. 95% CI: bootstrap interval of the ratio of medians. "
                        "p: Mann-Whitney U test. A verdict needs both p < 0.05 and a CI clear "
                        "of 1.")
        legend.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.notes)
        layout.addWidget(legend)
        self.baseline.currentIndexChanged.connect(lambda _i: self._changed())
        self._controls()

    def set_selection(self, rows: list[HistoryRow]) -> None:
        readable = [r for r in rows if r.summary is not None][:2]
        if [r.id for r in readable] == [r.id for r in self.selection]:
            return
        self.selection = readable
        self._swapped = False
        self.baseline.blockSignals(True)
        self.baseline.clear()
        if len(readable) == 1 and (s := readable[0].summary) is not None:
            for name in s.runtimes:
                self.baseline.addItem(name, name)
            base = default_baseline(s)
            self.baseline.setCurrentIndex(max(self.baseline.findData(base), 0))
        self.baseline.blockSignals(False)
        self._controls()
        self._changed()

    def _controls(self) -> None:
        single = len(self.selection) == 1
        self.baseline.setVisible(single)
        self.baseline_label.setVisible(single)
        self.swap.setVisible(len(self.selection) == 2)

    def _swap(self) -> None:
        self._swapped = not self._swapped
        self._changed()

    def _changed(self) -> None:
        self._dirty = True
        if self.isVisible():
            self.compute()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        if self._dirty:
            self.compute()

    def compute(self) -> None:
        self._dirty = False
        self._generation += 1
        generation = self._generation
        chosen = list(self.selection)
        if not chosen:
            self.title.setText(HINT)
            self.model.set_rows(COMPARE_COLUMNS, [])
            self.notes.setText("")
            return
        if len(chosen) == 2:
            older, newer = sorted(chosen, key=lambda r: r.created_ts)
            base, cand = (newer, older) if self._swapped else (older, newer)
            self.title.setText(f"{cand.id} ({cand.kind}) against {base.id} ({base.kind})")
        else:
            base = cand = chosen[0]
            self.title.setText(f"Runtimes of {cand.id} ({cand.kind}) against "
                               f"{self.baseline.currentText() or '-'}")
        baseline_runtime = self.baseline.currentData()
        self.notes.setText("Computing…")

        def work() -> tuple[list[CompareRow], list[str]]:
            if base is cand:
                assert cand.summary is not None
                if not baseline_runtime:
                    return [], ["this result has no runtime to compare"]
                rows = compare_runtimes(cand.summary, load_document(cand), baseline_runtime)
                return rows, ([] if rows else ["this result has one runtime: select two "
                                               "results to compare it with another"])
            assert base.summary is not None and cand.summary is not None
            return compare_results(base.summary, load_document(base), cand.summary,
                                   load_document(cand))

        def done(value: tuple[list[CompareRow], list[str]]) -> None:
            if generation != self._generation:
                return
            rows, notes = value
            self.result_rows = rows
            self.model.set_rows(COMPARE_COLUMNS, [compare_cells(r) for r in rows],
                                frozenset({2, 3, 4, 5, 6}))
            self.view.resizeColumnsToContents()
            self.notes.setText("\n".join(notes))
            self.computed += 1

        def failed(error: BaseException) -> None:
            if generation == self._generation:
                self.notes.setText(f"Cannot compare: {error}")
                self.computed += 1

        in_thread(self.bridge, "compare", work, done, failed)

    def current_cells(self) -> list[tuple[Any, ...]]:
        return list(self.model.rows)
