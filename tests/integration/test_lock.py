"""One benchmark at a time per FORGE_HOME, across processes and front ends (forge_desktop.lock),
with real forge processes running real runc benchmarks.

Every test starts a long ``forge benchmark startup -r runc -n 400`` (about 20 s of work at the
fastest, so it is still running whenever a test looks) and waits for the state it needs: the
lock held by that process's pid, or the waiter's "waiting" line. No sleeps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from forge_desktop import lock
from forge_desktop.errors import Busy
from forge_desktop.jobs import JobEvent, JobRunner
from tests.conftest import assert_one_line_error, run_forge
from tests.integration.conftest import oci_leftovers, wait_until

LONG = ["benchmark", "startup", "-r", "runc", "-n", "400", "--warmup", "0", "--no-save"]
SHORT = ["benchmark", "startup", "-r", "runc", "-n", "1", "--warmup", "0", "--no-save"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One FORGE_HOME for the module: the runc bundle is prepared once, not per test."""
    path = tmp_path_factory.mktemp("lock") / "forge-home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FORGE_HOME", str(path))
        yield path


def _start(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "forge_desktop", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM (the runner removes its containers on the way out), then reap."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    if proc.stdout is None or proc.stdout.closed:
        return  # reaped and read already
    try:
        proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise


def _holds_lock(proc: subprocess.Popen[str]) -> bool:
    holder = lock.current_holder(lock.lock_path())
    return holder is not None and holder.pid == proc.pid


@pytest.fixture
def running(home: Path) -> Iterator[subprocess.Popen[str]]:
    """The long benchmark, holding the lock."""
    proc = _start(*LONG)
    try:
        wait_until("the long benchmark holds the lock", lambda: _holds_lock(proc), 120, proc)
        yield proc
    finally:
        _stop(proc)


def test_a_second_benchmark_is_refused_with_exit_75(running: subprocess.Popen[str]) -> None:
    second = run_forge("benchmark", "startup", "-r", "runc", "--no-save", timeout=60)
    assert second.returncode == 75, second.stderr
    assert_one_line_error(second, f"a benchmark is already running (startup, pid "
                                  f"{running.pid}, since ", "--wait")
    assert running.poll() is None  # the refusal did not disturb the running benchmark


def test_forge_shortcut_is_refused_too(running: subprocess.Popen[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "shortcut_module", "run", "startup",
                           "--param", "runtime=runc", "--json"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 75, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and f"(startup, pid {running.pid}, since " in errors[0], \
        proc.stderr
    assert "--wait" not in errors[0]  # forge-shortcut has no such option: not offered
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_the_tray_and_window_job_runner_is_refused_by_the_lock(
        running: subprocess.Popen[str]) -> None:
    """The in-process refusal the tray and the window show, fed by the cross-process lock."""
    events: list[JobEvent] = []
    jobs = JobRunner(events.append)
    with pytest.raises(Busy, match=rf"\(startup, pid {running.pid}, since ") as refused:
        jobs.submit("startup", {"runtime": ["runc"]})
    assert "--wait" not in str(refused.value)  # a menu has no such option
    assert jobs.current is None and events == []


def test_wait_waits_for_the_running_benchmark_then_runs(
        running: subprocess.Popen[str]) -> None:
    waiter = _start(*SHORT, "--wait", "--json")
    assert waiter.stdout is not None and waiter.stderr is not None
    out_stream, err_stream = waiter.stdout, waiter.stderr
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(iter(err_stream.readline, "")),
                              daemon=True)
    reader.start()
    try:
        wait_until("the waiter says what it waits for", lambda: any(
            f"waiting for the running benchmark (startup, pid {running.pid}" in ln
            for ln in stderr), 60, waiter)
        assert waiter.poll() is None and _holds_lock(running)
        _stop(running)  # the first ends ...
        assert waiter.wait(timeout=180) == 0, "".join(stderr)  # ... and the waiter runs
        out = out_stream.read()
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
        reader.join(10)
        out_stream.close()
        err_stream.close()
    doc = json.loads(out)
    assert doc["parameters"]["iterations"] == 1
    assert len(doc["runtimes"][0]["samples"]) == 1


def test_sigkill_of_the_holder_releases_the_lock_at_once(home: Path) -> None:
    proc = _start(*LONG)
    try:
        wait_until("the long benchmark holds the lock", lambda: _holds_lock(proc), 120, proc)
        proc.kill()
        proc.wait(timeout=30)
        hold = lock.try_acquire("startup")  # no waiting, no staleness check: the kernel freed it
        assert hold is not None
        hold.release()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    # the killed run left its runc container; the next run sweeps it (owner dead), which the
    # autouse leak check then confirms
    after = run_forge(*SHORT, timeout=180)
    assert after.returncode == 0, after.stderr
    assert not [c for c in oci_leftovers() if c.startswith(f"forge-{proc.pid}-")]


def test_the_lock_record_names_kind_pid_and_start(home: Path) -> None:
    hold = lock.try_acquire("disk")
    assert hold is not None
    try:
        holder = lock.current_holder()
        assert holder is not None
        assert (holder.kind, holder.pid) == ("disk", os.getpid())
        assert holder.since == hold.holder.since
        assert lock.try_acquire("startup") is None  # another open file: refused, same process
    finally:
        hold.release()
    assert lock.current_holder() is None
