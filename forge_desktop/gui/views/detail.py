"""One result in detail: the facts and statistics in the words of the exported report
(``export.section``: window, Markdown and HTML say the same thing), every sample, the phase
breakdown as stacked bars, the environment fingerprint and the reliability warnings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QListWidget,
    QScrollArea,
    QTableView,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from forge_desktop.gui.views.document_data import profile_rows, samples_table, warnings_of
from forge_desktop.gui.views.history_data import HistoryRow
from forge_desktop.gui.views.table import RowsModel

if TYPE_CHECKING:
    from forge_desktop.gui.views.plots import Plot


def table_view(model: RowsModel, name: str) -> QTableView:
    """A read-only, keyboard-navigable table."""
    view = QTableView()
    _setup(view, model, name)
    return view


def _setup(view: QTableView, model: RowsModel, name: str) -> None:
    view.setObjectName(name)
    view.setAccessibleName(name)
    view.setModel(model)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setAlternatingRowColors(True)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    view.horizontalHeader().setStretchLastSection(True)


def stacked(columns: Sequence[str], rows: Sequence[Sequence[str]]
            ) -> tuple[tuple[str, str], list[tuple[str, str]], list[int]]:
    """A wide table as a narrow one: each row becomes a heading (its first cell) followed by
    one "column: value" line per other cell. Returns the columns, the rows and the indexes
    of the heading rows."""
    out: list[tuple[str, str]] = []
    headings = []
    for row in rows:
        headings.append(len(out))
        out.append((f"{columns[0]}: {row[0]}" if columns else row[0], ""))
        out += [(str(columns[c]), row[c]) for c in range(1, len(row))]
    return ("", ""), out, headings


class FittedTable(QTableView):
    """A read-only table for a scroll area of tables: as wide as its viewport, and as tall
    as its rows (no inner scrolling). When the text is wider than the room, each column keeps
    its longest word and the rest of the room goes to the columns in proportion to what they
    lack; their text wraps at spaces and rows and header grow, as an HTML table lays out.
    When even the longest words do not fit, the rows are stacked (:func:`stacked`): the
    three runtimes of a statistics table then read top to bottom in a narrow pane instead of
    scrolling sideways."""

    PADDING = 12

    def __init__(self, model: RowsModel, name: str) -> None:
        super().__init__()
        self._fitted_width = -1
        self.table_model = model
        columns, rows, self._headings = stacked(model.columns, model.rows)
        self.stacked_model = RowsModel(columns, rows, frozenset({1}))
        _setup(self, model, name)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWordWrap(True)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header = self.horizontalHeader()
        header.setStretchLastSection(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignCenter | Qt.AlignmentFlag.AlignVCenter
                                   | Qt.TextFlag.TextWordWrap)

    @property
    def is_stacked(self) -> bool:
        return self.model() is self.stacked_model

    def refit(self) -> None:
        room = self.viewport().width()
        self._fitted_width = room
        model, header = self.table_model, self.horizontalHeader()
        columns = model.columnCount()
        if columns == 0 or room <= 0:
            return
        if self.is_stacked:  # measure the table as a table
            self._use(model)
        natural = [max(self.sizeHintForColumn(c), header.sectionSizeHint(c))
                   for c in range(columns)]
        widths = natural
        if sum(natural) > room:
            words = [self._longest_word(c) for c in range(columns)]
            if sum(words) > room:
                self._use(self.stacked_model)
                first = max(self.sizeHintForColumn(0), room // 3)
                widths = [min(first, room * 2 // 3), 0]
            else:
                lack = [max(n - w, 0) for n, w in zip(natural, words, strict=True)]
                spare = room - sum(words)
                widths = [w + spare * k // max(sum(lack), 1)
                          for w, k in zip(words, lack, strict=True)]
        widths[-1] += max(room - sum(widths), 0)  # the last column takes what is left
        metrics = header.fontMetrics()
        title_height = 0
        for c, width in enumerate(widths):
            header.resizeSection(c, width)
            text = str(self.model().headerData(c, Qt.Orientation.Horizontal) or "")
            title_height = max(title_height, metrics.boundingRect(
                0, 0, max(width - 8, 1), 10_000, Qt.TextFlag.TextWordWrap, text).height())
        header.setVisible(not self.is_stacked)
        header.setFixedHeight(title_height + 10)
        self.resizeRowsToContents()
        rows = sum(self.rowHeight(r) for r in range(self.model().rowCount()))
        titles = header.height() if header.isVisible() else 0
        self.setFixedHeight(titles + rows + 2 * self.frameWidth() + 2)

    def _use(self, model: RowsModel) -> None:
        if self.model() is model:
            return
        self.setModel(model)
        self.clearSpans()
        if model is self.stacked_model:
            for row in self._headings:
                self.setSpan(row, 0, 1, 2)

    def _longest_word(self, column: int) -> int:
        """The widest unbreakable word of a column (cells and title), padding included."""
        model = self.table_model
        texts = [str(model.headerData(column, Qt.Orientation.Horizontal) or "")]
        texts += [str(model.index(r, column).data() or "") for r in range(model.rowCount())]
        cell, title = self.fontMetrics(), self.horizontalHeader().fontMetrics()
        return self.PADDING + max(
            (max(cell.horizontalAdvance(w), title.horizontalAdvance(w)) for t in texts
             for w in t.split()), default=0)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.viewport().width() != self._fitted_width:
            self.refit()


class DetailView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row: HistoryRow | None = None
        self.doc: dict[str, Any] | None = None
        self.heading = QLabel("Choose a result in the table")
        self.heading.setObjectName("detail-heading")
        font = self.heading.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.heading.setFont(font)
        self.heading.setWordWrap(True)
        self.facts = QLabel("")
        self.facts.setObjectName("detail-facts")
        self.facts.setWordWrap(True)
        self.facts.setTextFormat(Qt.TextFormat.PlainText)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                           | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("detail-tabs")
        self.stats_box = QWidget()
        self.stats_layout = QVBoxLayout(self.stats_box)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.stats_box)
        self.samples = RowsModel()
        self.samples_view = table_view(self.samples, "samples")
        self.phases_page = QWidget()
        QVBoxLayout(self.phases_page).setContentsMargins(0, 0, 0, 0)
        self.phase_plot: Plot | None = None
        self.environment = QTreeWidget()
        self.environment.setObjectName("environment")
        self.environment.setHeaderLabels(["Fingerprint", "Value"])
        self.environment.setAlternatingRowColors(True)
        self.warnings = QListWidget()
        self.warnings.setObjectName("warnings")
        self.warnings.setWordWrap(True)
        self.tabs.addTab(scroll, "&Statistics")
        self.tabs.addTab(self.samples_view, "S&amples")
        self.tabs.addTab(self.phases_page, "P&hases")
        self.tabs.addTab(self.environment, "En&vironment")
        self.tabs.addTab(self.warnings, "&Warnings")
        self.tabs.currentChanged.connect(lambda _i: self._phases_if_shown())
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.tabs, 1)

    # -- showing ----------------------------------------------------------------------------
    def show_row(self, row: HistoryRow, doc: dict[str, Any] | None,
                 error: str | None = None) -> None:
        """``doc`` None: the result could not be read (``error`` or the row's reason)."""
        self.row, self.doc = row, doc
        if doc is None:
            self.heading.setText(f"Unreadable result: {row.file}")
            self.facts.setText(error or row.unreadable or "unreadable")
            self._stats([])
            self.samples.set_rows((), ())
            self.environment.clear()
            self._set_warnings([f"unreadable: {error or row.unreadable}"])
            self._phases_if_shown()
            return
        try:
            self._show_doc(doc)
        except Exception as exc:  # noqa: BLE001 - a file from anywhere: never take the window
            self.show_row(row, None, f"cannot show it: {type(exc).__name__}: {exc}")

    def _show_doc(self, doc: dict[str, Any]) -> None:
        from forge_desktop.actions import headline
        from forge_desktop.results.export import section

        part = section(doc)
        try:
            title = f"{part.heading}: {headline(doc)}"
        except (KeyError, TypeError, ValueError, AttributeError):  # a malformed summary
            title = part.heading
        self.heading.setText(title)
        self.facts.setText("\n".join(f"{k}: {v}" for k, v in part.facts))
        tables: list[tuple[str, tuple[str, ...], list[tuple[str, ...]], frozenset[int], str]]
        tables = [(t.title, t.columns, list(t.rows), t.numeric, t.caption)
                  for t in part.tables]
        if doc.get("kind") == "profile":
            pairs: list[tuple[str, ...]] = list(profile_rows(doc))
            tables.insert(0, ("Profile", ("Figure", "Value"), pairs, frozenset({1}), ""))
        self._stats(tables)
        columns, rows = samples_table(doc)
        self.samples.set_rows(columns, rows, frozenset(range(1, len(columns))))
        self._environment(doc.get("environment"))
        self._set_warnings(warnings_of(doc))
        self._phases_if_shown()

    def _stats(self, tables: list[tuple[str, tuple[str, ...], list[tuple[str, ...]],
                                        frozenset[int], str]]) -> None:
        while self.stats_layout.count():
            item = self.stats_layout.takeAt(0)
            if item is not None and (w := item.widget()) is not None and w is not self.facts:
                w.deleteLater()
        self.stats_layout.addWidget(self.facts)
        for i, (title, columns, rows, numeric, caption) in enumerate(tables):
            label = QLabel(title)
            font = label.font()
            font.setBold(True)
            label.setFont(font)
            self.stats_layout.addWidget(label)
            view = FittedTable(RowsModel(columns, rows, numeric), f"stats-{i}")
            self.stats_layout.addWidget(view)
            view.refit()
            if caption:
                note = QLabel(caption)
                note.setWordWrap(True)
                self.stats_layout.addWidget(note)
        self.stats_layout.addStretch(1)

    def _environment(self, env: Any) -> None:
        self.environment.clear()

        def add(parent: QTreeWidget | QTreeWidgetItem, key: str, value: Any) -> None:
            if isinstance(value, Mapping):
                item = QTreeWidgetItem([key, ""])
                for k, v in value.items():
                    add(item, str(k), v)
            elif isinstance(value, list) and any(isinstance(v, Mapping | list) for v in value):
                item = QTreeWidgetItem([key, f"{len(value)} items"])
                for i, v in enumerate(value):
                    add(item, str(i), v)
            else:
                text = ", ".join(map(str, value)) if isinstance(value, list) else (
                    "-" if value is None else str(value))
                item = QTreeWidgetItem([key, text])
                item.setToolTip(1, text)
            if isinstance(parent, QTreeWidget):
                parent.addTopLevelItem(item)
            else:
                parent.addChild(item)

        if isinstance(env, Mapping):
            for k, v in env.items():
                add(self.environment, str(k), v)
        self.environment.expandAll()
        self.environment.resizeColumnToContents(0)

    def _set_warnings(self, lines: list[str]) -> None:
        self.warnings.clear()
        self.warnings.addItems(lines or ["No warnings: nothing made these figures less "
                                         "trustworthy that forge could see"])
        self.tabs.setTabText(4, f"&Warnings ({len(lines)})" if lines else "&Warnings")

    # -- the phase chart, made when first shown (it needs pyqtgraph) --------------------------
    def _phases_if_shown(self) -> None:
        if self.tabs.currentWidget() is self.phases_page:
            self.draw_phases()

    def draw_phases(self) -> Plot:
        from forge_desktop.gui.views.plots import Plot, draw_phases

        if self.phase_plot is None:
            self.phase_plot = Plot("phases")
            layout = self.phases_page.layout()
            assert layout is not None
            layout.addWidget(self.phase_plot)
        draw_phases(self.phase_plot, self.doc or {"kind": self.row.kind if self.row else ""})
        return self.phase_plot

    def apply_palette(self) -> None:
        if self.phase_plot is not None:
            self.phase_plot.apply_palette()
