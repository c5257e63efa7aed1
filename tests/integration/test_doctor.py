"""`forge doctor` on the real machine: every check named, leftovers found and fixed."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from forge_desktop.hostfacts import cgroup_version
from tests.conftest import run_forge
from tests.engines import PrivateDockerd
from tests.engines import sh as engine_sh
from tests.integration.conftest import DOCKER


def checks(*args: str) -> tuple[int, dict[str, dict[str, str]]]:
    proc = run_forge("doctor", "--json", *args, timeout=120)
    return proc.returncode, {c["name"]: c for c in json.loads(proc.stdout)}


def test_doctor_reports_each_check_with_a_fix(forge_home: Path) -> None:
    code, found = checks()
    for name in ("FORGE_HOME", "runtime docker", "runtime podman", "runtime runc",
                 "runtime crun", "tray host", "notifications", "noise"):
        assert any(k.startswith(name) for k in found), (name, list(found))
    assert found["runtime docker"]["status"] == "ok"
    # crun too, on a cgroup v1 hybrid host in its cgroup2 namespace (tests/integration/test_oci)
    assert found["runtime crun"]["status"] == "ok", found["runtime crun"]
    if cgroup_version() == "hybrid":
        assert "(cgroup2 namespace, no cgroup limits)" in found["runtime crun"]["detail"]
    assert found["leftovers on docker"]["status"] == "ok"
    problems = [c for c in found.values() if c["status"] != "ok"]
    assert code == (1 if problems else 0)
    for c in problems:
        assert c["detail"], c


def test_doctor_finds_and_fixes_leftovers_of_dead_runs(forge_home: Path,
                                                       dockerd: PrivateDockerd) -> None:
    """A dead run's container on a dockerd of the test's own: on the shared one, any forge run
    of another session sweeps it first (that is what a sweep is for) and doctor finds none."""
    cid = engine_sh(DOCKER, "create", "--label", "io.forge.benchmark=dead", "--label",
                    f"io.forge.owner={socket.gethostname()}/999999/1", "forge-bench:busybox",
                    "true", env=dockerd.env).stdout.strip()
    assert cid
    try:
        code, found = checks_with_env(dockerd.env)
        assert code == 1 and found["leftovers on docker"]["status"] == "fail", found
        assert "--fix" in found["leftovers on docker"]["fix"]
        _code, found = checks_with_env(dockerd.env, "--fix")
        assert found["leftovers on docker"]["status"] == "ok"
        assert cid[:12] not in engine_sh(DOCKER, "ps", "-aq", env=dockerd.env).stdout
    finally:
        engine_sh(DOCKER, "rm", "-f", cid, env=dockerd.env)


def test_doctor_flags_a_socket_it_cannot_reach(forge_home: Path, tmp_path: Path) -> None:
    code, found = checks_with_env({"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert code == 1
    assert found["runtime docker"]["status"] == "fail"
    assert found["docker socket"]["status"] == "fail"
    assert "does not exist" in found["docker socket"]["detail"]


def checks_with_env(env: dict[str, str], *args: str) -> tuple[int, dict[str, dict[str, str]]]:
    proc = run_forge("doctor", "--json", *args, env=env, timeout=120)
    return proc.returncode, {c["name"]: c for c in json.loads(proc.stdout)}
