#!/usr/bin/env python3
"""The engine facts forge relies on, measured on this machine: versions, cgroup layout, limits,
the start-up floor of each runtime by hyperfine -N, and the resident memory of the daemons.

Writes its section of docs/ENGINES.md (the prose around it is written by hand). Needs the
engines running (`scripts/services.sh start docker podman`) and `forge image prepare` done.
Usage: benchmarks/engine_facts.py [--runs 20] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from perfdoc import write_section  # benchmarks/perfdoc.py, beside this script

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "ENGINES.md"
BEGIN, END = "<!-- engine-facts:begin -->", "<!-- engine-facts:end -->"
IMAGE = "forge-bench:busybox"
TIMEOUT_S = 120


def first_line(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    out = (proc.stdout or proc.stderr).strip().splitlines()
    return out[0] if out else f"exit {proc.returncode}"


def hyperfine_ms(command: str, runs: int) -> tuple[float, float, float] | str:
    """Median, min and max in ms of `hyperfine -N` on a command, or why it failed."""
    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        proc = subprocess.run(["hyperfine", "-N", "--runs", str(runs), "--warmup", "3",
                               "--export-json", fh.name, "--style", "none", command],
                              capture_output=True, text=True, timeout=TIMEOUT_S * 5,
                              check=False)
        if proc.returncode != 0:  # hyperfine says only "non-zero exit": ask the command
            once = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                                  timeout=TIMEOUT_S, check=False)
            lines = [ln for ln in (once.stderr + once.stdout).splitlines() if ln.strip()]
            return lines[-1] if lines else f"exit {once.returncode}"
        times = json.loads(Path(fh.name).read_text())["results"][0]["times"]
    return (statistics.median(times) * 1000, min(times) * 1000, max(times) * 1000)


def make_bundle(root: Path) -> Path:
    """A runc/crun bundle: busybox-static rootfs, `true`, read-only root, no terminal."""
    bundle = root / "bundle"
    bindir = bundle / "rootfs" / "bin"
    bindir.mkdir(parents=True)
    busybox = shutil.which("busybox") or "/bin/busybox"
    shutil.copy2(busybox, bindir / "busybox")
    (bindir / "true").symlink_to("busybox")
    subprocess.run(["runc", "spec"], cwd=bundle, check=True, timeout=TIMEOUT_S)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"].update(args=["true"], terminal=False)
    spec["root"]["readonly"] = True
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def pss_kib(names: set[str]) -> dict[str, int]:
    """Proportional set size (KiB) of each running process whose comm is in names."""
    found: dict[str, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
            if comm not in names:
                continue
            for line in (proc / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    found[comm] = found.get(comm, 0) + int(line.split()[1])
        except OSError:
            continue
    return found


def forge_json(*args: str, home: str) -> dict[str, dict[str, object]]:
    """forge's own figures per runtime (`forge benchmark ... --json --no-save`)."""
    proc = subprocess.run([sys.executable, "-m", "forge_desktop", "benchmark", *args, "--json",
                           "--no-save"], capture_output=True, text=True, timeout=TIMEOUT_S * 5,
                          check=False, cwd=REPO, env={**os.environ, "FORGE_HOME": home})
    if proc.returncode != 0:
        sys.exit(f"forge benchmark {' '.join(args)} failed: {proc.stderr.strip()[-300:]}")
    return {r["runtime"]: r for r in json.loads(proc.stdout)["runtimes"]}


def mib(value: object) -> str:
    return f"{value / 2**20:.2f}" if isinstance(value, int | float) else "-"


def kib(value: object) -> str:
    return f"{value / 1024:.0f}" if isinstance(value, int | float) else "-"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()

    versions = {
        "docker (daemon)": first_line(["docker", "version", "--format",
                                       "{{.Server.Version}} (API {{.Server.APIVersion}})"]),
        "containerd": first_line(["containerd", "--version"]),
        "podman": first_line(["podman", "--version"]),
        "runc": first_line(["runc", "--version"]),
        "crun": first_line(["crun", "--version"]),
        "kernel": os.uname().release,
    }
    unified = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    hybrid = Path("/sys/fs/cgroup/unified").is_dir()
    cgroups = "v2 (unified)" if unified else ("v1, hybrid (v2 mounted at /sys/fs/cgroup/unified)"
                                              if hybrid else "v1")
    nofile_soft, nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    starts: dict[str, tuple[float, float, float] | str] = {}
    with tempfile.TemporaryDirectory(prefix="forge-engine-facts-") as tmp:
        bundle = make_bundle(Path(tmp))
        starts["runc run (bare OCI)"] = hyperfine_ms(
            f"runc run --bundle {bundle} forge-facts-runc", a.runs)
        starts["crun run, cgroup2 namespace, no cgroup manager"] = hyperfine_ms(
            f"unshare -m sh -c 'mount -t cgroup2 none /sys/fs/cgroup && "
            f"crun --cgroup-manager=disabled run --bundle {bundle} forge-facts-crun'", a.runs)
        starts["crun run (as installed)"] = hyperfine_ms(
            f"crun run --bundle {bundle} forge-facts-crun2", min(a.runs, 3))
    starts["docker run --rm --network none"] = hyperfine_ms(
        f"docker run --rm --network none {IMAGE} true", a.runs)
    starts["podman run --rm --network none"] = hyperfine_ms(
        f"podman run --rm --network none localhost/{IMAGE} true", a.runs)
    daemons = pss_kib({"dockerd", "containerd", "podman"})
    with tempfile.TemporaryDirectory(prefix="forge-engine-facts-home-") as home:
        disk = forge_json("disk", "-r", "docker", "-r", "podman", home=home)
        memory = forge_json("memory", "-r", "docker", "-r", "podman", "--containers", "3",
                            home=home)

    lines = [BEGIN, "## Measured here", "",
             f"`benchmarks/engine_facts.py --runs {a.runs}` (hyperfine -N, {a.runs} runs after "
             "3 warm-ups, medians; the machine is shared, so single figures move by 20%).", "",
             "| Fact | Value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in versions.items()]
    lines += [f"| cgroups | {cgroups} |",
              f"| RLIMIT_NOFILE of this shell | soft {nofile_soft}, hard {nofile_hard} |",
              f"| Python running this script | {sys.version.split()[0]} |",
              "| Load average (1, 5, 15 min) when measured | "
              + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + " |", "",
              "| Start-up of `true` | median ms | min | max |", "|---|---:|---:|---:|"]
    for name, value in starts.items():
        if isinstance(value, str):
            lines.append(f"| {name} | fails: `{value[:140]}` | | |")
        else:
            lines.append(f"| {name} | {value[0]:.1f} | {value[1]:.1f} | {value[2]:.1f} |")
    lines += ["", "| Daemon (all processes of that name) | PSS MiB |", "|---|---:|"]
    lines += [f"| {name} | {kib / 1024:.1f} |" for name, kib in sorted(daemons.items())]
    lines += ["", "Measured by forge itself (`forge benchmark disk` and `forge benchmark memory "
              "--containers 3`, both engines):", "",
              "| Engine | image on disk KiB | a created container adds KiB | per running "
              "container outside (shim/conmon) PSS MiB | RSS MiB | inside its cgroup MiB |",
              "|---|---:|---:|---:|---:|---:|"]
    for name in ("docker", "podman"):
        d, m = disk.get(name, {}), memory.get(name, {})
        parts = m.get("per_container_parts")
        part = parts if isinstance(parts, dict) else {}
        lines.append(f"| {name} | {kib(d.get('benchmark_image_bytes'))} | "
                     f"{kib(d.get('per_container_bytes'))} | {mib(part.get('outside_pss_bytes'))} "
                     f"| {mib(part.get('outside_rss_bytes'))} | "
                     f"{mib(part.get('inside_cgroup_bytes'))} |")
    lines.append(END)
    section = "\n".join(lines)
    print(section)
    if a.write:
        write_section(BEGIN, END, section, DOC)


if __name__ == "__main__":
    main()
