"""Facts about this host that every layer may ask (a leaf: it imports nothing of forge's).

They sit here, not in results/environment.py, so that adapters (podman asks the cgroup
version) and profiling (the CPU model) can use them without importing the results layer."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cgroup_version() -> str:
    """"v2" (unified), "hybrid" (v1 controllers plus a v2 mount) or "v1"."""
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return "v2"
    if (root / "unified").is_dir():
        return "hybrid"
    return "v1" if root.is_dir() else "unknown"


def os_name() -> str:
    try:
        info = platform.freedesktop_os_release()
        return info.get("PRETTY_NAME") or info.get("NAME", "Linux")
    except OSError:
        return platform.system()
