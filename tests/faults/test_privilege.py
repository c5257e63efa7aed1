"""Least privilege, checked on the real engines and in the kernel's own view of the process.

A container started the way a benchmark starts one (each adapter's ``start_detached`` with a
``RunSpec``, labelled with the run) must hold no capability, be unable to gain any
(no_new_privs), see a read-only root filesystem, be bounded in memory and processes, see no
host path and no network. The engine's inspect output says what was asked for;
``/proc/<pid>/status``, ``mountinfo``, ``net/dev`` and the cgroup files say what the kernel
enforces. runc has no inspect: its bundle's config.json is checked, then the same kernel view.
Forge's own files: FORGE_HOME is created 0700 whatever the umask, results are written
through temporary files created exclusively (O_EXCL, 0600) in the target directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forge_desktop.image import prepare_image
from forge_desktop.models import LABEL_OWNER, LABEL_RUN, RunContext, RunSpec
from forge_desktop.results import store
from forge_desktop.runtimes.base import new_run_context
from forge_desktop.runtimes.docker import DockerRuntime
from forge_desktop.runtimes.oci import OciRuntime, run_dir_for
from forge_desktop.runtimes.podman import PodmanRuntime
from tests.conftest import REPO, run_forge
from tests.integration.conftest import DOCKER, engines_up, no_leaks, sh

__all__ = ["engines_up", "no_leaks"]  # autouse: the real engines must answer, nothing leaks

MEMORY_LIMIT = 64 * 1024 * 1024  # RunSpec's defaults: what every benchmark container gets
PIDS_LIMIT = 64


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (ln.partition(":") for ln in lines)}


def root_mount_options(pid: int) -> list[str]:
    """The per-mount options of the process's "/" (mountinfo field 6)."""
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return fields[5].split(",")
    raise AssertionError(f"no / in /proc/{pid}/mountinfo")


def interfaces(pid: int) -> list[str]:
    rows = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    return sorted(r.split(":")[0].strip() for r in rows)


def cgroup_limit(pid: int, controller: str) -> int | None:
    """The kernel's memory or pids limit for ``pid`` (cgroup v1 controller, or v2), None for
    no limit ("max")."""
    files = {"memory": ("memory.limit_in_bytes", "memory.max"), "pids": ("pids.max",
                                                                         "pids.max")}[controller]
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _num, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):  # v1 (or hybrid): the controller's tree
            value = (Path("/sys/fs/cgroup") / controller / path.lstrip("/") / files[0])
            break
    else:
        path = next(ln.split(":", 2)[2] for ln in Path(f"/proc/{pid}/cgroup").read_text()
                    .splitlines() if ln.startswith("0::"))
        value = Path("/sys/fs/cgroup") / path.lstrip("/") / files[1]
    text = value.read_text().strip()
    return None if text == "max" else int(text)


def assert_confined(pid: int, what: str) -> None:
    """What the kernel says about a benchmark container's process."""
    status = proc_status(pid)
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[cap], 16) == 0, (what, cap, status[cap])
    assert status["NoNewPrivs"] == "1", (what, status["NoNewPrivs"])
    assert "ro" in root_mount_options(pid), (what, root_mount_options(pid))
    assert interfaces(pid) == ["lo"], (what, interfaces(pid))
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net"), what
    assert cgroup_limit(pid, "memory") == MEMORY_LIMIT, what
    assert cgroup_limit(pid, "pids") == PIDS_LIMIT, what


def seccomp_mode(pid: int) -> int:
    return int(proc_status(pid).get("Seccomp", "0"))


@contextlib.contextmanager
def started(runtime: Any, ctx: RunContext) -> Iterator[tuple[str, int, RunSpec]]:
    """A container as the memory benchmark starts one (the benchmark image, prepared as a
    run prepares it); removed, and the run swept, afterwards."""
    image = prepare_image([runtime], ctx)
    spec = RunSpec(image=image, command=("sleep", "60"), network="none")
    cid = None
    try:
        runtime.prepare(spec, ctx)
        cid = runtime.start_detached(spec, ctx, 0)
        yield cid, runtime.container_pid(cid), spec
    finally:
        if cid is not None:
            runtime.remove_container(cid)
        runtime.cleanup(ctx.run_id)
        runtime.close()


def inspect(binary: list[str], cid: str) -> dict[str, Any]:
    out = sh(*binary, "inspect", cid)
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)[0]
    return data


ALL_DEFAULT_CAPS = {"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER",
                    "CAP_FSETID", "CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE",
                    "CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
                    "CAP_SYS_CHROOT"}
"""The engines' default set: what "drop ALL" has to take away."""


def test_docker_container_is_confined(forge_home: Path) -> None:
    rt, ctx = DockerRuntime(), new_run_context()
    with started(rt, ctx) as (cid, pid, _spec):
        info = inspect([DOCKER], cid)
        host = info["HostConfig"]
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["ReadonlyRootfs"] is True and host["Privileged"] is False
        assert host["Memory"] == MEMORY_LIMIT and host["PidsLimit"] == PIDS_LIMIT
        assert host["NetworkMode"] == "none"
        assert info["Mounts"] == [] and not host["Binds"]
        assert info["Config"]["Labels"][LABEL_RUN] == ctx.run_id
        assert info["Config"]["Labels"][LABEL_OWNER] == ctx.owner
        assert_confined(pid, "docker")
        assert seccomp_mode(pid) == 2  # the engine's default profile, a filter
        denied = sh(DOCKER, "exec", cid, "sh", "-c", "echo x > /forge-was-here")
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr


def test_podman_container_is_confined(forge_home: Path) -> None:
    rt, ctx = PodmanRuntime(), new_run_context()
    with started(rt, ctx) as (cid, pid, _spec):
        info = inspect(["podman", "--url", rt.endpoint], cid)
        host = info["HostConfig"]
        # podman lists what it dropped: every capability of its default set, none added
        assert set(host["CapDrop"]) >= ALL_DEFAULT_CAPS and not host["CapAdd"]
        assert not info.get("EffectiveCaps") and not info.get("BoundingCaps")
        assert "no-new-privileges" in host["SecurityOpt"]
        assert host["ReadonlyRootfs"] is True and host["Privileged"] is False
        assert host["Memory"] == MEMORY_LIMIT and host["PidsLimit"] == PIDS_LIMIT
        assert host["NetworkMode"] == "none"
        assert info["Mounts"] == [] and not host["Binds"]
        assert info["Config"]["Labels"][LABEL_RUN] == ctx.run_id
        assert_confined(pid, "podman")
        assert seccomp_mode(pid) == 2
        denied = sh("podman", "--url", rt.endpoint, "exec", cid, "sh", "-c",
                    "echo x > /forge-was-here")
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr


def test_runc_bundle_is_confined(forge_home: Path) -> None:
    rt, ctx = OciRuntime("runc"), new_run_context()
    with started(rt, ctx) as (cid, pid, spec):
        run_dir = run_dir_for(spec, ctx.run_id, rt.name)
        config = json.loads((run_dir / "config.json").read_text())
        process, linux = config["process"], config["linux"]
        assert process["capabilities"] and all(v == [] for v in process["capabilities"].values())
        assert process["noNewPrivileges"] is True
        assert config["root"]["readonly"] is True
        assert {ns["type"] for ns in linux["namespaces"]} >= {"network", "pid", "mount", "ipc",
                                                              "uts"}
        assert linux["resources"]["memory"]["limit"] == MEMORY_LIMIT
        assert linux["resources"]["pids"]["limit"] == PIDS_LIMIT
        for mount in config["mounts"]:  # the kernel filesystems of `runc spec`, no host path
            assert mount["type"] in {"proc", "tmpfs", "devpts", "mqueue", "sysfs", "cgroup"}, \
                mount
            assert not {"bind", "rbind"} & set(mount.get("options", [])), mount
        assert cid.startswith("forge-")
        assert_confined(pid, "runc")


# --- forge's own files ---------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ("benchmark", "startup", "-r", "nosuch", "-n", "1"),  # fails after creating the store
    ("image", "prepare", "-r", "runc"),  # `make run` runs this first
])
def test_forge_home_is_created_private_whatever_the_umask(tmp_path: Path,
                                                          argv: tuple[str, ...]) -> None:
    home = tmp_path / "forge-home"
    subprocess.run([sys.executable, "-m", "forge_desktop", *argv], capture_output=True,
                   env={**os.environ, "FORGE_HOME": str(home)}, umask=0, timeout=300,
                   check=False, cwd=REPO)
    assert home.is_dir(), argv
    assert home.stat().st_mode & 0o777 == 0o700, oct(home.stat().st_mode)
    if (home / "benchmarks").exists():
        assert (home / "benchmarks").stat().st_mode & 0o777 == 0o700


def test_results_are_private_and_written_through_exclusive_temp_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mkstemp in the target directory (O_CREAT|O_EXCL, 0600, a random name, the same
    filesystem, so the rename is atomic), whatever the umask; a symlink planted where the
    result goes is replaced, never written through."""
    directory = tmp_path / "benchmarks"
    directory.mkdir(mode=0o700)
    outside = tmp_path / "precious"
    outside.write_text("not forge's")
    run_id = "20260101T000000Z-abcdef"
    (directory / f"{run_id}.json").symlink_to(outside)
    made: list[tuple[str | None, str | None, str | None]] = []
    real_mkstemp = tempfile.mkstemp

    def recording_mkstemp(suffix: str | None = None, prefix: str | None = None,
                          dir: str | None = None, text: bool = False) -> tuple[int, str]:
        made.append((prefix, suffix, str(dir)))
        return real_mkstemp(suffix, prefix, dir, text)

    monkeypatch.setattr(tempfile, "mkstemp", recording_mkstemp)
    old_umask = os.umask(0)
    try:
        path = store.save({"schema_version": 1, "id": run_id, "kind": "startup",
                           "created_at": "2026-01-01T00:00:00Z", "runtimes": []}, directory)
    finally:
        os.umask(old_umask)
    assert made and all(d == str(directory) for _p, _s, d in made), made
    assert (".probe-", None, str(directory)) in made
    assert (f".{run_id}.json.", ".tmp", str(directory)) in made
    assert not path.is_symlink() and path.stat().st_mode & 0o777 == 0o600
    assert outside.read_text() == "not forge's"
    assert sorted(p.name for p in directory.iterdir()) == [f"{run_id}.json"]
    listed = run_forge("results", "list", "--json", env={"FORGE_HOME": str(tmp_path)},
                       check=True)
    assert [r["id"] for r in json.loads(listed.stdout)] == [run_id]
