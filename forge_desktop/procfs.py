"""Finding processes on this host (a leaf every layer may use, the adapters included: they
find their daemon's processes with it)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import psutil


def find_pids(match: Callable[[str, list[str]], bool],
              named: Callable[[str], bool] | None = None) -> list[int]:
    """Pids whose (name, cmdline) satisfy ``match``. With ``named``, a cheaper scan for a
    scan repeated every 0.1 s (the scale benchmark's): /proc/<pid>/comm (the kernel's name,
    at most 15 characters) is read for every process, the cmdline only for those whose
    name ``named`` accepts (a quarter of psutil's cost)."""
    if named is not None:
        return _find_named(match, named)
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if match(proc.info["name"] or "", proc.info["cmdline"] or []):
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _find_named(match: Callable[[str, list[str]], bool],
                named: Callable[[str], bool]) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/comm", "rb") as fh:
                name = fh.read().decode(errors="replace").rstrip("\n")
        except OSError:  # gone since the listing
            continue
        if named(name) and match(name, [a for a in cmdline(int(entry.name)) if a]):
            found.append(int(entry.name))
    return found


def cmdline(pid: int) -> list[str]:
    """The arguments of ``pid``; [] when it is gone or unreadable."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []
