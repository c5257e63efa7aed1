#!/usr/bin/env python3
"""Screenshots of the results window for the README: the Overview, a trend with its change
point marked and the Fleet page, rendered on an Xvfb screen of 1024 x 700 (the smallest the
window is made for).

The results are synthetic but of the real document shape (checked by
``results.schema.validate`` and read through the real index): one machine, docker, podman and
runc measured three times a day for 40 days, docker 38% slower from day 28 on, when its
version went 20.10.24 -> 24.0.7, memory runs every few days and hourly canaries on the last
day. The window then finds that step itself (``results.changes``), as it would on a user's
machine. Two days before the end, a fleet run (``forge_desktop.fleet.fleet_document``) over
two other hosts and one that did not answer.

Usage: scripts/screenshots.py [--out docs/img] [--keep DIR]
(runs itself again with --render in a child process on the Xvfb display)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SCREEN = "1024x700x24"
NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.timezone.utc)
DAYS = 40
STEP_DAY = 28
LEVELS = {"docker": 230.0, "podman": 150.0, "runc": 31.0}
VERSIONS = {"docker": ("20.10.24+dfsg1", "24.0.7"), "podman": ("4.3.1", "4.3.1"),
            "runc": ("1.1.5+ds1", "1.1.5+ds1")}
PER_CONTAINER = {"docker": 4.8 * 1048576, "podman": 1.2 * 1048576}
DAEMON = {"docker": 126 * 1048576, "podman": 48 * 1048576}


def _environment(names: list[str], after_step: bool) -> dict[str, Any]:
    return {"host": "devbox", "os": "Debian GNU/Linux 12 (bookworm)",
            "kernel": "6.1.0-18-amd64", "arch": "x86_64",
            "cpu_model": "AMD Ryzen 7 5800U with Radeon Graphics", "cpu_count": 16,
            "memory_total_bytes": 16_505_540_608, "cgroup_version": "v2",
            "python_version": "3.11.2", "forge_version": "0.1.0",
            "runtimes": {n: {"version": VERSIONS[n][after_step], "kind": "oci" if n == "runc"
                             else "engine", "endpoint": None if n == "runc" else
                             f"unix:///run/{n}.sock", "storage_driver": None if n == "runc"
                             else "overlay2"} for n in names},
            "noise_warnings": [], "network_mode": "none"}


def _stats(totals: list[float]) -> dict[str, Any]:
    ordered = sorted(totals)
    n = len(ordered)
    return {"n": n, "median_ms": statistics.median(ordered),
            "mean_ms": statistics.fmean(ordered), "stdev_ms": statistics.stdev(ordered),
            "min_ms": ordered[0], "max_ms": ordered[-1],
            "p95_ms": ordered[int(0.95 * (n - 1))],
            "ci95_ms": [ordered[max(0, n // 2 - 2)], ordered[min(n - 1, n // 2 + 1)]],
            "outliers": 0}


def _timed(name: str, level: float, n: int, rng: random.Random, after: bool) -> dict[str, Any]:
    engine = name != "runc"
    split = {"create": 0.05, "start": 0.75, "wait": 0.15, "remove": 0.05} if engine \
        else {"run": 1.0}
    samples: list[dict[str, Any]] = []
    for _ in range(n):
        total = round(level * rng.lognormvariate(0, 0.05), 4)
        samples.append({"total_ms": total, "phases_ms": {p: round(total * f, 4)
                                                          for p, f in split.items()}})
    return {"runtime": name, "kind": "engine" if engine else "oci",
            "version": VERSIONS[name][after], "via": "api" if engine else "command",
            "samples": samples, "stats": _stats([s["total_ms"] for s in samples]),
            "phase_medians_ms": {p: round(statistics.median(s["phases_ms"][p]
                                                            for s in samples), 4)
                                 for p in split},
            "warnings": [], "errors": []}


def _memory(name: str, rng: random.Random, after: bool) -> dict[str, Any]:
    per, daemon = int(PER_CONTAINER[name] * rng.uniform(0.95, 1.05)), DAEMON[name]
    return {"runtime": name, "kind": "engine", "version": VERSIONS[name][after],
            "containers": 3, "warnings": [], "errors": [], "daemon_processes": [],
            "daemon_rss_bytes": int(daemon * 1.03), "daemon_pss_bytes": daemon,
            "containers_detail": [], "per_container_bytes": per,
            "per_container_parts": {"outside_pss_bytes": per - 327_680,
                                    "inside_cgroup_bytes": 327_680},
            "density": [{"containers": k, "daemon_pss_bytes": daemon,
                         "shims_pss_bytes": k * per, "cgroups_bytes": k * 327_680,
                         "total_bytes": daemon + k * (per + 327_680)} for k in range(4)],
            "density_slope_bytes": per + 327_680, "samples": []}


def _doc(kind: str, when: dt.datetime, entries: list[dict[str, Any]], after: bool,
         rng: random.Random, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"schema_version": 1, "id": f"{when:%Y%m%dT%H%M%SZ}-{rng.getrandbits(24):06x}",
            "kind": kind,
            "created_at": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "complete": True, "environment": _environment([e["runtime"] for e in entries],
                                                          after),
            "parameters": parameters, "runtimes": entries}


def generate(directory: Path, seed: int = 13) -> int:
    """The synthetic history into ``directory``; returns how many results."""
    from forge_desktop.results.schema import validate

    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    start = NOW - dt.timedelta(days=DAYS)
    step_at = start + dt.timedelta(days=STEP_DAY)
    startup = {"iterations": 10, "warmup": 2, "network": "none",
               "image": "forge-bench:busybox", "via": "api", "command": ["true"]}
    docs = []
    for i in range(DAYS * 3):
        when = start + dt.timedelta(hours=8 * i + rng.uniform(0, 2))
        after = when >= step_at
        docs.append(_doc("startup", when, [
            _timed(n, LEVELS[n] * (1.38 if after and n == "docker" else 1.0), 10, rng, after)
            for n in LEVELS], after, rng, startup))
        if i % 12 == 5:
            docs.append(_doc("memory", when + dt.timedelta(minutes=20), [
                _memory(n, rng, after) for n in PER_CONTAINER], after, rng,
                {"containers": 3, "samples": 10}))
    for h in range(12):  # hourly canaries, the last half day
        when = NOW - dt.timedelta(hours=12 - h, minutes=-3)
        docs.append(_doc("canary", when, [_timed(n, LEVELS[n] * (1.38 if n == "docker"
                                                                 else 1.0), 5, rng, True)
                                          for n in LEVELS], True, rng,
                         {**startup, "iterations": 5, "warmup": 1}))
    docs += fleet(NOW - dt.timedelta(days=2, hours=3), rng, startup)
    for doc in docs:
        validate(doc)
        (directory / f"{doc['id']}.json").write_text(json.dumps(doc, indent=1))
    return len(docs)


FLEET = {"ci-runner-1": {"docker": 310.0, "podman": 196.0, "runc": 41.0},
         "build-2": {"docker": 238.0, "podman": 151.0, "runc": 40.0}}
"""Startup medians (ms) of the fleet's hosts; edge-3 does not answer."""


def fleet(when: dt.datetime, rng: random.Random, parameters: dict[str, Any]
          ) -> list[dict[str, Any]]:
    """A fleet run two days ago, made by forge's own fleet_document: two hosts' startup
    results (each stamped with its host, as forge keeps them) and the fleet document, with a
    third host that could not be reached."""
    from forge_desktop.fleet import HostRun, fleet_document
    from forge_desktop.hosts import Host

    runs = []
    for i, (name, levels) in enumerate(FLEET.items()):
        doc = _doc("startup", when + dt.timedelta(seconds=i), [
            _timed(n, level, 20, rng, True) for n, level in levels.items()], True, rng,
            {**parameters, "iterations": 20})
        doc["environment"]["host"] = name
        runs.append(HostRun(Host(name, f"ssh://bench@{name}.example", f"{name}.example"),
                            {**doc, "host": name}))
    runs.append(HostRun(Host("edge-3", "ssh://bench@edge-3.example", "edge-3.example"),
                        reason="host edge-3: cannot connect (ssh: connect to host "
                               "edge-3.example port 22: No route to host)"))
    doc = fleet_document(runs, "startup", {**parameters, "iterations": 20}, None)
    at = when + dt.timedelta(seconds=10)
    doc["id"] = f"{at:%Y%m%dT%H%M%SZ}-{rng.getrandbits(24):06x}"
    doc["created_at"] = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [r.doc for r in runs if r.doc is not None] + [doc]


def render(out: Path) -> None:
    """In the child, on the Xvfb display: open the window as `forge window` does, wait for
    the cards and the change points, grab the Overview, then click docker's card and grab
    its trend with the change marked, then the Fleet page at the fleet result."""
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from forge_desktop import APP_ID
    from forge_desktop.gui.window import ResultsWindow

    app = QApplication([APP_ID])
    app.setQuitOnLastWindowClosed(False)
    window = ResultsWindow()
    window.show()
    window.reload()

    def until(done: Any, timeout_s: float, what: str) -> None:
        loop = QEventLoop()
        check = QTimer()
        check.timeout.connect(lambda: loop.quit() if done() else None)
        check.start(20)
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        loop.exec()
        check.stop()
        if not done():
            raise SystemExit(f"screenshots: {what} not within {timeout_s} s")

    until(lambda: window.ready and window.changes_loaded > 0, 120, "the cards and changes")
    docker = window.overview_data.card("docker")
    if docker is None or not docker.changes:
        raise SystemExit("screenshots: docker's step was not found as a change point: "
                         f"{window.overview.changes_note.text()}")
    out.mkdir(parents=True, exist_ok=True)
    save(window, out / "overview.png")
    drawn = window.plots.trend_drawn if window.plots else 0
    window.card_activated("docker")
    plots = window.ensure_plots()
    until(lambda: plots.trend_drawn > drawn and plots.plots["trend"].marked is not None
          and plots.plots["trend"].marked[0] == docker.changes[0].result_id, 60,
          "the trend with docker's change marked")
    save(window, out / "trend-change.png")
    page = window.fleet_page
    if not page.rows or not window.show_fleet(page.rows[0].id):
        raise SystemExit("screenshots: the fleet result is not on the Fleet page")
    until(lambda: bool(page.drawn) and page.plot is not None and page.plot.isVisible()
          and page.plot.height() > 150,
          60, "the fleet's plot, laid out")
    save(window, out / "fleet.png")
    window.close()


def save(window: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp.png")
    if not window.grab().save(str(tmp)):
        raise SystemExit(f"screenshots: cannot write {tmp}")
    tmp.replace(path)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    ap.add_argument("--keep", type=Path, help="Generate into (and keep) this FORGE_HOME.")
    ap.add_argument("--render", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.render:
        render(a.out)
        return
    from tests.gui.xvfb import start_xvfb

    home = a.keep or Path(tempfile.mkdtemp(prefix="forge-screenshots-"))
    try:
        print(f"{generate(home / 'benchmarks')} results in {home}")
        display = start_xvfb(SCREEN)
        try:
            env = {**os.environ, "DISPLAY": display.name, "QT_QPA_PLATFORM": "xcb",
                   "FORGE_HOME": str(home), "XDG_CONFIG_HOME": str(home / "xdg")}
            proc = subprocess.run([sys.executable, __file__, "--render", "--out",
                                   str(a.out.resolve())], env=env, timeout=300, check=False)
        finally:
            display.stop()
        if proc.returncode:
            raise SystemExit(proc.returncode)
    finally:
        if not a.keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
