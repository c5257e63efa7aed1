#!/usr/bin/env python3
"""Does forge measure what hyperfine measures? Side by side, in one run, on this machine.

1. `forge benchmark startup -r docker --via cli` against `hyperfine -N` on
   `docker run --rm --network none IMAGE true` (the issue's command) and on forge's own argv
   (the same command plus forge's label and hardening flags).
2. A user-defined runtime whose command is `sleep 0.1` against `hyperfine -N 'sleep 0.1'`:
   the harness's own overhead.
3. `forge --version` / `forge --help`: wall time (hyperfine) and `python -X importtime`, with
   a check that docker, scipy and Qt are not imported.

Rounds alternate forge and hyperfine so drift hits both alike. Prints a Markdown section and,
with --write, replaces it in docs/PERFORMANCE.md. Usage: benchmarks/harness_agreement.py
[--rounds 3] [--runs 10] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from perfdoc import write_section  # benchmarks/perfdoc.py, beside this script

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
BEGIN, END = "<!-- harness-agreement:begin -->", "<!-- harness-agreement:end -->"


def forge(*args: str, env: dict[str, str]) -> dict:
    out = subprocess.run([PY, "-m", "forge_desktop", *args], capture_output=True, text=True,
                         env=env, check=True).stdout
    return json.loads(out)


def hyperfine(cmd: list[str] | str, runs: int, warmup: int = 2) -> float:
    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        command = cmd if isinstance(cmd, str) else subprocess.list2cmdline(cmd)
        subprocess.run(["hyperfine", "-N", "--runs", str(runs), "--warmup", str(warmup),
                        "--export-json", fh.name, "--style", "none", command],
                       check=True, capture_output=True)
        data = json.loads(Path(fh.name).read_text())
    return statistics.median(data["results"][0]["times"]) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="forge-bench-")
    env = {**os.environ, "FORGE_HOME": home}
    Path(home, "config.toml").write_text('[runtimes.sleep]\nrun = ["sleep", "0.1"]\n')

    rows: dict[str, list[float]] = {k: [] for k in (
        "forge_cli", "hf_plain", "hf_forge_argv", "forge_sleep", "hf_sleep")}
    image = None
    for _ in range(a.rounds):
        doc = forge("benchmark", "startup", "-r", "docker", "--via", "cli", "-n", str(a.runs),
                    "--json", "--no-save", env=env)
        image = doc["parameters"]["image"]
        rows["forge_cli"].append(doc["runtimes"][0]["stats"]["median_ms"])
        rows["hf_plain"].append(hyperfine(["docker", "run", "--rm", "--network", "none", image,
                                           "true"], a.runs))
        rows["hf_forge_argv"].append(hyperfine(
            ["docker", "run", "--rm", "--label", "io.forge.benchmark=hyperfine",
             "--memory", str(64 * 1024 * 1024), "--pids-limit", "64", "--cap-drop", "ALL",
             "--security-opt", "no-new-privileges", "--read-only", "--network", "none", image,
             "true"], a.runs))
        doc = forge("benchmark", "startup", "-r", "sleep", "-n", str(a.runs), "--json",
                    "--no-save", env=env)
        rows["forge_sleep"].append(doc["runtimes"][0]["stats"]["median_ms"])
        rows["hf_sleep"].append(hyperfine("sleep 0.1", a.runs))
    med = {k: statistics.median(v) for k, v in rows.items()}

    version_ms = hyperfine([PY, "-m", "forge_desktop", "--version"], 20, 3)
    help_ms = hyperfine([PY, "-m", "forge_desktop", "--help"], 20, 3)
    bare_ms = hyperfine([PY, "-c", "pass"], 20, 3)
    heavy = {}
    for args in (["--version"], ["--help"], ["benchmark", "startup", "--help"]):
        trace = subprocess.run([PY, "-X", "importtime", "-m", "forge_desktop", *args],
                               capture_output=True, text=True, env=env).stderr
        mods = [ln.split("|")[-1].strip() for ln in trace.splitlines() if "|" in ln]
        cumulative = sum(int(ln.split("|")[0].split(":")[1]) for ln in trace.splitlines()
                         if ln.startswith("import time:") and "|" in ln
                         and ln.split("|")[0].split(":")[1].strip().isdigit())
        heavy[" ".join(args)] = (sorted({m.split(".")[0] for m in mods
                                         if m.split(".")[0] in ("docker", "scipy", "numpy",
                                                                "PySide6", "pyqtgraph",
                                                                "podman")}),
                                 cumulative / 1000)

    lines = [
        BEGIN,
        "## Harness agreement with hyperfine (issue 2)",
        "",
        f"`benchmarks/harness_agreement.py --rounds {a.rounds} --runs {a.runs}`, image "
        f"`{image}`; {a.rounds} alternating rounds, medians of the per-round medians (ms).",
        "",
        "| Measurement | forge | hyperfine -N | forge / hyperfine |",
        "|---|---:|---:|---:|",
        f"| `docker run --rm --network none IMAGE true` (forge `--via cli`) | "
        f"{med['forge_cli']:.1f} | {med['hf_plain']:.1f} | "
        f"{med['forge_cli'] / med['hf_plain']:.3f} |",
        f"| same, hyperfine on forge's exact argv (label + limits + hardening) | "
        f"{med['forge_cli']:.1f} | {med['hf_forge_argv']:.1f} | "
        f"{med['forge_cli'] / med['hf_forge_argv']:.3f} |",
        f"| user-defined runtime `sleep 0.1` | {med['forge_sleep']:.2f} | "
        f"{med['hf_sleep']:.2f} | diff {med['forge_sleep'] - med['hf_sleep']:+.2f} ms |",
        "",
        "Per-round medians: " + "; ".join(
            f"{k} {', '.join(f'{x:.1f}' for x in v)}" for k, v in rows.items()),
        "",
        "### CLI start-up",
        "",
        f"hyperfine, 20 runs: `python -c pass` {bare_ms:.1f} ms; `forge --version` "
        f"{version_ms:.1f} ms; `forge --help` {help_ms:.1f} ms.",
        "",
        "| Command | heavy modules imported | total import time (ms, sum of -X importtime "
        "self times) |",
        "|---|---|---:|",
        *[f"| `forge {k}` | {', '.join(v[0]) or 'none'} | {v[1]:.1f} |"
          for k, v in heavy.items()],
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if a.write:
        write_section(BEGIN, END, section)


if __name__ == "__main__":
    main()
