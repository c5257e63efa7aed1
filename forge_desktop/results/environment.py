"""The environment fingerprint stored with every result: enough to tell machines apart and to
explain why two runs differ."""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

import psutil

from forge_desktop import __version__
from forge_desktop.hostfacts import cgroup_version, cpu_model, os_name
from forge_desktop.models import RuntimeInfo


def fingerprint(runtimes: list[RuntimeInfo], network: str | None = None,
                noise: list[str] | None = None) -> dict[str, Any]:
    """``noise``: the noise check's warnings if the caller ran it before measuring (the
    better moment); else it runs now (about 0.3 s, never raises)."""
    from forge_desktop.profiling.system import noise_warnings

    mem = psutil.virtual_memory()
    env: dict[str, Any] = {
        "host": socket.gethostname(),
        "os": os_name(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_total_bytes": mem.total,
        "cgroup_version": cgroup_version(),
        "python_version": platform.python_version(),
        "forge_version": __version__,
        "runtimes": {r.name: {"version": r.version, "kind": r.kind, "endpoint": r.endpoint,
                              "storage_driver": r.storage_driver} for r in runtimes},
        "noise_warnings": list(noise) if noise is not None else noise_warnings(),
    }
    if network is not None:
        env["network_mode"] = network
    return env


def machine_key(env: dict[str, Any]) -> str:
    """Groups results by machine: same host, CPU and memory size."""
    return f"{env.get('host')}|{env.get('cpu_model')}|{env.get('cpu_count')}|" \
           f"{env.get('memory_total_bytes')}"
