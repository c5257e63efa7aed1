"""The startup benchmark for real on docker, podman and runc, and its failure modes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

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

STATS_KEYS = {"median_ms", "mean_ms", "stdev_ms", "min_ms", "max_ms", "p95_ms", "ci95_ms",
              "outliers", "n"}


def results(home: Path) -> list[Path]:
    return sorted((home / "benchmarks").glob("*.json")) if (home / "benchmarks").exists() \
        else []


def test_startup_on_docker_podman_runc(forge_home: Path) -> None:
    proc = run_forge("benchmark", "startup", "-n", "3", "--warmup", "1", "--json", check=True)
    doc = json.loads(proc.stdout)  # stdout holds the JSON document and nothing else
    assert doc["kind"] == "startup" and doc["schema_version"] == 1 and doc["complete"]
    by_name = {r["runtime"]: r for r in doc["runtimes"]}
    assert {"docker", "podman", "runc"} <= set(by_name), by_name.keys()
    for name in ("docker", "podman", "runc"):
        r = by_name[name]
        assert len(r["samples"]) == 3 and not r["errors"] and r["version"]
        assert set(r["stats"]) == STATS_KEYS
        s = r["stats"]
        assert 0 < s["min_ms"] <= s["median_ms"] <= s["max_ms"] < 30_000
        assert s["ci95_ms"][0] <= s["median_ms"] <= s["ci95_ms"][1]
    for engine in ("docker", "podman"):
        phases = by_name[engine]["samples"][0]["phases_ms"]
        assert list(phases) == ["create", "start", "wait", "remove"]
        # the total is create + start + wait + remove, contiguous (the inspect between wait
        # and remove is taken out): equal up to the 4-decimal rounding of five numbers
        for sample in by_name[engine]["samples"]:
            assert abs(sum(sample["phases_ms"].values()) - sample["total_ms"]) < 5e-4, sample
    env = doc["environment"]
    for key in ("host", "os", "kernel", "cpu_model", "cpu_count", "memory_total_bytes",
                "cgroup_version", "python_version", "forge_version", "runtimes",
                "network_mode"):
        assert env.get(key) is not None, key
    assert env["runtimes"]["docker"]["storage_driver"]
    saved = results(forge_home)
    assert len(saved) == 1 and json.loads(saved[0].read_text()) == doc
    assert oct((forge_home / "benchmarks").stat().st_mode & 0o777) == "0o700"


def test_unwritable_bundle_leaves_runc_out_and_docker_measured(forge_home: Path) -> None:
    """A real preparation failure (runc's bundle directory cannot be created: a file is in
    its way, which stops root too) costs runc, with its reason in the output and the saved
    result; docker is still prepared, measured and saved. Exit 1: runc was asked for."""
    forge_home.mkdir()
    (forge_home / "bundles").write_text("in the way")
    proc = run_forge("benchmark", "startup", "-r", "docker", "-r", "runc", "-n", "3",
                     "--warmup", "1", "--json")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert not doc["complete"]
    by_name = {r["runtime"]: r for r in doc["runtimes"]}
    assert len(by_name["docker"]["samples"]) == 3 and not by_name["docker"]["errors"]
    runc = by_name["runc"]
    reason = runc["unavailable"]
    assert reason.startswith(f"cannot use {forge_home / 'bundles'}"), reason
    assert runc["samples"] == [] and runc["stats"] is None
    stderr = " ".join(proc.stderr.split())  # rich wraps lines at 120 columns
    assert f"warning: runc: not prepared, left out of this run: {reason}" in stderr
    saved = results(forge_home)
    assert len(saved) == 1 and json.loads(saved[0].read_text()) == doc


def test_table_output_and_runtimes_list(forge_home: Path) -> None:
    proc = run_forge("benchmark", "startup", "-r", "runc", "-n", "2", "--warmup", "0",
                     check=True)
    assert "runc" in proc.stdout and "Median" in proc.stdout and "saved" in proc.stdout
    infos = {i["name"]: i for i in json.loads(run_forge("runtimes", "--json",
                                                        check=True).stdout)}
    assert set(infos) >= {"docker", "podman", "runc", "crun"}
    for i in infos.values():
        assert set(i) >= {"name", "kind", "available", "version", "endpoint", "reason"}
    assert infos["docker"]["available"] and infos["podman"]["available"]
    assert infos["runc"]["available"] and infos["crun"]["available"]  # crun: test_oci.py


def test_via_cli_times_the_users_own_command(forge_home: Path) -> None:
    proc = run_forge("benchmark", "startup", "-r", "docker", "-r", "podman", "--via", "cli",
                     "-n", "2", "--warmup", "0", "--json", "--no-save", check=True)
    doc = json.loads(proc.stdout)
    for r in doc["runtimes"]:
        assert r["via"] == "cli" and list(r["samples"][0]["phases_ms"]) == ["run"]
    assert results(forge_home) == []


def _sleeper_home(home: Path, seconds: float) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[runtimes.sleeper]\nrun = ["sleep", "{seconds}"]\nversion = ["sleep", "--version"]\n')


# Times a command as forge times one (spawn, wait, output discarded), in a small process of its
# own: the test's stopwatch, independent of forge's code.
STOPWATCH = """
import json, subprocess, sys, time
times = []
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    subprocess.run(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=30, check=True)
    times.append((time.perf_counter() - t0) * 1000)
print(json.dumps(times))
"""


def _stopwatch_alongside(proc: subprocess.Popen[str], forge_argv: list[str],
                         argv: list[str], n: int) -> list[float]:
    """``n`` timings of ``argv`` taken while the forge process ``proc`` measures: started
    once forge has run ``forge_argv`` a first time (its first warm-up)."""
    def forge_runs_it() -> bool:
        with contextlib.suppress(psutil.Error):
            return any(c.cmdline() == forge_argv for c in psutil.Process(proc.pid).children())
        return False

    wait_until(f"forge runs {forge_argv}", forge_runs_it, 60, proc)
    out = subprocess.run([sys.executable, "-c", STOPWATCH, str(n), *argv], capture_output=True,
                         text=True, timeout=120, check=True)
    return [float(t) for t in json.loads(out.stdout)]


def _sleeper_vs_stopwatch(home: Path, forge_sleep_s: float) -> tuple[dict, list[float]]:  # type: ignore[type-arg]
    _sleeper_home(home, forge_sleep_s)
    proc = subprocess.Popen(
        [sys.executable, "-m", "forge_desktop", "benchmark", "startup", "-r", "sleeper", "-n",
         "25", "--warmup", "2", "--json", "--no-save"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "FORGE_HOME": str(home)})
    try:
        ours = _stopwatch_alongside(proc, ["sleep", str(forge_sleep_s)], ["sleep", "0.05"], 25)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    (entry,) = json.loads(out)["runtimes"]
    return entry, ours


def test_user_defined_runtime_agrees_with_a_stopwatch(forge_home: Path) -> None:
    """forge's figure for `sleep 0.05` as a command runtime against the test's own stopwatch
    on the same command, taken alongside in the same seconds (see conftest.disagreement)."""
    entry, ours = _sleeper_vs_stopwatch(forge_home, 0.05)
    assert entry["runtime"] == "sleeper" and entry["kind"] == "command"
    totals = [s["total_ms"] for s in entry["samples"]]
    assert len(totals) == len(ours) == 25
    assert min(totals) >= 50.0  # sleep never returns early: a lower figure times something else
    problem = disagreement("sleep 0.05", totals, ours)
    assert problem is None, problem


def test_agreement_check_catches_a_30_percent_slowdown(forge_home: Path) -> None:
    """The check above can fail: forge timing `sleep 0.065` (a runtime 30% slower than what
    the stopwatch times) must be called a disagreement."""
    entry, ours = _sleeper_vs_stopwatch(forge_home, 0.065)
    problem = disagreement("sleep 0.065 against sleep 0.05", [s["total_ms"] for s in
                                                               entry["samples"]], ours)
    assert problem is not None


def test_network_host_is_recorded(forge_home: Path) -> None:
    doc = json.loads(run_forge("benchmark", "startup", "-r", "docker", "--network", "host",
                               "-n", "1", "--warmup", "0", "--json", check=True).stdout)
    assert doc["parameters"]["network"] == "host"
    assert doc["environment"]["network_mode"] == "host"


def test_sigint_mid_iteration_leaves_no_container_and_no_file(forge_home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "forge_desktop", "benchmark", "startup", "-r", "docker", "-r",
         "podman", "-r", "runc", "-n", "500", "--warmup", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    owner = owner_of(proc.pid)
    # a container of this run exists: that is mid-iteration
    wait_until("a container of the forge run exists", lambda: bool(
        owned("docker", owner) or owned("podman", owner)), 60, proc)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    # the run's process has exited: any container of a dead owner is a leak (containers of
    # other runs still alive on this machine are theirs)
    assert labelled("docker", True) == [] and labelled("podman", True) == []
    assert oci_leftovers(True) == []
    assert results(forge_home) == []


def test_leftovers_of_dead_runs_are_swept_and_live_ones_kept(forge_home: Path) -> None:
    host = socket.gethostname()
    me = f"{host}/{os.getpid()}/{int(__import__('psutil').Process().create_time() * 100)}"
    dead = sh(DOCKER, "create", "--label", "io.forge.benchmark=dead-run", "--label",
              f"io.forge.owner={host}/999999/1", "forge-bench:busybox", "true").stdout.strip()
    live = sh(DOCKER, "create", "--label", "io.forge.benchmark=live-run", "--label",
              f"io.forge.owner={me}", "forge-bench:busybox", "true").stdout.strip()
    assert dead and live
    try:
        run_forge("benchmark", "startup", "-r", "docker", "-n", "1", "--warmup", "0",
                  "--no-save", check=True)
        remaining = sh(DOCKER, "ps", "-a", "-q", "--no-trunc", "--filter",
                       "label=io.forge.benchmark").stdout.split()
        assert dead not in remaining, "a dead run's container was not swept"
        assert live in remaining, "a live run's container was removed"
    finally:
        sh(DOCKER, "rm", "-f", dead, live)


# -- bad input: one clear line, non-zero exit, no traceback, no result file ----------------

@pytest.mark.parametrize("args, needle", [
    (["-n", "0"], "between 1 and 1000"),
    (["-n", "-3"], "between 1 and 1000"),
    (["-n", "abc"], "iterations"),
    (["-n", "10000000"], "between 1 and 1000"),
    (["--warmup", "-1"], "warmup"),
    (["--network", "bridge0"], "--network"),
    (["--via", "ssh"], "--via"),
    (["-r", "nosuch"], "unknown runtime 'nosuch'"),
    (["-r", "docker", "--image", "forge-test.invalid/none:nope", "-n", "1"], "could not"),
    (["-r", "docker", "--image", "busybox; rm -rf /", "-n", "1"], "not a valid image name"),
])
def test_bad_input(forge_home: Path, args: list[str], needle: str) -> None:
    proc = run_forge("benchmark", "startup", *args)
    assert_one_line_error(proc, needle)
    assert results(forge_home) == []


def test_unavailable_runtime(forge_home: Path) -> None:
    forge_home.mkdir(parents=True)
    (forge_home / "config.toml").write_text('[runtimes.ghost]\nrun = ["no-such-binary-x"]\n')
    assert_one_line_error(run_forge("benchmark", "startup", "-r", "ghost"),
                          "unavailable", "no-such-binary-x")


def test_malformed_config(forge_home: Path) -> None:
    forge_home.mkdir(parents=True)
    (forge_home / "config.toml").write_text("[runtimes.forge\nrun = [")
    assert_one_line_error(run_forge("benchmark", "startup"), "not valid TOML")
    assert_one_line_error(run_forge("runtimes"), "not valid TOML")


def test_stopped_daemon(forge_home: Path, tmp_path: Path) -> None:
    env = {"DOCKER_HOST": f"unix://{tmp_path}/absent.sock"}
    proc = run_forge("benchmark", "startup", "-r", "docker", env=env)
    assert_one_line_error(proc, "docker is not running")
    info = {i["name"]: i for i in json.loads(run_forge("runtimes", "--json", env=env,
                                                       check=True).stdout)}
    assert not info["docker"]["available"] and "not running" in info["docker"]["reason"]


def test_socket_without_permission(forge_home: Path, tmp_path: Path) -> None:
    """Root bypasses file modes; drop every capability so the mode applies, as for a user."""
    path = tmp_path / "denied.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    path.chmod(0)
    try:
        proc = subprocess.run(
            ["setpriv", "--inh-caps=-all", "--bounding-set=-all", sys.executable, "-m",
             "forge_desktop", "benchmark", "startup", "-r", "docker"],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "DOCKER_HOST": f"unix://{path}"})
    finally:
        server.close()
    assert_one_line_error(proc, "permission denied")


def test_unwritable_forge_home(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    proc = run_forge("benchmark", "startup", "-r", "runc", env={"FORGE_HOME": str(blocker)})
    assert_one_line_error(proc, "cannot write results", "FORGE_HOME")
