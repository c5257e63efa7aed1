"""Memory and compare benchmarks for real on docker, podman and runc."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from forge_desktop.bench import stats
from tests.conftest import assert_one_line_error, run_forge
from tests.integration.conftest import (
    DOCKER,
    disagreement,
    labelled,
    oci_leftovers,
    owned,
    owner_of,
    sh,
    wait_until,
)

MIB = 1024 * 1024


def smaps_pss(pid: int) -> int:
    """PSS the way a user reads it by hand."""
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return int(re.search(r"^Pss:\s+(\d+) kB", text, re.M).group(1)) * 1024  # type: ignore[union-attr]


def vmrss(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", text, re.M).group(1)) * 1024  # type: ignore[union-attr]


def daemons_by_hand() -> dict[str, int]:
    """The daemons' PSS and RSS as a user reads them in /proc: dockerd with its containerd,
    and the podman API service on the socket the suite uses."""
    dockerd = [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] in
               ("dockerd", "containerd")]
    podman = [p.pid for p in psutil.process_iter(["name", "cmdline"])
              if p.info["name"] == "podman" and "service" in (p.info["cmdline"] or [])
              and any("/run/podman/podman.sock" in a for a in p.info["cmdline"])]
    assert dockerd and podman, (dockerd, podman)
    return {"docker_pss": sum(smaps_pss(p) for p in dockerd),
            "docker_rss": sum(vmrss(p) for p in dockerd),
            "podman_rss": sum(vmrss(p) for p in podman)}


def test_memory_benchmark_matches_what_a_user_checks_by_hand(forge_home: Path) -> None:
    hand_before = daemons_by_hand()
    doc = json.loads(run_forge("benchmark", "memory", "--containers", "3", "--samples", "3",
                               "--json", check=True).stdout)
    hand_after = daemons_by_hand()
    assert doc["kind"] == "memory" and doc["complete"]
    by = {e["runtime"]: e for e in doc["runtimes"]}
    assert {"docker", "podman", "runc"} <= set(by)
    for name in ("docker", "podman", "runc"):
        e = by[name]
        assert not e["errors"], e["errors"]
        for key in ("per_container_bytes", "per_container_parts", "density",
                    "density_slope_bytes", "samples"):
            assert e[key] is not None, (name, key)
        assert [d["containers"] for d in e["density"]] == [0, 1, 2, 3]
        assert len(e["samples"]) == 3 and all("t_s" in s for s in e["samples"])
        # inside a busybox sleep: well under 8 MiB, more than nothing (docs/ENGINES.md: 0.3-0.6 MB)
        assert 16 * 1024 < e["per_container_parts"]["inside_cgroup_bytes"] < 8 * MIB
    assert by["runc"]["daemon_pss_bytes"] is None
    # daemons: within what the test read in /proc just before and after the run, give or
    # take 10% (a daemon serving other sessions gains or frees a few MiB meanwhile)
    for key, (engine, field) in {"docker_pss": ("docker", "daemon_pss_bytes"),
                                 "docker_rss": ("docker", "daemon_rss_bytes"),
                                 "podman_rss": ("podman", "daemon_rss_bytes")}.items():
        low, high = sorted((hand_before[key], hand_after[key]))
        assert low * 0.9 <= by[engine][field] <= high * 1.1, (key, low, by[engine][field], high)
    # docker shim PSS ~3.4 MB, podman conmon ~0.4 MB here (docs/ENGINES.md): the order must hold
    assert by["docker"]["per_container_parts"]["outside_pss_bytes"] > \
        by["podman"]["per_container_parts"]["outside_pss_bytes"] > 0
    assert by["runc"]["per_container_parts"]["outside_pss_bytes"] == 0


def test_container_memory_agrees_with_docker_stats(forge_home: Path) -> None:
    """Start a container the way the benchmark does and compare its cgroup figure with
    `docker stats` (which reports usage minus page cache)."""
    from forge_desktop.models import RunSpec
    from forge_desktop.profiling.procmem import cgroup_memory_bytes
    from forge_desktop.runtimes.base import new_run_context
    from forge_desktop.runtimes.docker import DockerRuntime

    rt, ctx = DockerRuntime(30), new_run_context()
    try:
        cid = rt.start_detached(RunSpec("forge-bench:busybox", ("sleep", "60")), ctx, 1)
        wait_until("the container runs", lambda: sh(
            DOCKER, "inspect", "-f", "{{.State.Running}}", cid).stdout.strip() == "true", 30)
        ours = cgroup_memory_bytes(rt.container_pid(cid))
        out = sh(DOCKER, "stats", "--no-stream", "--format", "{{.MemUsage}}", cid).stdout
        value, unit = re.match(r"([\d.]+)\s*([KMG]i?B)", out).groups()  # type: ignore[union-attr]
        factor = {"KiB": 1024, "MiB": MIB, "GiB": 1024 * MIB, "kB": 1000, "MB": 1e6}[unit]
        theirs = float(value) * factor
        assert ours is not None
        assert theirs <= ours + 64 * 1024  # stats excludes cache; ours includes it
        assert ours - theirs < 4 * MIB, (ours, theirs)
    finally:
        rt.cleanup(ctx.run_id)
        rt.close()


def test_sigint_during_density_run_leaves_nothing(forge_home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "forge_desktop", "benchmark", "memory", "-r", "docker", "-r",
         "podman", "-r", "runc", "--containers", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    owner = owner_of(proc.pid)
    # a few of the run's sleep containers are running: mid-density
    wait_until("3 docker containers of the forge run exist", lambda: len(
        owned("docker", owner)) >= 3, 90, proc)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    # the run's process has exited: any container of a dead owner is a leak (containers of
    # other runs still alive on this machine are theirs)
    assert labelled("docker", True) == [] and labelled("podman", True) == []
    assert oci_leftovers(True) == []
    assert not (forge_home / "benchmarks").exists() or \
        not list((forge_home / "benchmarks").glob("*.json"))


def _forge(*args: str, home: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "forge_desktop", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "FORGE_HOME": str(home)})


def _finish(proc: subprocess.Popen[str], timeout: float) -> dict:  # type: ignore[type-arg]
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_compare_runs_everything_and_agrees_with_startup(forge_home: Path,
                                                         tmp_path: Path) -> None:
    """compare's startup figures for docker and podman agree with `forge benchmark startup`.

    Both runs go at once, over the same runtimes with the same iterations and warm-ups, so
    their startup phases share one time window and meet the same load (each is the other's
    main load), and the agreement is the exact rank test with a 10% floor of
    conftest.disagreement: a false failure has probability below 2 x 1e-4 = 2e-4 per run,
    however noisy the machine. Two sessions minutes apart differ by 20% here with nothing
    wrong, which is why no fixed band is used.
    """
    available = [i["name"] for i in json.loads(run_forge("runtimes", "--json",
                                                         check=True).stdout)
                 if i["available"]]
    compare = _forge("benchmark", "compare", "-n", "20", "--warmup", "2", "--containers", "2",
                     "--json", home=forge_home)
    startup = _forge("benchmark", "startup", *(f"-r{name}" for name in available), "-n", "20",
                     "--warmup", "2", "--json", "--no-save", home=tmp_path / "startup-home")
    alongside = {e["runtime"]: [s["total_ms"] for s in e["samples"]]
                 for e in _finish(startup, 300)["runtimes"]}
    doc = _finish(compare, 600)
    assert doc["kind"] == "compare"
    names = {e["runtime"] for e in doc["runtimes"]}
    assert {"docker", "podman", "runc"} <= names
    comp = doc["comparison"]
    slowest = max(doc["runtimes"], key=lambda e: e["stats"]["median_ms"])["runtime"]
    assert comp["baseline"] == slowest
    metrics = {(r["runtime"], r["metric"]) for r in comp["ratios"]}
    for name in names - {slowest}:
        for metric in ("startup", "daemon_memory", "per_container_memory", "disk"):
            assert (name, metric) in metrics
    for r in comp["ratios"]:
        assert set(r) >= {"runtime", "metric", "ratio", "ci95", "p_value", "verdict"}
        if r["metric"] == "startup":
            lo, hi = r["ci95"]
            assert lo <= r["ratio"] <= hi and 0 <= r["p_value"] <= 1
            assert r["verdict"] in ("faster", "slower", "no significant difference")
    for e in doc["runtimes"]:
        assert set(e["stats"]) >= {"median_ms", "ci95_ms", "p95_ms", "stdev_ms"}
        if e["cgroup_limits"] is False:  # crun in its cgroup2 namespace: no memory cgroup
            assert e["memory"] is None and any(w.startswith(f"{e['runtime']}: not like-for-"
                                                            "like: no cgroup limits")
                                               for w in doc["like_for_like_warnings"])
        else:
            assert e["memory"]["per_container_bytes"] > 0
        assert e["disk"] is not None
        if e["kind"] == "engine":
            assert e["to_exec_stats"]["median_ms"] > 0
            assert all(0 < s["to_exec_ms"] < s["total_ms"] for s in e["samples"])
    # the phases add up (the 1.3x overhead figure is benchmarks/compare_overhead.py's)
    t = doc["timing"]
    phases_s = t["setup_s"] + t["startup_phase_s"] + t["memory_phase_s"] + t["disk_phase_s"]
    assert phases_s <= t["wall_s"] + 0.002 and t["startup_lifecycles_s"] <= \
        t["startup_phase_s"] + 0.002, t
    by = {e["runtime"]: [s["total_ms"] for s in e["samples"]] for e in doc["runtimes"]}
    problems = [disagreement(f"{name} startup, compare vs startup", by[name], alongside[name])
                for name in ("docker", "podman")]
    assert problems == [None, None], problems


def test_compare_with_named_baseline_and_a_missed_target(forge_home: Path) -> None:
    proc = run_forge("benchmark", "compare", "-r", "runc", "-r", "docker", "--baseline",
                     "runc", "-n", "3", "--warmup", "1", "--containers", "1",
                     "--max-startup-ms", "0.001")
    assert proc.returncode == 3, proc.stderr
    assert "missed" in proc.stdout and "Startup: docker" in proc.stdout
    assert "slower" in proc.stdout
    (saved,) = (forge_home / "benchmarks").glob("*.json")
    doc = json.loads(saved.read_text())
    assert doc["comparison"]["baseline"] == "runc"
    assert any(not t["met"] for t in doc["targets"])


@pytest.mark.parametrize("args, needle", [
    (["benchmark", "memory", "--containers", "0"], "--containers"),
    (["benchmark", "memory", "--containers", "100000"], "--containers"),
    (["benchmark", "memory", "--samples", "0"], "--samples"),
    (["benchmark", "compare", "-r", "docker", "-r", "runc", "--baseline", "podman"],
     "not among the runtimes"),
    (["benchmark", "compare", "--max-startup-ms", "fast"], "must be a number"),
    (["benchmark", "startup", "--max-startup-ms", "-5"], "positive"),
    (["benchmark", "memory", "--max-memory-mb", "nan"], "positive"),
])
def test_bad_input(forge_home: Path, args: list[str], needle: str) -> None:
    assert_one_line_error(run_forge(*args), needle)
    assert not (forge_home / "benchmarks").exists() or \
        not list((forge_home / "benchmarks").glob("*.json"))


def test_target_in_config_toml(forge_home: Path) -> None:
    forge_home.mkdir(parents=True)
    (forge_home / "config.toml").write_text("[targets]\nstartup_ms = 100000\n")
    proc = run_forge("benchmark", "startup", "-r", "runc", "-n", "2", check=True)
    assert "met" in proc.stdout and "startup_ms" in proc.stdout


def test_statistics_module_has_no_heavy_imports_at_cli_start() -> None:
    out = subprocess.run([sys.executable, "-c", "import forge_desktop.cli.app, sys; "
                          "print(sorted(m for m in ('docker','scipy','numpy','PySide6') "
                          "if m in sys.modules))"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert stats.median([3, 1, 2]) == 2
