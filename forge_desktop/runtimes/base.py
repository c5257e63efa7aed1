"""The Runtime protocol every adapter implements, and the ownership rules for cleanup."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from typing import Protocol, runtime_checkable

import psutil

from forge_desktop.models import RunContext, RunSpec, RuntimeInfo, RuntimeKind, Sample


@runtime_checkable
class Runtime(Protocol):
    """A container runtime forge can measure.

    ``available()`` returns ``None`` when the runtime can be used, else one sentence saying
    why not and what to do. Every method that talks to an engine honours the adapter's timeout.
    """

    name: str
    kind: RuntimeKind

    def available(self) -> str | None: ...

    def info(self) -> RuntimeInfo: ...

    def has_image(self, image: str) -> bool: ...

    def prepare(self, spec: RunSpec, ctx: RunContext) -> None:
        """Per-run set-up (bundle, temporary service); called once before the first sample."""

    def run_once(self, spec: RunSpec, ctx: RunContext, seq: int) -> Sample: ...

    def cleanup(self, run_id: str | None = None) -> int:
        """Remove containers of ``run_id``; with None, those whose owner process is dead.

        Returns how many were removed. Never raises for an engine that is gone.
        """

    def close(self) -> None: ...


@runtime_checkable
class LongRunning(Protocol):
    """Runtimes that can keep containers running (memory benchmark): engines and OCI."""

    def daemon_pids(self) -> list[int]:
        """Processes of the runtime's daemon on this host; empty when there is none."""

    def start_detached(self, spec: RunSpec, ctx: RunContext, seq: int) -> str: ...

    def container_pid(self, cid: str) -> int: ...

    def remove_container(self, cid: str) -> None:
        """Remove one container; never raises (the run's cleanup sweeps what is left)."""


def _own_start_ticks() -> int:
    return int(psutil.Process().create_time() * 100)


def current_owner() -> str:
    """``host/pid/start`` identifies this process even after its pid is reused."""
    return f"{socket.gethostname()}/{os.getpid()}/{_own_start_ticks()}"


def owner_alive(owner: str) -> bool:
    """True when ``owner`` is a live process on this host, or on another host (not ours to judge).

    Malformed owners count as dead: only forge writes the label, so garbage means a bug or a
    hand-made container that a sweep may remove.
    """
    try:
        host, pid_s, start_s = owner.split("/")
        pid, start = int(pid_s), int(start_s)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    try:
        return int(psutil.Process(pid).create_time() * 100) == start
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


_active_tokens: set[str] = set()
"""The run tokens (the run id's last part) of this process's runs that have not ended: a
container of this process from any other run is a leftover (a long-lived tray or window whose
run failed when its engine died mid-iteration and could not remove it then)."""
_active_lock = threading.Lock()


def _token(run_id: str) -> str:
    return run_id.rsplit("-", 1)[-1]


def new_run_context() -> RunContext:
    """A run id that sorts by time and is unique across concurrent runs; the run counts as
    active in this process until ``end_run``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    ctx = RunContext(run_id=f"{stamp}-{secrets.token_hex(3)}", owner=current_owner())
    with _active_lock:
        _active_tokens.add(_token(ctx.run_id))
    return ctx


def end_run(ctx: RunContext) -> None:
    """The run is over: a sweep may now remove what it left, even while this process lives."""
    with _active_lock:
        _active_tokens.discard(_token(ctx.run_id))


def is_leftover(owner: str, run_id: str) -> bool:
    """May a sweep remove a container with this owner label and run id? Yes when its owner
    process is gone, or when it is this process's and its run has ended."""
    if owner == current_owner():
        with _active_lock:
            return _token(run_id) not in _active_tokens
    return not owner_alive(owner)


def oci_container_id(ctx: RunContext, seq: int) -> str:
    """Bare OCI ids carry the owner (pid and start ticks) because runc has no labels."""
    _host, pid, start = ctx.owner.split("/")
    return f"forge-{pid}-{start}-{ctx.run_id.rsplit('-', 1)[-1]}-{seq}"


def oci_owner_alive(container_id: str) -> bool:
    parts = container_id.split("-")
    if len(parts) != 5 or parts[0] != "forge":
        return True  # not ours: never touch
    return owner_alive(f"{socket.gethostname()}/{parts[1]}/{parts[2]}")


def oci_is_leftover(container_id: str) -> bool:
    """``is_leftover`` for a bare OCI id (forge-<pid>-<start>-<run token>-<n>)."""
    parts = container_id.split("-")
    if len(parts) != 5 or parts[0] != "forge":
        return False  # not ours: never touch
    return is_leftover(f"{socket.gethostname()}/{parts[1]}/{parts[2]}", f"x-{parts[3]}")

