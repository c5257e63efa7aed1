"""Run by tests/gui/test_window.py in a child process on an Xvfb screen of its own: opens the
results window as `forge window` does (shown, then the history read in a worker), walks every
page, panel and plot tab, and prints what it measured as JSON on stdout.

    python -m tests.gui.window_fit open RESULT_ID   measure (RESULT_ID: a 3-runtime compare)
    python -m tests.gui.window_fit oversize         open, make it 1600 x 1000, close (saved)
"""

from __future__ import annotations

import json
import sys
from typing import Any

from PySide6.QtWidgets import QApplication, QScrollArea, QScrollBar

from forge_desktop import APP_ID
from forge_desktop.gui.views.detail import FittedTable
from forge_desktop.gui.window import TABS, ResultsWindow
from tests.gui.qt_loop import spin_until


def _rect(w: Any) -> list[int]:
    g = w.frameGeometry() if hasattr(w, "frameGeometry") else w
    return [g.x(), g.y(), g.width(), g.height()]


def _sideways(bar: QScrollBar) -> bool:
    return bar.isVisible() and bar.maximum() > 0


def main() -> int:
    app = QApplication([APP_ID])
    app.setQuitOnLastWindowClosed(False)
    window = ResultsWindow()
    window.show()
    window.reload()
    spin_until(lambda: window.ready and window.windowHandle() is not None
               and window.windowHandle().isExposed(), 30)
    spin_until(lambda: window.changes_loaded > 0, 60)
    if sys.argv[1] == "oversize":
        window.resize(1600, 1000)
        spin_until(lambda: window.width() == 1600, 10)
        window.close()
        print(json.dumps({"closed_at": [window.width(), window.height()]}))
        return 0
    screen = window.screen()
    out: dict[str, Any] = {
        "available": _rect(screen.availableGeometry()),
        "frame": _rect(window),
        "page": window.pages.currentIndex(),
        "cards": {name: _rect(card.geometry()) for name, card in window.overview.cards.items()},
        "overview_width": window.overview.area.viewport().width(),
        "sizes": {}}
    sizes: dict[str, list[int]] = out["sizes"]

    def visit(name: str, show: Any, shown: Any) -> None:
        show()
        spin_until(lambda: shown().isVisible(), 10)
        QApplication.processEvents()
        sizes[name] = [window.width(), window.height()]

    visit("history", lambda: window.show_page("history"), lambda: window.table)
    table = window.table
    out["search"] = {"width": window.search.width(),
                     "placeholder": window.search.fontMetrics().horizontalAdvance(
                         window.search.placeholderText())}
    out["history_sideways"] = _sideways(table.horizontalScrollBar())
    assert window.select_result(sys.argv[2])
    for panel in TABS:
        visit(panel, lambda p=panel: window.show_panel(p),
              lambda p=panel: {"detail": window.detail, "plots": window.plots_page,
                               "compare": window.compare, "run": window.run_panel,
                               "resources": window.resources}[p])
        if panel == "plots":
            plots = window.ensure_plots()
            for key, plot in plots.plots.items():
                tabs = plots.tabs
                visit(f"plots/{key}", lambda w=plot, t=tabs: t.setCurrentWidget(w),
                      lambda w=plot: w)
    window.show_panel("detail")
    window.detail.tabs.setCurrentIndex(0)
    spin_until(lambda: bool(window.detail.findChildren(FittedTable)), 10)
    spin_until(lambda: all(t.isVisible() for t in window.detail.findChildren(FittedTable)), 10)
    QApplication.processEvents()
    stats = window.detail.findChildren(FittedTable)
    room = window.detail.stats_box.width()
    out["detail_tables"] = [{"name": t.objectName(), "stacked": t.is_stacked,
                             "sideways": _sideways(t.horizontalScrollBar()),
                             "width": t.width(), "room": room,
                             "columns": sum(t.columnWidth(c) for c in
                                            range(t.model().columnCount())),
                             "viewport": t.viewport().width()} for t in stats]
    scroll = window.detail.tabs.widget(0)
    assert isinstance(scroll, QScrollArea)
    out["detail_scroll_sideways"] = _sideways(scroll.horizontalScrollBar())
    visit("fleet", lambda: window.show_page("fleet"), lambda: window.fleet_page)
    out["fleet_sideways"] = _sideways(window.fleet_page.table.horizontalScrollBar())
    visit("overview-again", lambda: window.show_page("overview"), lambda: window.overview)
    window.card_activated(next(iter(window.overview.cards)))
    out["after_card"] = {"page": window.pages.currentIndex(),
                         "panel": TABS[window.tabs.currentIndex()],
                         "size": [window.width(), window.height()]}
    window.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
