#!/usr/bin/env python3
"""Transport mode against agent mode on one host (issue 14): the same docker daemon measured by
forge on the host (``--host beta -r docker``: timings taken there) and from here through the
host's docker context (``-r docker@beta``: every call crosses ssh). Each round runs both, in a
new shuffled order, so drift hits both alike. Prints, per mode, the median of the rounds'
median lifecycles, and for transport mode the reported per-lifecycle overhead and the median
minus it: how far "transport minus its overhead" lands from the host's own timing.

The host is a real sshd on 127.0.0.1 (tests/fleet/conftest.py) whose sessions reach a private
dockerd (tests/engines.py), the set-up of the fleet tests; so the "network" here is loopback
ssh (encryption, sshd, dial-stdio), the floor of what a real network adds.
Usage: benchmarks/transport_vs_agent.py [--rounds 5] [-n 20]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

BEGIN = "<!-- transport_vs_agent:begin -->"
END = "<!-- transport_vs_agent:end -->"

from perfdoc import write_section  # noqa: E402  (benchmarks/perfdoc.py)

from tests.engines import DOCKER, PrivateDockerd, base_env, sh, unmount_under  # noqa: E402
from tests.fleet.conftest import Fleet, start_host, stop_host_proc  # noqa: E402


def forge(env: dict[str, str], *args: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-m", "forge_desktop", *args, "--json", "--no-save"],
                          capture_output=True, text=True, env=env, timeout=900, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"forge {' '.join(args)} failed: {proc.stderr[-2000:]}")
    doc = json.loads(proc.stdout)
    (entry,) = doc["runtimes"]
    return dict(entry)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-n", type=int, default=20)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="forge-transport-", dir="/tmp"))
    daemon = PrivateDockerd(root / "docker")
    (root / "docker").mkdir()
    host = None
    try:
        daemon.start()
        prep = sh(sys.executable, "-m", "forge_desktop", "image", "prepare", "-r", "docker",
                  env={**daemon.env, "FORGE_HOME": str(root / "prep")}, timeout=300)
        assert prep.returncode == 0, prep.stderr
        key = root / "client_key"
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key), check=True)
        host = start_host("beta", root, key.with_suffix(".pub"), daemon.env)
        known = root / "known_hosts"
        known.write_text(host.known_hosts_line() + "\n")
        fleet = Fleet({"beta": host}, key, known, root)
        home = root / "home"
        home.mkdir()
        (home / "config.toml").write_text(fleet.config())
        env = {**base_env(), "FORGE_HOME": str(home), "DOCKER_CONFIG": str(root / "dcfg")}
        sh(DOCKER, "context", "create", "beta", "--docker", f"host={host.url}", env=env,
           check=True)
        agent: list[float] = []
        transport: list[float] = []
        overhead: list[float] = []
        calls: list[tuple[float, float]] = []
        load0 = os.getloadavg()
        for _ in range(args.rounds):
            order = ["agent", "transport"]
            random.shuffle(order)
            for mode in order:
                if mode == "agent":
                    e = forge(env, "benchmark", "startup", "--host", "beta", "-r", "docker",
                              "-n", str(args.n))
                    agent.append(float(e["stats"]["median_ms"]))  # type: ignore[index]
                else:
                    e = forge(env, "benchmark", "startup", "-r", "docker@beta", "-n",
                              str(args.n))
                    transport.append(float(e["stats"]["median_ms"]))  # type: ignore[index]
                    tr = e["transport"]
                    overhead.append(float(tr["overhead_ms_per_lifecycle"]))  # type: ignore[index]
                    calls.append((float(tr["call_ms"]),  # type: ignore[index]
                                  float(tr["local_call_ms"])))  # type: ignore[index]
        load1 = os.getloadavg()
        med = statistics.median
        per_call = int(tr["calls_per_lifecycle"])  # type: ignore[index]
        paired = [(t - o) / a for a, t, o in zip(agent, transport, overhead, strict=True)]
        rows = [
            f"| agent mode, `--host beta -r docker` | {med(agent):.1f} ms | "
            f"{', '.join(f'{x:.0f}' for x in agent)} |",
            f"| transport mode, `-r docker@beta` | {med(transport):.1f} ms | "
            f"{', '.join(f'{x:.0f}' for x in transport)} |",
            f"| a `/_ping` over ssh / on the socket | {med(c for c, _ in calls):.2f} ms / "
            f"{med(lc for _, lc in calls):.2f} ms | |",
            f"| reported overhead ({per_call} calls) | {med(overhead):.1f} ms a lifecycle | |",
            f"| (transport - overhead) / agent, paired by round | {med(paired):.3f}x | "
            f"{', '.join(f'{x:.2f}' for x in paired)} |",
        ]
        section = "\n".join([
            BEGIN,
            "## Transport mode vs agent mode (`benchmarks/transport_vs_agent.py`)",
            "",
            f"{args.rounds} rounds x {args.n} lifecycles of docker on one private dockerd "
            "behind a real sshd on 127.0.0.1 (the fleet tests' beta): each round runs agent "
            "mode (forge on the host) and transport mode (`-r docker@beta`, every call over "
            "ssh) in a new shuffled order. Load average "
            f"{load0[0]:.1f} before, {load1[0]:.1f} after, {os.cpu_count()} CPUs.",
            "",
            "| | median of round medians | rounds |",
            "|---|---|---|",
            *rows,
            END,
        ])
        print("\n".join(rows))
        write_section(BEGIN, END, section)
        print("written to docs/PERFORMANCE.md")
    finally:
        if host is not None:
            stop_host_proc(host.proc)
        daemon.stop()
        unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
