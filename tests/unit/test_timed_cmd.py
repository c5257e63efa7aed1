"""timed_cmd: the clock of every CLI path (docker/podman --via cli, runc, crun, config.toml
runtimes). What its reading includes is checked exactly, with no timing band: the child
stamps the same monotonic clock at its start and end, and the reading must contain both.
How close the reading is to the kernel's fork-to-exit is a benchmark
(benchmarks/harness_agreement.py), not a test: on a shared machine it is noise-bound."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from forge_desktop.errors import EngineError, EngineTimeout
from forge_desktop.runtimes.common import timed_cmd

CHILD = ("import sys, time; t0 = time.monotonic(); time.sleep(0.05); "
         "open(sys.argv[1], 'w').write(f'{t0} {time.monotonic()}')")


def test_reading_spans_the_whole_child_and_nothing_is_subtracted(tmp_path: Path) -> None:
    stamps: list[float] = []

    def clock() -> float:  # time.perf_counter and time.monotonic are one clock on Linux
        stamps.append(time.monotonic())
        return stamps[-1]

    out = tmp_path / "stamps"
    reading = timed_cmd([sys.executable, "-c", CHILD, str(out)], 30, "child", clock)
    child_start, child_end = map(float, out.read_text().split())
    start, end = stamps
    assert start <= child_start < child_end <= end
    assert reading == pytest.approx((end - start) * 1000)


def test_failure_names_the_status_and_the_last_line_of_stderr() -> None:
    with pytest.raises(EngineError, match=r"^thing exited with status 3: boom$"):
        timed_cmd(["sh", "-c", "echo first >&2; echo boom >&2; exit 3"], 30, "thing")


def test_missing_binary_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="thing: cannot start no-such-binary-here: No such"):
        timed_cmd(["no-such-binary-here"], 30, "thing")


def test_timeout_kills_and_reaps_the_child(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(EngineTimeout, match="did not finish within 1 s"):
        timed_cmd(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"], 1, "sleeper")
    assert time.monotonic() - started < 30  # the sleep's 60 s were not waited out
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):  # a zombie would still accept signal 0
        os.kill(pid, 0)


def test_child_gets_devnull_and_default_sigpipe() -> None:
    # the shell's exit status carries the answer (its stdout is /dev/null); $$ is the shell,
    # whose descriptors and signal dispositions are the ones timed_cmd gave it
    timed_cmd(["sh", "-c", '[ "$(readlink /proc/$$/fd/0)" = /dev/null ] && '
                           '[ "$(readlink /proc/$$/fd/1)" = /dev/null ]'], 30, "devnull")
    with pytest.raises(EngineError, match="status 1"):  # the probe can fail
        timed_cmd(["sh", "-c", '[ "$(readlink /proc/$$/fd/2)" = /dev/null ]'], 30, "stderr")
    sigpipe = 1 << (13 - 1)
    timed_cmd(["sh", "-c", f"m=$(grep SigIgn /proc/$$/status | cut -f2); "
                           f"[ $(( 0x$m & {sigpipe} )) -eq 0 ]"], 30, "sigpipe")
