#!/usr/bin/env python3
"""The idle tray's cost (issues 5 and 13): RSS, USS and CPU of `forge tray` beside a bare Qt
QSystemTrayIcon with a menu of the same items, measured the same way in the same run,
alternating, after each one's menu was opened (a right click on its icon in trayer) and closed
(Escape). Needs an X server with a tray host and xdotool (DISPLAY; `scripts/services.sh start
x`). Targets: forge RSS at most 1.25x the bare tray's, at most 0.5% CPU at a 2 s refresh.
Usage: benchmarks/tray_idle.py [--seconds 60] [--rounds 2] [--write]
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
from collections.abc import Callable
from pathlib import Path

import psutil
from perfdoc import write_section  # benchmarks/perfdoc.py, beside this script

from forge_desktop import APP_ID
from forge_desktop.actions import ACTIONS
from forge_desktop.gui.settings import ITERATION_CHOICES, REFRESH_CHOICES_S

BEGIN, END = "<!-- tray-idle:begin -->", "<!-- tray-idle:end -->"
BARE_CLASS = "bare-tray"
BARE = """
import json, sys
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

def fill(menu, items):
    for item in items:
        if item is None:
            menu.addSeparator()
        elif isinstance(item, str):
            menu.addAction(item)
        else:
            fill(menu.addMenu(item[0]), item[1])

app = QApplication([sys.argv[1]])
pm = QPixmap(22, 22); pm.fill(QColor("steelblue"))
tray = QSystemTrayIcon(QIcon(pm)); menu = QMenu()
fill(menu, json.loads(sys.argv[2])); menu.addAction("Quit", app.quit)
tray.setContextMenu(menu); tray.show()
sys.exit(app.exec())
"""
Item = str | None | tuple[str, list["Item"]]


def tray_menu() -> list[Item]:
    """The titles of `forge tray`'s menu (gui/tray.py build_menu), for the bare tray's copy."""
    return ["Forge tray: 00 MiB, 0.0% CPU", None,  # progress and Cancel: hidden when idle
            *[a.title for a in ACTIONS.values() if a.is_benchmark], None,
            *[a.title for a in ACTIONS.values() if a.view is not None], None,
            ("Settings", [("Refresh interval", [f"{v:g} s" for v in REFRESH_CHOICES_S]),
                          ("Iterations", ["From config.toml", *map(str, ITERATION_CHOICES)]),
                          ("Runtimes", ["Every available runtime", "docker", "podman", "runc",
                                        "crun"]),
                          "Notifications", "Start at login"]),
            "Pause monitoring"]


def xdotool(*args: str) -> str:
    return subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=20,
                          check=False).stdout.strip()


def windows(pid: int, classname: str) -> list[tuple[str, dict[str, int]]]:
    found = []
    for wid in xdotool("search", "--all", "--onlyvisible", "--pid", str(pid), "--classname",
                       classname).split():
        geo = xdotool("getwindowgeometry", "--shell", wid)
        values = {k: int(v) for k, v in (line.split("=") for line in geo.splitlines())
                  if k in ("X", "Y", "WIDTH", "HEIGHT")}
        if len(values) == 4:
            found.append((wid, values))
    return found


def wait(what: str, check: Callable[[], object], timeout_s: float = 30) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    sys.exit(f"tray_idle: timed out waiting for {what}")


def is_menu(wid: str) -> bool:
    return "POPUP_MENU" in subprocess.run(["xprop", "-id", wid, "_NET_WM_WINDOW_TYPE"],
                                          capture_output=True, text=True, timeout=20,
                                          check=False).stdout


def open_and_close_menu(pid: int, classname: str) -> None:
    def icon() -> list[dict[str, int]]:
        return [g for _w, g in windows(pid, classname)
                if 12 <= g["WIDTH"] <= 64 and 12 <= g["HEIGHT"] <= 64]

    g = wait(f"the tray icon of pid {pid}", icon)[0]  # type: ignore[index]
    xdotool("mousemove", str(g["X"] + g["WIDTH"] // 2), str(g["Y"] + g["HEIGHT"] // 2),
            "click", "3")
    wait(f"the menu of pid {pid}", lambda: [w for w, _g in windows(pid, classname) if is_menu(w)])
    xdotool("key", "Escape")
    wait(f"the menu of pid {pid} to close",
         lambda: not [w for w, _g in windows(pid, classname) if is_menu(w)])


def measure(argv: list[str], classname: str, seconds: float, env: dict[str, str]
            ) -> dict[str, list[float]]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        open_and_close_menu(proc.pid, classname)
        time.sleep(5)  # what opening the menu started (its first paint, fonts) is not idle
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
    return {"rss": rss, "uss": uss, "cpu_percent": [100 * cpu_s / elapsed]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    if not os.environ.get("DISPLAY"):
        sys.exit("DISPLAY is not set: start Xvfb and trayer (scripts/services.sh start x)")
    home = tempfile.mkdtemp(prefix="forge-tray-")
    Path(home, "tray.json").write_text(json.dumps({"refresh_s": 2, "notifications": False}))
    env = {**os.environ, "FORGE_HOME": home}
    runs: dict[str, list[dict[str, list[float]]]] = {"forge": [], "bare": []}
    for _ in range(a.rounds):  # alternating: a drift of the machine hits both alike
        runs["forge"].append(measure([sys.executable, "-m", "forge_desktop", "tray"], APP_ID,
                                     a.seconds, env))
        runs["bare"].append(measure([sys.executable, "-c", BARE, BARE_CLASS,
                                     json.dumps(tray_menu())], BARE_CLASS, a.seconds, env))
    mib = 1024 * 1024

    def row(name: str, label: str) -> tuple[str, float]:
        rss = [x for r in runs[name] for x in r["rss"]]
        uss = [x for r in runs[name] for x in r["uss"]]
        cpu = [x for r in runs[name] for x in r["cpu_percent"]]
        return (f"| {label} | {statistics.median(rss) / mib:.1f} | {max(rss) / mib:.1f} | "
                f"{statistics.median(uss) / mib:.1f} | {statistics.median(cpu):.2f} |",
                statistics.median(rss))

    forge_row, forge_rss = row("forge", "`forge tray`")
    bare_row, bare_rss = row("bare", "bare Qt tray, same menu")
    ratios = [statistics.median(f["rss"]) / statistics.median(b["rss"])
              for f, b in zip(runs["forge"], runs["bare"], strict=True)]
    lines = [BEGIN, "## Idle tray indicator (issues 5 and 13)", "",
             f"`benchmarks/tray_idle.py --seconds {a.seconds:g} --rounds {a.rounds}`: "
             f"{a.rounds} alternating rounds; in each, each process's menu is opened (a right "
             "click on its icon in trayer) and closed (Escape), then the process is measured "
             f"for {a.seconds:g} s after 5 s, 1 s samples, refresh 2 s, on Xvfb + trayer. The "
             "bare tray is a QSystemTrayIcon whose menu has the same items (titles, separators, "
             "submenus) as forge's. Medians over every sample of every round.", "",
             "| process | RSS median MiB | RSS max MiB | USS median MiB | CPU % |",
             "|---|---:|---:|---:|---:|", forge_row, bare_row, "",
             f"forge / bare RSS: {forge_rss / bare_rss:.2f}x (per round: "
             f"{', '.join(f'{r:.2f}x' for r in ratios)}). Target: at most 1.25x the bare tray "
             "and 0.5% CPU at a 2 s refresh (issue 13).", "",
             "Before issue 13, the same script gave `forge tray` 74.5 MiB against 55.0 MiB "
             "(1.36x). Where that went (/proc/PID/smaps, tracemalloc, `-X importtime`): "
             "Pillow drew the icon (now plain Python: about 4 MiB of modules and shared "
             "libraries), `hashlib` and `secrets` on the import path mapped OpenSSL's libcrypto "
             "(3.4 MiB), and PySide6's import hook made linecache keep the source of every "
             "module imported after PySide6 (about 4 MiB; the tray imports its Qt-free modules "
             "first and clears the cache once started).", END]
    section = "\n".join(lines)
    print(section)
    if a.write:
        write_section(BEGIN, END, section)


if __name__ == "__main__":
    main()
