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
import shutil
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_desktop.bench.runner import ProgressFn
from forge_desktop.bench.session import Log, Measured, Session, unprepared_entry
from forge_desktop.config import Config
from forge_desktop.errors import EngineError, ForgeError, Interrupted, UsageError
from forge_desktop.models import RunContext, RunSpec, RuntimeInfo
from forge_desktop.runtimes.base import Runtime
from forge_desktop.runtimes.common import first_line
from forge_desktop.runtimes.docker import DockerRuntime
from forge_desktop.runtimes.oci import OciRuntime, bundle_root, rootfs_dir
from forge_desktop.runtimes.podman import PodmanRuntime

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
    if stop.is_set():
        raise Interrupted("cancelled; the run's containers were removed")
    return box[0] if box else TreeUsage(str(root), None, timed_out=True)


# -- turning engine reports into entry fields (pure) -----------------------------------------

def _num(value: Any) -> int | None:
    """Engines report unknown sizes as -1 or leave them out."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)


def _sum(values: Sequence[int | None]) -> int:
    return sum(v for v in values if v is not None)


def docker_df_fields(df: dict[str, Any]) -> dict[str, Any]:
    """Entry fields from docker's ``GET /system/df``, reclaimable counted as ``docker system
    df`` does: images no container uses, stopped containers' writable layers, volumes no
    container references, build cache neither shared nor in use."""
    images_raw = df.get("Images") or []
    containers = df.get("Containers") or []
    volumes = df.get("Volumes") or []
    cache = df.get("BuildCache") or []
    images = []
    used_by_containers = 0
    for img in images_raw:
        tags = [t for t in (img.get("RepoTags") or []) if t != "<none>:<none>"]
        size, shared = _num(img.get("Size")), _num(img.get("SharedSize"))
        images.append({"id": img.get("Id"), "tags": tags, "size_bytes": size,
                       "shared_bytes": shared})
        if (img.get("Containers") or 0) > 0 and size is not None:
            used_by_containers += size - (shared or 0)
    images_bytes = _num(df.get("LayersSize"))
    if images_bytes is None:
        images_bytes = _sum([i["size_bytes"] for i in images])
    stopped = [c for c in containers if c.get("State") != "running"]
    volume_sizes = [_num((v.get("UsageData") or {}).get("Size")) for v in volumes]
    unused_volumes = [_num((v.get("UsageData") or {}).get("Size")) for v in volumes
                      if (v.get("UsageData") or {}).get("RefCount", 0) == 0]
    build_cache = _num(df.get("BuilderSize"))
    if build_cache is None:
        build_cache = _sum([_num(c.get("Size")) for c in cache])
    reclaimable = (max(images_bytes - used_by_containers, 0)
                   + _sum([_num(c.get("SizeRw")) for c in stopped])
                   + _sum(unused_volumes)
                   + _sum([_num(c.get("Size")) for c in cache
                           if not c.get("Shared") and not c.get("InUse")]))
    return {
        "images_bytes": images_bytes,
        "containers_bytes": _sum([_num(c.get("SizeRw")) for c in containers]),
        "volumes_bytes": _sum(volume_sizes),
        "build_cache_bytes": build_cache,
        "images": images,
        "dangling_images": sum(1 for i in images if not i["tags"]),
        "stopped_containers": len(stopped),
        "reclaimable_bytes": reclaimable,
    }


def podman_df_fields(df: dict[str, Any]) -> dict[str, Any]:
    """Entry fields from libpod's ``GET /system/df``. Podman lists an image once per name;
    they are merged by id. The store total is the unique bytes of every image plus the
    largest shared part (how ``podman system df`` adds them up). Podman keeps no build cache
    apart from images, so ``build_cache_bytes`` is null."""
    by_id: dict[str, dict[str, Any]] = {}
    unused: dict[str, int] = {}
    for img in df.get("Images") or []:
        image_id = img.get("ImageID")
        repo, tag = img.get("Repository"), img.get("Tag")
        entry = by_id.setdefault(image_id, {"id": image_id, "tags": [],
                                            "size_bytes": _num(img.get("Size")),
                                            "shared_bytes": _num(img.get("SharedSize")),
                                            "unique_bytes": _num(img.get("UniqueSize"))})
        if repo and repo != "<none>":
            name = f"{repo}:{tag}" if tag and tag != "<none>" else repo
            if name not in entry["tags"]:
                entry["tags"].append(name)
        if (img.get("Containers") or 0) == 0:
            unused[image_id] = entry["unique_bytes"] or 0
    images = [{k: v for k, v in e.items() if k != "unique_bytes"} for e in by_id.values()]
    uniques = [e["unique_bytes"] for e in by_id.values()]
    shared = [e["shared_bytes"] for e in by_id.values() if e["shared_bytes"] is not None]
    containers = df.get("Containers") or []
    stopped = [c for c in containers if c.get("Status") != "running"]
    volumes = df.get("Volumes") or []
    return {
        "images_bytes": _sum(uniques) + max(shared, default=0),
        "containers_bytes": _sum([_num(c.get("RWSize")) for c in containers]),
        "volumes_bytes": _sum([_num(v.get("Size")) for v in volumes]),
        "build_cache_bytes": None,
        "images": images,
        "dangling_images": sum(1 for i in images if not i["tags"]),
        "stopped_containers": len(stopped),
        "reclaimable_bytes": (sum(unused.values())
                              + _sum([_num(c.get("RWSize")) for c in stopped])
                              + _sum([_num(v.get("ReclaimableSize")) for v in volumes])),
    }


def docker_layer_dirs(graph_driver: dict[str, Any]) -> dict[str, str]:
    """The overlay2 directories a created container owns, from its ``GraphDriver``: its own
    layer (parent of UpperDir and WorkDir) and the ``-init`` layer docker writes /etc/hosts
    and friends into (the first LowerDir entry, ending in ``-init/diff``)."""
    data = graph_driver.get("Data") or {}
    dirs: dict[str, str] = {}
    upper, work = data.get("UpperDir"), data.get("WorkDir")
    if upper:
        dirs["layer_bytes"] = os.path.dirname(upper.rstrip("/"))
    if work and os.path.dirname(work.rstrip("/")) != dirs.get("layer_bytes"):
        dirs["work_bytes"] = os.path.dirname(work.rstrip("/"))
    first_lower = (data.get("LowerDir") or "").split(":")[0]
    if first_lower.rstrip("/").endswith("-init/diff"):
        dirs["init_layer_bytes"] = os.path.dirname(first_lower.rstrip("/"))
    return dirs


def podman_layer_dirs(graph_driver: dict[str, Any]) -> dict[str, str]:
    """Podman's container layer: the parent of UpperDir (and of WorkDir, if elsewhere)."""
    dirs = docker_layer_dirs(graph_driver)
    dirs.pop("init_layer_bytes", None)  # podman has no init layer; never count an image's
    return dirs


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Interrupted("cancelled; the run's containers were removed")


def new_entry(runtime: Runtime) -> dict[str, Any]:
    entry: dict[str, Any] = dict.fromkeys(ENTRY_KEYS)
    entry.update(runtime=runtime.name, kind=runtime.kind, per_container_parts={}, images=[],
                 warnings=[], errors=[])
    return entry


# -- measuring one runtime ------------------------------------------------------------------

def _docker_error(what: str, exc: BaseException, timeout_s: float) -> EngineError:
    if "timed out" in str(exc) or "Timeout" in type(exc).__name__:
        return EngineError(f"docker: {what} did not answer within {timeout_s:g} s")
    text = getattr(exc, "explanation", None) or str(exc)
    return EngineError(f"docker: {what} failed: {first_line(str(text))}")


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


def _docker_entry(rt: DockerRuntime, image: str, ctx: RunContext, entry: dict[str, Any],
                  budget_s: float, cancel: threading.Event | None = None) -> None:
    client = rt.client()
    try:
        df = client.df()
        info = client.info()
    except Exception as exc:  # noqa: BLE001 - SDK and socket errors become one line
        raise _docker_error("system df", exc, rt.timeout_s) from None
    entry.update(docker_df_fields(df))
    root = info.get("DockerRootDir") or "/var/lib/docker"
    driver = info.get("Driver") or "overlay2"
    _store_walk(entry, root, budget_s, cancel)

    check_cancel(cancel)
    try:
        cid = client.create_container(image, command=["true"], labels=ctx.labels(),
                                      host_config=rt.host_config(RunSpec(image)))["Id"]
    except Exception as exc:  # noqa: BLE001
        raise _docker_error("create", exc, rt.timeout_s) from None
    try:
        try:
            inspected = client.inspect_container(cid)
            listed = client.containers(all=True, size=True, filters={"id": cid})
        except Exception as exc:  # noqa: BLE001
            raise _docker_error("inspect", exc, rt.timeout_s) from None
        if listed:  # docker leaves SizeRw out when it is 0
            entry["container_size_rw_bytes"] = _num(listed[0].get("SizeRw", 0))
            entry["container_size_root_fs_bytes"] = _num(listed[0].get("SizeRootFs"))
        dirs = {"container_dir_bytes": os.path.join(root, "containers", cid)}
        layers = docker_layer_dirs(inspected.get("GraphDriver") or {})
        if "layer_bytes" not in layers:
            entry["warnings"].append(
                f"the {driver} storage driver does not expose the container's layer "
                "directory; per_container_bytes is not reported (see container_size_rw_bytes)")
            entry["per_container_parts"]["container_dir_bytes"] = measure_tree(
                dirs["container_dir_bytes"], budget_s, cancel).used_bytes
            return
        dirs.update(layers)
        layerdb = os.path.join(root, "image", driver, "layerdb", "mounts", cid)
        if os.path.isdir(layerdb):  # mount-id, init-id, parent: docker's record of the layer
            dirs["layerdb_bytes"] = layerdb
        _walk_parts(entry, dirs, budget_s, cancel)
    finally:
        try:
            client.remove_container(cid, force=True)
        except Exception as exc:  # noqa: BLE001 - the run's cleanup retries by label
            entry["warnings"].append(f"could not remove container {cid[:12]}: "
                                     f"{first_line(str(exc))}; the run's cleanup retries")


def _podman_entry(rt: PodmanRuntime, image: str, ctx: RunContext, entry: dict[str, Any],
                  budget_s: float, cancel: threading.Event | None = None) -> None:
    df = rt.call("GET", "/system/df") or {}
    info = rt.call("GET", "/info") or {}
    entry.update(podman_df_fields(df))
    root = (info.get("store") or {}).get("graphRoot")
    if root:
        _store_walk(entry, root, budget_s, cancel)
    else:
        entry["warnings"].append("podman did not report its store path (store.graphRoot)")

    check_cancel(cancel)
    cid = rt.call("POST", "/containers/create", body=rt.create_body(RunSpec(image), ctx))["Id"]
    try:
        inspected = rt.call("GET", f"/containers/{cid}/json", params={"size": True}) or {}
        entry["container_size_rw_bytes"] = _num(inspected.get("SizeRw"))
        entry["container_size_root_fs_bytes"] = _num(inspected.get("SizeRootFs"))
        layers = podman_layer_dirs(inspected.get("GraphDriver") or {})
        if not root or "layer_bytes" not in layers:
            driver = (inspected.get("GraphDriver") or {}).get("Name")
            entry["warnings"].append(
                f"podman's {driver} storage driver does not expose the container's layer "
                "directory; per_container_bytes is not reported (see container_size_rw_bytes)")
            return
        _walk_parts(entry, {"container_dir_bytes": os.path.join(root, "overlay-containers",
                                                                cid), **layers}, budget_s, cancel)
    finally:
        try:
            rt.call("DELETE", f"/containers/{cid}", params={"force": True}, ok_404=True)
        except ForgeError as exc:
            entry["warnings"].append(f"could not remove container {cid[:12]}: {exc}; "
                                     "the run's cleanup retries")


def _oci_entry(rt: OciRuntime, image: str, ctx: RunContext, entry: dict[str, Any],
               budget_s: float, cancel: threading.Event | None = None) -> None:
    """runc/crun have no image store: forge's bundle is it. Its rootfs is the image; a run
    adds only a directory with config.json, because every container shares that rootfs
    read-only (no copy, no writable layer)."""
    root = bundle_root(image)
    _store_walk(entry, str(root), budget_s, cancel)
    rootfs = measure_tree(rootfs_dir(image), budget_s, cancel)
    entry["images_bytes"] = rootfs.used_bytes
    entry["warnings"] += [w for w in rootfs.warnings() if w not in entry["warnings"]]
    entry["images"] = [{"id": None, "tags": [image], "size_bytes": rootfs.used_bytes,
                        "shared_bytes": None}]
    # A run id of its own: the adapter names the run dir after it (plus the settings), so it
    # can be found by that prefix and removed without touching the dir a startup measurement
    # of the same run (compare) may be using.
    own = RunContext(run_id=f"{ctx.run_id}-disk", owner=ctx.owner)
    check_cancel(cancel)
    try:
        rt.prepare(RunSpec(image), own)
        made = sorted((root / "runs").glob(f"{own.run_id}*"))
        if len(made) != 1:
            raise EngineError(f"{rt.name}: expected one run directory for {own.run_id} under "
                              f"{root / 'runs'}, found {len(made)}")
        _walk_parts(entry, {"bundle_dir_bytes": str(made[0])}, budget_s, cancel)
    finally:
        for leftover in (root / "runs").glob(f"{own.run_id}*"):
            shutil.rmtree(leftover, ignore_errors=True)


def disk_entry(runtime: Runtime, image: str, ctx: RunContext, *,
               walk_budget_s: float = WALK_BUDGET_S,
               cancel: threading.Event | None = None) -> dict[str, Any]:
    """Everything the disk benchmark reports for one runtime. Errors (engine gone, timeout,
    refused create) land in ``errors``; what was measured before them is kept. Cancel stops
    it between steps and inside a walk (Interrupted), after removing its container."""
    entry = new_entry(runtime)
    try:
        entry["version"] = runtime.info().version
        if isinstance(runtime, DockerRuntime):
            _docker_entry(runtime, image, ctx, entry, walk_budget_s, cancel)
        elif isinstance(runtime, PodmanRuntime):
            _podman_entry(runtime, image, ctx, entry, walk_budget_s, cancel)
        elif isinstance(runtime, OciRuntime):
            _oci_entry(runtime, image, ctx, entry, walk_budget_s, cancel)
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
