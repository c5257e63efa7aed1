"""The benchmark session, through each kind's entry point, on the real engines: progress is
reported, Cancel is honoured (Interrupted, nothing of the run left behind), the noise check
runs before anything is measured, and the session holds the FORGE_HOME lock while it runs.

Each test cancels from the kind's first progress report (or, for disk, from inside a
filesystem walk), so it waits for a state of the run, never for time."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from forge_desktop import lock
from forge_desktop.bench.canary import CanaryOptions, run_canary
from forge_desktop.bench.compare import CompareOptions, run_compare
from forge_desktop.bench.disk import DiskOptions, run_disk
from forge_desktop.bench.images import TEMP_REPO, ImageOptions, run_image_bench
from forge_desktop.bench.memory import MemoryOptions, run_memory
from forge_desktop.bench.scale import ScaleOptions, run_scale
from forge_desktop.bench.startup import StartupOptions, run_startup
from forge_desktop.config import load_config
from forge_desktop.errors import Interrupted
from tests.integration.conftest import DOCKER, oci_leftovers, owned, owner_of, sh

NOISE = "noise check before measuring: "


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One FORGE_HOME for the module: the runc bundle is prepared once, not per test."""
    path = tmp_path_factory.mktemp("session") / "forge-home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FORGE_HOME", str(path))
        yield path


class Recorder:
    """Log lines and progress reports in the order they came; sets cancel on a trigger."""

    def __init__(self, cancel_when: Callable[[tuple[str, Any]], bool]) -> None:
        self.events: list[tuple[str, Any]] = []
        self.cancel = threading.Event()
        self.cancel_when = cancel_when
        self.held_lock: list[bool] = []

    def _record(self, event: tuple[str, Any]) -> None:
        self.events.append(event)
        holder = lock.current_holder()
        self.held_lock.append(holder is not None and holder.pid == os.getpid())
        if self.cancel_when(event):
            self.cancel.set()

    def log(self, line: str) -> None:
        self._record(("log", line))

    def progress(self, name: str, done: int, total: int, warmup: bool) -> None:
        self._record(("progress", (name, done, total, warmup)))

    def check(self) -> None:
        """Progress came, the noise check came before any of it, the lock was held."""
        kinds = [k for k, _ in self.events]
        assert "progress" in kinds, self.events
        noise = [i for i, (k, v) in enumerate(self.events) if k == "log" and v.startswith(NOISE)]
        assert len(noise) == 1, self.events
        assert noise[0] < kinds.index("progress"), self.events
        assert self.cancel.is_set() and all(self.held_lock)


def first_progress(event: tuple[str, Any]) -> bool:
    return event[0] == "progress"


def nothing_left(*engines: str) -> None:
    me = owner_of(os.getpid())
    for engine in engines:
        if engine in ("docker", "podman"):
            assert owned(engine, me) == [], engine
        else:
            assert not [c for c in oci_leftovers(runtime=engine)
                        if c.startswith(f"forge-{os.getpid()}-")], engine
    assert lock.current_holder() is None  # released on the way out


def test_startup_reports_progress_and_honours_cancel(home: Path) -> None:
    rec = Recorder(first_progress)
    with pytest.raises(Interrupted, match="cancelled"):
        run_startup(StartupOptions(("runc",), iterations=200, warmup=0, save=False),
                    load_config(), progress=rec.progress, cancel=rec.cancel, log=rec.log)
    rec.check()
    assert sum(k == "progress" for k, _ in rec.events) == 1  # stopped at the next iteration
    nothing_left("runc")


def test_canary_reports_progress_and_honours_cancel(home: Path) -> None:
    rec = Recorder(first_progress)
    with pytest.raises(Interrupted, match="cancelled"):
        run_canary(CanaryOptions(("runc",), iterations=200, warmup=0, save=False),
                   load_config(), progress=rec.progress, cancel=rec.cancel, log=rec.log)
    rec.check()
    assert sum(k == "progress" for k, _ in rec.events) == 1  # stopped at the next iteration
    nothing_left("runc")


def test_memory_reports_progress_and_honours_cancel(home: Path) -> None:
    rec = Recorder(first_progress)
    with pytest.raises(Interrupted, match="cancelled"):
        run_memory(MemoryOptions(("docker",), containers=10, samples=1, settle_s=0.1,
                                 save=False),
                   load_config(), progress=rec.progress, cancel=rec.cancel, log=rec.log)
    rec.check()
    assert [v for k, v in rec.events if k == "progress"] == [("docker", 1, 10, False)]
    nothing_left("docker")


def test_disk_reports_progress_and_honours_cancel_between_runtimes(home: Path) -> None:
    rec = Recorder(first_progress)
    with pytest.raises(Interrupted, match="cancelled"):
        run_disk(DiskOptions(("runc", "docker"), save=False), load_config(),
                 progress=rec.progress, cancel=rec.cancel, log=rec.log)
    rec.check()
    assert [v for k, v in rec.events if k == "progress"] == [("runc", 1, 2, False)]
    assert ("log", "measuring disk use of docker") not in rec.events
    nothing_left("runc", "docker")


def test_disk_cancel_stops_the_filesystem_walk(home: Path) -> None:
    """Cancelled as docker's measurement starts: its store walk (the largest tree on the
    machine) stops at once, and the container it would create is never made."""
    rec = Recorder(lambda e: e == ("log", "measuring disk use of docker"))
    with pytest.raises(Interrupted, match="cancelled"):
        run_disk(DiskOptions(("runc", "docker"), save=False), load_config(),
                 progress=rec.progress, cancel=rec.cancel, log=rec.log)
    rec.check()
    assert rec.events[-1] == ("log", "measuring disk use of docker")
    nothing_left("runc", "docker")


@pytest.mark.parametrize("runtime", ["runc", "docker"])
def test_scale_cancel_mid_level_leaves_nothing(home: Path, runtime: str) -> None:
    """Cancelled at the first completion of the 4-in-flight level: the lifecycles in flight
    finish or are removed, no new one starts, nothing of the run is left."""
    rec = Recorder(lambda e: e[0] == "progress" and e[1][0] == f"{runtime} x4")
    with pytest.raises(Interrupted, match="cancelled"):
        run_scale(ScaleOptions((runtime,), concurrency=(1, 4), iterations=40, warmup=0,
                               save=False),
                  load_config(), progress=rec.progress, cancel=rec.cancel, log=rec.log)
    rec.check()
    mid = [v for k, v in rec.events if k == "progress" and v[0] == f"{runtime} x4"]
    # at most the other three in flight when cancel was set complete after it
    assert 1 <= len(mid) <= 4, mid
    assert [v for k, v in rec.events if k == "progress" and v[0] == f"{runtime} x1"][-1] \
        == (f"{runtime} x1", 40, 40, False)
    nothing_left(runtime)


def test_compare_reports_progress_and_honours_cancel(home: Path) -> None:
    rec = Recorder(first_progress)
    with pytest.raises(Interrupted, match="cancelled"):
        run_compare(CompareOptions(("runc", "docker"), iterations=50, warmup=0,
                                   containers=1, memory_samples=1, save=False),
                    load_config(), progress=rec.progress, cancel=rec.cancel, log=rec.log)
    rec.check()
    assert sum(k == "progress" for k, _ in rec.events) == 1
    nothing_left("runc", "docker")


def test_image_reports_progress_and_honours_cancel(home: Path) -> None:
    rec = Recorder(first_progress)
    with pytest.raises(Interrupted, match="cancelled"):
        run_image_bench(ImageOptions(("docker",), source="load", iterations=20, warmup=0,
                                     save=False),
                        load_config(), progress=rec.progress, cancel=rec.cancel, log=rec.log)
    rec.check()
    assert sum(k == "progress" for k, _ in rec.events) == 1
    images = sh(DOCKER, "images", "--format", "{{.Repository}}:{{.Tag}}", TEMP_REPO)
    assert images.returncode == 0, images.stderr
    assert not [ref for ref in images.stdout.split() if f"-{os.getpid()}-" in ref], \
        images.stdout
    nothing_left("docker")
