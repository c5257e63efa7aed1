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
from pathlib import Path

import psutil
import pytest

from tests.conftest import assert_one_line_error
from tests.engines import PrivateCri
from tests.engines import cri_env as env
from tests.faults.conftest import (
    SIGNAL_EXIT_S,
    TIMEOUT_S,
    Forge,
    Spawn,
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
def start_measuring(spawn: Spawn, private_cri: PrivateCri, *args: str) -> Forge:
    forge: Forge = spawn(*args, env=env())
    wait_for("a pod of the run", lambda: bool(private_cri.pods_of(forge.pid)), 90,
             interval_s=0.02, alive=forge.proc)
    return forge


def sweep(spawn: Spawn, private_cri: PrivateCri) -> float:
    """The next run (startup, one iteration) sweeps what an earlier one left; its time."""
    t0 = time.monotonic()
    sweeper: Forge = spawn("benchmark", "startup", "-r", "cri", "-n", "1", "--warmup", "0",
                           "--no-save", env=env())
    done = sweeper.finish(timeout=SWEEP_S)
    took = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    return took


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_cri_run_leaves_nothing(forge_home: Path, private_cri: PrivateCri, spawn: Spawn,
                                           sig: signal.Signals) -> None:
    forge = start_measuring(spawn, private_cri, "benchmark", "startup", "-r", "cri", "-n", "500",
                            "--warmup", "0")
    daemon = private_cri.daemons()
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
    assert private_cri.left() == {}
    assert results(forge_home) == []
    assert took_s < SIGNAL_EXIT_S, f"exit {took_s:.2f} s after {sig.name}"


@pytest.mark.parametrize("kind", ["startup", "memory"])
def test_sigkill_then_next_run_sweeps_cri(forge_home: Path, private_cri: PrivateCri, spawn: Spawn,
                                          kind: str) -> None:
    """SIGKILL: forge cleans nothing; its containerd ends with it (parent-death signal), the
    pods' shims stay. The next run's containerd, on the same root and state, takes them back,
    and its sweep removes the dead run's sandboxes."""
    args = {"startup": ("benchmark", "startup", "-r", "cri", "-n", "500", "--warmup", "0"),
            "memory": ("benchmark", "memory", "-r", "cri", "--containers", "20")}[kind]
    forge = start_measuring(spawn, private_cri, *args)
    if kind == "memory":
        wait_for("three pods of the run", lambda: len(private_cri.pods_of(forge.pid)) >= 3, 90,
                 alive=forge.proc)
    daemon = private_cri.daemons()
    forge.signal_group(signal.SIGKILL)
    proc = forge.finish(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    wait_for("the killed run's containerd to end with it", lambda: not still_running(daemon),
             30)
    assert private_cri.shims(), "expected the killed run's pods to outlive it"
    swept_s = sweep(spawn, private_cri)
    record("sweep_run_s", swept_s)
    print(f"SIGKILL of forge during cri {kind}: swept by the next run in {swept_s:.2f} s")
    assert private_cri.left() == {}
    assert results(forge_home) == []


def test_private_containerd_killed_mid_run(forge_home: Path, private_cri: PrivateCri,
                                           spawn: Spawn) -> None:
    write_timeout(forge_home)
    forge = start_measuring(spawn, private_cri, "benchmark", "startup", "-r", "cri", "-n", "300",
                            "--warmup", "0")
    killed = time.monotonic()
    os.kill(private_cri.pid(), signal.SIGKILL)
    proc = forge.finish(timeout=60)
    took_s = time.monotonic() - killed
    record("exit_s", took_s)
    print(f"private containerd SIGKILL: exit {proc.returncode} {took_s:.2f} s after the kill: "
          f"{proc.stderr.strip()[-300:]}")
    assert_one_line_error(proc, "cri")
    assert "did not answer within" not in proc.stderr, "a dead containerd taken for a hung one"
    assert took_s < CONTAINERD_EXIT_S, f"exit {took_s:.2f} s after the kill"
    sweep(spawn, private_cri)
    assert private_cri.left() == {}


def test_private_containerd_frozen_mid_run(forge_home: Path, private_cri: PrivateCri,
                                           spawn: Spawn) -> None:
    """A frozen containerd answers nothing: the call in flight times out, the runtime is
    marked hung (no cleanup call waits again) and forge kills its own containerd (SIGKILL
    reaches a stopped process) rather than wait for a SIGTERM it would never handle."""
    write_timeout(forge_home)
    forge = start_measuring(spawn, private_cri, "benchmark", "startup", "-r", "cri", "-n", "300",
                            "--warmup", "0")
    pid = private_cri.pid()
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
    assert not private_cri.daemons(), "the frozen private containerd was left running"
    sweep(spawn, private_cri)
    assert private_cri.left() == {}
