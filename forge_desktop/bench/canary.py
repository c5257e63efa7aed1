"""The canary: one short startup round on each available runtime, which the tray repeats to
watch for a runtime getting slower. It is the startup benchmark with fewer iterations, saved
as kind ``canary`` (documents of the same shape, read by the same readers)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_desktop.bench.runner import ProgressFn
from forge_desktop.bench.session import Log
from forge_desktop.bench.startup import StartupOptions, run_startup
from forge_desktop.config import Config

CANARY_ITERATIONS = 5
CANARY_WARMUP = 1


@dataclass(frozen=True)
class CanaryOptions(StartupOptions):
    iterations: int = CANARY_ITERATIONS
    warmup: int = CANARY_WARMUP


def run_canary(opts: CanaryOptions, config: Config, *, progress: ProgressFn | None = None,
               cancel: threading.Event | None = None, log: Log = lambda _m: None,
               wait: bool = False) -> tuple[dict[str, Any], Path | None]:
    return run_startup(opts, config, progress=progress, cancel=cancel, log=log, wait=wait,
                       kind="canary")
