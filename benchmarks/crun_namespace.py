#!/usr/bin/env python3
"""What crun's cgroup2-namespace mode costs, and what forge's crun figure contains.

On a cgroup-v1-hybrid host crun runs only in a private mount namespace with cgroup2 mounted
on /sys/fs/cgroup (forge_desktop/runtimes/nshelper.py). Side by side, in alternating rounds:

1. forge's own medians: `forge benchmark startup -r runc -r crun` (crun timed by the helper
   around `crun run` alone);
2. hyperfine -N, inside one such namespace, on `crun --cgroup-manager=disabled run` (an
   independent clock for what forge reports);
3. hyperfine -N on the per-run wrapper `unshare -m sh -c 'mount ... && crun ... run'` and on
   the bare wrapper `unshare -m sh -c 'mount ... && true'`: what forge does not time;
4. hyperfine -N on `runc run` with forge's bundle (cgroup limits set);
5. the helper's start (once per run, outside every iteration).

Run as root. Prints a Markdown section and, with --write, replaces it in docs/PERFORMANCE.md.
Usage: benchmarks/crun_namespace.py [--rounds 3] [--runs 30] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from perfdoc import write_section  # benchmarks/perfdoc.py, beside this script

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from forge_desktop.models import RunSpec  # noqa: E402
from forge_desktop.runtimes.nshelper import NamespaceHelper  # noqa: E402
from forge_desktop.runtimes.oci import OciRuntime, rootfs_dir  # noqa: E402

PY = sys.executable
BEGIN, END = "<!-- crun-namespace:begin -->", "<!-- crun-namespace:end -->"
MOUNT = "mount -t cgroup2 none /sys/fs/cgroup"


def forge(*args: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([PY, "-m", "forge_desktop", *args], capture_output=True, text=True,
                         env=env, check=True).stdout
    doc: dict[str, Any] = json.loads(out)
    return doc


def hyperfine(command: str, runs: int, wrap: bool = False) -> float:
    """Median ms of ``command``; with ``wrap``, hyperfine itself runs in the namespace."""
    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        argv = ["hyperfine", "-N", "--runs", str(runs), "--warmup", "3", "--export-json",
                fh.name, "--style", "none", command]
        if wrap:
            argv = ["unshare", "-m", "sh", "-c", f"{MOUNT} && {shlex.join(argv)}"]
        subprocess.run(argv, check=True, capture_output=True)
        data = json.loads(Path(fh.name).read_text())
    return float(statistics.median(data["results"][0]["times"])) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="forge-bench-")
    try:
        measure(a, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def measure(a: argparse.Namespace, home: str) -> None:
    env = {**os.environ, "FORGE_HOME": home}
    os.environ["FORGE_HOME"] = home
    subprocess.run([PY, "-m", "forge_desktop", "image", "prepare", "-r", "runc"], env=env,
                   check=True, capture_output=True)
    spec = RunSpec("forge-bench:busybox")
    bundles = {}
    for name, mode in (("runc", "plain"), ("crun", "cgroup2-namespace")):
        bundles[name] = Path(home) / f"{name}-bundle"
        bundles[name].mkdir()
        # forge's own config for each mode (runc: limits; crun: none, as forge runs it)
        OciRuntime(name)._write_config(bundles[name], rootfs_dir(spec.image).resolve(),
                                       ["true"], "none", spec, mode)  # type: ignore[arg-type]
    crun = f"crun --cgroup-manager=disabled run --bundle {bundles['crun']} forge-hf-crun"
    rows: dict[str, list[float]] = {k: [] for k in (
        "forge_runc", "forge_crun", "hf_crun_in_ns", "hf_wrapped_crun", "hf_wrapper",
        "hf_runc")}
    load = [os.getloadavg()[0]]
    for _ in range(a.rounds):
        doc = forge("benchmark", "startup", "-r", "runc", "-r", "crun", "-n", str(a.runs),
                    "--json", "--no-save", env=env)
        by = {e["runtime"]: e for e in doc["runtimes"]}
        assert by["crun"]["cgroup_limits"] is False, "crun is not in its namespace mode here"
        rows["forge_runc"].append(by["runc"]["stats"]["median_ms"])
        rows["forge_crun"].append(by["crun"]["stats"]["median_ms"])
        rows["hf_crun_in_ns"].append(hyperfine(crun, a.runs, wrap=True))
        rows["hf_wrapped_crun"].append(hyperfine(
            f"unshare -m sh -c '{MOUNT} && {crun}'", a.runs))
        rows["hf_wrapper"].append(hyperfine(f"unshare -m sh -c '{MOUNT} && true'", a.runs))
        rows["hf_runc"].append(hyperfine(
            f"runc run --bundle {bundles['runc']} forge-hf-runc", a.runs))
    load.append(os.getloadavg()[0])
    med = {k: statistics.median(v) for k, v in rows.items()}
    starts = []
    for _ in range(10):
        t0 = time.perf_counter()
        NamespaceHelper(["unshare", "--mount", "--propagation", "private"], "bench", 15).close()
        starts.append((time.perf_counter() - t0) * 1000)

    lines = [
        BEGIN,
        "## crun in its cgroup2 namespace (issue 11, point 8)",
        "",
        f"`benchmarks/crun_namespace.py --rounds {a.rounds} --runs {a.runs}`; {a.rounds} "
        "alternating rounds, medians of the per-round medians (ms). crun runs with "
        "`--cgroup-manager=disabled`, no limits; runc with forge's 64 MiB / 64 pids limits. "
        f"Load average {load[0]:.1f} before, {load[1]:.1f} after, on {os.cpu_count()} CPUs "
        "(figures on a busy machine are several times those of an idle one; compare rows "
        "with each other, not with another run).",
        "",
        "| Measurement | median (ms) |",
        "|---|---:|",
        f"| forge, runc (`runc run`, cgroup limits) | {med['forge_runc']:.1f} |",
        f"| hyperfine -N, `runc run` on forge's bundle | {med['hf_runc']:.1f} |",
        f"| forge, crun (the helper times `crun run` alone) | {med['forge_crun']:.1f} |",
        f"| hyperfine -N in the namespace, `crun --cgroup-manager=disabled run` | "
        f"{med['hf_crun_in_ns']:.1f} |",
        f"| hyperfine -N, `unshare -m sh -c 'mount ... && crun ... run'` per run | "
        f"{med['hf_wrapped_crun']:.1f} |",
        f"| hyperfine -N, the bare wrapper `unshare -m sh -c 'mount ... && true'` | "
        f"{med['hf_wrapper']:.1f} |",
        f"| forge's helper start, once per run (10 starts) | {statistics.median(starts):.1f} |",
        "",
        "Per-round medians: " + "; ".join(
            f"{k} {', '.join(f'{x:.1f}' for x in v)}" for k, v in rows.items()),
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if a.write:
        write_section(BEGIN, END, section)


if __name__ == "__main__":
    main()
