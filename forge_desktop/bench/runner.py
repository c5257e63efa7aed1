"""Runs iterations on runtimes: warmup, measurement, interleaving, progress, cancel, cleanup.

The runner never prints. It reports through a progress callback, stops at the next iteration
when the cancel event is set, and always removes what the run created (by its label), also on
error and on Ctrl-C. The clock is the adapters'; the shuffle's RNG is injectable.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from forge_desktop.errors import (
    EngineError,
    EngineTimeout,
    ForgeError,
    Interrupted,
    RuntimeUnavailable,
    failure_reason,
)
from forge_desktop.interrupts import signals_deferred
from forge_desktop.models import RunContext, RunSpec, RuntimeInfo, Sample
from forge_desktop.runtimes.base import Runtime, end_run

ProgressFn = Callable[[str, int, int, bool], None]
"""(runtime name, iterations done, iterations total, is warmup)."""

MAX_CONSECUTIVE_ERRORS = 3


@dataclass
class RuntimeRun:
    """What one runtime produced in one run: samples and the errors met on the way."""

    runtime: Runtime
    info: RuntimeInfo
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stopped: bool = False
    """True when the runtime was given up on (repeated errors or unavailable)."""
    consecutive_errors: int = 0
    warmup_ms: list[float] = field(default_factory=list)
    """Warmup durations: not statistics, but part of the run's wall time."""
    given_up: bool = False
    """True when the runtime was given up on mid-run (its engine hung, went away, or failed
    repeatedly), as opposed to one that could not be prepared: see ``raise_if_given_up``."""
    unavailable: str | None = None
    """Why the runtime could not be prepared for this run (image, bundle, engine); it is then
    left out, with this reason in the result, and the others are measured."""

    def mark_unavailable(self, reason: str) -> None:
        self.unavailable = reason
        self.errors.append(f"not prepared, left out of this run: {reason}")
        self.stopped = True

    def record_failure(self, exc: ForgeError) -> None:
        """One failed iteration. Unavailable or hung: give up at once (retrying would only
        wait out more timeouts); any other error: after MAX_CONSECUTIVE_ERRORS in a row."""
        self.errors.append(str(exc))
        if isinstance(exc, RuntimeUnavailable | EngineTimeout):
            self.stopped = self.given_up = True
            return
        self.consecutive_errors += 1
        self.stopped = self.given_up = self.consecutive_errors >= MAX_CONSECUTIVE_ERRORS


class GaveUp(EngineError):
    """A runtime was given up on mid-run. Raised once what completed has been saved (marked
    incomplete), so the user reads one line saying what failed and where the partial result
    is, rather than a table whose missing rows are explained only by warnings."""


def raise_if_given_up(runs: Sequence[RuntimeRun], iterations: int, path: Path | None) -> None:
    """Call after saving: ``path`` None means the user asked for --no-save."""
    lost = [r for r in runs if r.given_up]
    if not lost:
        return
    what = "; ".join(f"{r.runtime.name} after {len(r.samples)} of {iterations} iterations "
                     f"({r.errors[-1] if r.errors else 'no error recorded'})" for r in lost)
    where = f"saved, marked incomplete, to {path}" if path is not None \
        else "not saved (--no-save)"
    raise GaveUp(f"gave up on {what}; what completed was {where}")


def sweep_dead(runtimes: Sequence[Runtime]) -> int:
    """Remove leftovers of dead forge runs (owner process gone); live runs are left alone."""
    return sum(r.cleanup(None) for r in runtimes)


@contextlib.contextmanager
def cleanup_on_exit(runtimes: Sequence[Runtime], ctx: RunContext) -> Iterator[None]:
    try:
        yield
    finally:
        with signals_deferred():
            for r in runtimes:
                with contextlib.suppress(Exception):
                    r.cleanup(ctx.run_id)
                with contextlib.suppress(Exception):
                    r.close()
            end_run(ctx)


class Runner:
    def __init__(self, runtimes: Sequence[Runtime], spec: RunSpec, ctx: RunContext, *,
                 progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                 rng: random.Random | None = None) -> None:
        self.runtimes = list(runtimes)
        self.spec = spec
        self.ctx = ctx
        self.progress = progress or (lambda *_a: None)
        self.cancel = cancel or threading.Event()
        self.rng = rng or random.Random()

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Interrupted("cancelled; the run's containers were removed")

    def _one(self, run: RuntimeRun, seq: int, keep: bool) -> None:
        if run.stopped:
            return
        try:
            sample = run.runtime.run_once(self.spec, self.ctx, seq)
        except ForgeError as exc:
            run.record_failure(exc)
            return
        run.consecutive_errors = 0
        if keep:
            run.samples.append(sample)
        else:
            run.warmup_ms.append(sample.total_ms)

    def prepare(self, infos: dict[str, RuntimeInfo],
                unprepared: Mapping[str, str] | None = None) -> list[RuntimeRun]:
        """``unprepared``: runtimes whose image could not be prepared, with the reason. They,
        and any whose own preparation fails in any way, are left out of the run."""
        runs: list[RuntimeRun] = []
        for r in self.runtimes:
            run = RuntimeRun(r, infos[r.name])
            if unprepared and r.name in unprepared:
                run.mark_unavailable(unprepared[r.name])
            else:
                try:
                    r.prepare(self.spec, self.ctx)
                except Interrupted:
                    raise
                except Exception as exc:  # noqa: BLE001 - costs this runtime, not the run
                    run.mark_unavailable(failure_reason(exc))
            runs.append(run)
        return runs

    def run(self, iterations: int, warmup: int, infos: dict[str, RuntimeInfo],
            interleave: bool = False, own_cleanup: bool = True,
            unprepared: Mapping[str, str] | None = None) -> list[RuntimeRun]:
        """Measure every runtime; with ``interleave`` each round visits them in a new shuffled
        order, so drift (heat, background load) hits every runtime alike. With
        ``own_cleanup=False`` the caller wraps a larger run in ``cleanup_on_exit`` itself."""
        guard = cleanup_on_exit(self.runtimes, self.ctx) if own_cleanup \
            else contextlib.nullcontext()
        with guard:
            runs = self.prepare(infos, unprepared)
            seq = 0
            if interleave:
                for run in runs:
                    for w in range(warmup):
                        self._check_cancel()
                        self._one(run, seq := seq + 1, keep=False)
                        self.progress(run.runtime.name, w + 1, warmup, True)
                for i in range(iterations):
                    order = list(runs)
                    self.rng.shuffle(order)
                    for run in order:
                        self._check_cancel()
                        self._one(run, seq := seq + 1, keep=True)
                        self.progress(run.runtime.name, i + 1, iterations, False)
            else:
                for run in runs:
                    for w in range(warmup):
                        self._check_cancel()
                        self._one(run, seq := seq + 1, keep=False)
                        self.progress(run.runtime.name, w + 1, warmup, True)
                    for i in range(iterations):
                        self._check_cancel()
                        self._one(run, seq := seq + 1, keep=True)
                        self.progress(run.runtime.name, i + 1, iterations, False)
                        if run.stopped:
                            break
            return runs
