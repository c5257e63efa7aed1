#!/usr/bin/env python3
"""What a canary round costs (issue 13): wall time and CPU-seconds of the rounds the tray runs
in its own process (the canary action through the registry, as the JobRunner calls it), and
the tray's average CPU over an hour at the default period, computed from that round cost and
the idle tray's CPU measured in the same run. Needs the engines (scripts/services.sh start
docker podman) and, for the idle tray, an X server with a tray host (DISPLAY).

CPU-seconds are user + system time of the process running the rounds and of the children it
reaped (runc, crun, conmon...), plus the engine daemons' (dockerd, containerd, the podman API
service) over the same span, read by psutil. Container shims that exit are reaped by init,
not by a daemon, so their few milliseconds are not counted.
Usage: benchmarks/canary_cost.py [--rounds 5] [--idle-seconds 60] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from perfdoc import write_section  # benchmarks/perfdoc.py, beside this script

REPO = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- canary-cost:begin -->", "<!-- canary-cost:end -->"
DAEMONS = ("dockerd", "containerd", "podman")

# The rounds, in one process as the tray runs them (its first round pays the imports).
ROUNDS = r"""
import json, resource, sys, threading, time
import psutil

daemons = [p for p in psutil.process_iter(["name", "cmdline"])
           if p.info["name"] in ("dockerd", "containerd")
           or (p.info["name"] == "podman" and "service" in (p.info["cmdline"] or []))]

def cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    for d in daemons:
        try:
            t = d.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total

from forge_desktop.actions import ACTIONS
out = []
for _ in range(int(sys.argv[1])):
    t0, c0 = time.perf_counter(), cpu()
    doc, _path = ACTIONS["canary"].run({}, lambda *a: None, threading.Event())
    out.append({"wall_s": time.perf_counter() - t0, "cpu_s": cpu() - c0,
                "runtimes": [e["runtime"] for e in doc["runtimes"] if e.get("stats")]})
print(json.dumps(out))
"""


def idle_tray_cpu_percent(seconds: float, env: dict[str, str]) -> float:
    """`forge tray` with canary rounds off, after a 5 s start-up: its CPU over ``seconds``."""
    proc = subprocess.Popen([sys.executable, "-m", "forge_desktop", "tray"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(5)  # start-up is not idle
        p = psutil.Process(proc.pid)
        t0, c0 = time.monotonic(), sum(p.cpu_times()[:2])
        time.sleep(seconds)
        return float(100 * (sum(p.cpu_times()[:2]) - c0) / (time.monotonic() - t0))
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--idle-seconds", type=float, default=60)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    if not os.environ.get("DISPLAY"):
        sys.exit("DISPLAY is not set: start Xvfb and trayer (scripts/services.sh start x)")
    home = tempfile.mkdtemp(prefix="forge-canary-")
    Path(home, "tray.json").write_text(json.dumps({"refresh_s": 2, "notifications": False,
                                                   "canary_period_s": 0}))
    env = {**os.environ, "FORGE_HOME": home}
    try:
        rounds = json.loads(subprocess.run(
            [sys.executable, "-c", ROUNDS, str(a.rounds)], env=env, cwd=REPO, check=True,
            capture_output=True, text=True, timeout=1800).stdout)
        idle = idle_tray_cpu_percent(a.idle_seconds, env)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    first, rest = rounds[0], rounds[1:] or rounds
    wall = statistics.median(r["wall_s"] for r in rest)
    cpu = statistics.median(r["cpu_s"] for r in rest)
    period_s = 3600.0
    hourly = idle + 100 * cpu / period_s
    lines = [BEGIN, "## A canary round, and the monitoring tray over an hour (issue 13)", "",
             f"`benchmarks/canary_cost.py --rounds {a.rounds} --idle-seconds "
             f"{a.idle_seconds:g}`: {a.rounds} canary rounds (5 iterations and 1 warmup on "
             f"each of {', '.join(first['runtimes'])}) in one process, as the tray runs them; "
             "CPU-seconds are the process's and its reaped children's plus the engine "
             "daemons' (dockerd, containerd, the podman service) over the round.", "",
             "| round | wall s | CPU-seconds |", "|---|---:|---:|",
             f"| first (pays the imports, as the tray's first round) | {first['wall_s']:.2f} | "
             f"{first['cpu_s']:.2f} |",
             f"| later, median of {len(rest)} | {wall:.2f} | {cpu:.2f} |", "",
             f"The idle tray (canary rounds off) measured {idle:.2f}% CPU over "
             f"{a.idle_seconds:g} s in the same run. At the default period (1 h) the tray's "
             f"average CPU over an hour is computed, not measured over an hour: idle "
             f"{idle:.2f}% + one round's {cpu:.2f} CPU-seconds / 3600 s = **{hourly:.2f}%** "
             "of one CPU.", END]
    section = "\n".join(lines)
    print(section)
    if a.write:
        write_section(BEGIN, END, section)


if __name__ == "__main__":
    main()
