#!/usr/bin/env python3
"""How quickly does the `forge` CLI start, and what would typer 0.29 cost it?

typer 0.29 depends on pydantic and imports it on every command; pyproject.toml pins
typer below 0.29 for that. This script measures the pin's reason: two throwaway venvs that
differ only in typer (0.28.0 and 0.29.x, each with the dependencies pip picks for it) run the
same forge checkout, and hyperfine -N times `forge --version`, `forge runtimes --help` and
`forge results list --limit 1` (on an empty store) in each, rounds alternating between the
venvs so drift hits both alike; `python -X importtime` shows what pydantic adds to the
imports. Also: interpreter start alone, and which heavy modules (docker, scipy, Qt) a bare
`forge --version` / `--help` imports (none should be).

Each venv holds typer and what pip installs with it; forge's other dependencies come from
this interpreter's environment through a .pth file placed after the venv's own site-packages
(so the venv's typer, rich and pydantic win). Needs network access to PyPI (or a local
index) for typer and pydantic, and hyperfine.
Prints a Markdown section and, with --write, replaces it in docs/PERFORMANCE.md.
Usage: benchmarks/cli_startup.py [--rounds 20] [--runs 3] [--new 0.29.2] [--write]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from perfdoc import hyperfine, write_section  # benchmarks/perfdoc.py

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
BEGIN, END = "<!-- cli-startup:begin -->", "<!-- cli-startup:end -->"
COMMANDS = (("--version",), ("runtimes", "--help"), ("results", "list", "--limit", "1"))
HEAVY = ("docker", "scipy", "numpy", "PySide6", "pyqtgraph", "podman", "pydantic",
         "pydantic_core", "annotated_types", "typing_inspection")
"""Packages that must not load at start-up, and typer 0.29's pydantic with its own imports."""


def make_venv(where: Path, typer: str) -> Path:
    """A venv with typer==``typer`` (and its own dependencies); forge and its other
    dependencies reachable through a .pth file. Returns its python."""
    subprocess.run([PY, "-m", "venv", str(where)], check=True, timeout=300)
    python = where / "bin" / "python"
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", f"typer=={typer}"],
                         capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    if pip.returncode != 0:
        raise SystemExit(f"cli_startup: pip could not install typer=={typer}:\n{pip.stderr}")
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # .pth lines are appended to sys.path after the venv's site-packages: its typer wins
    Path(site, "zz_forge_checkout.pth").write_text(
        f"{REPO}\n{sysconfig.get_paths()['purelib']}\n")
    return python


def version_of(python: Path, module: str) -> str:
    return subprocess.run([str(python), "-c", f"import importlib.metadata as m; "
                           f"print(m.version({module!r}))"], capture_output=True, text=True,
                          check=True).stdout.strip()


def import_profile(python: Path, args: tuple[str, ...], env: dict[str, str]
                   ) -> tuple[float, dict[str, float]]:
    """(sum of all self times, ms of each heavy package imported: the self times of its
    modules, since pydantic loads submodules lazily, outside its own cumulative line)."""
    trace = subprocess.run([str(python), "-X", "importtime", "-m", "forge_desktop", *args],
                           capture_output=True, text=True, env=env, timeout=120).stderr
    total = 0.0
    heavy: dict[str, float] = {}
    for line in trace.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, _cumulative, name = (f.strip() for f in line[len("import time:"):]
                                      .split("|"))
        if not self_us.isdigit():
            continue  # the header line
        total += int(self_us) / 1000
        top = name.split(".")[0]
        if top in HEAVY:
            heavy[top] = heavy.get(top, 0.0) + int(self_us) / 1000
    return total, heavy


def median_profile(profiles: list[tuple[float, dict[str, float]]]
                   ) -> tuple[float, dict[str, float]]:
    """Median of each figure over repeated -X importtime runs (one run is as noisy as the
    machine); a package counts if any run imported it."""
    names = {n for _total, heavy in profiles for n in heavy}
    return (statistics.median(t for t, _h in profiles),
            {n: statistics.median(h.get(n, 0.0) for _t, h in profiles) for n in names})


def shown(command: tuple[str, ...]) -> str:
    return f"`forge {' '.join(command)}`"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3, help="runs per command per round")
    ap.add_argument("--old", default="0.28.0")
    ap.add_argument("--new", default="0.29.2")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    if shutil.which("hyperfine") is None:
        raise SystemExit("cli_startup: hyperfine is not on PATH")
    tmp = Path(tempfile.mkdtemp(prefix="forge-cli-startup-"))
    try:
        env = {**os.environ, "FORGE_HOME": str(tmp / "home")}
        (tmp / "home").mkdir()
        venvs = {v: make_venv(tmp / f"typer-{v}", v) for v in (a.old, a.new)}
        pydantic = {v: (version_of(p, "pydantic") if subprocess.run(
            [str(p), "-c", "import pydantic"], capture_output=True).returncode == 0 else "none")
            for v, p in venvs.items()}
        times: dict[tuple[str, tuple[str, ...]], list[float]] = {
            (v, c): [] for v in venvs for c in COMMANDS}
        bare: list[float] = []
        for r in range(a.rounds):
            order = list(venvs) if r % 2 == 0 else list(reversed(venvs))
            for c in COMMANDS:
                for v in order:
                    times[v, c] += hyperfine([str(venvs[v]), "-m", "forge_desktop", *c],
                                             a.runs, warmup=1, env=env)
            bare += hyperfine([str(venvs[a.old]), "-c", "pass"], a.runs, warmup=1, env=env)
        profiles = {(v, c): median_profile([import_profile(p, c, env) for _ in range(5)])
                    for v, p in venvs.items() for c in COMMANDS}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    n = a.rounds * a.runs
    rows = []
    for c in COMMANDS:
        old, new = med[a.old, c], med[a.new, c]
        q = {v: statistics.quantiles(times[v, c], n=4) for v in venvs}
        rows.append(f"| {shown(c)} | {old:.1f} ({q[a.old][0]:.0f}–{q[a.old][2]:.0f})"
                    f" | {new:.1f} ({q[a.new][0]:.0f}–{q[a.new][2]:.0f}) | {new - old:+.1f} | "
                    f"{new / old:.2f}x |")
    with_pydantic = [c for c in COMMANDS if "pydantic" in profiles[a.new, c][1]]
    imports = []
    for (v, c), (total, heavy) in profiles.items():
        listed = ", ".join(f"{m} {ms:.0f} ms" for m, ms in sorted(heavy.items())) or "none"
        imports.append(f"| {v} | {shown(c)} | {total:.0f} | {listed} |")
    lines = [
        BEGIN,
        "## CLI start-up, and typer 0.28 against 0.29 (issue 11)",
        "",
        f"`benchmarks/cli_startup.py --rounds {a.rounds} --runs {a.runs}`: two throwaway "
        f"venvs on {Path(PY).name} {sys.version.split()[0]}, one with typer {a.old} "
        f"(pydantic: {pydantic[a.old]}), one with typer {a.new} (pydantic: "
        f"{pydantic[a.new]}), both running this checkout; hyperfine -N, {a.rounds} rounds "
        f"alternating the venvs, {a.runs} runs each after 1 warmup: medians of all {n} runs "
        f"(interquartile range), ms. Empty result store.",
        "",
        f"| Command | typer {a.old} | typer {a.new} | difference | ratio |",
        "|---|---:|---:|---:|---:|",
        *rows,
        f"| `python -c pass` (interpreter alone, for scale) | {statistics.median(bare):.1f} | "
        "| | |",
        "",
        "`python -X importtime`, medians of 5 runs: the sum of every module's own import "
        "time, and of each heavy package's modules (docker, scipy, numpy, Qt, podman must be "
        "absent; pydantic, pydantic_core, annotated_types and typing_inspection are typer "
        "0.29's):",
        "",
        "| typer | command | all imports, ms | heavy packages imported |",
        "|---|---|---:|---|",
        *imports,
        "",
        f"Hence the pin `typer<0.29` in pyproject.toml: typer {a.new} imports pydantic in "
        f"{len(with_pydantic)} of the {len(COMMANDS)} commands above "
        f"({', '.join(shown(c) for c in with_pydantic) or 'none'}), and start-up "
        f"differs by {', '.join(f'{med[a.new, c] - med[a.old, c]:+.0f} ms' for c in COMMANDS)}"
        f" respectively.",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if a.write:
        write_section(BEGIN, END, section)


if __name__ == "__main__":
    main()
