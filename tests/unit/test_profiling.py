"""MemoryProfiler, PerformanceProfiler and SystemAnalyzer without engines: injected clocks and
collectors where timing is the subject, this process and its own children where real
readings are (psutil on a child python is cheap and deterministic enough)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from forge_desktop.bench import stats
from forge_desktop.errors import TargetNotFound, UsageError
from forge_desktop.profiling import system
from forge_desktop.profiling.memory import (
    MemoryProfiler,
    ProfileOptions,
    rss_summary,
)
from forge_desktop.profiling.perf import MAX_KEPT, PERF, PerformanceProfiler, with_self_timing
from forge_desktop.profiling.procmem import ProcessTree, Sampler
from forge_desktop.results.environment import fingerprint
from tests.conftest import busy_loop

MIB = 1024 * 1024


class FakeClock:
    """A clock that only moves when something sleeps (or the test advances it)."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def stepping_clock(*times_s: float) -> Iterator[float]:
    yield from times_s


# -- PerformanceProfiler ----------------------------------------------------------------------
def test_measure_with_injected_clock_is_exact() -> None:
    ticks = stepping_clock(0.0, 0.010, 1.0, 1.030, 2.0, 2.002)
    perf = PerformanceProfiler(clock=lambda: next(ticks))
    for _ in range(3):
        with perf.measure("phase"):
            pass
    s = perf.summary()["phase"]
    assert s["count"] == 3
    assert s["total_ms"] == pytest.approx(42.0)
    assert s["mean_ms"] == pytest.approx(14.0)
    assert s["median_ms"] == pytest.approx(10.0)
    assert s["p95_ms"] == pytest.approx(28.0)  # linear interpolation between 10 and 30
    assert s["max_ms"] == pytest.approx(30.0)


def test_timed_decorator_names_records_and_reraises() -> None:
    clock = FakeClock()
    perf = PerformanceProfiler(clock=clock)

    @perf.timed("window.load")
    def load(x: int) -> int:
        clock.sleep(0.25)
        return x * 2

    @perf.timed()
    def refresh() -> None:
        clock.sleep(0.005)
        raise RuntimeError("boom")

    assert load(21) == 42 and load.__name__ == "load"
    with pytest.raises(RuntimeError):
        refresh()
    s = perf.summary()
    assert s["window.load"]["total_ms"] == pytest.approx(250.0)
    name = f"{__name__}.test_timed_decorator_names_records_and_reraises.<locals>.refresh"
    assert s[name]["count"] == 1 and s[name]["max_ms"] == pytest.approx(5.0)


def test_real_sleep_is_measured_between_the_tests_own_clock_readings() -> None:
    """The profiler's clock readings fall between the test's readings just outside the block
    and just inside it, so each measure lies between the two: exact, however loaded the
    machine (no band)."""
    perf = PerformanceProfiler()
    inner_ms, outer_ms = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        with perf.measure("sleep"):
            t1 = time.perf_counter()
            time.sleep(0.05)
            t2 = time.perf_counter()
        t3 = time.perf_counter()
        inner_ms.append((t2 - t1) * 1000)
        outer_ms.append((t3 - t0) * 1000)
    s = perf.summary()["sleep"]
    assert s["count"] == 5
    assert min(inner_ms) >= 50.0  # sleep never returns early
    assert sum(inner_ms) <= s["total_ms"] <= sum(outer_ms)
    # order statistics keep the per-measure bounds: median and max lie between theirs too
    assert stats.median(inner_ms) <= s["median_ms"] <= stats.median(outer_ms)
    assert max(inner_ms) <= s["max_ms"] <= max(outer_ms)


def test_thread_safe_counts_reset_and_export() -> None:
    perf = PerformanceProfiler(clock=lambda: 0.0)

    def work() -> None:
        for _ in range(2000):
            perf.record("op", 1.0)

    threads = [threading.Thread(target=work, name=f"perf-test-{i}") for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert perf.summary()["op"]["count"] == 16000
    assert perf.summary()["op"]["total_ms"] == pytest.approx(16000.0)
    exported = json.loads(perf.to_json())
    assert exported["operations"]["op"]["count"] == 16000 and exported == perf.to_dict()
    perf.reset()
    assert perf.summary() == {}


def test_memory_is_bounded_but_count_total_and_max_stay_exact() -> None:
    perf = PerformanceProfiler()
    perf.record("tick", 1000.0)
    for _ in range(MAX_KEPT):
        perf.record("tick", 1.0)
    s = perf.summary()["tick"]
    assert s["count"] == MAX_KEPT + 1 and s["max_ms"] == 1000.0
    assert s["total_ms"] == pytest.approx(MAX_KEPT + 1000.0)
    assert s["p95_ms"] == 1.0  # the oldest value left the window


def test_self_timing_helper() -> None:
    perf = PerformanceProfiler(clock=lambda: 0.0)
    assert with_self_timing({"id": "x"}, perf) == {"id": "x", "self_timing_ms": {}}
    perf.record("bench.startup", 12.0)
    doc = with_self_timing({"id": "x"}, perf)
    assert doc["self_timing_ms"]["bench.startup"]["count"] == 1
    assert isinstance(PERF, PerformanceProfiler)


# -- Sampler, summary, MemoryProfiler with injected pieces ------------------------------------
def test_sampler_stops_when_collect_returns_none_and_honours_origin() -> None:
    clock = FakeClock()
    values: Iterator[dict[str, Any] | None] = iter([{"rss_bytes": 1}, {"rss_bytes": 2}, None,
                                                    {"rss_bytes": 3}])
    snaps = Sampler(lambda: next(values), 0.5, clock=clock, sleep=clock.sleep).run(
        10, origin=clock.now - 2.0)
    assert [s["rss_bytes"] for s in snaps] == [1, 2]
    assert [s["t_s"] for s in snaps] == [2.0, 2.5]


def test_rss_summary_least_squares_growth() -> None:
    # 1 MiB per second with noise of +-0.5 MiB on alternate samples: the slope still reads
    # 60 MiB/min where last-minus-first would read 59
    snaps = [{"t_s": float(t), "rss_bytes": 100 * MIB + t * MIB + (MIB // 2 if t % 2 else 0),
              "cpu_percent": 10.0, "threads": 3 + t % 2} for t in range(11)]
    s = rss_summary(snaps)
    assert s["samples"] == 11 and s["duration_s"] == 10.0
    assert s["peak_rss_bytes"] == 110 * MIB and s["min_rss_bytes"] == 100 * MIB
    assert s["range_bytes"] == 10 * MIB
    assert s["growth_bytes_per_min"] == pytest.approx(60 * MIB, rel=0.01)
    assert s["avg_cpu_percent"] == 10.0 and s["peak_threads"] == 4
    assert rss_summary([])["avg_rss_bytes"] is None
    assert rss_summary(snaps[:1])["growth_bytes_per_min"] is None
    assert stats.slope([1.0, 1.0], [0.0, 5.0]) is None


def test_profiler_with_injected_collector_labels_and_target_exit() -> None:
    clock = FakeClock()
    readings: Iterator[dict[str, Any] | None] = iter(
        [{"rss_bytes": 10 * MIB}, {"rss_bytes": 11 * MIB}, {"rss_bytes": 12 * MIB},
         {"rss_bytes": 13 * MIB}, None])
    seen: list[tuple[int, int]] = []
    prof = MemoryProfiler(collect=lambda: next(readings), clock=clock, sleep=clock.sleep)
    prof.start()
    clock.sleep(1.0)
    assert prof.snapshot("warm")["label"] == "warm"  # type: ignore[index]
    taken = prof.sample(10, 0.5, on_sample=lambda _s, k, n: seen.append((k, n)))
    assert len(taken) == 3 and prof.ended_early
    assert seen == [(1, 10), (2, 10), (3, 10)]
    assert [s["t_s"] for s in prof.snapshots] == [1.0, 1.0, 1.5, 2.0]
    assert "label" not in prof.snapshots[1]
    assert prof.summary()["peak_rss_bytes"] == 13 * MIB
    assert prof.tracemalloc_top is None


# -- real processes ----------------------------------------------------------------------------
def proc_status() -> dict[str, int]:
    """VmRSS and VmSize (bytes) and Threads of this process, from /proc/self/status."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmSize"):
            fields[key] = int(value.split()[0]) * 1024
        elif key == "Threads":
            fields[key] = int(value)
    return fields


def test_process_tree_reads_this_process_and_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        before = proc_status()
        alone = ProcessTree([os.getpid()]).read()
        after = proc_status()
        kids = psutil.Process().children(recursive=True)  # the child, and any pytest keeps
        tree = ProcessTree([os.getpid()], include_children=True).read()
    finally:
        child.kill()
        child.wait()
    assert alone is not None and tree is not None
    assert alone["processes"] == 1
    assert tree["processes"] == 1 + len(kids)
    assert tree["rss_bytes"] > alone["rss_bytes"]
    # this process's own figures, read by the test from /proc just before and after
    lo, hi = sorted((before["VmRSS"], after["VmRSS"]))
    assert lo <= alone["rss_bytes"] <= hi, (before, alone, after)
    lo, hi = sorted((before["VmSize"], after["VmSize"]))
    assert lo <= alone["vms_bytes"] <= hi, (before, alone, after)
    assert alone["threads"] == before["Threads"] == after["Threads"]
    assert 0 < alone["uss_bytes"] <= alone["pss_bytes"] <= alone["rss_bytes"]
    assert alone["cpu_percent"] >= 0 and 0 < alone["system_memory_percent"] < 100


def test_snapshots_on_demand_from_another_thread_while_sampling() -> None:
    prof = MemoryProfiler()  # this process
    sampler = threading.Thread(target=prof.sample, args=(20, 0.01), name="profile-sampler")
    sampler.start()
    marks = [prof.snapshot(f"mark-{i}") for i in range(5)]
    sampler.join()
    snaps = prof.snapshots
    assert len(snaps) == 25 and all(m is not None for m in marks)
    assert [s["t_s"] for s in snaps] == sorted(s["t_s"] for s in snaps)
    assert {s.get("label") for s in snaps} >= {f"mark-{i}" for i in range(5)}


def _wait_zombie(pid: int) -> None:
    deadline = time.monotonic() + 10
    while psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_an_exited_child_counts_as_gone_even_unreaped() -> None:
    child = subprocess.Popen(["sleep", "0.3"])
    try:
        prof = MemoryProfiler([child.pid])
        assert prof.snapshot() is not None
        _wait_zombie(child.pid)
        assert prof.sample(5, 0.01) == [] and prof.ended_early
        with pytest.raises(TargetNotFound):  # already exited when profiling starts
            MemoryProfiler([child.pid])
    finally:
        child.wait()


def test_missing_pid_is_a_clear_error() -> None:
    with pytest.raises(TargetNotFound, match="no process with PID 999999999"):
        MemoryProfiler([999999999])


ALLOC_SIZE = 100_000


def _allocate_known(n: int) -> list[bytes]:
    return [bytes(ALLOC_SIZE) for _ in range(n)]


ALLOC_LINE = _allocate_known.__code__.co_firstlineno + 1


def test_tracemalloc_top_site_is_the_allocating_line() -> None:
    prof = MemoryProfiler(trace_python=True, top_n=5)
    prof.start()
    kept = _allocate_known(60)
    prof.snapshot("after")
    prof.stop()
    top = prof.tracemalloc_top
    assert top is not None and kept
    first = top[0]
    assert first["site"] == f"{_allocate_known.__code__.co_filename}:{ALLOC_LINE}", top
    assert Path(__file__).name in first["site"]
    assert first["count"] >= 60 and first["size_bytes"] >= 60 * ALLOC_SIZE
    assert len(top) <= 5


@pytest.mark.parametrize(("opts", "needle"), [
    (ProfileOptions(samples=0), "--samples must be between 1 and 100000"),
    (ProfileOptions(samples=100_001), "--samples"),
    (ProfileOptions(interval_s=0), "--interval must be more than 0"),
    (ProfileOptions(interval_s=3601), "--interval"),
    (ProfileOptions(interval_s=float("nan")), "--interval"),
    (ProfileOptions(pid=5, command=("true",)), "not both"),
    (ProfileOptions(pid=0), "--pid must be a positive"),
])
def test_profile_options_validation(opts: ProfileOptions, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        opts.validate()


# -- SystemAnalyzer ----------------------------------------------------------------------------
def test_governor_and_turbo_checks_read_sysfs(tmp_path: Path) -> None:
    for cpu, gov in (("cpu0", "powersave"), ("cpu1", "powersave"), ("cpu2", "performance")):
        (tmp_path / cpu / "cpufreq").mkdir(parents=True)
        (tmp_path / cpu / "cpufreq" / "scaling_governor").write_text(gov + "\n")
    (tmp_path / "intel_pstate").mkdir()
    (tmp_path / "intel_pstate" / "no_turbo").write_text("0\n")
    [gov] = system.governor_warnings(tmp_path)
    assert "'powersave' on 2 CPUs" in gov and "performance" in gov
    assert "Turbo Boost is on" in system.turbo_warnings(tmp_path)[0]
    (tmp_path / "intel_pstate" / "no_turbo").write_text("1\n")
    assert system.turbo_warnings(tmp_path) == []
    (tmp_path / "cpufreq").mkdir()
    (tmp_path / "cpufreq" / "boost").write_text("1\n")
    assert "boost is on" in system.turbo_warnings(tmp_path)[0]
    assert system.governor_warnings(tmp_path / "nothing") == []


def test_simple_noise_checks() -> None:
    class Battery:
        percent, power_plugged = 42.0, False

    assert "low memory: 5% available" in system.memory_warnings(100 * MIB, 5 * MIB)[0]
    assert system.memory_warnings(100 * MIB, 50 * MIB) == []
    assert "on battery (42%)" in system.battery_warnings(Battery())[0]
    assert system.battery_warnings(None) == []
    assert "load average 3.50 is above the 2 cores" in system.load_warnings(3.5, 2)[0]
    assert system.load_warnings(1.0, 2) == []
    busy = [("a", 1, 90.0), ("b", 2, 50.0), ("c", 3, 30.0), ("d", 4, 25.0)]
    [line] = system.busy_warnings(busy)
    assert "a (pid 1) 90%" in line and "and 1 more" in line and "d (pid 4)" not in line


def test_noise_check_names_a_busy_process_and_is_fast() -> None:
    with busy_loop() as pid:
        cpu0, t0 = time.process_time(), time.perf_counter()
        warnings = system.noise_warnings()
        cpu_s, elapsed = time.process_time() - cpu0, time.perf_counter() - t0
    assert any(f"(pid {pid})" in w for w in warnings), warnings
    # fast: it waits its busy-process window and works a few milliseconds (15-18 ms of CPU
    # here for ~140 processes); its own CPU time, unlike the wall time, does not depend on
    # the machine's load: 0.1 s leaves a 5x margin
    assert elapsed >= system.BUSY_WINDOW_S and cpu_s < 0.1, (elapsed, cpu_s)


def test_noise_check_never_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("sensor exploded")

    monkeypatch.setattr(psutil, "sensors_battery", broken)
    monkeypatch.setattr(psutil, "virtual_memory", broken)
    monkeypatch.setattr(psutil, "process_iter", broken)
    monkeypatch.setattr(os, "getloadavg", broken)
    assert system.noise_warnings(tmp_path, window_s=0.01) == []
    # the probe that still works is still heard: a broken one only silences itself
    (tmp_path / "cpu0" / "cpufreq").mkdir(parents=True)
    (tmp_path / "cpu0" / "cpufreq" / "scaling_governor").write_text("powersave\n")
    assert system.noise_warnings(tmp_path, window_s=0.01) == system.governor_warnings(tmp_path)
    assert "'powersave' on 1 CPU" in system.governor_warnings(tmp_path)[0]


def test_fingerprint_carries_noise_warnings() -> None:
    assert fingerprint([], noise=["busy"])["noise_warnings"] == ["busy"]


def meminfo_bytes(field: str) -> int:
    """A /proc/meminfo field read by the test itself, in bytes."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/meminfo")


def test_analyze_without_engines_reads_the_machine(tmp_path: Path) -> None:
    """The engine part runs on the real engines (integration/test_profile_cli.py)."""
    home = tmp_path / "not" / "yet" / "forge"
    sys_cpu = tmp_path / "sys-cpu"
    (sys_cpu / "cpu0" / "cpufreq").mkdir(parents=True)
    (sys_cpu / "cpu0" / "cpufreq" / "scaling_governor").write_text("powersave\n")
    data = system.SystemAnalyzer(runtimes=[], cpu_interval_s=0.05, home=home,
                                 sys_cpu=sys_cpu).analyze()
    cpu = data["cpu"]
    assert cpu["count"] == os.cpu_count() and len(cpu["per_core_percent"]) == cpu["count"]
    assert 0 <= cpu["percent"] <= 100 and len(cpu["load_avg"]) == 3
    assert cpu["model"] in Path("/proc/cpuinfo").read_text()
    assert data["memory"]["total_bytes"] == meminfo_bytes("MemTotal")
    assert 0 < data["memory"]["available_bytes"] <= data["memory"]["total_bytes"]
    assert data["swap"]["total_bytes"] == meminfo_bytes("SwapTotal")
    fh = data["disk"]["forge_home"]
    assert fh["path"] == str(home) and fh["measured_at"] == str(tmp_path)
    st = os.statvfs(tmp_path)
    assert fh["total_bytes"] == st.f_blocks * st.f_frsize
    assert abs(fh["free_bytes"] - st.f_bavail * st.f_frsize) < 64 * MIB  # others write too
    assert data["disk"]["stores"] == [] and data["containers"] == {}
    assert system.governor_warnings(sys_cpu)[0] in data["noise_warnings"]
    json.dumps(data)
