"""The history table: a lazy model over the index's summaries and the filter in front of it.

Lazy: ``data()`` formats a row when the view asks for it (the rows on screen), never the
10,000. Sorting happens here, in Python, on precomputed keys (a few milliseconds for 10,000
rows); QSortFilterProxyModel's own sort would call ``data()`` through the binding some
300,000 times. The proxy therefore filters only and hands ``sort()`` to this model, keeping the
source order, and persistent indexes (the selection) follow the rows through a sort.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)

from forge_desktop.gui.views.history_data import COLUMNS, HistoryRow, sort_key

Index = QModelIndex | QPersistentModelIndex
ROW_ROLE = Qt.ItemDataRole.UserRole + 1
"""``data(index, ROW_ROLE)``: the :class:`HistoryRow` itself."""
_DISPLAY = Qt.ItemDataRole.DisplayRole
_ALIGN_NUMBERS = {3}


class HistoryModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[HistoryRow] = []
        self.sort_column = 0
        self.sort_order = Qt.SortOrder.DescendingOrder

    # -- the model --------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: Index, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role == _DISPLAY:
            return row.cells()[index.column()]
        if role == ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.ToolTipRole:
            if row.unreadable:
                return f"{row.file}: {row.unreadable}"
            if index.column() == 4 and row.summary is not None:
                return row.summary.machine.replace("|", " · ")
            return f"{row.id} · {row.cells()[index.column()]}"
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in _ALIGN_NUMBERS:
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = _DISPLAY) -> Any:  # noqa: N802
        # Never super().headerData(): PySide6 6.12 aborts at exit when a table model does.
        if role == _DISPLAY and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(COLUMNS):
            return COLUMNS[section]
        return None

    # -- contents ---------------------------------------------------------------------------
    def set_rows(self, rows: Sequence[HistoryRow]) -> None:
        """Replace every row (a rescan), kept in the current sort order."""
        ordered = list(rows)
        ordered.sort(key=sort_key(self.sort_column),
                     reverse=self.sort_order == Qt.SortOrder.DescendingOrder)
        self.beginResetModel()
        self.rows = ordered
        self.endResetModel()

    def row_of(self, result_id: str) -> int:
        for i, row in enumerate(self.rows):
            if row.id == result_id:
                return i
        return -1

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(COLUMNS):
            return
        self.sort_column, self.sort_order = column, order
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        held = [(self.rows[i.row()], i.column()) for i in old]
        self.rows.sort(key=sort_key(column), reverse=order == Qt.SortOrder.DescendingOrder)
        if old:
            where = {id(r): n for n, r in enumerate(self.rows)}
            self.changePersistentIndexList(old, [self.index(where[id(r)], c) for r, c in held])
        self.layoutChanged.emit()


class HistoryFilter(QSortFilterProxyModel):
    """Filters by kind, runtime, machine (key), date range and text; sorts through the
    source model (see the module's docstring)."""

    def __init__(self, source: HistoryModel) -> None:
        super().__init__()
        self.history = source
        self.setSourceModel(source)
        self.kind: str | None = None
        self.runtime: str | None = None
        self.machine: str | None = None
        self.since_ts: float | None = None
        self.until_ts: float | None = None
        self.text = ""

    def set_filters(self, **values: Any) -> None:
        """Any of kind, runtime, machine, since_ts, until_ts (None: no filter) and text."""
        unknown = set(values) - {"kind", "runtime", "machine", "since_ts", "until_ts", "text"}
        if unknown:
            raise TypeError(f"unknown filter {sorted(unknown)[0]!r}")
        values = {k: v.strip().casefold() if k == "text" else v for k, v in values.items()}
        if all(getattr(self, k) == v for k, v in values.items()):
            return  # unchanged: 10,000 filterAcceptsRow calls saved
        modern = hasattr(self, "beginFilterChange")  # Qt >= 6.9: the non-deprecated way
        if modern:
            self.beginFilterChange()
        for name, value in values.items():
            setattr(self, name, value)
        if modern:
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - older Qt
            self.invalidateRowsFilter()

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.kind, self.runtime, self.machine,
                                           self.since_ts, self.until_ts)) or bool(self.text)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:  # noqa: N802
        if not self.active:
            return True
        row = self.history.rows[source_row]
        if self.kind is not None and row.kind != self.kind:
            return False
        if self.runtime is not None and self.runtime not in row.runtimes:
            return False
        if self.machine is not None and row.machine != self.machine:
            return False
        ts = row.created_ts
        if (self.since_ts is not None and ts < self.since_ts) or (
                self.until_ts is not None and ts > self.until_ts):
            return False
        return not self.text or all(word in row.search_text() for word in self.text.split())

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.history.sort(column, order)

    def row_at(self, proxy_row: int) -> HistoryRow:
        source = self.mapToSource(self.index(proxy_row, 0))
        return self.history.rows[source.row()]

    def visible_rows(self) -> list[HistoryRow]:
        return [self.row_at(i) for i in range(self.rowCount())]

    def proxy_row_of(self, result_id: str) -> int:
        source = self.history.row_of(result_id)
        if source < 0:
            return -1
        return self.mapFromSource(self.history.index(source, 0)).row()


class RowsModel(QAbstractTableModel):
    """A read-only table of text cells (statistics, samples, comparisons): lazy like the
    history, so thousands of samples cost nothing until scrolled to."""

    def __init__(self, columns: Sequence[str] = (), rows: Sequence[Sequence[str]] = (),
                 numeric: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.columns = tuple(columns)
        self.rows = [tuple(r) for r in rows]
        self.numeric = numeric

    def set_rows(self, columns: Sequence[str], rows: Sequence[Sequence[str]],
                 numeric: frozenset[int] = frozenset()) -> None:
        self.beginResetModel()
        self.columns, self.rows, self.numeric = tuple(columns), [tuple(r) for r in rows], numeric
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: Index, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        if role in (_DISPLAY, Qt.ItemDataRole.ToolTipRole):
            return self.rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in self.numeric:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = _DISPLAY) -> Any:  # noqa: N802
        # Never super().headerData(): PySide6 6.12 aborts at exit when a table model does.
        if role != _DISPLAY:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self.columns[section] if 0 <= section < len(self.columns) else None
        return str(section + 1)
