from __future__ import annotations

import os
import random
import socket
import threading
from typing import Any

import psutil
import pytest

from forge_desktop.bench.runner import MAX_CONSECUTIVE_ERRORS, Runner
from forge_desktop.errors import Interrupted
from forge_desktop.models import RunSpec
from forge_desktop.runtimes.base import Runtime, new_run_context

from .fakes import FakeRuntime

SPEC = RunSpec(image="img")


def infos(*rts: FakeRuntime) -> dict[str, Any]:
    return {r.name: r.info() for r in rts}


def test_the_fake_sits_at_the_declared_seam() -> None:
    """Unit tests fake only the Runtime protocol (runtimes/base.py), nothing an SDK has."""
    assert isinstance(FakeRuntime("a"), Runtime)
    declared = set(dir(Runtime)) | set(Runtime.__annotations__)
    assert set(vars(FakeRuntime)) <= declared  # no method an SDK has and the protocol lacks


def test_warmup_is_not_kept_and_iterations_are() -> None:
    a = FakeRuntime("a", [100, 11, 12, 13])
    runs = Runner([a], SPEC, new_run_context()).run(3, 1, infos(a))
    assert [s.total_ms for s in runs[0].samples] == [11, 12, 13]
    assert a.cleaned and a.cleaned[-1] is not None and a.closed == 1


def test_interleaving_shuffles_each_round_and_visits_every_runtime() -> None:
    order: list[str] = []
    rts = [FakeRuntime(n, on_run=lambda r, _s: order.append(r.name)) for n in "abc"]
    Runner(rts, SPEC, new_run_context(), rng=random.Random(7)).run(
        20, 0, infos(*rts), interleave=True)
    rounds = [order[i:i + 3] for i in range(0, 60, 3)]
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1, "order never changed between rounds"


def test_progress_reports_every_iteration() -> None:
    seen: list[tuple[str, int, int, bool]] = []
    a = FakeRuntime("a")
    Runner([a], SPEC, new_run_context(), progress=lambda *e: seen.append(e)).run(
        3, 2, infos(a))
    assert seen == [("a", 1, 2, True), ("a", 2, 2, True), ("a", 1, 3, False),
                    ("a", 2, 3, False), ("a", 3, 3, False)]


def test_repeated_errors_stop_one_runtime_not_the_others() -> None:
    bad, good = FakeRuntime("bad", fail_always=True), FakeRuntime("good")
    runs = Runner([bad, good], SPEC, new_run_context()).run(10, 0, infos(bad, good))
    assert len(bad.calls) == MAX_CONSECUTIVE_ERRORS and runs[0].stopped
    assert len(runs[0].errors) == MAX_CONSECUTIVE_ERRORS
    assert len(runs[1].samples) == 10


def test_a_single_error_is_recorded_and_the_run_goes_on() -> None:
    a = FakeRuntime("a", fail_at={2})
    runs = Runner([a], SPEC, new_run_context()).run(4, 0, infos(a))
    assert len(runs[0].samples) == 3 and len(runs[0].errors) == 1 and not runs[0].stopped


def test_cancel_stops_at_next_iteration_and_cleans_up() -> None:
    cancel = threading.Event()
    a = FakeRuntime("a", on_run=lambda _r, seq: cancel.set() if seq == 2 else None)
    with pytest.raises(Interrupted):
        Runner([a], SPEC, new_run_context(), cancel=cancel).run(10, 0, infos(a))
    assert len(a.calls) == 2
    assert a.cleaned and a.closed == 1


def test_keyboard_interrupt_mid_iteration_still_cleans_up() -> None:
    def interrupt(r: FakeRuntime, seq: int) -> None:
        if seq == 3:
            raise KeyboardInterrupt

    a = FakeRuntime("a", on_run=interrupt)
    ctx = new_run_context()
    with pytest.raises(KeyboardInterrupt):
        Runner([a], SPEC, ctx).run(10, 0, infos(a))
    assert a.cleaned == [ctx.run_id]
    assert not a.live, "the interrupted iteration's container was not removed"


def test_a_sweep_takes_this_process_s_ended_runs_but_never_its_active_ones() -> None:
    """A tray or window outlives its runs: what one of its runs could not remove (its engine
    died mid-iteration) is a leftover once that run has ended, while its live runs and other
    live processes' runs never are."""
    from forge_desktop.runtimes.base import (
        current_owner,
        end_run,
        is_leftover,
        new_run_context,
        oci_container_id,
        oci_is_leftover,
    )

    ctx = new_run_context()
    oci_id = oci_container_id(ctx, 1)
    assert not is_leftover(current_owner(), ctx.run_id)
    assert not oci_is_leftover(oci_id)
    assert is_leftover(current_owner(), "20260101T000000Z-0ld000")  # an ended run of ours
    end_run(ctx)
    assert is_leftover(current_owner(), ctx.run_id)
    assert oci_is_leftover(oci_id)
    parent = psutil.Process(os.getppid())
    live_other = f"{socket.gethostname()}/{parent.pid}/{int(parent.create_time() * 100)}"
    assert not is_leftover(live_other, "20260101T000000Z-0ld000")
    assert is_leftover(f"{socket.gethostname()}/{2**22 + 7}/1", ctx.run_id)  # no such pid
    assert not oci_is_leftover("someone-elses-container")
