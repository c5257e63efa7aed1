"""Bare OCI runtimes on the real machine: crun in its cgroup2 namespace where the host refuses
it (cgroup v1 hybrid), runc with cgroups, and both as a user who is not root.

On a hybrid host crun runs only in a private mount namespace with cgroup2 on /sys/fs/cgroup
and ``--cgroup-manager=disabled`` (forge_desktop/runtimes/nshelper.py): no cgroup limits, which
every result and table must say. On a cgroup v2 host plain crun works and has limits; the
expectations below follow the host (``cgroup_version()``), which is a fact of the machine,
not an answer the test accepts either way.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from forge_desktop.errors import EngineError, EngineTimeout
from forge_desktop.hostfacts import cgroup_version
from forge_desktop.models import RunContext, RunSpec
from forge_desktop.runtimes.nshelper import NamespaceHelper
from forge_desktop.runtimes.oci import NAMESPACE_NOTE, ROOTLESS_NOTE, OciRuntime
from tests.conftest import REPO, assert_one_line_error, run_forge
from tests.integration.conftest import sh

HYBRID = cgroup_version() == "hybrid"
NO_LIMITS = "not like-for-like: no cgroup limits"


def runtimes_json(env: dict[str, str] | None = None,
                  prefix: list[str] | None = None) -> dict[str, dict[str, object]]:
    if prefix is None:
        proc = run_forge("runtimes", "--json", env=env, check=True, timeout=120)
    else:
        proc = subprocess.run([*prefix, "runtimes", "--json"], capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
    return {i["name"]: i for i in json.loads(proc.stdout)}


def helpers_of(forge_home: Path) -> list[psutil.Process]:
    """Namespace helpers started by forge runs of this test (their FORGE_HOME is ours), alive
    or orphaned."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(a.endswith("nshelper.py") for a in p.info["cmdline"] or []) and \
                    p.environ().get("FORGE_HOME") == str(forge_home):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def crun_ids(fragment: str, runtime: str = "crun") -> list[str]:
    out = sh(runtime, "list", "--format", "json")
    assert out.returncode == 0, out.stderr
    return [c["id"] for c in json.loads(out.stdout or "null") or [] if fragment in c["id"]]


def run_dirs(forge_home: Path) -> list[Path]:
    return list(forge_home.glob("bundles/*/runs/*"))


def test_runtimes_lists_crun_available_with_its_mode(forge_home: Path) -> None:
    infos = runtimes_json()
    crun, runc = infos["crun"], infos["runc"]
    assert crun["available"] is True and crun["reason"] is None, crun
    assert runc["available"] is True and runc["cgroup_limits"] is True and runc["note"] is None
    if HYBRID:  # the plain probe failed ("cgroups in hybrid mode not supported")
        assert crun["cgroup_limits"] is False and crun["note"] == NAMESPACE_NOTE, crun
    else:
        assert crun["cgroup_limits"] is True and crun["note"] is None, crun
    table = run_forge("runtimes", check=True).stdout
    if HYBRID:
        assert NAMESPACE_NOTE in " ".join(table.split()), table


def test_startup_measures_crun_and_says_it_has_no_limits(forge_home: Path) -> None:
    proc = run_forge("benchmark", "startup", "-r", "crun", "-r", "runc", "--json", "-n", "5",
                     "--warmup", "1", check=True)
    doc = json.loads(proc.stdout)
    entries = {e["runtime"]: e for e in doc["runtimes"]}
    crun, runc = entries["crun"], entries["runc"]
    assert doc["complete"] and not crun["errors"] and not runc["errors"]
    assert len(crun["samples"]) == 5 and len(runc["samples"]) == 5
    # each sample is one `crun run` of `true`: milliseconds, never the run's timeout
    assert all(0 < s["total_ms"] < 30_000 for s in crun["samples"])
    assert crun["cgroup_limits"] is (not HYBRID) and runc["cgroup_limits"] is True
    expected = [f"crun: {NO_LIMITS}"] if HYBRID else []
    assert [w[:len(f"crun: {NO_LIMITS}")] for w in doc.get("like_for_like_warnings", [])] \
        == expected
    suffix = f"-{doc['id'].rsplit('-', 1)[-1]}-"
    assert crun_ids(suffix) == [] and crun_ids(suffix, "runc") == []
    assert run_dirs(forge_home) == []
    assert helpers_of(forge_home) == []

    table = run_forge("benchmark", "startup", "-r", "crun", "-r", "runc", "-n", "2",
                      "--warmup", "0", "--no-save", check=True).stdout
    flat = " ".join(table.split())
    assert ("crun: " + NO_LIMITS in flat) is HYBRID, table
    assert "runc: " + NO_LIMITS not in flat, table


@pytest.mark.skipif(not HYBRID, reason="crun has cgroups on this host: the refusal applies "
                    "only where it runs in its cgroup2 namespace")
def test_memory_refuses_crun_without_cgroups_in_one_line(forge_home: Path) -> None:
    proc = run_forge("benchmark", "memory", "-r", "crun", "--containers", "1", "--samples", "1")
    assert_one_line_error(proc, "crun runs without cgroups here", "forge benchmark startup")
    assert proc.returncode == 2
    assert not list(forge_home.glob("benchmarks/*.json"))
    assert helpers_of(forge_home) == [] and run_dirs(forge_home) == []


def _measuring(proc: subprocess.Popen[str], forge_home: Path) -> bool:
    """forge has entered the iterations: in the namespace mode prepare() wrote the run's
    bundle and then started the helper, right before the first iteration (the probe's
    helper has no run directory); plain crun has a container."""
    if not HYBRID:
        return bool(crun_ids(f"forge-{proc.pid}-"))
    if not run_dirs(forge_home):
        return False
    try:
        return any(any(a.endswith("nshelper.py") for a in c.cmdline())
                   for c in psutil.Process(proc.pid).children())
    except psutil.NoSuchProcess:
        return False


def test_sigint_mid_run_leaves_nothing(forge_home: Path) -> None:
    """Ctrl-C while crun iterations run: exit 130, no container, no run directory, no
    namespace helper left."""
    proc = subprocess.Popen([sys.executable, "-m", "forge_desktop", "benchmark", "startup",
                             "-r", "crun", "-n", "1000", "--warmup", "0", "--no-save"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _measuring(proc, forge_home):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "forge never started measuring crun"
            time.sleep(0.02)  # poll interval, not a wait for a state
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    assert crun_ids(f"forge-{proc.pid}-") == []
    assert run_dirs(forge_home) == []
    assert helpers_of(forge_home) == []


def test_helper_refuses_the_host_namespace_and_times_its_child() -> None:
    """The helper mounts cgroup2 only in a mount namespace of its own (never over the host's
    /sys/fs/cgroup); in one, it answers each request, enforces its timeout and goes on."""
    with pytest.raises(EngineError, match="not in a private mount namespace"):
        NamespaceHelper([], "test helper", 15)
    host_fs = sh("stat", "-fc", "%T", "/sys/fs/cgroup").stdout.strip()
    helper = NamespaceHelper(["unshare", "--mount", "--propagation", "private"], "test helper",
                             15)
    try:
        inside = helper.request("run", ["stat", "-fc", "%T", "/sys/fs/cgroup"], 10, "stat")
        assert inside["rc"] == 0 and inside["stdout"].strip() == "cgroup2fs"
        with pytest.raises(EngineTimeout, match="sleep did not finish within 0.5 s"):
            helper.request("timed", ["sleep", "5"], 0.5, "sleep")
        assert helper.request("timed", ["true"], 10, "true")["ms"] > 0
    finally:
        helper.close()
    assert helper.proc.returncode == 0
    assert sh("stat", "-fc", "%T", "/sys/fs/cgroup").stdout.strip() == host_fs


@pytest.mark.skipif(not HYBRID, reason="crun has cgroups on this host: no namespace helper")
def test_next_run_sweeps_a_dead_runs_crun_container(forge_home: Path) -> None:
    """A detached crun container started in the namespace by a forge process that is gone
    (its id names a dead owner) is removed by the next run's sweep, from outside the
    namespace."""
    run_forge("image", "prepare", "-r", "crun", check=True)
    rt = OciRuntime("crun")
    dead = RunContext(run_id="20260101T000000Z-dead00",
                      owner=f"{socket.gethostname()}/999999999/1")
    spec = RunSpec("forge-bench:busybox", command=("sleep", "600"))
    try:
        rt.prepare(spec, dead)
        cid = rt.start_detached(spec, dead, 1)
        pid = rt.container_pid(cid)
    finally:
        rt.close()  # the helper goes; the detached container stays, as after a crash
    assert sh("crun", "state", cid).returncode == 0
    try:
        run_forge("benchmark", "startup", "-r", "crun", "-n", "1", "--warmup", "0",
                  "--no-save", check=True)
        assert sh("crun", "state", cid).returncode != 0, "the sweep left the dead run's crun"
        assert not psutil.pid_exists(pid) or \
            psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    finally:
        sh("crun", "delete", "-f", cid)


def test_next_run_sweeps_a_half_made_runc_state_dir_of_a_dead_run(forge_home: Path) -> None:
    """A `runc run` killed with its forge (SIGKILL of the process group) between making the
    container's state directory and writing state.json leaves the directory and its
    exec.fifo: `runc list` skips it and `runc delete` cannot find it (found in /run/runc
    after CI runs of the fault suite, two a run). The next run's sweep removes it when its
    id names a dead owner, and never a live run's."""
    rt = OciRuntime("runc")
    root = rt.state_dir()
    token = secrets.token_hex(3)
    dead = root / f"forge-999999999-1-{token}-{secrets.randbelow(90) + 10}"
    live = root / f"forge-{os.getpid()}-{int(psutil.Process().create_time() * 100)}-{token}-1"
    # a dead owner's, but a `runc run` of that id still in flight (its id in a live argv)
    creating = root / f"forge-999999998-1-{token}-1"
    for d in (dead, live, creating):  # as runc makes them: the directory, then its fifo
        d.mkdir(mode=0o711)
        os.mkfifo(d / "exec.fifo", 0o622)
    holder = subprocess.Popen(["sh", "-c", "read _", creating.name], stdin=subprocess.PIPE)
    try:
        assert sh("runc", "list", "--format", "json").stdout.count(dead.name) == 0
        assert dead in rt.half_made(set())
        run_forge("benchmark", "startup", "-r", "runc", "-n", "1", "--warmup", "0",
                  "--no-save", check=True)
        assert not dead.exists(), "the sweep left a dead run's half-made runc state directory"
        assert live.exists(), "the sweep removed a live process's state directory"
        assert creating.exists(), "the sweep removed the directory of a create in flight"
    finally:
        holder.communicate(b"\n", timeout=30)
        for d in (dead, live, creating):
            if d.exists():
                (d / "exec.fifo").unlink(missing_ok=True)
                d.rmdir()


# --- as a user who is not root ---------------------------------------------------------------



def _user_pids(uid: int) -> list[int]:
    return [int(p) for p in sh("pgrep", "-U", str(uid)).stdout.split()]


def _cmdline(pid: int) -> list[str] | None:
    """A live process's command line; None for one that has exited (a zombie included: dead,
    only not yet reaped by its parent)."""
    try:
        proc = psutil.Process(pid)
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc.cmdline()
    except psutil.Error:
        return None


def _remove_user(name: str) -> None:
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    for pid in _user_pids(uid):  # only that throwaway user's processes, by id
        os.kill(pid, signal.SIGKILL)
    sh("userdel", "-r", "-f", name)


@pytest.fixture
def oci_user(tmp_path: Path) -> Iterator[tuple[pwd.struct_passwd, list[str], Path]]:
    """A throwaway user, their own FORGE_HOME, and the command that runs forge as them.

    Debian's own Python (3.11.2, whose tarfile has no extraction filters: forge's own
    safetar does the job) runs forge for them, with the suite's packages: the suite's
    interpreter may live under /root, which they cannot read. The user's runs prepare their
    own bundle, as a user's first run would."""
    name = f"forgeoci-{secrets.token_hex(3)}"  # its own: suites may run side by side
    created = sh("useradd", "-m", "-s", "/bin/sh", name)
    assert created.returncode == 0, created.stderr
    try:
        user = pwd.getpwnam(name)
        home = Path(user.pw_dir) / "forge-home"
        python = "/usr/bin/python3"
        check = sh(python, "-c", "import sys; print(sys.version_info[:2])")
        assert check.stdout.strip() == str(sys.version_info[:2]), \
            f"{python} is {check.stdout.strip()}: the venv's packages need {sys.version_info[:2]}"
        site = sysconfig.get_paths()["purelib"]
        prefix = ["runuser", "-u", name, "--", "env", "-i", f"HOME={user.pw_dir}",
                  "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", f"FORGE_HOME={home}",
                  f"PYTHONPATH={REPO}:{site}", python, "-m", "forge_desktop"]
        yield user, prefix, home
        # rootless podman keeps a pause process (`catatonit -P`) for the user's session by
        # design once `forge runtimes` asked it for its version: podman's, not a leak of ours
        left = [cmd for cmd in map(_cmdline, _user_pids(user.pw_uid))
                if cmd is not None and cmd[:2] != ["catatonit", "-P"]]
        assert left == [], left
    finally:
        _remove_user(name)
    assert sh("id", name).returncode != 0


def test_rootless_runc_and_crun_as_a_user_who_is_not_root(
        oci_user: tuple[pwd.struct_passwd, list[str], Path]) -> None:
    user, forge, home = oci_user
    infos = runtimes_json(prefix=forge)
    assert infos["runc"]["available"] is True, infos["runc"]["reason"]
    assert infos["runc"]["note"] == ROOTLESS_NOTE and infos["runc"]["cgroup_limits"] is False
    assert infos["crun"]["available"] is True, infos["crun"]["reason"]
    assert infos["crun"]["cgroup_limits"] is False
    assert infos["crun"]["note"] == (NAMESPACE_NOTE if HYBRID else ROOTLESS_NOTE)

    proc = subprocess.run([*forge, "benchmark", "startup", "-r", "runc", "-r", "crun", "-n",
                           "3", "--warmup", "1", "--json"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    for entry in doc["runtimes"]:
        assert not entry["errors"] and len(entry["samples"]) == 3, entry
        assert entry["cgroup_limits"] is False
    assert sorted(w.split(":")[0] for w in doc["like_for_like_warnings"]) == ["crun", "runc"]
    saved = list(home.glob("benchmarks/*.json"))
    assert len(saved) == 1 and saved[0].stat().st_uid == user.pw_uid
    # state of its own (no XDG_RUNTIME_DIR under runuser): empty once the run is over
    for name in ("runc", "crun"):
        state = home / "run" / name
        assert state.is_dir() and state.stat().st_uid == user.pw_uid
        assert list(state.iterdir()) == [], name
    assert run_dirs(home) == []


def test_rootless_oci_says_what_it_needs_in_one_line(
        oci_user: tuple[pwd.struct_passwd, list[str], Path]) -> None:
    """Where rootless cannot work, `forge runtimes` gives that user one line on what to do
    (here: a state directory it cannot create, as with no writable FORGE_HOME)."""
    _user, forge, _home = oci_user
    unwritable = ["FORGE_HOME=/proc/forge-home" if a.startswith("FORGE_HOME=") else a
                  for a in forge]
    infos = runtimes_json(prefix=unwritable)
    for name in ("runc", "crun"):
        assert infos[name]["available"] is False
        assert infos[name]["reason"] == (
            f"{name}: cannot create its state directory /proc/forge-home/run/{name}: "
            "No such file or directory; set XDG_RUNTIME_DIR or FORGE_HOME to a writable "
            "directory"), infos[name]["reason"]
