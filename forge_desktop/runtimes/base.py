"""The Runtime protocol every adapter implements, the engine abilities some adapters add
(image store, store usage, container facts), and the ownership rules for cleanup.

Everything outside ``runtimes/`` reaches an engine through these protocols only: it asks
``isinstance(runtime, ImageStore)``, never for an adapter class, and never imports an engine
SDK (tests/unit/test_architecture.py enforces both). Every method raises ForgeError
subclasses only, mapped by the adapter's one ``engine_error``."""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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


@runtime_checkable
class EngineProcesses(Protocol):
    """Engines whose work happens in processes of their own rather than in forge's children
    (the scale benchmark reads their CPU and memory while containers come and go)."""

    def engine_pids(self) -> list[int]:
        """The daemon's processes and, now, the per-container supervisors (shims, conmon)
        of this engine on this host; empty when the engine is remote."""


@dataclass(frozen=True)
class ImageFacts:
    id: str
    tags: tuple[str, ...]


@runtime_checkable
class ImageSource(Protocol):
    """What preparing the benchmark image needs from an engine (image.py)."""

    name: str

    def has_image(self, image: str) -> bool: ...

    def image_layers(self, image: str) -> list[str]: ...

    def pull(self, image: str, timeout_s: float, tls_verify: bool = True) -> None:
        """Pull ``image``; a registry silent for the adapter's timeout marks the engine hung,
        one still sending after ``timeout_s`` is only too slow (EngineError)."""

    def import_tar(self, tar_path: Path, image: str) -> None: ...

    def export_rootfs(self, image: str, dest: Path, ctx: RunContext) -> None: ...


@runtime_checkable
class ImageStore(Protocol):
    """An engine's image store, as the image benchmark drives it (cold load and pull)."""

    name: str

    def import_tar(self, tar_path: Path, image: str) -> None: ...

    def inspect_image(self, ref: str) -> ImageFacts | None:
        """The image's id and tags; None when the engine has no such image."""

    def list_images(self) -> list[ImageFacts]: ...

    def remove_image(self, ref: str, force: bool) -> None:
        """Remove an image by id or one tag of it; no error when it is already gone."""

    def save_image(self, ref: str) -> bytes: ...

    def load_image(self, data: bytes, timeout_s: float) -> None: ...

    def push_image(self, ref: str, dest: str, timeout_s: float,
                   tls_verify: bool = True) -> None: ...

    def pull(self, image: str, timeout_s: float, tls_verify: bool = True) -> None: ...


@dataclass
class StoreReport:
    """What a runtime keeps on disk, by its own account (the disk benchmark walks the
    directories; the adapter only says which)."""

    fields: dict[str, Any]
    """Disk entry fields from the engine's accounting (images_bytes, images, ...)."""
    store_path: str | None
    image_dirs: dict[str, str] = field(default_factory=dict)
    """For a store without accounting (bare OCI): image -> directory whose size it is."""
    warnings: list[str] = field(default_factory=list)


@dataclass
class Footprint:
    """One created, never started container, while it exists: the directories that are its
    cost on disk, and the engine's own figures for it."""

    container_id: str
    dirs: dict[str, str] = field(default_factory=dict)
    """Part name (``layer_bytes``, ...) -> directory."""
    complete: bool = True
    """False when the engine does not expose every directory: no total is reported."""
    size_rw_bytes: int | None = None
    size_root_fs_bytes: int | None = None
    warnings: list[str] = field(default_factory=list)
    """Filled until the container is removed (a failed removal is one)."""


@runtime_checkable
class StoreUsage(Protocol):
    """Runtimes whose disk use the disk benchmark measures: engines and bare OCI."""

    def store_usage(self, image: str) -> StoreReport: ...

    def container_footprint(self, image: str,
                            ctx: RunContext) -> AbstractContextManager[Footprint]:
        """Create one container of ``image`` (never started) and remove it on exit."""


@runtime_checkable
class ContainerFacts(Protocol):
    """Counts and store path of an engine, for `forge benchmark resources` and the tray.
    The pids of a container and of the daemon are ``LongRunning``'s; a container's start
    time is in every ``Sample`` (``to_exec_ms``)."""

    name: str
    default_store_root: str
    """Where the store is when the engine cannot be asked."""

    def available(self) -> str | None: ...

    def store_root(self) -> str | None: ...

    def container_counts(self) -> tuple[int, int]:
        """(running, total) containers."""

    def quick_running_count(self, timeout_s: float) -> int | None:
        """Running containers from one small request without the SDK (the idle tray);
        None when the engine does not answer."""


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
    # os.urandom is what secrets.token_hex reads; secrets imports hmac, which maps OpenSSL's
    # libcrypto (~3.5 MiB) into every process that only imports this module (the idle tray)
    ctx = RunContext(run_id=f"{stamp}-{os.urandom(3).hex()}", owner=current_owner())
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

