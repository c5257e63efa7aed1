"""The window's Fleet page (issue 14): the fleet results of the history; for the chosen one a
metric, its hosts x runtimes table (the baseline host's figures, every other host's ratio
against it with the 95% CI, coloured by verdict), the hosts that failed with their reason, the
host and engine effects in words, and a plot of the ratios. A double-click on a host's row asks
for that host's own result (the window opens it in the Detail panel).

What is shown is ``fleet_data``; this module only lays it out. The plot is made when first
needed (pyqtgraph is imported then, as the Plots panel does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from forge_desktop.errors import ForgeError
from forge_desktop.gui.views.detail import table_view
from forge_desktop.gui.views.fleet_data import Cell, Fleet, fleet_rows, metric_title, read_fleet
from forge_desktop.gui.views.history_data import HistoryRow, date_text, load_document
from forge_desktop.gui.views.table import RowsModel

if TYPE_CHECKING:
    from forge_desktop.gui.views.plots import Plot

VERDICT_COLOURS = {"faster": QColor(22, 140, 70), "smaller": QColor(22, 140, 70),
                   "slower": QColor(200, 40, 40), "larger": QColor(200, 40, 40)}
"""A cell's text colour by its verdict; no call (no significant difference, about the same)
keeps the palette's text colour. The word is in the cell's tooltip too: colour is not the
only sign."""
LEGEND = ("Baseline host: its own figures. Other hosts: baseline / host with the 95% CI; "
          "above 1 the host is faster or smaller. Green: faster or smaller, red: slower or "
          "larger, plain: no significant difference (p and verdict in each cell's tooltip). "
          "Double-click a host to open its result.")
RESULT_WIDTH = 200
"""The widest the Result column starts (px): a result id fits, a failure reason is elided."""
HOST_ROLE = Qt.ItemDataRole.UserRole + 2
"""``data(index, HOST_ROLE)``: the row's host name."""
Index = QModelIndex | QPersistentModelIndex


class FleetModel(RowsModel):
    """Hosts x runtimes: text cells, with each cell's verdict colour and words."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[list[Cell | None]] = []
        self.hosts: list[str] = []
        self.tips: list[str] = []

    def set_fleet(self, fleet: Fleet | None, metric: str) -> None:
        rows: list[tuple[str, ...]] = []
        self.cells, self.hosts, self.tips = [], [], []
        for host, cells in fleet.grid(metric) if fleet else []:
            result = f"failed: {host.error}" if host.error else host.result_id or "failed"
            rows.append((host.name + (" (baseline)" if host.baseline else ""), result,
                         *(c.text() if c else "-" for c in cells)))
            self.cells.append(cells)
            self.hosts.append(host.name)
            self.tips.append(f"{host.name} · {host.url}" + (f"\n{host.error}" if host.error
                                                            else ""))
        columns = ("Host", "Result", *(fleet.runtimes if fleet else ()))
        self.set_rows(columns, rows, frozenset(range(2, len(columns))))

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        cell = self.cells[row][column - 2] if column >= 2 else None
        if role == HOST_ROLE:
            return self.hosts[row]
        if role == Qt.ItemDataRole.ForegroundRole and cell is not None:
            return VERDICT_COLOURS.get(cell.verdict)
        if role == Qt.ItemDataRole.ToolTipRole:
            return cell.detail() if cell is not None else (
                self.tips[row] if column < 2 else None)
        return super().data(index, role)


class FleetPage(QWidget):
    open_result = Signal(str)
    """A host's own result id, asked for by a double-click on its row."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("fleet-page")
        self.rows: list[HistoryRow] = []
        self.fleet: Fleet | None = None
        self.plot: Plot | None = None
        self.drawn: list[tuple[str, str, float]] = []
        """The plot's bars: (host, runtime, height) (tests read it)."""
        self._plot_dirty = False
        self.list = QListWidget()
        self.list.setObjectName("fleet-list")
        self.list.setAccessibleName("Fleet results")
        self.list.currentItemChanged.connect(lambda item, _prev: self._chosen(item))
        self.title = QLabel("No fleet results yet: run a benchmark with two or more --host "
                            "(see the README, \"Benchmark a fleet\").")
        self.title.setObjectName("fleet-title")
        self.title.setWordWrap(True)
        self.metric_box = QComboBox()
        self.metric_box.setAccessibleName("Fleet metric")
        self.metric_box.currentIndexChanged.connect(lambda _i: self._show_metric())
        self.metric_label = QLabel("&Metric:")
        self.metric_label.setBuddy(self.metric_box)
        bar = QHBoxLayout()
        bar.addWidget(self.metric_label)
        bar.addWidget(self.metric_box, 1)
        self.model = FleetModel()
        self.table = table_view(self.model, "fleet-grid")
        self.table.doubleClicked.connect(self._activated)
        self.failed = QLabel("")
        self.failed.setObjectName("fleet-failed")
        self.failed.setWordWrap(True)
        self.effects = QLabel("")
        self.effects.setObjectName("fleet-effects")
        self.effects.setWordWrap(True)
        self.effects.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        legend = QLabel(LEGEND)
        legend.setWordWrap(True)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.title,):
            top_layout.addWidget(w)
        top_layout.addLayout(bar)
        top_layout.addWidget(self.table, 1)
        for w in (self.failed, self.effects, legend):
            top_layout.addWidget(w)
        self.plot_host = QWidget()
        QVBoxLayout(self.plot_host).setContentsMargins(0, 0, 0, 0)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(top)
        right.addWidget(self.plot_host)
        right.setChildrenCollapsible(False)
        self.right = right
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setObjectName("fleet-splitter")
        split.addWidget(self.list)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 4)
        split.setChildrenCollapsible(False)
        self.list.setMinimumWidth(120)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        split.setSizes([190, 800])
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        self._controls()

    # -- the list -----------------------------------------------------------------------------
    def set_rows(self, rows: Sequence[HistoryRow]) -> None:
        """The fleet results among ``rows`` (the history, newest first); the chosen one kept."""
        keep = self.fleet.id if self.fleet else None
        self.rows = fleet_rows(rows)
        self.list.blockSignals(True)
        self.list.clear()
        for row in self.rows:
            item = QListWidgetItem(f"{date_text(row.created_ts)}\n{row.id}")
            item.setData(Qt.ItemDataRole.UserRole, row.id)
            item.setToolTip(f"{row.id} ({row.file})")
            self.list.addItem(item)
        self.list.blockSignals(False)
        if not (keep and self.select(keep)) and self.rows:
            self.list.setCurrentRow(0)
        elif not self.rows:
            self._show(None, None)

    def select(self, result_id: str) -> bool:
        """Show the fleet result ``result_id`` (its whole id)."""
        for i, row in enumerate(self.rows):
            if row.id == result_id:
                if self.list.currentRow() == i and self.fleet and self.fleet.id == row.id:
                    return True
                self.list.setCurrentRow(i)
                return True
        return False

    def _chosen(self, item: QListWidgetItem | None) -> None:
        row = next((r for r in self.rows if item is not None
                    and r.id == item.data(Qt.ItemDataRole.UserRole)), None)
        if row is None:
            self._show(None, None)
            return
        try:
            self._show(row, read_fleet(load_document(row)))
        except ForgeError as exc:
            self._show(row, None, f"Cannot read {row.file}: {exc}")

    # -- one fleet ----------------------------------------------------------------------------
    def _show(self, row: HistoryRow | None, fleet: Fleet | None, error: str = "") -> None:
        self.fleet = fleet
        if fleet is not None and row is not None:
            names = ", ".join(h.name for h in fleet.hosts)
            self.title.setText(f"Fleet · {fleet.fleet_kind or '?'} on {names} · "
                               f"{date_text(row.created_ts)} · baseline host "
                               f"{fleet.baseline_host or '-'}")
        elif row is not None:
            self.title.setText(error or f"{row.id}: not a readable fleet result")
        self.metric_box.blockSignals(True)
        current = self.metric_box.currentData()
        self.metric_box.clear()
        for m in fleet.metrics if fleet else ():
            self.metric_box.addItem(metric_title(m).capitalize(), m)
        self.metric_box.setCurrentIndex(max(self.metric_box.findData(current), 0))
        self.metric_box.blockSignals(False)
        failed = [h for h in fleet.hosts if h.failed] if fleet else []
        self.failed.setText("\n".join(
            f"{h.name} failed: {h.error or 'no result'}" for h in failed))
        self.effects.setText("\n".join(fleet.effects) if fleet else "")
        self._controls()
        self._show_metric()

    def current_metric(self) -> str:
        return str(self.metric_box.currentData() or "startup")

    def _show_metric(self) -> None:
        self.model.set_fleet(self.fleet, self.current_metric())
        self.table.resizeColumnsToContents()
        # a failed host's reason is long: it is whole below the table and in the tooltip
        self.table.setColumnWidth(1, min(self.table.columnWidth(1), RESULT_WIDTH))
        self._plot_dirty = True
        if self.isVisible():
            QTimer.singleShot(0, self.draw)  # after the table's paint: the plot imports

    def _controls(self) -> None:
        shown = self.fleet is not None
        appears = shown and not self.plot_host.isVisibleTo(self)
        for w in (self.metric_box, self.metric_label, self.table, self.plot_host):
            w.setVisible(shown)
        if appears:  # a splitter gives a pane that was hidden no room: half the height
            self.right.setSizes([1000, 1000])

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        if self._plot_dirty:
            QTimer.singleShot(0, self.draw)

    def draw(self) -> None:
        """The ratios' plot of the fleet on show (made on first use: pyqtgraph)."""
        if not self._plot_dirty or self.fleet is None:
            return
        from forge_desktop.gui.views.plots import Plot, draw_fleet

        if self.plot is None:
            self.plot = Plot("fleet")
            self.plot.setMinimumHeight(120)
            layout = self.plot_host.layout()
            assert layout is not None
            layout.addWidget(self.plot)
        self._plot_dirty = False
        self.drawn = draw_fleet(self.plot, self.fleet, self.current_metric())

    def apply_palette(self) -> None:
        if self.plot is not None:
            self.plot.apply_palette()
            self._plot_dirty = True
            self.draw()

    def _activated(self, index: QModelIndex) -> None:
        host = self.fleet.host(self.model.data(index, HOST_ROLE)) if self.fleet else None
        if host is not None and host.result_id:
            self.open_result.emit(host.result_id)

    def dump(self) -> dict[str, Any]:
        """What the page shows, for the window's ready file (tests read it)."""
        return {"id": self.fleet.id if self.fleet else None,
                "list": [r.id for r in self.rows], "metric": self.current_metric(),
                "columns": list(self.model.columns), "rows": [list(r) for r in self.model.rows],
                "colours": [[(c.name() if (c := self.model.data(self.model.index(r, k),
                                                               Qt.ItemDataRole.ForegroundRole))
                              else None) for k in range(self.model.columnCount())]
                            for r in range(self.model.rowCount())],
                "failed": self.failed.text(), "effects": self.effects.text().splitlines(),
                "title": self.title.text(),
                "sideways": (bar := self.table.horizontalScrollBar()).isVisible()
                and bar.maximum() > 0}
