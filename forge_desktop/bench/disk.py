"""The disk benchmark: what each runtime keeps on disk, and what one more container costs.

Per runtime, two views of the same store:

- the engine's own accounting (docker ``system df``, libpod ``/system/df``): images, containers'
  writable layers, volumes, build cache, and what a prune could reclaim;
- the filesystem's: the store directory walked with ``lstat`` (allocated blocks, like ``du -x``:
  symlinks not followed, hard links counted once, other filesystems skipped), under a time
  budget so a huge or hung store gives ``store_fs_bytes: null`` and a warning, never a hang.

``per_container_bytes`` is measured, not estimated: one container of the benchmark image is
created (never started), the directories the engine made for it are walked, and it is removed.
For a bare OCI runtime (runc, crun) a container has no store of its own: every run shares the
read-only rootfs of the bundle, so what one more container costs on disk is its run directory
with the ``config.json`` (a few kB). The runtime's state dir (``/run/runc``) is on tmpfs.

Fields that do not apply to a runtime are ``null``, never 0. Sizes are bytes; the human table
and the ``--max-disk-mb`` target use MiB (1024 * 1024 bytes).
"""

from __future__ import annotations

import math
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_desktop.bench.runner import ProgressFn
from forge_desktop.bench.session import Log, Measured, Session, unprepared_entry
from forge_desktop.config import Config
from forge_desktop.errors import ForgeError, Interrupted, UsageError
from forge_desktop.models import RunContext, RuntimeInfo
from forge_desktop.runtimes.base import Runtime, StoreUsage
from forge_desktop.runtimes.transport import refuse_remote

Clock = Callable[[], float]

MIB = 1024 * 1024
WALK_BUDGET_S = 30.0
"""Time allowed for walking one directory tree; beyond it the figure is reported as null."""
_WALK_GRACE_S = 5.0
"""Extra wait for a walker stuck inside one syscall (a hung network mount) before giving up."""
_CANCEL_POLL_S = 0.1
"""How often a wait for the walker looks at the cancel event."""

ENTRY_KEYS = ("runtime", "kind", "version", "images_bytes", "containers_bytes", "volumes_bytes",
              "build_cache_bytes", "per_container_bytes", "per_container_parts",
              "container_size_rw_bytes", "container_size_root_fs_bytes", "store_path",
              "store_fs_bytes", "images", "dangling_images", "stopped_containers",
              "reclaimable_bytes", "benchmark_image_bytes", "warnings", "errors")


# -- the filesystem walker ------------------------------------------------------------------

@dataclass(frozen=True)
class TreeUsage:
    """Allocated bytes under one directory, or why there is no figure."""

    path: str
    used_bytes: int | None
    """None when the walk ran out of time or the root cannot be read."""
    unreadable: int = 0
    """Entries skipped because they could not be read: the figure is then a lower bound."""
    timed_out: bool = False
    cancelled: bool = False
    error: str | None = None

    def warnings(self) -> list[str]:
        if self.timed_out:
            return [f"walking {self.path} took longer than its time budget; its size on disk "
                    "is not reported"]
        if self.error:
            return [self.error]
        if self.unreadable:
            return [f"{self.unreadable} entries under {self.path} could not be read; its size "
                    "on disk is a lower bound (run as root for the full figure)"]
        return []


def tree_bytes(root: Path | str, budget_s: float = WALK_BUDGET_S,
               clock: Clock = time.monotonic,
               cancel: threading.Event | None = None) -> TreeUsage:
    """Allocated bytes (``st_blocks * 512``) of ``root`` and everything under it, as ``du -sx``.

    Symlinks are counted as themselves and never followed, a file with several hard links is
    counted once, and directories on another filesystem (mount points) are skipped. Entries
    that vanish during the walk (a store in use) are ignored. The clock is checked before every
    entry: past ``budget_s`` the walk stops and reports ``timed_out``; once ``cancel`` is set
    it stops and reports ``cancelled``.
    """
    path = str(root)
    deadline = clock() + budget_s
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return TreeUsage(path, None, error=f"{path} does not exist")
    except OSError as exc:
        return TreeUsage(path, None, error=f"cannot read {path}: {exc.strerror}; run as root "
                                           "to measure it")
    device = top.st_dev
    total = top.st_blocks * 512
    seen: set[tuple[int, int]] = set()
    unreadable = 0
    pending = [path] if stat.S_ISDIR(top.st_mode) else []
    stop = cancel or threading.Event()
    while pending:
        if clock() >= deadline:
            return TreeUsage(path, None, unreadable, timed_out=True)
        if stop.is_set():
            return TreeUsage(path, None, unreadable, cancelled=True)
        directory = pending.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if clock() >= deadline:
                        return TreeUsage(path, None, unreadable, timed_out=True)
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    except OSError:
                        unreadable += 1
                        continue
                    if st.st_dev != device:
                        continue  # a mount point: another filesystem's bytes (du -x)
                    is_dir = stat.S_ISDIR(st.st_mode)
                    if not is_dir and st.st_nlink > 1:
                        key = (st.st_dev, st.st_ino)
                        if key in seen:
                            continue
                        seen.add(key)
                    total += st.st_blocks * 512
                    if is_dir:
                        pending.append(entry.path)
        except FileNotFoundError:
            continue
        except OSError:
            unreadable += 1
    return TreeUsage(path, total, unreadable)


def measure_tree(root: Path | str, budget_s: float = WALK_BUDGET_S,
                 cancel: threading.Event | None = None) -> TreeUsage:
    """``tree_bytes`` in a daemon thread: even a walker stuck in one syscall (a hung network
    filesystem) cannot hold the benchmark longer than the budget plus a short grace. Cancel
    stops the wait at once (Interrupted); the walker stops at its next entry."""
    stop = cancel or threading.Event()
    box: list[TreeUsage] = []
    worker = threading.Thread(target=lambda: box.append(tree_bytes(root, budget_s,
                                                                   cancel=stop)),
                              name="forge-disk-walk", daemon=True)
    worker.start()
    deadline = time.monotonic() + budget_s + _WALK_GRACE_S
    while worker.is_alive() and not stop.is_set() and time.monotonic() < deadline:
        worker.join(min(_CANCEL_POLL_S, max(0.0, deadline - time.monotonic())))
    check_cancel(stop)
    return box[0] if box else TreeUsage(str(root), None, timed_out=True)


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Interrupted("cancelled; the run's containers were removed")


# -- one runtime -------------------------------------------------------------------------

def new_entry(runtime: Runtime) -> dict[str, Any]:
    entry: dict[str, Any] = dict.fromkeys(ENTRY_KEYS)
    entry.update(runtime=runtime.name, kind=runtime.kind, per_container_parts={}, images=[],
                 warnings=[], errors=[])
    return entry


# -- measuring one runtime ------------------------------------------------------------------

def _walk_parts(entry: dict[str, Any], dirs: dict[str, str], budget_s: float,
                cancel: threading.Event | None = None) -> None:
    """Fill ``per_container_parts`` and ``per_container_bytes`` from the container's dirs;
    the total stays null when any part could not be measured."""
    total: int | None = 0
    for part, path in dirs.items():
        usage = measure_tree(path, budget_s, cancel)
        entry["per_container_parts"][part] = usage.used_bytes
        entry["warnings"] += usage.warnings()
        total = None if total is None or usage.used_bytes is None else total + usage.used_bytes
    entry["per_container_bytes"] = total


def _store_walk(entry: dict[str, Any], path: str, budget_s: float,
                cancel: threading.Event | None = None) -> None:
    entry["store_path"] = path
    usage = measure_tree(path, budget_s, cancel)
    entry["store_fs_bytes"] = usage.used_bytes
    entry["warnings"] += usage.warnings()


def _store_entry(runtime: StoreUsage, image: str, ctx: RunContext, entry: dict[str, Any],
                 budget_s: float, cancel: threading.Event | None = None) -> None:
    """The engine's accounting, then the walks; cancel is looked at before the container is
    created and inside every walk (that container is removed on the way out)."""
    report = runtime.store_usage(image)
    entry.update(report.fields)
    entry["warnings"] += report.warnings
    if report.store_path:
        _store_walk(entry, report.store_path, budget_s, cancel)
    for name, path in report.image_dirs.items():  # a store without accounting: walk it
        usage = measure_tree(path, budget_s, cancel)
        entry["images_bytes"] = usage.used_bytes
        entry["warnings"] += [w for w in usage.warnings() if w not in entry["warnings"]]
        entry["images"] = [{"id": None, "tags": [name], "size_bytes": usage.used_bytes,
                            "shared_bytes": None}]
    check_cancel(cancel)
    footprint = None
    try:
        with runtime.container_footprint(image, ctx) as footprint:
            entry["container_size_rw_bytes"] = footprint.size_rw_bytes
            entry["container_size_root_fs_bytes"] = footprint.size_root_fs_bytes
            entry["warnings"] += footprint.warnings
            footprint.warnings.clear()
            if footprint.complete:
                _walk_parts(entry, footprint.dirs, budget_s, cancel)
            else:  # the parts that can be walked, without a total
                for part, path in footprint.dirs.items():
                    entry["per_container_parts"][part] = measure_tree(
                        path, budget_s, cancel).used_bytes
    finally:
        if footprint is not None:  # what its removal said
            entry["warnings"] += footprint.warnings


def disk_entry(runtime: Runtime, image: str, ctx: RunContext, *,
               walk_budget_s: float = WALK_BUDGET_S,
               cancel: threading.Event | None = None) -> dict[str, Any]:
    """Everything the disk benchmark reports for one runtime. Errors (engine gone, timeout,
    refused create) land in ``errors``; what was measured before them is kept. Cancel stops
    it between steps and inside a walk (Interrupted), after removing its container."""
    entry = new_entry(runtime)
    try:
        entry["version"] = runtime.info().version
        if isinstance(runtime, StoreUsage):
            _store_entry(runtime, image, ctx, entry, walk_budget_s, cancel)
        else:
            entry["errors"].append(f"{runtime.name}: the disk benchmark measures docker, "
                                   "podman and bare OCI runtimes (runc, crun) only")
    except Interrupted:
        raise
    except ForgeError as exc:
        entry["errors"].append(str(exc))
    entry["benchmark_image_bytes"] = benchmark_image_bytes(entry["images"], image)
    return entry


def benchmark_image_bytes(images: list[dict[str, Any]], image: str) -> int | None:
    """Size of the benchmark image among the store's images; podman names local images
    ``localhost/NAME``, pulled short names ``docker.io/library/NAME``."""
    for img in images:
        for tag in img.get("tags") or []:
            if tag == image or tag.endswith("/" + image) or (
                    ":" not in image and tag.rsplit(":", 1)[0].endswith(image)):
                size = img.get("size_bytes")
                return int(size) if size is not None else None
    return None


# -- the benchmark ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DiskOptions:
    runtimes: tuple[str, ...] = ()
    image: str | None = None
    save: bool = True
    """Target on each runtime's image store, in MiB (1024 * 1024 bytes)."""
    walk_budget_s: float = WALK_BUDGET_S

    def validate(self) -> None:
        refuse_remote(self.runtimes, "disk")
        if not math.isfinite(self.walk_budget_s) or self.walk_budget_s <= 0:
            raise UsageError(f"the walk budget must be a positive number of seconds, "
                             f"got {self.walk_budget_s:g}")


def _info(runtime: Runtime) -> RuntimeInfo:
    """For the environment record only: an engine that fails here is reported by its entry."""
    try:
        return runtime.info()
    except ForgeError:
        return RuntimeInfo(runtime.name, runtime.kind, True)


def _measured(entry: dict[str, Any]) -> bool:
    return any(entry[k] is not None for k in ("images_bytes", "store_fs_bytes",
                                              "per_container_bytes"))


def run_disk(opts: DiskOptions, config: Config, *, progress: ProgressFn | None = None,
             cancel: threading.Event | None = None, log: Log = lambda _m: None,
             targets: Mapping[str, float] | None = None, wait: bool = False
             ) -> tuple[dict[str, Any], Path | None]:
    def prepare(s: Session) -> tuple[list[Runtime], str, dict[str, str], list[RuntimeInfo]]:
        selected, image, unprepared = s.resolve(opts.runtimes, opts.image)
        unsupported = [r for r in selected if r.kind == "command"]
        if unsupported and opts.runtimes:
            raise UsageError(f"runtime {unsupported[0].name!r} is a command runtime; the disk "
                             "benchmark measures docker, podman, runc and crun")
        for r in unsupported:
            s.log(f"skipping {r.name}: a command runtime has no store to measure")
        measured = [r for r in selected if r.kind != "command"]
        return measured, image, unprepared, [_info(r) for r in measured]

    def measure(s: Session, prepared: tuple[list[Runtime], str, dict[str, str],
                                            list[RuntimeInfo]]) -> Measured:
        measured, image, unprepared, infos = prepared
        entries = []
        for done, r in enumerate(measured, 1):
            s.check_cancel()
            s.log(f"measuring disk use of {r.name}")
            entries.append(unprepared_entry(r, unprepared[r.name]) if r.name in unprepared
                           else disk_entry(r, image, s.ctx, walk_budget_s=opts.walk_budget_s,
                                           cancel=s.cancel))
            s.progress(r.name, done, len(measured), False)
        nothing = None
        if not any(_measured(e) for e in entries):
            errors = "; ".join(e["errors"][-1] for e in entries if e["errors"])
            nothing = f"no runtime could be measured ({errors or 'none selected'})"
        return Measured(entries, {"image": image, "walk_budget_s": opts.walk_budget_s},
                        infos, nothing_measured=nothing)

    session = Session("disk", config, progress=progress, cancel=cancel, log=log,
                      targets=targets, wait=wait)
    return session.run(opts, prepare, measure)
