#!/usr/bin/env python3
"""The idle tray's cost (issue 5): RSS, USS and CPU of `forge tray` over 60 s at a 2 s refresh,
beside a bare Qt QSystemTrayIcon measured the same way in the same run. Needs an X server
with a tray host (DISPLAY; `scripts/services.sh start x`). Target: <= 70 MiB RSS, <= 0.5% CPU.
Usage: benchmarks/tray_idle.py [--seconds 60] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from perfdoc import write_section  # benchmarks/perfdoc.py, beside this script

REPO = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- tray-idle:begin -->", "<!-- tray-idle:end -->"
BARE = """
import sys
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QMenu
from PySide6.QtGui import QIcon, QPixmap, QColor

app = QApplication(["bare-tray"])
pm = QPixmap(22, 22); pm.fill(QColor("steelblue"))
tray = QSystemTrayIcon(QIcon(pm)); menu = QMenu(); menu.addAction("Quit", app.quit)
tray.setContextMenu(menu); tray.show()
sys.exit(app.exec())
"""


def measure(argv: list[str], seconds: float, env: dict[str, str]) -> dict[str, float]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(5)  # start-up is not idle
        p = psutil.Process(proc.pid)
        t0, c0 = time.monotonic(), sum(p.cpu_times()[:2])
        rss, uss = [], []
        while time.monotonic() - t0 < seconds:
            full = p.memory_full_info()
            rss.append(full.rss)
            uss.append(full.uss)
            time.sleep(1)
        cpu_s = sum(p.cpu_times()[:2]) - c0
        elapsed = time.monotonic() - t0
    finally:
        proc.terminate()
        proc.wait(30)
    mib = 1024 * 1024
    return {"rss_mib": statistics.median(rss) / mib, "rss_max_mib": max(rss) / mib,
            "uss_mib": statistics.median(uss) / mib, "cpu_percent": 100 * cpu_s / elapsed}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    if not os.environ.get("DISPLAY"):
        sys.exit("DISPLAY is not set: start Xvfb and trayer (scripts/services.sh start x)")
    home = tempfile.mkdtemp(prefix="forge-tray-")
    Path(home, "tray.json").write_text(json.dumps({"refresh_s": 2, "notifications": False}))
    env = {**os.environ, "FORGE_HOME": home}
    forge = measure([sys.executable, "-m", "forge_desktop", "tray"], a.seconds, env)
    bare = measure([sys.executable, "-c", BARE], a.seconds, env)
    lines = [BEGIN, "## Idle tray indicator (issue 5)", "",
             f"`benchmarks/tray_idle.py --seconds {a.seconds:g}`: each process measured for "
             f"{a.seconds:g} s after a 5 s start-up, 1 s samples, refresh 2 s, on Xvfb + trayer; "
             "the bare tray is a QSystemTrayIcon with a one-item menu, same run.", "",
             "| process | RSS median MiB | RSS max MiB | USS median MiB | CPU % |",
             "|---|---:|---:|---:|---:|",
             f"| `forge tray` | {forge['rss_mib']:.1f} | {forge['rss_max_mib']:.1f} | "
             f"{forge['uss_mib']:.1f} | {forge['cpu_percent']:.2f} |",
             f"| bare Qt tray | {bare['rss_mib']:.1f} | {bare['rss_max_mib']:.1f} | "
             f"{bare['uss_mib']:.1f} | {bare['cpu_percent']:.2f} |", "",
             f"forge / bare RSS: {forge['rss_mib'] / bare['rss_mib']:.2f}x. Target: at most "
             "70 MiB RSS and 0.5% CPU at a 2 s refresh.", END]
    section = "\n".join(lines)
    print(section)
    if a.write:
        write_section(BEGIN, END, section)


if __name__ == "__main__":
    main()
