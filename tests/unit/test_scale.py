"""The scale benchmark's own logic at the adapter seam: the saturation rule on synthetic
levels, the throughput interval, a level's workers (in flight, failures, cancel), its targets
and its result readers. The real engines are in tests/integration/test_scale.py."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from forge_desktop.bench import stats
from forge_desktop.bench.runner import RuntimeRun
from forge_desktop.bench.scale import (
    EngineMonitor,
    ScaleOptions,
    rises,
    run_level,
    saturation,
)
from forge_desktop.bench.targets import evaluate
from forge_desktop.errors import Interrupted, UsageError
from forge_desktop.models import RunContext, RunSpec, Sample
from forge_desktop.results import document
from tests.unit.fakes import FakeRuntime

CTX = RunContext(run_id="20260101T000000Z-abcdef", owner="host/1/1")
SPEC = RunSpec(image="img", command=("true",))


def level(c: int, rate: float | None, lo: float | None = None,
          hi: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"concurrency": c}
    if rate is not None:
        out["throughput_per_s"] = rate
        out["throughput_ci95_per_s"] = [rate * 0.97 if lo is None else lo,
                                        rate * 1.03 if hi is None else hi]
    return out


# -- the saturation rule --------------------------------------------------------------------

def test_saturation_is_the_last_level_before_throughput_stops_rising() -> None:
    levels = [level(1, 10), level(2, 19), level(4, 30), level(8, 31), level(16, 29)]
    assert saturation(levels) == 4


def test_a_steady_rise_is_not_flagged() -> None:
    """Every level clearly above the one before (tight intervals): not saturated yet."""
    assert saturation([level(1, 10), level(2, 19), level(4, 35), level(8, 60)]) is None


def test_a_rise_within_the_noise_is_not_a_rise() -> None:
    """8 looks 20% faster than 4, but its interval reaches below 4's estimate: no evidence
    it rose, so 4 is where it stopped rising."""
    levels = [level(1, 10), level(2, 19), level(4, 30), level(8, 36, lo=27, hi=45)]
    assert saturation(levels) == 4


def test_a_certain_but_tiny_rise_is_not_a_rise() -> None:
    """3% up with an interval entirely above: real, but below the 5% worth naming."""
    levels = [level(1, 10), level(2, 10.3, lo=10.2, hi=10.4)]
    assert saturation(levels) == 1


def test_a_fall_is_saturation_and_a_later_rise_does_not_undo_it() -> None:
    assert saturation([level(1, 10), level(2, 8), level(4, 20)]) == 1


def test_no_saturation_from_one_level_or_none() -> None:
    assert saturation([level(1, 10)]) is None
    assert saturation([]) is None


def test_a_level_without_throughput_ends_the_search_before_it() -> None:
    assert saturation([level(1, 10), level(2, 19), level(4, None)]) == 2
    assert not rises(level(1, 10), {"concurrency": 2, "throughput_per_s": "fast"})


# -- the throughput interval ----------------------------------------------------------------

def test_rate_interval_contains_the_rate_and_narrows_with_more_lifecycles() -> None:
    durations = [100.0 + (i * 37) % 41 for i in range(12)]
    lo, hi = stats.rate_ci(40.0, durations)
    assert lo < 40.0 < hi
    many = durations * 10
    lo2, hi2 = stats.rate_ci(40.0, many)
    assert lo < lo2 < 40.0 < hi2 < hi


def test_rate_interval_of_equal_durations_is_the_rate() -> None:
    assert stats.rate_ci(5.0, [200.0] * 5) == (5.0, 5.0)
    with pytest.raises(ValueError):
        stats.rate_ci(0.0, [1.0])


def test_percentile_interval_brackets_the_percentile() -> None:
    xs = [float(v) for v in range(1, 41)]
    for q in (50, 90, 99):
        lo, hi = stats.percentile_ci(xs, q)
        assert lo <= stats.percentile(xs, q) <= hi
        assert lo >= 1.0 and hi <= 40.0


# -- one level's workers --------------------------------------------------------------------

class GatedRuntime(FakeRuntime):
    """Counts lifecycles in flight; the first ``gate`` of them wait until all are in flight
    (a barrier), which proves the level keeps that many going at once."""

    def __init__(self, gate: int, **kw: Any) -> None:
        super().__init__("fake", **kw)
        self.barrier = threading.Barrier(gate, timeout=10)
        self.gate = gate
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.started = 0

    def run_once(self, spec: RunSpec, ctx: RunContext, seq: int) -> Sample:
        with self.lock:
            self.in_flight += 1
            self.started += 1
            first = self.started <= self.gate
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if first:
                self.barrier.wait()  # BrokenBarrierError after 10 s fails the test
            with self.lock:
                return super().run_once(spec, ctx, seq)
        finally:
            with self.lock:
                self.in_flight -= 1


def _run(runtime: FakeRuntime, c: int, n: int, cancel: threading.Event | None = None,
         on_progress: Any = None) -> Any:
    run = RuntimeRun(runtime, runtime.info())
    return run_level(runtime, SPEC, CTX, run, c, n, 100, cancel or threading.Event(),
                     on_progress or (lambda _n: None)), run


def test_a_level_keeps_c_lifecycles_in_flight_and_runs_each_once() -> None:
    rt = GatedRuntime(4)
    (out, wall_s), _run_ = _run(rt, 4, 20)
    assert rt.max_in_flight == 4
    assert sorted(rt.calls) == list(range(101, 121))
    assert len(out.latencies_ms) == len(out.completions_s) == 20
    assert out.errors == [] and not out.stopped
    assert 0 < max(out.completions_s) <= wall_s


def test_failures_are_counted_and_the_level_goes_on() -> None:
    rt = GatedRuntime(2, fail_at={3, 7})
    (out, _wall), run = _run(rt, 2, 10)
    assert len(out.errors) == 2 and len(out.latencies_ms) == 8
    assert not out.stopped and not run.given_up


def test_repeated_failures_give_the_runtime_up_and_stop_the_level() -> None:
    rt = FakeRuntime("fake", fail_always=True)
    (out, _wall), run = _run(rt, 1, 10)
    assert run.given_up and out.stopped
    assert len(rt.calls) == 3  # MAX_CONSECUTIVE_ERRORS, then no more lifecycles


def test_cancel_stops_taking_lifecycles_and_raises() -> None:
    rt = GatedRuntime(3)
    cancel = threading.Event()
    with pytest.raises(Interrupted, match="cancelled"):
        _run(rt, 3, 50, cancel, lambda _n: cancel.set())
    # the three of the first round complete; none starts after cancel
    assert 3 <= len(rt.calls) <= 5, rt.calls


# -- options, targets, readers --------------------------------------------------------------

@pytest.mark.parametrize("levels", [(), (0, 1), (1, 64), (4, 2), (2, 2)])
def test_bad_levels_are_refused(levels: tuple[int, ...]) -> None:
    with pytest.raises(UsageError, match="--concurrency"):
        ScaleOptions(concurrency=levels).validate()


SCALE_DOC: dict[str, Any] = {"kind": "scale", "runtimes": [
    {"runtime": "runc", "levels": [
        {"concurrency": 1, "throughput_per_s": 30.0, "p99_ms": 45.0},
        {"concurrency": 4, "throughput_per_s": 60.0, "p99_ms": 120.0}]},
    {"runtime": "docker", "levels": [
        {"concurrency": 1, "throughput_per_s": 4.0, "p99_ms": 320.0}]}]}


def test_targets_throughput_is_a_floor_and_p99_a_ceiling() -> None:
    rows = {(r["runtime"], r["metric"]): r["met"]
            for r in evaluate(SCALE_DOC, {"throughput_per_s": 10, "p99_ms": 200})}
    assert rows == {("runc", "throughput_per_s"): True, ("runc", "p99_ms"): True,
                    ("docker", "throughput_per_s"): False, ("docker", "p99_ms"): False}


def test_readers_of_a_scale_result() -> None:
    runc, docker = SCALE_DOC["runtimes"]
    assert document.peak_throughput(runc) == 60.0
    assert document.worst_p99_ms(runc) == 120.0
    assert document.headline_value("scale", docker) == 4.0
    # not a history metric: trends and regressions read every metric as "lower is better"
    assert document.metrics("scale", runc) == {}
    assert document.notification(SCALE_DOC) == \
        "Scale finished: runc 60.0 containers/s, docker 4.0 containers/s"
    assert document.headline_text({"docker": 4.0, "runc": 60.0}, "/s") == \
        "runc 60.0 · docker 4.0 /s"


@pytest.mark.parametrize("junk", [None, 3, "x", [1, "a", {}], {"levels": "no"},
                                  {"levels": [{"concurrency": "1", "throughput_per_s": 5}]},
                                  {"levels": [{"concurrency": 1, "throughput_per_s": 1e999}]}])
def test_readers_never_raise_on_junk(junk: Any) -> None:
    entry = junk if isinstance(junk, dict) else {"levels": junk}
    assert document.peak_throughput(entry) is None
    assert document.worst_p99_ms(entry) is None
    assert document.level_ci({"x": junk}, "x") is None


# -- the engine monitor ---------------------------------------------------------------------

BURN = ("import sys, time\n"
        "sys.stdin.readline()\n"
        "while time.process_time() < 0.3: pass\n"
        "print('burnt', flush=True)\n"
        "sys.stdin.readline()\n")


class EngineFake(FakeRuntime):
    def __init__(self, pids: Callable[[], list[int]]) -> None:
        super().__init__("fake")
        self.pids = pids

    def engine_pids(self) -> list[int]:
        return self.pids()


def test_the_monitor_counts_the_cpu_the_engine_spent_during_the_level() -> None:
    """A stand-in engine burns 0.3 s of CPU (its own clock, not the wall's: the machine's
    load cannot change it) while the level runs; the monitor reads 0.3 s, to a tick or two
    of the kernel's accounting, and its memory."""
    child = subprocess.Popen([sys.executable, "-c", BURN], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdin is not None and child.stdout is not None
        with EngineMonitor(EngineFake(lambda: [child.pid]), interval_s=0.05) as mon:
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline() == "burnt\n"
        cpu = mon.cpu_s
        assert cpu is not None and 0.28 <= cpu <= 0.45, cpu
        assert mon.peak is not None and mon.peak > 1_000_000
        assert mon.own_cpu_s > 0
    finally:
        child.kill()
        child.wait()


def test_a_monitor_that_cannot_read_reports_nothing_rather_than_a_wrong_figure() -> None:
    calls = [0]

    def pids() -> list[int]:
        calls[0] += 1
        if calls[0] > 1:
            raise RuntimeError("proc went away")
        return [os.getpid()]

    with EngineMonitor(EngineFake(pids), interval_s=0.01) as mon:
        pass
    assert mon.failed and "proc went away" in mon.failed
    assert mon.cpu_s is None and mon.peak is None
    assert EngineMonitor(FakeRuntime("no-daemon")).cpu_s is None
