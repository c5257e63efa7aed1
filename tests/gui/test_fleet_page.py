"""The window's Fleet page on a real fleet run: forge runs startup on the sshd test hosts alpha
and beta (tests/fleet/conftest.py: beta has its own dockerd) and on a host nobody answers for,
then `forge window --result FLEET_ID` opens on a 1024 x 700 Xvfb of its own at that fleet. Its
hosts x runtimes table must hold the baseline host's medians as its own results say, the
other host's ratios and CIs as the fleet document says, and the failed host's reason; in this
process, the ratio plot draws those ratios and a double-click opens a host's own result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QModelIndex, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QTableView

from forge_desktop.gui.window import READY_ENV, ResultsWindow
from tests.engines import base_env
from tests.fleet.conftest import Fleet, fleet
from tests.fleet.test_hosts import _closed_port, forge
from tests.gui.qt_loop import spin_until
from tests.gui.test_window import SMALL_SCREEN, qapp

__all__ = ["fleet", "qapp"]

GREEN, RED = "#168c46", "#c82828"
"""views/fleet.py's verdict colours (faster or smaller, slower or larger)."""


@pytest.fixture(scope="module")
def fleet_run(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, dict[str, Any]]:
    """One real fleet run for the module: alpha, beta and gone (a port that refuses)."""
    home = tmp_path_factory.mktemp("fleet-page-home")
    (home / "config.toml").write_text(fleet.config(
        f'[hosts.gone]\nurl = "ssh://root@127.0.0.1:{_closed_port()}"\n'))
    env = {**base_env(), "FORGE_HOME": str(home)}
    proc = forge(env, "benchmark", "startup", "--host", "alpha", "--host", "beta", "--host",
                 "gone", "-r", "runc", "-r", "docker", "-n", "5", "--json")
    assert proc.returncode == 1, proc.stderr  # gone failed, the others ran
    doc: dict[str, Any] = json.loads(proc.stdout)
    assert doc["kind"] == "fleet" and (home / "benchmarks" / f"{doc['id']}.json").is_file()
    return home, doc


def _host_doc(home: Path, doc: dict[str, Any], name: str) -> dict[str, Any]:
    rid = next(h["result_id"] for h in doc["hosts"] if h["name"] == name)
    found: dict[str, Any] = json.loads((home / "benchmarks" / f"{rid}.json").read_text())
    return found


def expected_table(home: Path, doc: dict[str, Any]) -> tuple[list[list[str]],
                                                             list[list[str | None]]]:
    """The rows and cell colours the page must show, from the saved documents themselves."""
    comp = doc["comparison"]
    base = comp["baseline_host"]
    runtimes = ["docker", "runc"]
    medians = {e["runtime"]: e["stats"]["median_ms"]
               for e in _host_doc(home, doc, base)["runtimes"]}
    ratios = {(r["host"], r["runtime"]): r for r in comp["ratios"]}
    colour = {"faster": GREEN, "slower": RED}
    rows: list[list[str]] = []
    colours: list[list[str | None]] = []
    for h in doc["hosts"]:
        name = h["name"]
        if name == base:
            rows.append([f"{name} (baseline)", h["result_id"],
                         *(f"{medians[rt]:,.1f} ms" for rt in runtimes)])
            colours.append([None] * 4)
        elif h["result_id"] is None:
            rows.append([name, f"failed: {h['error']}", "-", "-"])
            colours.append([None] * 4)
        else:
            cells = [ratios[(name, rt)] for rt in runtimes]
            rows.append([name, h["result_id"], *(
                f"{r['ratio']:.2f}× [{r['ci95'][0]:.2f}–{r['ci95'][1]:.2f}]" for r in cells)])
            colours.append([None, None, *(colour.get(r["verdict"]) for r in cells)])
    return rows, colours


def test_forge_window_opens_the_fleet_page_at_a_fleet(fleet_run: tuple[Path, dict[str, Any]],
                                                      tmp_path: Path) -> None:
    from tests.gui.xvfb import start_xvfb

    home, doc = fleet_run
    gone = next(h for h in doc["hosts"] if h["name"] == "gone")
    assert gone["result_id"] is None and "host gone: cannot connect" in gone["error"]
    ready = tmp_path / "ready.json"
    display = start_xvfb("{}x{}x24".format(*SMALL_SCREEN))
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env.update({"QT_QPA_PLATFORM": "xcb", "DISPLAY": display.name, "FORGE_HOME": str(home),
                "XDG_CONFIG_HOME": str(tmp_path / "xdg"), READY_ENV: str(ready)})
    proc = subprocess.Popen([sys.executable, "-m", "forge_desktop", "window", "--result",
                             doc["id"]], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), (proc.stderr.read() if proc.stderr and proc.poll() is not None
                                else "no ready file within 60 s")
        info = json.loads(ready.read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        display.stop()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert info["pid"] == proc.pid and info["page"] == "fleet"
    page = info["fleet"]
    assert page["id"] == doc["id"] and page["list"] == [doc["id"]]
    assert page["metric"] == "startup"
    assert page["columns"] == ["Host", "Result", "docker", "runc"]
    rows, colours = expected_table(home, doc)
    assert page["rows"] == rows
    assert not page["sideways"]  # the whole table within a 1024 x 700 screen
    assert page["colours"] == colours
    assert f"gone failed: {gone['error']}" in page["failed"].splitlines()
    base = doc["comparison"]["baseline_host"]
    other = "beta" if base == "alpha" else "alpha"
    (host_effect,) = doc["comparison"]["host_effect"]
    calls = set(host_effect["verdicts"].values())
    if host_effect["same_for_every_runtime"]:
        assert f"{other} {calls.pop()} than {base} for every runtime (median startup)" \
            in page["effects"]
    else:
        assert any(e.startswith(f"{other} against {base}") for e in page["effects"])
    assert len(page["effects"]) == len(doc["comparison"]["engine_effect"]) + 1


def double_click(view: QTableView, index: QModelIndex) -> None:
    """As a mouse does it: a click, then the second press that makes it a double-click
    (Qt's item views open an item only on a double-click of the item last pressed)."""
    at = view.visualRect(index).center()
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=at)
    QTest.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=at)


@pytest.fixture
def window(qapp: QApplication, fleet_run: tuple[Path, dict[str, Any]]
           ) -> Iterator[ResultsWindow]:
    home, _doc = fleet_run
    made = ResultsWindow([home / "benchmarks"])
    made.load()
    made.show()
    made.resize(1024, 660)
    spin_until(lambda: made.ready and made.current_row() is not None, 10)
    yield made
    made.close()
    made.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def test_the_plot_draws_the_ratios_and_a_double_click_opens_a_host(
        window: ResultsWindow, fleet_run: tuple[Path, dict[str, Any]]) -> None:
    home, doc = fleet_run
    comp = doc["comparison"]
    assert window.show_fleet(doc["id"])
    page = window.fleet_page
    spin_until(lambda: bool(page.drawn), 20)
    base = comp["baseline_host"]
    assert sorted(page.drawn) == sorted(
        [(base, "docker", 1.0), (base, "runc", 1.0)]
        + [(r["host"], r["runtime"], r["ratio"]) for r in comp["ratios"]])
    # a double-click on a host's row: that host's own result in the Detail panel
    other = next(h for h in doc["hosts"] if h["name"] not in (base, "gone"))
    row = page.model.hosts.index(other["name"])
    double_click(page.table, page.model.index(row, 1))
    spin_until(lambda: window.detail.row is not None
               and window.detail.row.id == other["result_id"], 10)
    assert window.pages.currentIndex() == 1 and window.tabs.currentWidget() is window.detail
    assert window.detail.doc is not None and window.detail.doc.get("host") == other["name"]
    # the failed host's row opens nothing: it has no result
    window.show_fleet(doc["id"])
    gone = page.model.hosts.index("gone")
    double_click(page.table, page.model.index(gone, 1))
    QApplication.processEvents()
    assert window.pages.currentIndex() == 2
    assert _host_doc(home, doc, other["name"])["id"] == other["result_id"]
