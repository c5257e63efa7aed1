"""`forge benchmark profile` and `forge benchmark resources` for real: real processes with a
known memory growth, the real docker and podman daemons, and bad input as a user types it."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from forge_desktop.profiling import system
from forge_desktop.profiling.memory import MemoryProfiler
from forge_desktop.runtimes.base import Runtime
from tests.conftest import assert_one_line_error, busy_loop, run_forge
from tests.integration.conftest import DOCKER, sh, wait_until

MIB = 1024 * 1024
STEP_MIB, STEPS, STEP_S = 5, 8, 0.2
EXPECTED_GROWTH = STEP_MIB * STEPS * MIB  # 40 MiB

# Allocates STEPS blocks of STEP_MIB every STEP_S once told to (a line on stdin, or at once
# after a delay), keeps them, then sleeps. `b"x" * n` writes every byte, so every page of the
# block is resident: RSS grows by the block's size, not by what malloc merely reserved.
GROWER = f"""
import sys, time
MIB = 1 << 20
delay = float(sys.argv[1])
if delay < 0:
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    sys.stdin.readline()
else:
    time.sleep(delay)
keep = []
start = time.monotonic()
for k in range({STEPS} if len(sys.argv) < 3 else int(sys.argv[2])):
    keep.append(b"x" * ({STEP_MIB} * MIB))
    # paced on the clock, not by sleeps: the rate stays exact however long a block takes
    time.sleep(max(0.0, start + (k + 1) * {STEP_S} - time.monotonic()))
time.sleep(60)
"""


@contextlib.contextmanager
def grower(steps: int = STEPS) -> Iterator[subprocess.Popen[str]]:
    """A child that has loaded its interpreter and waits for 'go' on stdin to allocate."""
    proc = subprocess.Popen([sys.executable, "-c", GROWER, "-1", str(steps)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def test_known_growth_peak_minus_first_within_10_percent() -> None:
    """Peak minus the first sample: the first is taken while the child waits (interpreter
    loaded, nothing allocated yet) and the blocks are never freed, so the difference is the
    allocation itself, untouched by sampling phase or timing jitter. (A slope depends on where
    the window falls on the staircase; the next test checks it on a steady climb.)"""
    with grower() as proc:
        prof = MemoryProfiler([proc.pid])
        first = prof.snapshot("before")
        assert first is not None
        _go(proc)
        prof.sample(25, 0.1)  # 2.5 s: the 1.6 s of growth, then the plateau
    growth = prof.summary()["peak_rss_bytes"] - first["rss_bytes"]
    print(f"growth measured {growth / MIB:.2f} MiB, expected {EXPECTED_GROWTH / MIB:.0f} MiB")
    assert growth == pytest.approx(EXPECTED_GROWTH, rel=0.10)
    assert prof.snapshots[0]["label"] == "before"


def test_known_growth_rate_from_the_least_squares_slope() -> None:
    """On a steady climb (5 MiB every 0.2 s = 1500 MiB/min for 8 s, longer than the 2.9 s
    profile) the summary's growth per minute is the allocation rate. The least-squares slope
    over 30 samples is what makes it robust: a staircase sampled this way reads within ~1.2%
    of its rate whatever the phase, where last-minus-first can be off by a whole step (17%)."""
    with grower(steps=40) as proc:
        prof = MemoryProfiler([proc.pid])
        _go(proc)
        prof.sample(30, 0.1)
    rate = prof.summary()["growth_bytes_per_min"]
    expected = STEP_MIB * MIB / STEP_S * 60
    print(f"growth rate measured {rate / MIB:.0f} MiB/min, expected {expected / MIB:.0f}")
    assert rate == pytest.approx(expected, rel=0.10)


def test_cli_profiles_a_command_and_reports_its_growth(forge_home: Path) -> None:
    """The command sleeps 1 s (interpreter start-up done), then grows by 40 MiB. The profile's
    own samples give the growth: peak minus the last sample before the allocations began."""
    proc = run_forge("benchmark", "profile", "--samples", "30", "--interval", "0.1", "--json",
                     "--", sys.executable, "-c", GROWER, "1.0", check=True)
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "profile" and doc["target"]["kind"] == "command"
    assert doc["target"]["terminated"] is True  # it sleeps 60 s after growing
    snaps = doc["snapshots"]
    assert len(snaps) == 30
    base = [s for s in snaps if s["t_s"] <= 0.8][-1]["rss_bytes"]
    growth = doc["summary"]["peak_rss_bytes"] - base
    print(f"CLI growth measured {growth / MIB:.2f} MiB, expected {EXPECTED_GROWTH / MIB:.0f}")
    assert growth == pytest.approx(EXPECTED_GROWTH, rel=0.10)
    assert doc["summary"]["range_bytes"] >= growth
    last = snaps[-1]  # the child holds its 40 MiB: every figure follows from what it does
    assert EXPECTED_GROWTH < last["uss_bytes"] <= last["pss_bytes"] <= last["rss_bytes"] \
        <= last["vms_bytes"], last
    assert last["threads"] == 1 and last["processes"] == 1  # `python -c`, one thread, no child
    assert 0 <= last["cpu_percent"] <= 100  # one thread: at most one core
    assert 0 < last["system_memory_percent"] < 100
    saved = list((forge_home / "profiles").glob("*.json"))
    assert [p.name for p in saved] == [f"{doc['id']}.json"]
    assert json.loads(saved[0].read_text())["summary"] == doc["summary"]


def test_cli_command_and_its_children_are_ended(forge_home: Path) -> None:
    proc = run_forge("benchmark", "profile", "--samples", "4", "--interval", "0.1", "--json",
                     "--no-save", "--", "sh", "-c", "sleep 41.5 & sleep 42.5; wait", check=True)
    doc = json.loads(proc.stdout)
    assert doc["target"]["terminated"] is True and doc["target"]["exit_code"] == -15
    assert max(s["processes"] for s in doc["snapshots"]) == 3  # sh and both sleeps
    # forge has exited; its command's children are gone once init has reaped them
    wait_until("the command's children are gone", lambda: not [
        p for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] in (["sleep", "41.5"], ["sleep", "42.5"])], 10)
    assert not (forge_home / "profiles").exists()


def vmrss(pids: list[int]) -> int:
    """Summed VmRSS of ``pids`` from /proc/PID/status, in bytes."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def test_cli_default_target_is_the_docker_daemon(forge_home: Path) -> None:
    daemon_pids = [p.pid for p in psutil.process_iter(["name"])
                   if p.info["name"] in ("dockerd", "containerd")]
    rss_before = vmrss(daemon_pids)
    proc = run_forge("benchmark", "profile", "--samples", "3", "--interval", "0.1", "--json",
                     check=True)
    rss_after = vmrss(daemon_pids)
    doc = json.loads(proc.stdout)
    target = doc["target"]
    assert target["kind"] == "daemon" and target["engine"] == "docker"
    assert "profiling the docker daemon" in proc.stderr
    assert {"dockerd", "containerd"} <= set(target["names"])
    daemons = {p.pid for p in psutil.process_iter(["name"])
               if p.info["name"] in ("dockerd", "containerd")}
    assert set(target["pids"]) == daemons
    # VmRSS from /proc read by the test just before and after: the daemons' memory moves as
    # other tests start containers, so the profile's average lies within what was seen
    # around it, give or take 10% (a busy dockerd gains or frees a few MiB in a second)
    low, high = min(rss_before, rss_after), max(rss_before, rss_after)
    assert low * 0.9 <= doc["summary"]["avg_rss_bytes"] <= high * 1.1, (low, doc["summary"],
                                                                         high)
    assert len(doc["snapshots"]) == 3 and doc["warnings"] == []


def test_cli_human_output_and_tracemalloc(forge_home: Path) -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        human = run_forge("benchmark", "profile", "--pid", str(child.pid), "--samples", "2",
                          "--interval", "0.1", "--tracemalloc", check=True)
        as_json = run_forge("benchmark", "profile", "--pid", str(child.pid), "--samples", "2",
                            "--interval", "0.1", "--tracemalloc", "--json", "--no-save",
                            check=True)
    finally:
        child.kill()
        child.wait()
    assert f"sleep ({child.pid})" in human.stdout and "RSS avg" in human.stdout
    assert "Python allocations still alive in forge's own process" in human.stdout
    assert "saved " in human.stdout
    doc = json.loads(as_json.stdout)
    assert doc["tracemalloc_top"] and {"site", "size_bytes", "count"} <= \
        set(doc["tracemalloc_top"][0])
    assert "forge's own process" in doc["tracemalloc_scope"]
    help_text = run_forge("benchmark", "profile", "--help", check=True).stdout
    assert "forge's own process" in help_text


def test_pid_exiting_mid_profile_keeps_the_samples(forge_home: Path) -> None:
    child = subprocess.Popen(["sleep", "2"])  # forge starts in well under 2 s
    try:
        proc = run_forge("benchmark", "profile", "--pid", str(child.pid), "--samples", "20",
                         "--interval", "0.2", "--json")
    finally:
        child.wait()
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert 1 <= len(doc["snapshots"]) < 20 and doc["ended_early"] is True
    assert any(ln.startswith("warning:") and "exited after" in ln and "samples taken are kept"
               in ln for ln in proc.stderr.splitlines()), proc.stderr
    assert (forge_home / "profiles" / f"{doc['id']}.json").exists()


@pytest.mark.parametrize(("args", "code", "needles"), [
    (("--samples", "0"), 2, ("--samples", "between 1 and 100000")),
    (("--interval", "0"), 2, ("--interval", "more than 0")),
    (("--interval", "3601"), 2, ("--interval",)),
    (("--pid", "999999999"), 1, ("no process with pid 999999999",)),
    (("--pid", "abc"), 2, ("--pid",)),
    (("--pid", "1", "--", "true"), 2, ("not both",)),
    (("--", "/nonexistent/forge-cmd"), 2, ("command not found",)),
])
def test_bad_input_is_one_line(forge_home: Path, args: tuple[str, ...], code: int,
                               needles: tuple[str, ...]) -> None:
    proc = run_forge("benchmark", "profile", *args)
    assert_one_line_error(proc, *needles)
    assert proc.returncode == code, proc.stderr
    assert not (forge_home / "profiles").exists() or not any((forge_home / "profiles").iterdir())


# -- resources --------------------------------------------------------------------------------
@pytest.fixture(name="busy_loop")
def busy_loop_fixture() -> Iterator[int]:
    with busy_loop() as pid:
        yield pid


def _docker_counts() -> tuple[int, int]:
    running = sh(DOCKER, "ps", "-q").stdout.split()
    total = sh(DOCKER, "ps", "-aq").stdout.split()
    return len(running), len(total)


def _podman_counts() -> tuple[int, int]:
    return (len(sh("podman", "ps", "-q").stdout.split()),
            len(sh("podman", "ps", "-aq").stdout.split()))


@pytest.fixture
def own_docker_containers() -> Iterator[None]:
    """One running and one created container of this test, so the counts are not zero."""
    ids = []
    try:
        for argv in (("run", "-d", "--network", "none"), ("create", "--network", "none")):
            out = sh(DOCKER, *argv, "forge-bench:busybox", "sleep", "600")
            assert out.returncode == 0, out.stderr
            ids.append(out.stdout.strip())
        yield
    finally:
        if ids:
            sh(DOCKER, "rm", "-f", *ids)


def test_resources_json_has_every_key_and_true_counts(forge_home: Path,
                                                       own_docker_containers: None,
                                                       busy_loop: int) -> None:
    # other sessions may start containers meanwhile: the count must lie between what
    # `docker ps` says just before and just after (retried if the engine was busy)
    for _attempt in range(3):
        before, before_p = _docker_counts(), _podman_counts()
        proc = run_forge("benchmark", "resources", "--json", check=True)
        after, after_p = _docker_counts(), _podman_counts()
        if before == after and before_p == after_p:
            break
    data = json.loads(proc.stdout)
    cpu = data["cpu"]
    assert cpu["count"] == psutil.cpu_count() and cpu["physical_count"] >= 1
    assert len(cpu["per_core_percent"]) == cpu["count"]
    assert all(0 <= p <= 100 for p in cpu["per_core_percent"]) and 0 <= cpu["percent"] <= 100
    assert cpu["model"] and len(cpu["load_avg"]) == 3 and all(x >= 0 for x in cpu["load_avg"])
    mem = data["memory"]
    assert mem["total_bytes"] == psutil.virtual_memory().total
    assert 0 < mem["available_bytes"] <= mem["total_bytes"] and 0 < mem["used_percent"] < 100
    assert data["swap"]["total_bytes"] >= data["swap"]["used_bytes"] >= 0
    fh = data["disk"]["forge_home"]
    assert fh["path"] == str(forge_home)
    assert 0 < fh["free_bytes"] <= fh["total_bytes"] and 0 < fh["used_percent"] < 100
    stores = {s["engine"]: s for s in data["disk"]["stores"]}
    assert stores["docker"]["path"] == "/var/lib/docker"
    assert stores["podman"]["path"] == "/var/lib/containers/storage"
    assert all(s["source"] == "info" and s["total_bytes"] > 0 for s in stores.values())
    docker, podman = data["containers"]["docker"], data["containers"]["podman"]
    assert before[0] <= docker["running"] <= after[0] or after[0] <= docker["running"] <= \
        before[0], (before, docker, after)
    assert min(before[1], after[1]) <= docker["total"] <= max(before[1], after[1])
    assert docker["running"] >= 1 and docker["total"] >= 2
    assert min(before_p[1], after_p[1]) <= podman["total"] <= max(before_p[1], after_p[1])
    assert min(before_p[0], after_p[0]) <= podman["running"] <= max(before_p[0], after_p[0])
    assert any(f"(pid {busy_loop})" in w for w in data["noise_warnings"]), data


def test_engine_facts_from_the_real_engines(own_docker_containers: None) -> None:
    """Counts and store paths as `docker` and `podman` themselves give them."""
    from forge_desktop.runtimes.docker import DockerRuntime
    from forge_desktop.runtimes.podman import PodmanRuntime

    runtimes: list[Runtime] = [DockerRuntime(10), PodmanRuntime(10)]
    try:
        for _attempt in range(3):  # other sessions start containers too: bracket the reading
            before, before_p = _docker_counts(), _podman_counts()
            docker, podman = system.engine_facts(runtimes)
            after, after_p = _docker_counts(), _podman_counts()
            if before == after and before_p == after_p:
                break
    finally:
        for rt in runtimes:
            rt.close()
    assert (docker.running, docker.total) == before and (podman.running, podman.total) == \
        before_p, (docker, before, after, podman, before_p, after_p)
    assert docker.reason is None and podman.reason is None
    assert (docker.store_path, docker.store_source) == (
        sh(DOCKER, "info", "-f", "{{.DockerRootDir}}").stdout.strip(), "info")
    assert (podman.store_path, podman.store_source) == (
        sh("podman", "info", "-f", "{{.Store.GraphRoot}}").stdout.strip(), "info")


def test_engine_facts_of_a_stopped_and_a_hung_daemon(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    from forge_desktop.runtimes.docker import DockerRuntime

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    [down] = system.engine_facts([DockerRuntime(5)])
    assert (down.running, down.total) == (None, None) and "not running" in (down.reason or "")
    # a daemon that accepts connections and never answers: the engine's timeout applies
    hung_path = tmp_path / "hung.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(hung_path))
    server.listen(64)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{hung_path}")
    try:
        t0 = time.monotonic()
        [hung] = system.engine_facts([DockerRuntime(1)])
        elapsed = time.monotonic() - t0
    finally:
        server.close()
    assert (hung.running, hung.total) == (None, None), hung
    assert "did not answer in time" in (hung.reason or ""), hung.reason
    # one call given up after the runtime's 1 s (not the default 30 s), plus 2 s of margin
    # for a loaded machine
    assert elapsed < 1 + 2, elapsed


def test_resources_human_panels(forge_home: Path) -> None:
    out = run_forge("benchmark", "resources", check=True).stdout
    for title in ("CPU", "Memory", "Disk", "Containers", "Noise", "FORGE_HOME",
                  "docker store", "podman store"):
        assert title in out, title
    assert "cpu0" in out and "load" in out


def test_startup_result_carries_noise_warnings(forge_home: Path, busy_loop: int) -> None:
    doc = json.loads(run_forge("benchmark", "startup", "-r", "runc", "-n", "2", "--json",
                               check=True).stdout)
    assert any(f"(pid {busy_loop})" in w for w in doc["environment"]["noise_warnings"]), doc


def test_command_exiting_at_once(forge_home: Path) -> None:
    proc = run_forge("benchmark", "profile", "--samples", "5", "--interval", "0.1", "--json",
                     "--", "true", check=True)
    doc = json.loads(proc.stdout)
    assert doc["target"]["exit_code"] == 0 and doc["target"]["terminated"] is False
    assert len(doc["snapshots"]) <= 1


def test_ctrl_c_saves_the_partial_profile_and_ends_the_command(forge_home: Path) -> None:
    forge = subprocess.Popen([sys.executable, "-m", "forge_desktop", "benchmark", "profile",
                              "--samples", "1000", "--interval", "0.1", "--", "sleep", "43.5"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def command_age_s() -> float:
            children = [c for c in psutil.Process(forge.pid).children()
                        if c.cmdline() == ["sleep", "43.5"]]
            return time.time() - children[0].create_time() if children else 0.0

        # forge samples its command every 0.1 s from the moment it starts it: once the command
        # is 1 s old there are ~10 snapshots, at least 3 however slow a sample is to take
        wait_until("forge's command has run for 1 s", lambda: command_age_s() >= 1.0, 30,
                   forge)
        forge.send_signal(signal.SIGINT)
        out, err = forge.communicate(timeout=20)
    finally:
        if forge.poll() is None:
            forge.kill()
            forge.wait()
    assert forge.returncode == 130, err
    errors = [ln for ln in err.splitlines() if ln.startswith("forge: error:")]
    assert len(errors) == 1 and "interrupted after" in errors[0], err
    assert "partial profile was saved" in errors[0] and "Traceback" not in err
    [saved] = (forge_home / "profiles").glob("*.json")
    doc = json.loads(saved.read_text())
    assert doc["interrupted"] is True and len(doc["snapshots"]) >= 3
    assert doc["target"]["terminated"] is True
    assert "RSS avg" in out
    assert not [p for p in psutil.process_iter(["cmdline"])
                if p.info["cmdline"] == ["sleep", "43.5"]]
