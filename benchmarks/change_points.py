"""Size `forge results changes` on synthetic series: its false-alarm rate on flat series and its
power against known steps, beside the trend's rolling detector; writes the table of
docs/BENCHMARKING.md's "Change points" section.

    python benchmarks/change_points.py [--series 1000] [--seed 1] [--no-doc]

Each series is 24 results of 5 samples. A result's level is the series' level times a
log-normal session drift (sd ``drift``); its samples scatter around that level (log-normal,
sd ``noise``); in the "bursts" model one result in 20 is also 1.5x slower (a burst of load
during that session). The detector is the one the command runs (results/changes.py:
``detect`` over ``Series``), one series at a time (Benjamini-Hochberg over m = 1: the
per-series rate; a history of m series only makes each call harder).
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

from perfdoc import write_section  # benchmarks/perfdoc.py, beside this script

from forge_desktop.results import changes
from forge_desktop.results.history import change_points
from forge_desktop.results.index import ResultSummary

DOC = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKING.md"
BEGIN, END = "<!-- change_points.py: begin -->", "<!-- change_points.py: end -->"
RESULTS, SAMPLES, STEP_AT = 24, 5, 12
MODELS = {  # name: (session drift, sample noise, burst share)
    "quiet (a `sleep`, 1% drift, 3% runs)": (0.01, 0.03, 0.0),
    "command runtime on this VM (3%, 5%)": (0.03, 0.05, 0.0),
    "drifting sessions (10%, 1%)": (0.10, 0.01, 0.0),
    "bursts (3%, 5%, 1 in 20 sessions 1.5x)": (0.03, 0.05, 0.05),
    "docker on this VM (27%, 15%)": (0.27, 0.15, 0.0),
}


def _summary(i: int) -> ResultSummary:
    s = object.__new__(ResultSummary)
    s.__dict__.update(id=f"r{i:03d}", created_at=f"2026-11-30T{i // 60:02d}:{i % 60:02d}:00Z",
                      created_ts=1.8e9 + 60 * i, machine="synthetic")
    return s


def series(rng: random.Random, levels: list[float], drift: float, noise: float,
           bursts: float) -> changes.Series:
    points = []
    for i, level in enumerate(levels):
        session = level * math.exp(rng.gauss(0, drift)) * (1.5 if rng.random() < bursts else 1)
        samples = sorted(session * math.exp(rng.gauss(0, noise)) for _ in range(SAMPLES))
        points.append(changes.Point(_summary(i), samples[SAMPLES // 2], tuple(samples)))
    return changes.Series("synthetic", "x", "startup", "-", points)


def run(n: int, seed: int) -> str:
    rng = random.Random(seed)
    lines = [BEGIN, "",
             f"{n} flat series per model ({RESULTS} results of {SAMPLES} runs each), and "
             f"{n // 5} with a step after the {STEP_AT}th result; *rolling*: the trend's "
             "detector (`forge results trend`: a point beyond 3 MADs and 10% of the median "
             "of the 5 before it).", "",
             "| model | flat: series with a change | flat: rolling detector | +30% step found "
             "(at the 13th) | +60% step found (at the 13th) | ms per series |",
             "|---|---|---|---|---|---|"]
    for name, (drift, noise, bursts) in MODELS.items():
        started = time.perf_counter()
        flat = rolling = 0
        for _ in range(n):
            one = series(rng, [50.0] * RESULTS, drift, noise, bursts)
            flat += bool(changes.detect([one]))
            rolling += bool(change_points([p.value for p in one.points]))
        per = 1000 * (time.perf_counter() - started) / n
        cells = [name, f"{flat} of {n}", f"{rolling} of {n}"]
        for step in (1.3, 1.6):
            found = exact = 0
            for _ in range(n // 5):
                one = series(rng, [50.0] * STEP_AT + [50.0 * step] * (RESULTS - STEP_AT),
                             drift, noise, bursts)
                got = changes.detect([one])
                found += bool(got)
                exact += [c.result_id for c in got] == [f"r{STEP_AT:03d}"]
            cells.append(f"{found} of {n // 5} ({exact})")
        cells.append(f"{per:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    return "\n".join([*lines, "", END])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-doc", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()
    section = run(args.series, args.seed)
    print(section)
    if not args.no_doc:
        write_section(BEGIN, END, section, DOC)


if __name__ == "__main__":
    main()
