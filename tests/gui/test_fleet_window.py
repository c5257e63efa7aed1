"""The results window shows a fleet result (issue 14) in its detail view: hosts x runtimes,
each host against the baseline host with its CI, the runtimes within each host, and the
host and engine effects."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QApplication, QLabel, QTableView

from forge_desktop.fleet import HostRun, fleet_document
from forge_desktop.gui.window import ResultsWindow
from forge_desktop.hosts import Host
from tests.gui.test_window import open_window, qapp
from tests.unit.test_hosts import _doc

__all__ = ["open_window", "qapp"]


def test_detail_shows_a_fleet(qapp: QApplication, forge_home: Path,
                              open_window: Callable[[], ResultsWindow]) -> None:
    fast = [10.0 + 0.1 * i for i in range(20)]
    slow = [20.0 + 0.1 * i for i in range(20)]
    runs = [HostRun(Host("alpha", "ssh://a", "a"), _doc("20260101T000000Z-aaaaaa", {
                "runc": slow, "docker": [2 * x for x in slow]})),
            HostRun(Host("beta", "ssh://b", "b"), _doc("20260101T000001Z-bbbbbb", {
                "runc": fast, "docker": [2 * x for x in fast]}))]
    fleet = fleet_document(runs, "startup", {"iterations": 20}, None)
    store = forge_home / "benchmarks"
    store.mkdir(parents=True)
    for doc in [*(r.doc for r in runs if r.doc), fleet]:
        (store / f"{doc['id']}.json").write_text(json.dumps(doc))
    window = open_window()
    assert window.select_result(fleet["id"])
    detail = window.detail
    assert detail.heading.text().startswith("Fleet · ")
    titles = [w.text() for w in detail.findChildren(QLabel) if w.text().startswith(
        ("Hosts ×", "Against the baseline host", "Runtimes within", "Host effect"))]
    assert titles == ["Hosts × runtimes (Startup)", "Against the baseline host, alpha",
                      "Runtimes within each host, against docker",
                      "Host effect or engine effect"]
    against = next(v for v in detail.findChildren(QTableView)
                   if v.objectName() == "stats-1").model()
    cells = [[against.index(r, c).data() for c in range(against.columnCount())]
             for r in range(against.rowCount())]
    assert [row[:2] for row in cells] == [["beta", "docker"], ["beta", "runc"]]
    assert all(row[6].endswith("×") and row[8] == "faster" for row in cells)
