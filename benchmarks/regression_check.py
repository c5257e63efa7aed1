"""Size `forge results check` on real sessions: its false alarms on identical sessions and its
power against a real 30% slowdown; writes the tables of docs/BENCHMARKING.md's "Regression
checks" section.

    python benchmarks/regression_check.py [--sessions 10] [--save FILE]  # measure, then judge
    python benchmarks/regression_check.py --samples FILE                 # judge saved sessions

Measuring runs, in a temporary FORGE_HOME, ``--sessions`` back-to-back sessions of
``forge benchmark startup -r runc -r docker -n 20`` (the identical sessions), then as many
pairs of a command runtime ``sleep X`` and ``sleep 1.3X`` (``-n 5``), interleaved so that both
levels see the same load. Judging applies the rule (results/history.py: ``startup_row`` and
``decide``) to every consecutive and every ordered pair of identical sessions, to pairs
resampled from them, and, for the power, to trials that draw H earlier sessions at X, pool K
of them as the baseline and resample a session at 1.3X.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from perfdoc import write_section  # benchmarks/perfdoc.py, beside this script

from forge_desktop.results.history import decide, startup_row

DOC = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKING.md"
BEGIN, END = "<!-- regression_check.py: begin -->", "<!-- regression_check.py: end -->"
Sessions = list[dict[str, list[float]]]


def _session(home: Path, args: list[str]) -> dict[str, list[float]]:
    proc = subprocess.run([sys.executable, "-m", "forge_desktop", "benchmark", "startup", *args,
                           "--json"], capture_output=True, text=True, timeout=900, check=True,
                          env={**os.environ, "FORGE_HOME": str(home)})
    return {e["runtime"]: [s["total_ms"] for s in e["samples"]]
            for e in json.loads(proc.stdout)["runtimes"]}


def measure(sessions: int, sleep: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="forge-check-") as tmp:
        home = Path(tmp)
        same = [_session(home, ["-r", "runc", "-r", "docker", "-n", "20"])
                for _ in range(sessions)]
        levels: dict[str, Sessions] = {"base": [], "slow": []}
        for _ in range(sessions):
            for key, seconds in (("base", sleep), ("slow", round(1.3 * sleep, 3))):
                (home / "config.toml").write_text(
                    f'[runtimes.sleeper]\nrun = ["sleep", "{seconds}"]\n')
                levels[key].append(_session(home, ["-r", "sleeper", "-n", "5",
                                                   "--warmup", "0"]))
    return {"identical": same, "sleep_s": sleep, "base": levels["base"], "slow": levels["slow"]}


def _flagged(pairs: list[tuple[str, list[float], list[float], list[float], int]]) -> tuple[
        bool, float]:
    rows = decide([startup_row(name, cur, base, history=hist, baseline_sessions=k)
                   for name, cur, base, hist, k in pairs], 10.0)
    return any(r.status == "regression" for r in rows), min(r.p_adjusted or 1.0 for r in rows)


def judge(data: dict[str, Any], trials: int, seed: int = 11) -> str:
    rng = np.random.default_rng(seed)
    same: Sessions = data["identical"]
    names = sorted(same[0])

    def med(xs: list[float]) -> float:
        return float(np.median(xs))

    def resample(xs: list[float], n: int | None = None) -> list[float]:
        return [float(x) for x in rng.choice(xs, n or len(xs))]

    def count(cases: list[tuple[bool, float]]) -> str:
        return (f"{sum(f for f, _ in cases)} of {len(cases)} (smallest adjusted p "
                f"{min(p for _, p in cases):.2g})")

    consecutive = [_flagged([(n, same[j][n], same[j - 1][n], [], 1) for n in names])
                   for j in range(1, len(same))]
    ordered = [_flagged([(n, same[j][n], same[i][n], [], 1) for n in names])
               for i, j in itertools.permutations(range(len(same)), 2)]
    resampled = [_flagged([(n, resample(same[j][n]), resample(same[j - 1][n]), [], 1)
                           for n in names])
                 for j in range(1, len(same)) for _ in range(50)]
    measured = [_flagged([(n, same[j][n], same[j - 1][n],
                           [med(same[k][n]) for k in range(j - 1, -1, -1)][:10], 1)
                          for n in names]) for j in range(3, len(same))]
    spread = ", ".join(f"{n} {np.std(np.log([med(s[n]) for s in same]), ddof=1):.2f}"
                       for n in names)
    lines = [BEGIN, "",
             f"False alarms, {len(same)} identical sessions of {' + '.join(names)} "
             f"(`-n 20`; sd of the log medians: {spread}):", "",
             "| pairs of identical sessions | called a regression |", "|---|---|",
             f"| consecutive, `--last 1`, no history (drift assumed) | {count(consecutive)} |",
             f"| every ordered pair | {count(ordered)} |",
             f"| consecutive, both sessions resampled (x50) | {count(resampled)} |",
             f"| each against the previous, drift measured over the earlier ones "
             f"| {count(measured)} |", ""]
    sleep = data["sleep_s"]
    base: list[list[float]] = [s["sleeper"] for s in data["base"]]
    slow: list[list[float]] = [s["sleeper"] for s in data["slow"]]
    from scipy import stats as sps

    sigma = float(np.std(np.log([med(s) for s in base]), ddof=1))
    excess = float(np.log(np.median([med(s) for s in slow]) / np.median([med(s) for s in base])
                          ) - np.log(1.1))
    lines += [f"Power, `sleep {sleep:g}` -> `sleep {1.3 * sleep:g}` ({len(base)} sessions at "
              f"each level, `-n {len(base[0])}`; sd of the log medians {sigma:.3f}, log ratio "
              f"beyond the floor {excess:.3f}). *Resampled*: {trials} trials, each session "
              "resampled too (pessimistic: it adds sampling noise to every median again). "
              "*Model*: the chance of a miss when sessions drift as measured, a noncentral t "
              "with H - 1 degrees of freedom and noncentrality excess / (sd x sqrt(1 + 1/K)).",
              "", "| earlier sessions H | baseline pooled K | 30% slower called (resampled) | "
              "miss (model) | identical called (resampled) |", "|---|---|---|---|---|"]
    for h, k in ((3, 3), (4, 4), (5, 1), (5, 5), (6, 5), (9, 9)):
        if h >= len(base):
            continue
        crit = float(sps.t.isf(0.0005, h - 1))
        miss = float(sps.nct.cdf(crit, h - 1, excess / (sigma * np.sqrt(1 + 1 / k))))
        hits, alarms = [], []
        for _ in range(trials):
            pick = rng.choice(len(base), h + 1, replace=False)
            hist = [resample(base[i]) for i in pick[1:]]
            pooled = [x for s in hist[:k] for x in s]
            medians = [med(s) for s in hist]
            hits.append(_flagged([("sleeper", resample(slow[rng.integers(len(slow))]), pooled,
                                   medians, k)]))
            alarms.append(_flagged([("sleeper", resample(base[pick[0]]), pooled, medians, k)]))
        lines.append(f"| {h} | {k} | {sum(f for f, _ in hits)} of {trials} (largest adjusted "
                     f"p {max(p for _, p in hits):.2g}) | "
                     f"{'< 1e-9' if miss < 1e-9 else f'{miss:.1g}'} | "
                     f"{sum(f for f, _ in alarms)} of {trials} |")
    return "\n".join([*lines, "", END])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--samples", type=Path, help="judge these saved sessions")
    parser.add_argument("--save", type=Path, help="save the measured sessions here")
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--no-doc", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()
    if args.samples:
        data = json.loads(args.samples.read_text())
    else:
        data = measure(args.sessions, args.sleep)
        if args.save:
            args.save.write_text(json.dumps(data))
    section = judge(data, args.trials)
    print(section)
    if not args.no_doc:
        write_section(BEGIN, END, section, DOC)


if __name__ == "__main__":
    main()
