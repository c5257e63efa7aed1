#!/usr/bin/env python3
"""Wall time of `forge benchmark compare` against what it measured (issue 3).

The compare result accounts for its own time: the summed container lifecycles of the startup
phase (warmups included), the memory phase and the disk phase. Their ratio to the wall time
shows how much the harness itself costs (polling, set-up, statistics). Target: at most 1.3x.
Usage: benchmarks/compare_overhead.py [--runs 3] [-n 10] [--write]
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

from perfdoc import write_section  # benchmarks/perfdoc.py, beside this script

REPO = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- compare-overhead:begin -->", "<!-- compare-overhead:end -->"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    env = {**os.environ, "FORGE_HOME": tempfile.mkdtemp(prefix="forge-bench-")}
    rows = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "forge_desktop", "benchmark", "compare",
                              "-n", str(a.n), "--json", "--no-save"], capture_output=True,
                             text=True, env=env, check=True).stdout
        process_s = time.perf_counter() - t0
        doc = json.loads(out)
        rows.append({**doc["timing"], "process_s": round(process_s, 3),
                     "runtimes": [e["runtime"] for e in doc["runtimes"]]})
    ratios = [r["overhead_ratio"] for r in rows]
    lines = [BEGIN, "## Compare: wall time against what it measured (issue 3)", "",
             f"`benchmarks/compare_overhead.py --runs {a.runs} -n {a.n}` on "
             f"{', '.join(rows[0]['runtimes'])}. Measured = container lifecycles of the "
             "startup phase (warmups included) + memory phase + disk phase; wall = the "
             "compare call from selection to result (image preparation included).", "",
             "| run | wall s | lifecycles s | memory s | disk s | set-up s | wall / measured |"
             " process s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for i, r in enumerate(rows, 1):
        lines.append(f"| {i} | {r['wall_s']:.2f} | {r['startup_lifecycles_s']:.2f} | "
                     f"{r['memory_phase_s']:.2f} | {r['disk_phase_s']:.2f} | "
                     f"{r['setup_s']:.2f} | {r['overhead_ratio']:.3f} | {r['process_s']:.2f} |")
    lines += ["", f"Median wall / measured: **{statistics.median(ratios):.3f}x** (target "
              "<= 1.3x). `process s` adds interpreter start, imports and JSON output.", END]
    section = "\n".join(lines)
    print(section)
    if a.write:
        write_section(BEGIN, END, section)


if __name__ == "__main__":
    main()
