"""Cheap live figures for the tray: host CPU and memory from psutil, running containers per
engine from one small HTTP request on each engine's socket, made by its adapter
(``ContainerFacts.quick_running_count``: no SDK import, no stats loop)."""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from forge_desktop.runtimes.base import ContainerFacts
from forge_desktop.runtimes.registry import builtin_engines


def engine_counts(timeout_s: float = 2.0) -> dict[str, int | None]:
    """Running containers per engine, None where it does not answer."""
    return {e.name: e.quick_running_count(timeout_s) for e in builtin_engines(timeout_s)
            if isinstance(e, ContainerFacts)}


@dataclass(frozen=True)
class HostUsage:
    cpu_percent: float
    memory_percent: float
    memory_used_bytes: int
    memory_total_bytes: int


def host_usage() -> HostUsage:
    """CPU since the previous call (psutil keeps the reference), memory now."""
    mem = psutil.virtual_memory()
    return HostUsage(psutil.cpu_percent(interval=None), mem.percent, mem.total - mem.available,
                     mem.total)
