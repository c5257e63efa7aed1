"""Cheap live figures for the tray: host CPU and memory from psutil, running containers per
engine from one small HTTP request on each engine's socket (no SDK import, no stats loop)."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass

import psutil


def running_containers(endpoint: str, api_path: str, timeout_s: float = 2.0) -> int | None:
    """Number of running containers an engine reports, or None if it does not answer.

    One HTTP/1.0 request on the unix socket, by hand: http.client would pull in the email
    package and ssl, megabytes an idle tray should not carry."""
    if not endpoint.startswith("unix://"):
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(endpoint.removeprefix("unix://"))
            sock.sendall(f"GET {api_path} HTTP/1.0\r\nHost: engine\r\n\r\n".encode())
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.") or head.split(b" ", 2)[1] != b"200":
            return None
        data = json.loads(body)
    except (OSError, ValueError, IndexError):
        return None
    return len(data) if isinstance(data, list) else None


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
