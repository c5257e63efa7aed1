"""`forge window`: the results window, where a user reads their benchmark history.

Three pages: the Overview (first: a card per runtime, views/overview.py; a card opens that
runtime's trend), the History, and the Fleet (views/fleet.py: fleet results, hosts x runtimes;
`forge window --result FLEET_ID` opens it at that fleet). The window opens fitted to the
screen's available area (1280 x 800 at most) and its pages and panels ask for no more than a
1024 x 700 screen gives, so switching them never resizes it.

The history table (views/table.py, loaded through the results index: 10,000 results appear in
a fraction of a second with a warm index) with filters and search; beside it a result's
detail, plots (pyqtgraph, imported only when a plot is first shown), comparisons, the run
panel (any benchmark of the action registry, through JobRunner; events reach this thread only
through gui/bridge.py) and live resources. The window never talks to an engine itself.

Keyboard: Ctrl+F search, Ctrl+E export the selected results, Ctrl+R run the benchmark of the
run panel, Esc cancel it, F5 reload, Tab walks filters, table, then the panels.

Ready hook, for ``benchmarks/window_load.py``: when ``FORGE_WINDOW_READY_FILE`` names a file,
the window writes it once, right after the first paint of the populated page on show (the
Overview's cards, the history table or the plots), with
a JSON object: ``rows`` shown, ``pid``, ``at_epoch_s`` (``time.time()`` after that paint),
``load_ms`` (``PERF``'s ``window.load``: construction, scan, table filled, shown), and the
``page`` and History ``panel`` on show.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QItemSelection,
    QModelIndex,
    QObject,
    QSettings,
    Qt,
    QTimer,
)
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from forge_desktop import APP_ID, APP_NAME
from forge_desktop.config import benchmarks_dir, profiles_dir
from forge_desktop.errors import ForgeError
from forge_desktop.gui.bridge import Bridge
from forge_desktop.gui.views.compare import CompareView
from forge_desktop.gui.views.detail import DetailView
from forge_desktop.gui.views.fleet import FleetPage
from forge_desktop.gui.views.history_data import (
    COLUMNS,
    History,
    HistoryRow,
    load_document,
    load_history,
)
from forge_desktop.gui.views.overview import OverviewPage
from forge_desktop.gui.views.overview_data import (
    Overview,
    open_changes_apart,
    overview,
    with_changes,
)
from forge_desktop.gui.views.resources import ResourcesPanel
from forge_desktop.gui.views.run_panel import RunPanel
from forge_desktop.gui.views.table import HistoryFilter, HistoryModel
from forge_desktop.gui.views.worker import in_thread
from forge_desktop.profiling.perf import PERF

if TYPE_CHECKING:
    from forge_desktop.gui.views.plots import PlotsView
    from forge_desktop.results.changes import Change

READY_ENV = "FORGE_WINDOW_READY_FILE"
DATE_CHOICES: tuple[tuple[str, float | None], ...] = (
    ("Any time", None), ("Last 24 hours", 86400.0), ("Last 7 days", 7 * 86400.0),
    ("Last 30 days", 30 * 86400.0), ("Last 365 days", 365 * 86400.0))
COLUMN_SHARES = (0, 0, 20, 0, 16, 19)
"""Initial widths of the history's columns where no layout was saved: date and kind as wide as
their text, these shares of the rest to runtimes, machine and warnings, and the headline what
is left; the table fits its pane at first open, nothing sideways (texts are elided, whole in
their tooltips and the detail)."""
HEADLINE = COLUMNS.index("Headline")
PREFERRED_SIZE = (1280, 800)
FRAME_ALLOWANCE = (0, 40)
"""Room left on the screen for the window manager's title bar and borders, not known before
the window is shown."""
EXPORT_FILTERS = {"html": "HTML report (*.html)", "csv": "CSV (*.csv)",
                  "md": "Markdown (*.md)", "json": "JSON (*.json)"}
TABS = ("detail", "plots", "compare", "run", "resources")
PAGES = ("overview", "history", "fleet")


def window_settings() -> QSettings:
    """Geometry and layout, under the application id (~/.config/<APP_ID>/window.ini)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, APP_ID, "window")


class ResultsWindow(QMainWindow):
    def __init__(self, directories: Sequence[Path] | None = None) -> None:
        super().__init__()
        self.setObjectName("forge-results-window")
        self.setWindowTitle(f"{APP_NAME}: results")
        self.directories = list(directories) if directories else [benchmarks_dir(),
                                                                  profiles_dir()]
        self.bridge = Bridge()
        self.history = History([], [], [])
        self.model = HistoryModel()
        self.proxy = HistoryFilter(self.model)
        self.loads = 0
        """How many times the history was (re)loaded (tests wait for it)."""
        self.ready = False
        self._reloading = False
        self._reload_again: list[str | None] = []
        """A reload asked for while one runs: done after it (with what to select)."""
        self._pending_select: tuple[str | None, str | None] | None = None
        self._columns_auto = False
        """The history's columns follow the table's width until the user sizes one."""
        self._fitting = False
        self.loading: contextlib.ExitStack | None = None
        """Open until the first history is in the table (``run_window`` times it)."""
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(150)
        self._search_timer.timeout.connect(self.apply_filters)
        self.plots: PlotsView | None = None
        """Made when first shown: it imports pyqtgraph."""
        self._build_filters()
        self._build_table()
        self._build_panels()
        self._build_status()
        self._build_actions()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setObjectName("main-splitter")
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(self.filter_bar)
        left_layout.addWidget(self.table, 1)
        splitter.addWidget(left)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        self.overview = OverviewPage()
        self.overview.open_trend.connect(self.card_activated)
        self.overview.grid_host.installEventFilter(self)
        self.overview_data = Overview("", "", (), 0)
        self.changes_asked = 0
        """Generation of the change points asked for (tests wait for ``changes_loaded``)."""
        self.changes_loaded = 0
        self.changes_found: list[Change] = []
        """The open change points, newest first (the trend labels its mark from them)."""
        self._trend_request: tuple[str | None, str, str | None] | None = None
        """A trend asked for before the history was read (``forge window --runtime``)."""
        self.pages = QTabWidget()
        self.pages.setObjectName("pages")
        self.pages.setDocumentMode(True)
        self.pages.addTab(self.overview, "O&verview")
        self.pages.addTab(splitter, "Histor&y")
        self.fleet_page = FleetPage()
        self.fleet_page.open_result.connect(self.open_host_result)
        self.fleet_page.list.viewport().installEventFilter(self)
        self.pages.addTab(self.fleet_page, "F&leet")
        self.setCentralWidget(self.pages)
        chain = [self.search, self.kind, self.runtime, self.machine, self.date, self.table,
                 self.tabs]
        for a, b in zip(chain, chain[1:], strict=False):
            QWidget.setTabOrder(a, b)
        self._restore()

    # -- building -------------------------------------------------------------------------
    def _combo(self, name: str) -> QComboBox:
        combo = QComboBox()
        combo.setObjectName(f"filter-{name}")
        combo.setAccessibleName(f"Filter by {name}")
        combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(6)
        combo.setToolTip(f"Show only results of this {name}")
        combo.currentIndexChanged.connect(lambda _i: self.apply_filters())
        return combo

    def _build_filters(self) -> None:
        self.search = QLineEdit()
        self.search.setObjectName("search")
        self.search.setAccessibleName("Search results")
        self.search.setPlaceholderText("Search id, runtime, host, figures… (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.kind = self._combo("kind")
        self.runtime = self._combo("runtime")
        self.machine = self._combo("machine")
        self.date = self._combo("date")
        self.date.blockSignals(True)
        for text, seconds in DATE_CHOICES:
            self.date.addItem(text, seconds)
        self.date.blockSignals(False)
        # The search on a line of its own: beside four combos in a narrow pane it was cut
        # to "S…".
        combos = QHBoxLayout()
        for combo in (self.kind, self.runtime, self.machine, self.date):
            combos.addWidget(combo, 1)
        bar = QVBoxLayout()
        bar.addWidget(self.search)
        bar.addLayout(combos)
        self.filter_bar = bar

    def _build_table(self) -> None:
        table = QTableView()
        table.setObjectName("history")
        table.setAccessibleName("Benchmark history")
        table.setModel(self.proxy)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.setTextElideMode(Qt.TextElideMode.ElideRight)
        table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        rows = table.verticalHeader()
        rows.setVisible(False)
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # no per-row size queries
        rows.setDefaultSectionSize(table.fontMetrics().height() + 8)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(HEADLINE, QHeaderView.ResizeMode.Stretch)
        header.setSortIndicatorShown(True)
        header.setHighlightSections(False)
        header.sectionResized.connect(self._section_resized)
        table.setSortingEnabled(True)
        table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        selection = table.selectionModel()
        selection.currentRowChanged.connect(lambda cur, _prev: self.show_current(cur))
        selection.selectionChanged.connect(self._selection_changed)
        table.viewport().installEventFilter(self)
        self.table = table

    def _build_panels(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.setObjectName("panels")
        self.detail = DetailView()
        self.plots_page = QWidget()
        QVBoxLayout(self.plots_page).setContentsMargins(0, 0, 0, 0)
        self.plots_page.installEventFilter(self)
        self.compare = CompareView(self.bridge)
        self.run_panel = RunPanel(self.bridge)
        self.run_panel.result_saved.connect(lambda rid: self.reload(select=rid))
        self.run_panel.busy_changed.connect(self._busy_changed)
        self.resources = ResourcesPanel(self.bridge)
        for widget, title in ((self.detail, "De&tail"), (self.plots_page, "&Plots"),
                              (self.compare, "C&ompare"), (self.run_panel, "Ru&n"),
                              (self.resources, "Re&sources")):
            self.tabs.addTab(widget, title)
        self.tabs.currentChanged.connect(lambda _i: self._panel_shown())

    def _build_status(self) -> None:
        bar = self.statusBar()
        self.count_label = QLabel("Loading…")
        self.count_label.setObjectName("count")
        self.warning_label = QLabel("")
        self.warning_label.setObjectName("store-warning")
        self.job_label = QLabel("")
        self.job_label.setObjectName("job")
        bar.addWidget(self.count_label)
        bar.addWidget(self.warning_label, 1)
        bar.addPermanentWidget(self.job_label)

    def _action(self, menu: Any, text: str,
                shortcut: QKeySequence | QKeySequence.StandardKey | str | None,
                slot: Any) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self.export_action = self._action(file, "&Export selected results…", "Ctrl+E",
                                          self.export_dialog)
        self._action(file, "Export the &plot as PNG…", None, self._export_plot)
        self._action(file, "&Reload", QKeySequence.StandardKey.Refresh, self.reload)
        file.addSeparator()
        self._action(file, "&Close", QKeySequence.StandardKey.Close, self.close)
        edit = bar.addMenu("&Edit")
        self._action(edit, "&Find…", QKeySequence.StandardKey.Find, self.focus_search)
        self._action(edit, "C&lear filters", None, self.clear_filters)
        run = bar.addMenu("&Benchmark")
        self.run_action = self._action(run, "&Run", "Ctrl+R", self.run_benchmark)
        self.cancel_action = self._action(run, "&Cancel", "Esc", self.cancel_or_escape)
        view = bar.addMenu("&View")
        self._action(view, "&Overview", "Ctrl+1", lambda: self.show_page("overview"))
        self._action(view, "&History", "Ctrl+2", lambda: self.show_page("history"))
        self._action(view, "&Fleet", "Ctrl+3", lambda: self.show_page("fleet"))
        view.addSeparator()
        for i, name in enumerate(TABS):
            self._action(view, name.capitalize(), f"Alt+{i + 1}",
                         lambda n=name: self.show_panel(n))

    # -- settings -------------------------------------------------------------------------
    def _restore(self) -> None:
        settings = window_settings()
        geometry = settings.value("geometry")
        if not (isinstance(geometry, QByteArray) and not geometry.isEmpty()
                and self.restoreGeometry(geometry)):
            self.resize(*PREFERRED_SIZE)
        self.fit_to_screen()
        splitter = settings.value("splitter")
        if not (isinstance(splitter, QByteArray) and self.splitter.restoreState(splitter)):
            width = self.width()
            self.splitter.setSizes([width * 3 // 5, width * 2 // 5])
        header = settings.value("header")
        if isinstance(header, QByteArray) and self.table.horizontalHeader().restoreState(header):
            h = self.table.horizontalHeader()
            self.table.sortByColumn(h.sortIndicatorSection(), h.sortIndicatorOrder())
        else:
            self._columns_auto = True
        tab = settings.value("panel")
        if isinstance(tab, str) and tab in ("detail", "plots", "compare"):
            self.tabs.setCurrentIndex(TABS.index(tab))

    def fit_to_screen(self) -> None:
        """No bigger than the available area of the screen the window is on (a geometry
        saved on a bigger screen, or the preferred size on a small one), and on it."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            return
        area = screen.availableGeometry()
        width = min(self.width(), area.width() - FRAME_ALLOWANCE[0])
        height = min(self.height(), area.height() - FRAME_ALLOWANCE[1])
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
        x = min(max(self.x(), area.left()), area.right() - width + 1)
        y = min(max(self.y(), area.top()), area.bottom() - height - FRAME_ALLOWANCE[1] + 1)
        if (x, y) != (self.x(), self.y()):
            self.move(x, y)

    def save_settings(self) -> None:
        settings = window_settings()
        settings.setValue("geometry", self.saveGeometry())
        settings.setValue("splitter", self.splitter.saveState())
        settings.setValue("header", self.table.horizontalHeader().saveState())
        settings.setValue("panel", TABS[max(self.tabs.currentIndex(), 0)])
        settings.sync()

    # -- loading --------------------------------------------------------------------------
    def load(self, select: str | None = None) -> None:
        """Read the history now, on this thread (tests; ``reload`` reads it in a worker)."""
        history = load_history(self.directories)
        self.populate(history, overview(history.rows), select)

    def reload(self, select: str | None = None) -> None:
        """Rescan the store in a worker thread (F5, after a run); the table keeps its sort,
        filters and selection."""
        if self._reloading:
            self._reload_again = [select]
            return
        self._reloading = True
        self.count_label.setText("Reloading…" if self.loads else "Reading the results…")
        dirs = list(self.directories)

        def read() -> tuple[History, Overview]:
            history = load_history(dirs)
            return history, overview(history.rows)

        def done(found: tuple[History, Overview]) -> None:
            self._reloading = False
            self.populate(*found, select=select)
            again, self._reload_again = self._reload_again, []
            if again:
                self.reload(again[0])

        def failed(error: BaseException) -> None:
            self._reloading = False
            self._loaded()
            self.count_label.setText("No results")
            self.statusBar().showMessage(f"Could not read the results: {error}", 15000)

        in_thread(self.bridge, "scan", read, done, failed)

    def populate(self, history: History, view: Overview, select: str | None = None) -> None:
        """Show ``history`` and the Overview's cards ``view``; select ``select`` (an id),
        else keep the current result, else the newest. Before the first populated paint the
        selection waits for that paint: reading a result and drawing its detail is not on the
        way to a populated page. The change points are asked for then, in a worker."""
        current = self.current_row()
        keep = select or (current.id if current else None)
        self.history = history
        self.model.set_rows(history.rows)
        self._fill_filters(history.rows)
        self._update_count()
        line = history.skipped_line()
        self.warning_label.setText(line)
        self.warning_label.setToolTip("\n".join(s.line() for s in history.skipped))
        for note in history.cache_notes:
            print(f"forge window: warning: {note}", file=sys.stderr)
        if self.plots is not None:
            self.plots.set_history(history.rows)
        self.overview_data = view
        self.overview.set_overview(view)
        self.fleet_page.set_rows(history.rows)
        if not self.loads and select and (row := history.find(select)) is not None \
                and row.kind == "fleet":
            self.show_fleet(row.id)  # `forge window --result FLEET`: before the first paint
        if not self.loads and self._trend_request is not None and self.plots is not None:
            runtime, metric, mark = self._trend_request  # now on the Overview's machine
            self.plots.show_trend(runtime, metric, view.machine or None, mark)
        self.loads += 1
        self._loaded()
        if not self.ready:
            self._pending_select = (keep, select)  # done after the first paint
        else:
            self._select_after_load(keep, select)
            self.ask_changes()

    def _loaded(self) -> None:
        if self.loading is not None:  # the first history is in the table: window.load ends
            self.loading.close()
            self.loading = None

    def _select_after_load(self, keep: str | None, select: str | None) -> None:
        if keep and self.select_result(keep):
            return
        if select:
            self.statusBar().showMessage(f"No result with id {select}", 15000)
            print(f"forge window: warning: no result with id {select}", file=sys.stderr)
        if self.proxy.rowCount():
            self.table.selectRow(0)

    def _fill_filters(self, rows: Sequence[HistoryRow]) -> None:
        kinds: set[str] = set()
        runtimes: set[str] = set()
        machines: dict[str, str] = {}
        for r in rows:
            kinds.add(r.kind)
            runtimes.update(r.runtimes)
            if r.summary is not None and r.machine not in machines:
                machines[r.machine] = r.cells()[4]
        for combo, everything, items in (
                (self.kind, "All kinds", [(k, k) for k in sorted(kinds)]),
                (self.runtime, "All runtimes", [(n, n) for n in sorted(runtimes)]),
                (self.machine, "All machines", sorted(((t, k) for k, t in machines.items())))):
            current = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(everything, None)
            for text, data in items:
                combo.addItem(text, data)
            combo.setCurrentIndex(max(combo.findData(current), 0) if current else 0)
            combo.blockSignals(False)
        self.apply_filters()

    # -- filters --------------------------------------------------------------------------
    def apply_filters(self) -> None:
        seconds = self.date.currentData()
        self.proxy.set_filters(kind=self.kind.currentData(), runtime=self.runtime.currentData(),
                               machine=self.machine.currentData(),
                               since_ts=None if seconds is None else time.time() - seconds,
                               text=self.search.text())
        self._update_count()

    def clear_filters(self) -> None:
        for combo in (self.kind, self.runtime, self.machine, self.date):
            combo.blockSignals(True)
            combo.setCurrentIndex(0)
            combo.blockSignals(False)
        self.search.blockSignals(True)
        self.search.clear()
        self.search.blockSignals(False)
        self.proxy.set_filters(kind=None, runtime=None, machine=None, since_ts=None,
                               until_ts=None, text="")
        self._update_count()

    def _update_count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count_label.setText(f"{total:,} results" if shown == total else
                                 f"Showing {shown:,} of {total:,} results")

    # -- the current result ---------------------------------------------------------------
    def current_row(self) -> HistoryRow | None:
        index = self.table.currentIndex()
        return self.proxy.row_at(index.row()) if index.isValid() else None

    def selected_rows(self) -> list[HistoryRow]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        chosen = [self.proxy.row_at(r) for r in rows]
        current = self.current_row()
        return chosen or ([current] if current else [])

    def select_result(self, result_id: str) -> bool:
        """Select and show a result by id or unique prefix, clearing filters that hide it."""
        row = self.history.find(result_id)
        if row is None:
            return False
        where = self.proxy.proxy_row_of(row.id)
        if where < 0:
            self.clear_filters()
            where = self.proxy.proxy_row_of(row.id)
        if where < 0:
            return False
        self.table.selectRow(where)
        self.table.scrollTo(self.proxy.index(where, 0),
                            QAbstractItemView.ScrollHint.PositionAtCenter)
        return True

    def show_current(self, index: QModelIndex | None = None) -> None:
        index = index if index is not None else self.table.currentIndex()
        if not index.isValid():
            return
        row = self.proxy.row_at(index.row())
        doc: dict[str, Any] | None = None
        error = None
        if row.summary is not None:
            try:
                doc = load_document(row)
            except ForgeError as exc:
                error = str(exc)
                self.statusBar().showMessage(f"Cannot read {row.file}: {exc}", 15000)
        self.detail.show_row(row, doc, error)
        if self.plots is not None:
            self.plots.show_result(row, doc)

    def _selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection
                           ) -> None:
        self.compare.set_selection(self.selected_rows())

    # -- the Overview's change points -----------------------------------------------------
    def ask_changes(self) -> None:
        """Find the open change points in a worker (the whole history: after the cards are
        on screen), then show them on the cards."""
        self.changes_asked += 1
        generation = self.changes_asked
        dirs = list(self.directories)

        def done(found: list[Change]) -> None:
            if generation != self.changes_asked:
                return
            self.changes_found = found
            self.overview_data = with_changes(self.overview_data, found)
            shown = sum(len(c.changes) for c in self.overview_data.cards)
            self.overview.set_changes(self.overview_data, "" if shown else
                                      "No open change points on this machine.")
            self.changes_loaded = generation
            if self.plots is not None:
                self.plots.set_changes(found)
            self._trend_after_changes(found)

        def failed(error: BaseException) -> None:
            if generation == self.changes_asked:
                self.overview.set_changes(self.overview_data,
                                          f"Could not look for change points: {error}")
                self.changes_loaded = generation

        in_thread(self.bridge, "changes", lambda: open_changes_apart(dirs), done, failed)

    # -- pages and panels -----------------------------------------------------------------
    def show_page(self, name: str) -> None:
        self.pages.setCurrentIndex(PAGES.index(name))

    def show_fleet(self, result_id: str) -> bool:
        """The Fleet page at the fleet result ``result_id`` (its whole id)."""
        self.show_page("fleet")
        return self.fleet_page.select(result_id)

    def open_host_result(self, result_id: str) -> None:
        """A fleet host's own result, in the Detail panel."""
        self.show_panel("detail")
        if not self.select_result(result_id):
            self.statusBar().showMessage(f"No result with id {result_id} here (was the fleet "
                                         "run with --no-save?)", 15000)

    def show_panel(self, name: str) -> None:
        pages = {"detail": self.detail, "plots": self.plots_page, "compare": self.compare,
                 "run": self.run_panel, "resources": self.resources}
        self.show_page("history")
        self.tabs.setCurrentWidget(pages[name])

    def show_trend(self, runtime: str | None, metric: str = "startup",
                   mark: str | None = None) -> PlotsView:
        """The History page's trend of ``metric`` for ``runtime`` (every runtime: None) on
        the Overview's machine, the change starting at result ``mark`` marked."""
        self.show_panel("plots")
        plots = self.ensure_plots()
        plots.show_trend(runtime, metric, self.overview_data.machine or None, mark)
        return plots

    def card_activated(self, runtime: str) -> None:
        """A card's click: its trend, its newest open change marked."""
        card = self.overview_data.card(runtime)
        changes = card.changes if card else ()
        self.show_trend(runtime, "startup", changes[0].result_id if changes else None)

    def request_trend(self, runtime: str | None, metric: str, mark: str | None) -> None:
        """`forge window --runtime/--metric`: that trend now, on the Overview's machine once
        the history is read, and (without ``mark``) the newest open change of the series
        marked once the change points are known."""
        self._trend_request = (runtime, metric, mark)
        self.show_trend(runtime, metric, mark)

    def _trend_after_changes(self, found: list[Change]) -> None:
        if self._trend_request is None or self.plots is None:
            return
        runtime, metric, mark = self._trend_request
        self._trend_request = None  # asked for once: later reloads leave the trend alone
        if mark is None:
            newest = next((c for c in found if c.metric == metric
                           and (runtime is None or c.runtime == runtime)), None)
            if newest is not None:
                self.plots.show_trend(runtime, metric, self.overview_data.machine or None,
                                      newest.result_id)

    def _panel_shown(self) -> None:
        if self.tabs.currentWidget() is self.plots_page and self.plots is None:
            self.ensure_plots()

    def ensure_plots(self) -> PlotsView:
        """The plots panel, made on first use (this imports pyqtgraph)."""
        if self.plots is None:
            from forge_desktop.gui.views.plots import PlotsView

            self.plots = PlotsView(self.bridge)
            self.plots.set_changes(self.changes_found)
            layout = self.plots_page.layout()
            assert layout is not None
            layout.addWidget(self.plots)
            self.plots.set_history(self.history.rows)
            row = self.current_row()
            if row is not None:
                self.plots.show_result(row, self.detail.doc if self.detail.row is row else None)
        return self.plots

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def run_benchmark(self) -> bool:
        self.show_panel("run")
        return self.run_panel.run()

    def cancel_or_escape(self) -> None:
        if self.run_panel.running:
            self.run_panel.cancel()
        elif self.search.hasFocus() and self.search.text():
            self.search.clear()

    def _busy_changed(self, busy: bool) -> None:
        events = self.run_panel.events
        last = events[-1] if events else None
        if busy and last is not None:
            self.job_label.setText(last.text)
        else:
            self.job_label.setText("")
            if last is not None and last.kind == "failed":
                self.statusBar().showMessage(f"{last.job.action.title} failed: {last.text}",
                                             30000)
            elif last is not None and last.kind in ("finished", "cancelled"):
                self.statusBar().showMessage(f"{last.job.action.title} {last.kind}: "
                                             f"{last.text}", 15000)

    # -- export ---------------------------------------------------------------------------
    def export_selected(self, path: Path, fmt: str | None = None) -> Path:
        """Export the selected results (the current one if none is selected) through
        forge_desktop.results.export; the format from ``fmt`` or the file's suffix."""
        from forge_desktop.results import export

        rows = [r for r in self.selected_rows() if r.summary is not None]
        if not rows:
            raise ForgeError("select one or more readable results to export")
        fmt = export.resolve_format(fmt, str(path))
        docs = [load_document(r) for r in rows]
        export.write(path, fmt, docs)
        self.statusBar().showMessage(f"Exported {len(docs)} result"
                                     f"{'s' if len(docs) != 1 else ''} to {path}", 15000)
        return path

    def export_dialog(self) -> None:
        rows = [r for r in self.selected_rows() if r.summary is not None]
        if not rows:
            self.statusBar().showMessage("Select one or more results to export", 10000)
            return
        name, chosen = QFileDialog.getSaveFileName(
            self, "Export results", str(Path.home() / f"forge-{rows[0].id}.html"),
            ";;".join(EXPORT_FILTERS.values()))
        if not name:
            return
        fmt = next((k for k, v in EXPORT_FILTERS.items() if v == chosen), "html")
        path = Path(name)
        if not path.suffix:
            path = path.with_suffix(f".{fmt}")
        try:
            self.export_selected(path, fmt)
        except (ForgeError, OSError) as exc:
            self.statusBar().showMessage(f"Export failed: {exc}", 30000)

    def _export_plot(self) -> None:
        self.show_panel("plots")
        self.ensure_plots().export_dialog()

    # -- Qt events ------------------------------------------------------------------------
    def _fit_columns(self) -> None:
        """The history's columns, to the table's width."""
        room = self.table.viewport().width()
        header, metrics = self.table.horizontalHeader(), self.table.fontMetrics()
        pad = 16
        fixed = {0: metrics.horizontalAdvance("2026-12-31 23:59") + pad,
                 1: metrics.horizontalAdvance("compare") + pad}
        rest = room - sum(fixed.values())
        self._fitting = True
        for column, share in enumerate(COLUMN_SHARES):
            if column != HEADLINE:  # it stretches
                header.resizeSection(column, fixed.get(column, rest * share // 100))
        self._fitting = False

    def _section_resized(self, column: int, _old: int, _new: int) -> None:
        if not self._fitting and column != HEADLINE:  # the user's width: kept
            self._columns_auto = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if self._columns_auto and event.type() == QEvent.Type.Resize \
                and watched is self.table.viewport() and self.table.viewport().width() > 100:
            self._fit_columns()
        if not self.ready and self.loads and event.type() == QEvent.Type.Paint \
                and watched in (self.table.viewport(), self.overview.grid_host,
                                self.plots_page, self.fleet_page.list.viewport()):
            self.ready = True
            QTimer.singleShot(0, self._write_ready)
            if self._pending_select is not None:
                keep, select = self._pending_select
                self._pending_select = None
                QTimer.singleShot(0, lambda: self._select_after_load(keep, select))
            QTimer.singleShot(0, self.ask_changes)
        return super().eventFilter(watched, event)

    def _write_ready(self) -> None:
        target = os.environ.get(READY_ENV)
        if not target:
            return
        load = PERF.summary().get("window.load", {})
        info: dict[str, Any] = {
            "rows": self.proxy.rowCount(), "pid": os.getpid(), "at_epoch_s": time.time(),
            "load_ms": load.get("total_ms"), "page": PAGES[self.pages.currentIndex()],
            "panel": TABS[self.tabs.currentIndex()]}
        if info["page"] == "fleet":
            info["fleet"] = self.fleet_page.dump()
        try:
            tmp = Path(f"{target}.tmp")
            tmp.write_text(json.dumps(info))
            tmp.replace(target)
        except OSError as exc:
            print(f"forge window: cannot write {target}: {exc}", file=sys.stderr)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_palette()

    def apply_palette(self) -> None:
        """Plots draw with the palette's colours: redo them when it changes (light/dark)."""
        self.detail.apply_palette()
        self.fleet_page.apply_palette()
        if self.plots is not None:
            self.plots.apply_palette()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.save_settings()
        self.resources.stop()
        if self.run_panel.running:
            self.statusBar().showMessage("Cancelling the benchmark before closing…")
            self.run_panel.shutdown()
        super().closeEvent(event)


def run_window(result_id: str | None = None, resources: bool = False,
               runtime: str | None = None, metric: str | None = None) -> int:
    """Entry point of `forge window`; returns the exit code. ``runtime`` or ``metric``: open
    at that trend (startup by default), ``result_id`` marked as the change (else the newest
    open change of that series)."""
    app = QApplication.instance() or QApplication([APP_ID])  # WM_CLASS = the app id
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setDesktopFileName(APP_ID)
    # The window shows at once and reads the history in a worker thread: with a cold index
    # (10,000 files to read) the user sees it loading instead of nothing. window.load lasts
    # from here until that history is in the table.
    loading = contextlib.ExitStack()
    loading.enter_context(PERF.measure("window.load"))
    window = ResultsWindow()
    window.loading = loading
    if resources:
        window.show_panel("resources")
    elif runtime or metric:
        window.request_trend(runtime, metric or "startup", result_id)
    elif result_id:
        window.show_panel("detail")
    window.show()
    window.reload(select=result_id)
    import signal

    signal.signal(signal.SIGINT, lambda *_a: window.close())
    signal.signal(signal.SIGTERM, lambda *_a: window.close())
    wake = QTimer()  # let Python run its signal handlers while Qt's loop sleeps
    wake.timeout.connect(lambda: None)
    wake.start(500)
    return int(app.exec())
