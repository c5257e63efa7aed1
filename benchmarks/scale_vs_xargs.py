#!/usr/bin/env python3
"""Is forge the bottleneck of `forge benchmark scale`? Its throughput at each concurrency
level against the same container lifecycles driven by `xargs -P N`, side by side in one run.

Per runtime, round and level c: `forge benchmark scale -r RT --concurrency c -n N` (its
``throughput_per_s``: lifecycles completed per second of the level) and, back to back with it,
`xargs -P c` over the runtime's own command line for N of the same lifecycle:
- runc: `runc run --bundle B ID` on a bundle forge's adapter writes (same config.json, same
  rootfs, same 64 MiB / 64 pids limits), one fresh id per lifecycle;
- docker / podman: `docker run --rm` / `podman run --rm` with the same settings as forge's API
  path (the adapters' ``cli_argv``: network none, limits, cap-drop ALL, read-only, labels).
xargs throughput is N / its wall time. Which side of a pair goes first alternates, so drift
hits both alike; the table has medians of the per-round figures and the median of the paired
ratios forge / xargs (target >= 0.9).
Everything the xargs side creates carries this script's run id and is removed at the end.

Prints a Markdown section and, with --write, replaces it in docs/PERFORMANCE.md.
Usage: benchmarks/scale_vs_xargs.py [--rounds 3] [-n 20] [--levels 1,2,4,8]
                                    [-r runc -r docker -r podman] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from perfdoc import write_section  # benchmarks/perfdoc.py

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from forge_desktop.config import load_config  # noqa: E402
from forge_desktop.image import prepare_each  # noqa: E402
from forge_desktop.models import RunContext, RunSpec  # noqa: E402
from forge_desktop.runtimes.base import new_run_context, oci_container_id  # noqa: E402
from forge_desktop.runtimes.oci import OciRuntime, run_dir_for  # noqa: E402
from forge_desktop.runtimes.registry import select_runtimes  # noqa: E402

BEGIN, END = "<!-- scale-vs-xargs:begin -->", "<!-- scale-vs-xargs:end -->"
TARGET = 0.9


def forge_levels(runtime: str, levels: list[int], n: int) -> dict[int, float]:
    proc = subprocess.run([sys.executable, "-m", "forge_desktop", "benchmark", "scale", "-r",
                           runtime, "--concurrency", ",".join(map(str, levels)), "-n", str(n),
                           "--warmup", "1", "--json", "--no-save", "--wait"],
                          capture_output=True, text=True, timeout=3600, check=False,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"forge failed on {runtime}:\n{proc.stderr}")
    (entry,) = json.loads(proc.stdout)["runtimes"]
    return {lv["concurrency"]: lv["throughput_per_s"] for lv in entry["levels"]}


def xargs_rate(argv: list[str], c: int, n: int, first: int) -> float:
    """N lifecycles, c at a time, by xargs: ``{}`` in argv becomes the lifecycle's number."""
    items = "\n".join(str(first + i) for i in range(n)) + "\n"
    t0 = time.perf_counter()
    proc = subprocess.run(["xargs", "-P", str(c), "-I{}", *argv], input=items, text=True,
                          capture_output=True, timeout=3600, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"xargs over {argv[0]} failed: {proc.stderr.strip()[:400]}")
    return n / wall


def lifecycle_argv(runtime: str, spec: RunSpec, ctx: RunContext) -> list[str]:
    """The runtime's own command line for one lifecycle, ``{}`` where the id goes."""
    if runtime in ("runc", "crun"):
        oci = OciRuntime(runtime)
        oci.prepare(spec, ctx)  # the bundle forge itself would use, same config.json
        cid = oci_container_id(ctx, 0)[:-1] + "{}"  # forge-<pid>-<start>-<token>-{}
        return [oci.binary, "run", "--bundle", str(run_dir_for(spec, ctx.run_id, runtime)),
                cid]
    (rt,), _ = select_runtimes(load_config(), [runtime])
    argv: list[str] = rt.cli_argv(spec, ctx)  # type: ignore[attr-defined]
    return argv


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--levels", default="1,2,4,8")
    ap.add_argument("-r", "--runtime", action="append")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    levels = [int(v) for v in args.levels.split(",")]
    runtimes = args.runtime or ["runc", "docker", "podman"]
    config = load_config()
    ctx = new_run_context()
    load0 = os.getloadavg()[0]
    forge: dict[tuple[str, int], list[float]] = {}
    xargs: dict[tuple[str, int], list[float]] = {}
    selected, _ = select_runtimes(config, runtimes)
    # the benchmark image as forge resolves it (the same ref and bundle its runs use)
    image, failed = prepare_each(selected, ctx, config.image)
    if failed:
        raise SystemExit(f"the benchmark image is not ready: {failed}")
    spec = RunSpec(image=image, command=("true",), network="none")
    try:
        argvs = {rt: lifecycle_argv(rt, spec, ctx) for rt in runtimes}
        seq = 0
        for r in range(args.rounds):
            for rt in runtimes:
                for i, c in enumerate(levels):
                    # the two sides of a pair run back to back, the first one alternating:
                    # on a shared machine the load drifts within seconds
                    for side in (("forge", "xargs") if (r + i) % 2 == 0
                                 else ("xargs", "forge")):
                        if side == "forge":
                            forge.setdefault((rt, c), []).append(
                                forge_levels(rt, [c], args.n)[c])
                        else:
                            xargs.setdefault((rt, c), []).append(
                                xargs_rate(argvs[rt], c, args.n, seq))
                            seq += args.n
                print(f"round {r + 1}: {rt} done", file=sys.stderr)
    finally:
        for rt in selected:
            rt.cleanup(ctx.run_id)
            rt.close()
        for name in ("runc", "crun"):
            if name in runtimes:
                OciRuntime(name).close()
                for d in Path(run_dir_for(spec, ctx.run_id, name)).parent.glob(
                        f"{ctx.run_id}-*"):
                    subprocess.run(["rm", "-rf", str(d)], check=False)
    load1 = os.getloadavg()[0]

    lines = [BEGIN, "## Concurrency scaling: forge against `xargs -P` (issue 15, point 1)", "",
             f"`benchmarks/scale_vs_xargs.py --rounds {args.rounds} -n {args.n} --levels "
             f"{args.levels}`; per runtime, round and level c, back to back: `forge benchmark "
             "scale --concurrency c` (its throughput) and `xargs -P c` over the runtime's own "
             f"command for the same lifecycle ({args.n} each; `runc run` on forge's bundle, "
             "`docker run --rm` / `podman run --rm` with forge's settings), which goes first "
             "alternating. "
             "Lifecycles per second, medians of the rounds. Target: forge >= "
             f"{TARGET}x xargs. Load average {load0:.1f} before, {load1:.1f} after, on "
             f"{os.cpu_count()} CPUs (a shared, busy machine: compare the two sides of a row, "
             "not rows of another run).", "",
             "forge / xargs is the median of the rounds' paired ratios (each pair ran back "
             "to back: the load moves less within a pair than between rounds), with the "
             "lowest and highest.", "",
             "| Runtime | In flight | forge /s | xargs -P /s | forge / xargs (range) | target |",
             "|---|---:|---:|---:|---:|---|"]
    for rt in runtimes:
        for c in levels:
            f, x = statistics.median(forge[(rt, c)]), statistics.median(xargs[(rt, c)])
            ratios = [a / b for a, b in zip(forge[(rt, c)], xargs[(rt, c)], strict=True)]
            ratio = statistics.median(ratios)
            lines.append(f"| {rt} | {c} | {f:.2f} | {x:.2f} | {ratio:.2f}x "
                         f"({min(ratios):.2f}–{max(ratios):.2f}) | "
                         f"{'met' if ratio >= TARGET else '**missed**'} |")
    lines += ["", "Per-round figures (forge / xargs): " + "; ".join(
        f"{rt} x{c} " + ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(
            forge[(rt, c)], xargs[(rt, c)], strict=True))
        for rt in runtimes for c in levels), END]
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section(BEGIN, END, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
