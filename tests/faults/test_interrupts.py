"""Interruptions on the real engines: SIGINT and SIGTERM in the middle of every benchmark kind,
forge's temporary podman service under both, and SIGKILL followed by a new run that sweeps
what the killed run left.

Signals go to forge's whole process group, as a terminal's Ctrl-C or `kill -TERM -PGID` does:
forge and the children it runs at that moment (runc, docker) get them; forge's temporary
podman service runs in its own session precisely so that it survives until cleanup used it.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error
from tests.faults.conftest import (
    SIGNAL_EXIT_S,
    SWEEP_RUN_S,
    TEMP_SERVICE_EXIT_S,
    Forge,
    PrivateDockerd,
    PrivatePodman,
    Spawn,
    base_env,
    descendants,
    labelled,
    oci_ids,
    owned_by,
    record,
    results,
    still_running,
    temp_images_of,
    temporary_services,
    wait_for,
)

SHARED = ("-r", "docker", "-r", "podman", "-r", "runc")


def run_is_mid(kind: str, pid: int) -> bool:
    """True once the run is measuring: a labelled container (or for the image benchmark, a
    temporary image) of this forge process exists on a shared engine."""
    if kind == "image":
        return bool(temp_images_of(pid, "docker") or temp_images_of(pid, "podman"))
    return bool(owned_by(pid, labelled("docker")) or owned_by(pid, labelled("podman"))
                or oci_ids(pid))


ARGS = {
    "startup": ("benchmark", "startup", *SHARED, "-n", "500", "--warmup", "0"),
    "memory": ("benchmark", "memory", *SHARED, "--containers", "20"),
    "image": ("benchmark", "image", "-r", "docker", "-r", "podman", "--source", "load",
              "-n", "200"),
    "compare": ("benchmark", "compare", *SHARED, "-n", "500", "--warmup", "0"),
    "scale": ("benchmark", "scale", *SHARED, "--concurrency", "4,8", "-n", "500",
              "--warmup", "0"),
}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("kind", list(ARGS))
def test_signal_mid_run_leaves_nothing(shared_engines: None, forge_home: Path, spawn: Spawn,
                                       kind: str, sig: signal.Signals) -> None:
    forge: Forge = spawn(*ARGS[kind])
    wait_for(f"the {kind} run to be measuring", lambda: run_is_mid(kind, forge.pid), 90,
             alive=forge.proc)
    children = descendants(forge.pid)
    sent = time.monotonic()
    forge.signal_group(sig)
    proc = forge.finish(timeout=120)
    took_s = time.monotonic() - sent
    record("exit_s", took_s)
    print(f"{sig.name} during {kind}: exit 130 {took_s:.2f} s after the signal")
    assert proc.returncode == 130, proc.stderr
    assert_one_line_error(proc, "interrupted")
    assert owned_by(forge.pid, labelled("docker")) == []
    assert owned_by(forge.pid, labelled("podman")) == []
    assert oci_ids(forge.pid) == []
    assert temp_images_of(forge.pid, "docker") == [] == temp_images_of(forge.pid, "podman")
    assert still_running(children) == [], "processes forge started outlived it"
    assert results(forge_home) == [], "an interrupted run must not save a result"
    assert took_s < SIGNAL_EXIT_S, f"exit {took_s:.2f} s after {sig.name}"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_with_temporary_podman_service(private_podman: PrivatePodman, forge_home: Path,
                                              spawn: Spawn, sig: signal.Signals) -> None:
    """No socket at the default path and CONTAINER_HOST unset: forge starts its own podman
    API service for the run. Interrupted, it removes its containers through that service and
    then stops the service."""
    pod = private_podman
    forge: Forge = spawn("benchmark", "memory", "-r", "podman", "--containers", "20",
                         env=pod.storage_env, wrap=pod.hidden_socket)
    wait_for("two containers of the run", lambda: len(owned_by(
        forge.pid, labelled("podman", pod.storage_env))) >= 2, 60, alive=forge.proc)
    services = temporary_services(forge.pid)
    assert len(services) == 1, "forge did not start a temporary podman service"
    assert "forge-podman-" in " ".join(services[0].cmdline())
    service_dir = Path(services[0].cmdline()[-1].removeprefix("unix://")).parent
    children = descendants(forge.pid)
    sent = time.monotonic()
    forge.signal_group(sig)
    proc = forge.finish(timeout=120)
    took_s = time.monotonic() - sent
    record("exit_s", took_s)
    print(f"{sig.name} with a temporary podman service: exit 130 {took_s:.2f} s after it")
    assert proc.returncode == 130, proc.stderr
    assert_one_line_error(proc, "interrupted")
    assert owned_by(forge.pid, labelled("podman", pod.storage_env)) == []
    assert still_running(services) == [], "the temporary podman service outlived forge"
    assert still_running(children) == []
    assert not service_dir.exists(), f"{service_dir} was left behind"
    assert results(forge_home) == []
    assert took_s < TEMP_SERVICE_EXIT_S, f"exit {took_s:.2f} s after {sig.name}"


# -- SIGKILL: nothing in forge can clean up; the next run must --------------------------------

def _sigkill_then_sweep(spawn: Spawn, forge_home: Path, runtime: str, env: dict[str, str],
                        leftovers: Callable[[int], Sequence[object]],
                        wrap: tuple[str, ...] = (),
                        args: tuple[str, ...] = ("benchmark", "memory", "--containers", "20")
                        ) -> dict[str, float]:
    forge: Forge = spawn(*args, "-r", runtime, env=env, wrap=wrap)
    wait_for("three running containers of the run", lambda: len(leftovers(forge.pid)) >= 3,
             60, alive=forge.proc)
    services = temporary_services(forge.pid)
    forge.signal_group(signal.SIGKILL)
    proc = forge.finish(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    left = leftovers(forge.pid)
    assert len(left) >= 3, f"expected the killed run's containers to remain, found {left}"
    t0 = time.monotonic()
    sweeper: Forge = spawn("benchmark", "startup", "-r", runtime, "-n", "1", "--warmup", "0",
                           "--no-save", env=env, wrap=wrap)
    done = sweeper.finish(timeout=120)
    swept_s = time.monotonic() - t0
    record("sweep_run_s", swept_s)
    print(f"SIGKILL of forge on {runtime}: {len(left)} containers left, swept by the next "
          f"run in {swept_s:.2f} s")
    assert done.returncode == 0, done.stderr
    assert leftovers(forge.pid) == [], "the next run did not sweep the killed run's leftovers"
    assert results(forge_home) == []
    assert swept_s < SWEEP_RUN_S, f"the sweeping run took {swept_s:.2f} s"
    return {"left": len(left), "services": len(services),
            "services_alive": len(still_running(services))}


def test_sigkill_then_next_run_sweeps_docker(dockerd: PrivateDockerd, forge_home: Path,
                                             spawn: Spawn) -> None:
    _sigkill_then_sweep(spawn, forge_home, "docker", dockerd.env,
                        lambda pid: owned_by(pid, labelled("docker", dockerd.env)))
    assert dockerd.orphan_shims() == [], "containerd-shims outlived the swept containers"


def test_sigkill_of_scale_run_then_next_run_sweeps_docker(dockerd: PrivateDockerd,
                                                          forge_home: Path,
                                                          spawn: Spawn) -> None:
    """Eight lifecycles in flight when forge dies: their containers (created, running or
    exited, never removed) stay until the next run sweeps them."""
    _sigkill_then_sweep(spawn, forge_home, "docker", dockerd.env,
                        lambda pid: owned_by(pid, labelled("docker", dockerd.env)),
                        args=("benchmark", "scale", "--concurrency", "8", "-n", "1000",
                              "--warmup", "0"))
    assert dockerd.orphan_shims() == [], "containerd-shims outlived the swept containers"


def test_sigkill_then_next_run_sweeps_podman(podman: PrivatePodman, forge_home: Path,
                                             spawn: Spawn) -> None:
    _sigkill_then_sweep(spawn, forge_home, "podman", podman.env,
                        lambda pid: owned_by(pid, labelled("podman", podman.storage_env)))


def test_sigkill_then_next_run_sweeps_runc(shared_engines: None, forge_home: Path,
                                           spawn: Spawn) -> None:
    """runc's state is shared with every other forge run on this machine: the killed run's
    containers (forge-<pid>-...) are left for about a second, until the next run sweeps."""
    _sigkill_then_sweep(spawn, forge_home, "runc", base_env(), oci_ids)


def test_sigkill_with_temporary_podman_service(private_podman: PrivatePodman,
                                               forge_home: Path, spawn: Spawn) -> None:
    """SIGKILL leaves no chance to stop the temporary service forge started: it must end by
    itself with forge (parent-death signal) instead of serving for ever, and the next run
    (again without a socket) sweeps through the podman CLI what the killed run left."""
    pod = private_podman
    out = _sigkill_then_sweep(spawn, forge_home, "podman", pod.storage_env,
                              lambda pid: owned_by(pid, labelled("podman", pod.storage_env)),
                              wrap=pod.hidden_socket)
    assert out["services"] == 1
    assert out["services_alive"] == 0, "the temporary podman service outlived forge's SIGKILL"


def test_sigkill_of_image_benchmark_then_next_run_sweeps(dockerd: PrivateDockerd,
                                                         forge_home: Path, spawn: Spawn) -> None:
    """The run's temporary image (forge-bench-tmp:<token>-<pid>-<start>-<host>) outlives a
    SIGKILL; the next image run sees its owner is dead and removes it."""
    forge: Forge = spawn("benchmark", "image", "-r", "docker", "--source", "load", "-n", "200",
                         env=dockerd.env)
    kill_when(forge, lambda: bool(temp_images_of(forge.pid, "docker", dockerd.env)), 60)
    left = temp_images_of(forge.pid, "docker", dockerd.env)
    assert left, "the killed run's temporary image should still be there"
    sweeper: Forge = spawn("benchmark", "image", "-r", "docker", "--source", "load", "-n", "1",
                           "--warmup", "0", "--no-save", env=dockerd.env)
    done = sweeper.finish(timeout=120)
    assert done.returncode == 0, done.stderr
    assert "left by forge runs that died" in done.stderr
    assert temp_images_of(forge.pid, "docker", dockerd.env) == []
    assert results(forge_home) == []


def kill_when(forge: Forge, predicate: Callable[[], bool], timeout_s: float) -> None:
    """SIGKILL forge at a moment ``predicate`` holds: freeze it (SIGSTOP), look, and kill or
    let it go on (SIGCONT) and look again, so the check and the kill see the same state."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert forge.running(), forge.finish().stderr
        forge.signal_group(signal.SIGSTOP)
        if predicate():
            forge.signal_group(signal.SIGKILL)
            forge.finish(timeout=30)
            return
        forge.signal_group(signal.SIGCONT)
        time.sleep(0.03)
    raise AssertionError("the state to kill forge in never came")
