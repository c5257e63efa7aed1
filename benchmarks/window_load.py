#!/usr/bin/env python3
"""How long until `forge window` shows a populated history of 10,000 results (issue 6)?

Each run starts `python -m forge_desktop window` as a subprocess on Qt's offscreen platform
and stops the clock when the window has painted its filled table: the window writes
FORGE_WINDOW_READY_FILE then (a tiny hook in forge_desktop/gui/window.py), with the wall-clock
time of that paint, so the script's polling adds nothing. Warm: the results index is current
(the usual case: every scan keeps it); cold: `.index.sqlite` deleted first (every file is
read). For scale, the same on an empty store, and a bare PySide6 window with an empty table.

The 10,000 files are copies of real results, made as benchmarks/results_list.py makes them
(real `forge benchmark` runs on this machine's engines, or --templates DIR), varied.
With --baseline SRC (a checkout of an older forge), every cold run is followed by the same
run of that code (PYTHONPATH=SRC), so before and after are measured side by side.

Prints a Markdown section and, with --write, replaces it in docs/PERFORMANCE.md.
Usage: benchmarks/window_load.py [--count 10000] [--runs 7] [--cold-runs 3]
[--templates DIR] [--keep DIR] [--baseline SRC] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_list  # noqa: E402 - the generator of the results-list benchmark, shared
from perfdoc import write_section  # benchmarks/perfdoc.py, beside this script

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
BEGIN, END = "<!-- window-load:begin -->", "<!-- window-load:end -->"
READY_ENV = "FORGE_WINDOW_READY_FILE"
TARGET_S = 1.5
BARE = """
import json, os, sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QApplication, QMainWindow, QTableView

app = QApplication(["bare-window"])
win = QMainWindow(); table = QTableView(); table.setModel(QStandardItemModel(0, 6))
win.setCentralWidget(table); win.resize(1280, 800)
class Ready(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint and not getattr(self, "done", False):
            self.done = True
            QTimer.singleShot(0, write)
        return False
def write():
    target = os.environ["FORGE_WINDOW_READY_FILE"]
    with open(target + ".tmp", "w") as fh:
        fh.write(json.dumps({"at_epoch_s": time.time(), "rows": 0}))
    os.replace(target + ".tmp", target)
ready = Ready(); table.viewport().installEventFilter(ready)
win.show()
sys.exit(app.exec())
"""


def one_run(argv: list[str], env: dict[str, str], ready: Path,
            timeout_s: float = 60) -> dict[str, float]:
    """Seconds from spawning ``argv`` to the ready file's paint time, and what it says."""
    ready.unlink(missing_ok=True)
    t0 = time.time()
    proc = subprocess.Popen(argv, env={**env, READY_ENV: str(ready)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=results_list.NEUTRAL_CWD)
    try:
        deadline = time.monotonic() + timeout_s
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
                raise SystemExit(f"{' '.join(argv[2:])}: no ready file ({err[-500:]})")
            time.sleep(0.002)
        info = json.loads(ready.read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    return {"s": info["at_epoch_s"] - t0, "rows": info.get("rows", 0),
            "load_ms": info.get("load_ms") or 0.0}


def summary(runs: list[dict[str, float]]) -> tuple[float, float, float, float]:
    secs = [r["s"] for r in runs]
    return (statistics.median(secs), min(secs), max(secs),
            statistics.median(r["load_ms"] for r in runs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--templates", type=Path)
    ap.add_argument("--keep", type=Path, help="Generate into (and keep) this FORGE_HOME.")
    ap.add_argument("--baseline", type=Path, help="A checkout of an older forge: its cold "
                    "runs alternate with these.")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()

    templates = results_list.file_templates(a.templates) if a.templates \
        else results_list.real_templates()
    if "startup" not in templates:
        raise SystemExit("no startup template: are the engines running?")
    home = a.keep or Path(tempfile.mkdtemp(prefix="forge-window-bench-"))
    bench = home / "benchmarks"
    if bench.exists():
        shutil.rmtree(bench)
    work = Path(tempfile.mkdtemp(prefix="forge-window-run-"))
    try:
        measure(a, templates, home, bench, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not a.keep:
            shutil.rmtree(home, ignore_errors=True)


def measure(a: argparse.Namespace, templates: dict[str, dict[str, object]], home: Path,
            bench: Path, work: Path) -> None:
    results_list.generate(bench, templates, a.count)
    ready = work / "ready.json"
    env = {**os.environ, "FORGE_HOME": str(home), "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(work / "xdg")}
    window = [PY, "-m", "forge_desktop", "window"]

    load_before = os.getloadavg()[0]
    cold, before = [], []
    old_env = results_list.baseline_env(env, a.baseline) if a.baseline else None
    for _ in range(a.cold_runs):
        (bench / results_list.INDEX).unlink(missing_ok=True)
        cold.append(one_run(window, env, ready))
        if old_env:
            (bench / results_list.INDEX).unlink(missing_ok=True)
            before.append(one_run(window, old_env, ready))
    one_run(window, env, ready)  # the index is current from here on
    warm = [one_run(window, env, ready) for _ in range(a.runs)]
    if any(r["rows"] != a.count for r in warm + cold + before):
        raise SystemExit(f"expected {a.count} rows, got "
                         f"{[r['rows'] for r in warm + cold + before]}")
    empty_env = {**env, "FORGE_HOME": str(work / "empty-home")}
    empty = [one_run(window, empty_env, ready) for _ in range(a.runs)]
    bare = [one_run([PY, "-c", BARE], env, ready) for _ in range(a.runs)]
    load_after = os.getloadavg()[0]
    ratio = results_list.parallel_ratio()

    rows = [(f"`forge window`, {a.count:,} results, warm index", summary(warm)),
            (f"`forge window`, {a.count:,} results, cold index (no `.index.sqlite`)",
             summary(cold)),
            *([(f"same, cold index, before (`{results_list.revision(a.baseline)}`, run "
                f"alternately with the row above)", summary(before))] if before else []),
            ("`forge window`, empty store (interpreter, CLI, Qt, window)", summary(empty)),
            ("bare PySide6 window with an empty QTableView (for scale)", summary(bare))]
    kinds = ", ".join(sorted(templates))
    lines = [
        BEGIN,
        "## Opening the results window (issues 6 and 12)",
        "",
        f"`benchmarks/window_load.py --count {a.count} --runs {a.runs} --cold-runs "
        f"{a.cold_runs}`: time from spawning `python -m forge_desktop window` (offscreen Qt "
        f"platform) to the first paint of the populated history table, reported by the "
        f"window itself through `FORGE_WINDOW_READY_FILE`. {a.count:,} result files, copies "
        f"of real {kinds} results from this machine, varied as in the results-list benchmark. "
        "`window.load` is the window's own `PERF` measure (construction, shown, index scan in "
        "a worker thread, table filled). Medians of the runs, seconds.",
        "",
        "| Start | median s | min | max | `window.load` ms |",
        "|---|---:|---:|---:|---:|",
        *[f"| {label} | {m:.2f} | {lo:.2f} | {hi:.2f} | {load:.0f} |"
          for label, (m, lo, hi, load) in rows],
        "",
        f"Target: a populated window with 10,000 results in under {TARGET_S} s, warm index "
        f"({'met' if rows[0][1][0] < TARGET_S else 'missed'}) and cold (issue 12: "
        f"{'met' if rows[1][1][0] < TARGET_S else 'missed'}). A cold index is the first "
        "open after an upgrade or a bulk copy of results: the scan reads every file once "
        f"(`results.index.scan`). 1-minute load average: {load_before:.2f} before the runs, "
        f"{load_after:.2f} after ({os.cpu_count()} cores); two CPU-bound processes at once "
        f"took {ratio:.1f}x the time of one at the end (1.0: two idle cores, 2.0: one; the "
        "cold scan's two forked workers gain only from an idle second core).",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if a.write:
        write_section(BEGIN, END, section)


if __name__ == "__main__":
    main()
