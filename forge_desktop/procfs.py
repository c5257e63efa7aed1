"""Finding processes on this host (a leaf every layer may use, the adapters included: they
find their daemon's processes with it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psutil


def find_pids(match: Callable[[str, list[str]], bool]) -> list[int]:
    """Pids whose (name, cmdline) satisfy ``match``."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if match(proc.info["name"] or "", proc.info["cmdline"] or []):
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def cmdline(pid: int) -> list[str]:
    """The arguments of ``pid``; [] when it is gone or unreadable."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []
