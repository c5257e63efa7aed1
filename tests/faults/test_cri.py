"""The cri runtime's private containerd under faults: SIGINT and SIGKILL of forge mid-run, and
the containerd itself killed or frozen mid-run.

Every run here gets a FORGE_HOME of its own, hence a private containerd of its own (root under
FORGE_HOME, state and socket under /run/forge-cri/<key of FORGE_HOME>): nothing here touches a
containerd the machine or another test runs. What a run left is looked up through that
containerd's own socket (the CRI's ListPodSandbox, while it runs) and in its state directory
and process table (the shims, which outlive containerd): both scoped to this test's FORGE_HOME.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from forge_desktop.models import LABEL_OWNER
from tests.conftest import assert_one_line_error
from tests.faults.conftest import (
    SIGNAL_EXIT_S,
    TIMEOUT_S,
    Forge,
    Spawn,
    base_env,
    kill_tree,
    processes_mentioning,
    record,
    results,
    still_running,
    wait_for,
    write_timeout,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a private containerd needs root")

CONTAINERD_EXIT_S = TIMEOUT_S + 5.0
"""The issue's bound for a private containerd that dies or freezes mid-run: one line within
the timeout plus 5 s."""
SWEEP_S = 60.0
"""Guard on the run after a killed one (a containerd start, image import and the sweep; about
6 s here): a hang guard, not a measurement."""
CRI_ENV = ("CONTAINER_RUNTIME_ENDPOINT",)


def env() -> dict[str, str]:
    """The shared engines' defaults and no CRI endpoint: forge starts its private containerd
    (the machine has no CRI socket of its own)."""
    return {k: v for k, v in base_env().items() if k not in CRI_ENV}


class Private:
    """The private containerd of one FORGE_HOME, seen from outside forge."""

    def __init__(self) -> None:
        from forge_desktop.runtimes.cri import PrivateContainerd

        self.paths = PrivateContainerd(TIMEOUT_S)  # of FORGE_HOME, set by forge_home
        self.state = self.paths.state

    def daemons(self) -> list[psutil.Process]:
        return [p for p in processes_mentioning(str(self.paths.config))
                if p.name() == "containerd"]

    def pid(self) -> int:
        (daemon,) = self.daemons()
        return daemon.pid

    def shims(self) -> list[psutil.Process]:
        """containerd-shim-runc-v2 processes serving pods of this containerd (they name its
        socket on their command line and outlive it)."""
        return [p for p in processes_mentioning(str(self.paths.socket))
                if p.name().startswith("containerd-shim")]

    def pods_of(self, pid: int) -> list[str]:
        """Sandboxes of forge process ``pid``, through the running private containerd."""
        import grpc

        from forge_desktop.runtimes.cri_api import cri_pb2
        from forge_desktop.runtimes.cri_api.cri_pb2_grpc import RuntimeServiceStub

        if not self.paths.socket.exists():
            return []
        with grpc.insecure_channel(self.paths.address) as channel:
            try:
                items = RuntimeServiceStub(channel).ListPodSandbox(
                    cri_pb2.ListPodSandboxRequest(), timeout=5).items
            except grpc.RpcError:
                return []
        return [p.id for p in items if p.labels.get(LABEL_OWNER, "").split("/")[1:2]
                == [str(pid)]]

    def left(self) -> dict[str, object]:
        """What is left of this FORGE_HOME's private containerd and its pods: nothing, after
        a run that cleaned up."""
        found: dict[str, object] = {}
        if self.daemons():
            found["containerd"] = [p.pid for p in self.daemons()]
        if self.shims():
            found["shims"] = [p.pid for p in self.shims()]
        if self.paths.has_leftovers():
            found["tasks in state"] = sorted(
                p.name for p in (self.state / "io.containerd.runtime.v2.task" / "k8s.io")
                .iterdir())
        return found

    def remove(self) -> None:
        """After the test: whatever a failure left (processes, mounts, state)."""
        kill_tree(self.daemons() + self.shims())
        import shutil
        import subprocess

        # the shims' rootfs mounts sit under the state directory until they are gone
        mounts = [ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines()
                  if ln.split()[1].startswith(str(self.state))]
        for point in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", point], check=False, timeout=30)
        shutil.rmtree(self.state, ignore_errors=True)


@pytest.fixture
def private(forge_home: Path) -> Iterator[Private]:
    p = Private()
    yield p
    p.remove()


def start_measuring(spawn: Spawn, private: Private, *args: str) -> Forge:
    forge: Forge = spawn(*args, env=env())
    wait_for("a pod of the run", lambda: bool(private.pods_of(forge.pid)), 90,
             interval_s=0.02, alive=forge.proc)
    return forge


def sweep(spawn: Spawn, private: Private) -> float:
    """The next run (startup, one iteration) sweeps what an earlier one left; its time."""
    t0 = time.monotonic()
    sweeper: Forge = spawn("benchmark", "startup", "-r", "cri", "-n", "1", "--warmup", "0",
                           "--no-save", env=env())
    done = sweeper.finish(timeout=SWEEP_S)
    took = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    return took


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_cri_run_leaves_nothing(forge_home: Path, private: Private, spawn: Spawn,
                                           sig: signal.Signals) -> None:
    forge = start_measuring(spawn, private, "benchmark", "startup", "-r", "cri", "-n", "500",
                            "--warmup", "0")
    daemon = private.daemons()
    assert len(daemon) == 1, "forge did not start a private containerd"
    children = [*psutil.Process(forge.pid).children(recursive=True), *daemon]
    sent = time.monotonic()
    forge.signal_group(sig)
    proc = forge.finish(timeout=120)
    took_s = time.monotonic() - sent
    record("exit_s", took_s)
    print(f"{sig.name} during a cri run: exit {proc.returncode} {took_s:.2f} s after it")
    assert proc.returncode == 130, proc.stderr
    assert_one_line_error(proc, "interrupted")
    assert still_running(children) == [], "processes forge started outlived it"
    assert private.left() == {}
    assert results(forge_home) == []
    assert took_s < SIGNAL_EXIT_S, f"exit {took_s:.2f} s after {sig.name}"


@pytest.mark.parametrize("kind", ["startup", "memory"])
def test_sigkill_then_next_run_sweeps_cri(forge_home: Path, private: Private, spawn: Spawn,
                                          kind: str) -> None:
    """SIGKILL: forge cleans nothing; its containerd ends with it (parent-death signal), the
    pods' shims stay. The next run's containerd, on the same root and state, takes them back,
    and its sweep removes the dead run's sandboxes."""
    args = {"startup": ("benchmark", "startup", "-r", "cri", "-n", "500", "--warmup", "0"),
            "memory": ("benchmark", "memory", "-r", "cri", "--containers", "20")}[kind]
    forge = start_measuring(spawn, private, *args)
    if kind == "memory":
        wait_for("three pods of the run", lambda: len(private.pods_of(forge.pid)) >= 3, 90,
                 alive=forge.proc)
    daemon = private.daemons()
    forge.signal_group(signal.SIGKILL)
    proc = forge.finish(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    wait_for("the killed run's containerd to end with it", lambda: not still_running(daemon),
             30)
    assert private.shims(), "expected the killed run's pods to outlive it"
    swept_s = sweep(spawn, private)
    record("sweep_run_s", swept_s)
    print(f"SIGKILL of forge during cri {kind}: swept by the next run in {swept_s:.2f} s")
    assert private.left() == {}
    assert results(forge_home) == []


def test_private_containerd_killed_mid_run(forge_home: Path, private: Private,
                                           spawn: Spawn) -> None:
    write_timeout(forge_home)
    forge = start_measuring(spawn, private, "benchmark", "startup", "-r", "cri", "-n", "300",
                            "--warmup", "0")
    killed = time.monotonic()
    os.kill(private.pid(), signal.SIGKILL)
    proc = forge.finish(timeout=60)
    took_s = time.monotonic() - killed
    record("exit_s", took_s)
    print(f"private containerd SIGKILL: exit {proc.returncode} {took_s:.2f} s after the kill: "
          f"{proc.stderr.strip()[-300:]}")
    assert_one_line_error(proc, "cri")
    assert "did not answer within" not in proc.stderr, "a dead containerd taken for a hung one"
    assert took_s < CONTAINERD_EXIT_S, f"exit {took_s:.2f} s after the kill"
    sweep(spawn, private)
    assert private.left() == {}


def test_private_containerd_frozen_mid_run(forge_home: Path, private: Private,
                                           spawn: Spawn) -> None:
    """A frozen containerd answers nothing: the call in flight times out, the runtime is
    marked hung (no cleanup call waits again) and forge kills its own containerd (SIGKILL
    reaches a stopped process) rather than wait for a SIGTERM it would never handle."""
    write_timeout(forge_home)
    forge = start_measuring(spawn, private, "benchmark", "startup", "-r", "cri", "-n", "300",
                            "--warmup", "0")
    pid = private.pid()
    frozen = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    try:
        proc = forge.finish(timeout=90)
        took_s = time.monotonic() - frozen
        record("exit_s", took_s)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    print(f"private containerd SIGSTOP: exit {proc.returncode} {took_s:.2f} s after the "
          f"freeze: {proc.stderr.strip()[-300:]}")
    assert_one_line_error(proc, "cri", f"did not answer within {TIMEOUT_S} s")
    assert took_s >= TIMEOUT_S - 0.5, "forge gave up before its timeout"
    assert took_s < CONTAINERD_EXIT_S, f"exit {took_s:.2f} s after the freeze"
    assert not private.daemons(), "the frozen private containerd was left running"
    sweep(spawn, private)
    assert private.left() == {}
