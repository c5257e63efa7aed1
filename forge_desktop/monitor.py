"""Cheap live figures for the tray: host CPU and memory from psutil, running containers per
engine from one small HTTP request on each engine's socket (no SDK import, no stats loop)."""

from __future__ import annotations

import http.client
import json
import os
import socket
from dataclasses import dataclass

import psutil


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout_s: float) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self.sock = sock


def running_containers(endpoint: str, api_path: str, timeout_s: float = 2.0) -> int | None:
    """Number of running containers an engine reports, or None if it does not answer."""
    if not endpoint.startswith("unix://"):
        return None
    conn = _UnixHTTPConnection(endpoint.removeprefix("unix://"), timeout_s)
    try:
        conn.request("GET", api_path)
        resp = conn.getresponse()
        if resp.status != 200:
            return None
        data = json.loads(resp.read())
        return len(data) if isinstance(data, list) else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def engine_counts(timeout_s: float = 2.0) -> dict[str, int | None]:
    from forge_desktop.runtimes.podman import default_socket

    docker = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    return {
        "docker": running_containers(docker, "/containers/json", timeout_s),
        "podman": running_containers(default_socket(), "/v4.0.0/libpod/containers/json",
                                     timeout_s),
    }


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
