#!/usr/bin/env python3
"""Does forge measure what hyperfine measures, and are both right? Three clocks, one run.

1. `forge benchmark startup -r docker --via cli`, `hyperfine -N`, benchmarks/spawn_clock.c
   (CLOCK_MONOTONIC read in C just before fork and just after wait4) and forge's former
   Popen-based clock launch forge's exact `docker run` argv. Each round runs the four in a
   new shuffled order, so drift hits all four alike.
2. The third clock is the kernel's: every launcher runs under `perf record` of the
   scheduler's fork/exec/exit tracepoints, which stamp each `docker` process's fork and the
   exit of its last thread without stopping it (strace stops the process at each event, and
   under load its own scheduling delays land in the spawn it is tracing). Each launcher's
   reading is paired with the kernel's lifetime of the same process: their difference is the
   launcher's own overhead, free of drift, since both time one process.
3. A user-defined runtime whose command is `sleep 0.1` against `hyperfine -N 'sleep 0.1'`.

Prints a Markdown section and, with --write, replaces it in docs/PERFORMANCE.md.
Usage: benchmarks/harness_agreement.py [--rounds 15] [--runs 10] [--write]
Needs docker, hyperfine, perf (linux-perf) and a C compiler (cc); run as root (tracepoints).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from perfdoc import hyperfine, write_section  # benchmarks/perfdoc.py

from forge_desktop.models import RunSpec
from forge_desktop.runtimes.base import new_run_context
from forge_desktop.runtimes.docker import DockerRuntime

PY = sys.executable
BEGIN, END = "<!-- harness-agreement:begin -->", "<!-- harness-agreement:end -->"
CLOCKS = ("forge", "hyperfine", "spawn_clock", "popen")
POPEN_CLOCK = """
import subprocess, sys, time
runs, argv = int(sys.argv[1]), sys.argv[2:]
for i in range(runs + 1):  # the first is the warmup
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    proc.communicate(timeout=300)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{argv[0]} exited with status {proc.returncode}")
    if i:
        print(elapsed * 1000)
"""
"""forge's CLI clock until issue 11 (timed_cmd on subprocess.Popen), kept here so the fix's
effect is measured in every run rather than quoted."""
Measure = Callable[[list[str], int], list[float]]


def run(argv: Sequence[str], env: dict[str, str] | None = None) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=900).stdout


def forge_doc(runtime: str, runs: int, env: dict[str, str],
              wrap: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON result of one forge run, warmup 1."""
    doc: dict[str, Any] = json.loads(run(
        [*wrap, PY, "-m", "forge_desktop", "benchmark", "startup", "-r", runtime, "--via",
         "cli", "-n", str(runs), "--warmup", "1", "--network", "none", "--json", "--no-save"],
        env))
    return doc


def forge_startup(runtime: str, runs: int, env: dict[str, str],
                  wrap: Sequence[str] = ()) -> list[float]:
    """Per-iteration samples (ms) of one forge run."""
    doc = forge_doc(runtime, runs, env, wrap)
    return [float(s["total_ms"]) for s in doc["runtimes"][0]["samples"]]


def spawn_clock(binary: Path, argv: list[str], runs: int,
                wrap: Sequence[str] = ()) -> list[float]:
    """Every run's wall time (ms) by the third clock, warmup 1."""
    return [int(x) / 1e6 for x in run([*wrap, str(binary), str(runs), "1", *argv]).split()]


PERF_EVENTS = "sched:sched_process_fork,sched:sched_process_exec,sched:sched_process_exit"
_EVENT = re.compile(r"\s*(\d+)/(\d+)\s+(\d+\.\d+): sched:sched_process_(\w+): (.*)")


def perf_wrap(data: Path) -> list[str]:
    """Run a command under `perf record` of the scheduler's fork, exec and exit tracepoints,
    inherited by its children: the kernel stamps each event, nothing stops the process."""
    return ["perf", "record", "-q", "-e", PERF_EVENTS, "-o", str(data), "--"]


def kernel_lifetimes(data: Path) -> list[float]:
    """Milliseconds from the fork that created each `docker` process to the exit of its last
    thread, as the kernel's tracepoints stamped them, in order of exec."""
    script = subprocess.run(["perf", "script", "-i", str(data), "-F", "pid,tid,time,event,trace"],
                            capture_output=True, text=True, check=True, timeout=300).stdout
    forks: dict[int, float] = {}
    execs: dict[int, float] = {}
    exits: dict[int, float] = {}
    for line in script.splitlines():
        m = _EVENT.match(line)
        if not m:
            continue
        tgid, stamp, event, fields = int(m[1]), float(m[3]), m[4], m[5]
        if event == "fork":
            forks[int(fields.rsplit("child_pid=", 1)[1].split()[0])] = stamp
        elif event == "exec" and fields.split()[0].endswith("/docker"):
            execs[tgid] = stamp
        elif event == "exit" and "group_dead=true" in fields:
            exits[tgid] = stamp
    return [(exits[p] - forks[p]) * 1000 for p in sorted(execs, key=execs.__getitem__)
            if p in forks and p in exits]


def quartiles(xs: Sequence[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(xs, n=4)
    return q1, q2, q3


def round_bootstrap(a: list[list[float]], b: list[list[float]], resamples: int = 4000,
                    seed: int = 0) -> tuple[float, float]:
    """95% interval of median(a) / median(b), resampling whole rounds (the same rounds for
    both, so each keeps its time-matched partner): runs within a round share that round's
    machine load, so resampling runs one by one would understate the spread."""
    rng = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        picks = [rng.randrange(len(a)) for _ in a]
        ratios.append(statistics.median(x for i in picks for x in a[i])
                      / statistics.median(x for i in picks for x in b[i]))
    q = statistics.quantiles(ratios, n=40)
    return q[0], q[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--runs", type=int, default=10, help="runs per clock per round")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    for tool in ("docker", "hyperfine", "perf", "cc"):
        if shutil.which(tool) is None:
            raise SystemExit(f"harness_agreement: {tool} is not on PATH")
    tmp = Path(tempfile.mkdtemp(prefix="forge-bench-"))
    env = {**os.environ, "FORGE_HOME": str(tmp)}
    (tmp / "config.toml").write_text('[runtimes.sleep]\nrun = ["sleep", "0.1"]\n')
    binary = tmp / "spawn_clock"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(Path(__file__).with_name(
        "spawn_clock.c"))], check=True)
    # a first forge run also prepares the image (forge's default) the others then use
    image = str(forge_doc("docker", 1, env)["parameters"]["image"])
    # forge's own argv (labels, limits, hardening), so every clock times one command
    argv = DockerRuntime().cli_argv(RunSpec(image=image, via="cli"), new_run_context())
    measures: dict[str, Callable[[Sequence[str]], list[float]]] = {
        "forge": lambda w: forge_startup("docker", a.runs, env, w),
        "hyperfine": lambda w: hyperfine(argv, a.runs, wrap=w),
        "spawn_clock": lambda w: spawn_clock(binary, argv, a.runs, w),
        "popen": lambda w: [float(x) for x in run([*w, PY, "-c", POPEN_CLOCK, str(a.runs),
                                                   *argv]).split()],
    }
    rng = random.Random(a.seed)
    runs: dict[str, list[float]] = {k: [] for k in CLOCKS}
    kernel: dict[str, list[float]] = {k: [] for k in CLOCKS}
    rounds: dict[str, list[list[float]]] = {k: [] for k in CLOCKS}
    kernel_rounds: list[list[float]] = []
    sleep: dict[str, list[float]] = {"forge": [], "hyperfine": []}
    load0 = os.getloadavg()[0]
    for _ in range(a.rounds):
        order = list(CLOCKS)
        rng.shuffle(order)
        for clock in order:
            data = tmp / f"{clock}.perf"
            xs = measures[clock](perf_wrap(data))
            ks = kernel_lifetimes(data)[-len(xs):]  # the warmup run came first
            if len(ks) != len(xs):
                raise SystemExit(f"harness_agreement: {clock} gave {len(xs)} readings but the "
                                 f"kernel saw {len(ks)} docker processes")
            runs[clock] += xs
            kernel[clock] += ks
            rounds[clock].append(xs)
        kernel_rounds.append([x for k in CLOCKS for x in kernel[k][-a.runs:]])
        sleep["forge"] += forge_startup("sleep", 3, env)
        sleep["hyperfine"] += hyperfine("sleep 0.1", 3)
    load1 = os.getloadavg()[0]
    bare: list[float] = []
    traced: list[float] = []
    for _ in range(5):  # alternated, as the load moves
        bare += spawn_clock(binary, ["true"], 40)
        traced += spawn_clock(binary, ["true"], 40, perf_wrap(tmp / "true.perf"))
    true_ms, true_perf_ms = statistics.median(bare), statistics.median(traced)
    shutil.rmtree(tmp)

    med = {k: statistics.median(v) for k, v in runs.items()}
    kmed = {k: statistics.median(v) for k, v in kernel.items()}
    offset = {k: statistics.median(x - y for x, y in zip(runs[k], kernel[k], strict=True))
              for k in CLOCKS}
    truth = statistics.median([x for v in kernel.values() for x in v])
    label = {"forge": "forge `--via cli`", "hyperfine": "hyperfine -N",
             "spawn_clock": "`spawn_clock.c` (C: fork, exec, wait4)",
             "popen": "forge's clock before the fix (`subprocess.Popen`)"}
    table = []
    for k in CLOCKS:
        q1, _q2, q3 = quartiles(runs[k])
        off = quartiles([x - y for x, y in zip(runs[k], kernel[k], strict=True)])
        table.append(f"| {label[k]} | {med[k]:.1f} | {q1:.0f}–{q3:.0f} | {kmed[k]:.1f} | "
                     f"{med[k] / kmed[k]:.3f} | {off[1]:+.2f} ({off[0]:+.2f} to "
                     f"{off[2]:+.2f}) | {med[k] / truth:.3f} |")
    ratio = med["forge"] / med["hyperfine"]
    ci_fh = round_bootstrap(rounds["forge"], rounds["hyperfine"])
    ci_fk = round_bootstrap(rounds["forge"], kernel_rounds)
    lo, hi = (f(statistics.median(x) for x in rounds["forge"]) for f in (min, max))
    lines = [
        BEGIN,
        "## Harness agreement: forge, hyperfine and the kernel's clock (issues 2, 11)",
        "",
        f"`benchmarks/harness_agreement.py --rounds {a.rounds} --runs {a.runs}`: forge's "
        f"exact argv (`{' '.join(argv[:2])} ... {' '.join(argv[-2:])}`, with its labels, "
        f"limits and hardening), {a.rounds} rounds; each round runs the four launchers in a "
        f"new shuffled order, {a.runs} runs each after 1 warmup, every one under "
        f"`perf record -e {PERF_EVENTS}`. The third clock is the kernel's: for every run, the "
        f"time from the fork that created the `docker` process to the exit of its last thread, "
        f"stamped by the scheduler's tracepoints (nothing stops the process, unlike strace). "
        f"Medians over all {a.rounds * a.runs} runs of each launcher (ms). 1-minute load "
        f"average {load0:.1f} before, {load1:.1f} after (2 cores, shared with other work).",
        "",
        "| Launcher | its median | its IQR | kernel, same runs | its / kernel, same runs | "
        "per run, its − kernel: median (IQR) | its / third clock (all runs) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *table,
        "",
        f"Side by side, medians over the whole interleaved run: forge `--via cli` "
        f"{med['forge']:.1f} ms, hyperfine -N {med['hyperfine']:.1f} ms, the third clock (the "
        f"kernel, every run of the four launchers) {truth:.1f} ms. forge / hyperfine "
        f"{ratio:.3f} (95% interval, resampling rounds: {ci_fh[0]:.3f}–{ci_fh[1]:.3f}); "
        f"forge / third clock {med['forge'] / truth:.3f} ({ci_fk[0]:.3f}–{ci_fk[1]:.3f}). "
        f"Spread: the IQR columns, and one round's median of {a.runs} runs ranging from "
        f"{100 * (lo / med['forge'] - 1):+.0f}% to {100 * (hi / med['forge'] - 1):+.0f}% of the "
        f"whole run's median for forge (per-round medians below). The tracepoints' own cost, "
        f"on `true` timed by `spawn_clock`: {true_ms:.2f} ms a run without perf, "
        f"{true_perf_ms:.2f} ms with (perf's reader shares the 2 cores); every launcher pays "
        f"it alike.",
        "",
        f"**The gap, explained.** Per run, forge's reading exceeds the kernel's lifetime of the "
        f"`docker` process it started by {offset['forge']:+.2f} ms (median; hyperfine "
        f"{offset['hyperfine']:+.2f} ms, the C launcher {offset['spawn_clock']:+.2f} ms): the "
        f"fork and PATH search before the process exists and the wake-up after it exits. So "
        f"forge's clock is within {100 * abs(med['forge'] / kmed['forge'] - 1):.1f}% of the "
        f"kernel's on its own runs, and so is hyperfine's "
        f"({100 * abs(med['hyperfine'] / kmed['hyperfine'] - 1):.1f}%): "
        + ("neither clock is off by 15 ms, and neither drops or adds part of the process. "
           if max(abs(offset["forge"]), abs(offset["hyperfine"])) < 15 else
           "**a clock is off by 15 ms or more in this run: investigate before trusting the "
           "rest of this paragraph.** ") +
        "The 6% (0.935, 0.94) was "
        "the `docker` processes themselves taking different times in forge's batches and in "
        "hyperfine's, which the earlier script could not tell from a clock error: it ran 3 "
        "rounds of 10, forge always first, and compared medians of three per-round medians "
        "while one round's median moves by the spread above; its run before those gave the "
        "other sign (1.03), and this run's interval for forge / hyperfine is the width shown. "
        "What the kernel clock did find in forge: its former clock, `subprocess.Popen` "
        f"(last row), carries {offset['popen'] - offset['hyperfine']:+.2f} ms more than "
        "hyperfine per reading of the same kind of process, the work Popen does around the "
        "child. Negligible for a `docker run`, it is "
        f"{10 * (offset['popen'] - offset['hyperfine']):.0f}% of a 10 ms crun run, so forge's "
        "CLI clock (`timed_cmd`: `--via cli`, runc, crun and config.toml runtimes) now spawns "
        "with posix_spawn and waits on a pidfd: "
        f"{offset['forge'] - offset['hyperfine']:+.2f} ms against hyperfine now. The script "
        "was fixed too: "
        "more rounds, shuffled order, medians over every run, an interval that resamples "
        "rounds, and a kernel clock paired with each run, so a launcher's error and the "
        "machine's drift are measured apart.",
        "",
        f"User-defined runtime `sleep 0.1` (the harness's own overhead on a command of known "
        f"length, {len(sleep['forge'])} runs each): forge "
        f"{statistics.median(sleep['forge']):.2f} ms, hyperfine -N "
        f"{statistics.median(sleep['hyperfine']):.2f} ms, difference "
        f"{statistics.median(sleep['forge']) - statistics.median(sleep['hyperfine']):+.2f} ms.",
        "",
        "Per-round medians (ms): " + "; ".join(
            f"{k} {', '.join(f'{statistics.median(x):.0f}' for x in v)}"
            for k, v in rounds.items()),
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if a.write:
        write_section(BEGIN, END, section)


if __name__ == "__main__":
    main()
