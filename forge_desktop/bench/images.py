"""The image benchmark: how long an engine takes to load an image from a tar, or to pull it
from a registry, cold.

Why the run makes its own image: a cold load or pull needs the image (and its layer) to be
absent first, and removing the user's images is not ours to do, nor safe while other forge
runs start containers from ``forge-bench:busybox``. So every run builds a one-layer copy of the
benchmark image with one extra file, ``/forge-run``, holding the run id: its layer digest is
unique to the run, nothing else on any engine shares it, and removing it by ID between
iterations makes each load or pull really cold without touching anything else. It is imported
as ``forge-bench-tmp:<tag>``; the tag carries the owner's pid and start time (like bare OCI
container ids) so leftovers of a killed run can be swept by a later one, and every removal
checks first that the image carries no tag but this run's.

Pull mode pushes the image once (from the first engine that can) and every engine pulls those
same bytes, so engines are compared on an identical transfer. Only the load or pull call is
timed; the removal before it and the check after it are not.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge_desktop.bench import stats
from forge_desktop.bench.runner import (
    ProgressFn,
    RuntimeRun,
    sweep_dead,
)
from forge_desktop.bench.session import Log, Measured, Session
from forge_desktop.config import MAX_ITERATIONS, MAX_WARMUP, Config
from forge_desktop.errors import (
    EngineError,
    EngineTimeout,
    ForgeError,
    ImageError,
    Interrupted,
    RuntimeUnavailable,
    UsageError,
)
from forge_desktop.image import build_busybox_tar, host_busybox
from forge_desktop.interrupts import signals_deferred
from forge_desktop.models import RunContext, RuntimeInfo, Sample
from forge_desktop.runtimes.base import ImageStore, Runtime, owner_alive
from forge_desktop.runtimes.common import Clock, ms
from forge_desktop.runtimes.registry import known_runtimes, select_runtimes
from forge_desktop.runtimes.registry_v2 import Registry

SOURCES = ("load", "pull")
TEMP_REPO = "forge-bench-tmp"
DEFAULT_REGISTRY = "127.0.0.1:5000"
REGISTRY_ENV = "FORGE_REGISTRY"
TRANSFER_TIMEOUT_S = 120.0
"""Ceiling on one load, pull or push of the ~2 MB image; the read timeout is the adapter's."""
SETTLE_S = 0.5
"""After an interrupt in the middle of an engine call, the engine may still finish that call
(a load already uploaded, a pull already fetched): cleanup looks again after this long."""


_HOST_PORT_RE = re.compile(
    r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*)"
    r":(?P<port>[0-9]{1,5})$")
_TAG_RE = re.compile(r"^(?P<token>[0-9A-Za-z]{1,32})-(?P<pid>[0-9]+)-(?P<start>[0-9]+)"
                     r"-(?P<host>[0-9a-f]{6})$")


# -- options --------------------------------------------------------------------------------

def parse_registry(value: str, where: str = "--registry") -> str:
    """``HOST:PORT`` or a one-line usage error."""
    m = _HOST_PORT_RE.match(value.strip())
    if not m or not 1 <= int(m["port"]) <= 65535:
        raise UsageError(f"{where} must look like HOST:PORT (e.g. {DEFAULT_REGISTRY}), "
                         f"got {value!r}")
    return value.strip()


@dataclass(frozen=True)
class ImageOptions:
    runtimes: tuple[str, ...] = ()
    source: str = "load"
    registry: str | None = None
    """None: $FORGE_REGISTRY, else 127.0.0.1:5000. Given explicitly, it must answer."""
    iterations: int = 5
    warmup: int = 1
    save: bool = True

    def validate(self) -> None:
        if self.source not in SOURCES:
            raise UsageError(f"--source must be load or pull, got {self.source!r}")
        if not 1 <= self.iterations <= MAX_ITERATIONS:
            raise UsageError(f"--iterations must be between 1 and {MAX_ITERATIONS}, "
                             f"got {self.iterations}")
        if not 0 <= self.warmup <= MAX_WARMUP:
            raise UsageError(f"--warmup must be between 0 and {MAX_WARMUP}, got {self.warmup}")
        self.registry_address()

    def registry_address(self) -> str:
        if self.registry is not None:
            return parse_registry(self.registry)
        env = os.environ.get(REGISTRY_ENV)
        if env:
            return parse_registry(env, REGISTRY_ENV)
        return DEFAULT_REGISTRY

    def needs_registry(self) -> bool:
        return self.source == "pull" or self.registry is not None


# -- the temporary image's name -------------------------------------------------------------

def host_hash() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def temp_tag(ctx: RunContext) -> str:
    """``<run token>-<pid>-<start ticks>-<host hash>``: unique per run, and tells a later run
    whether the owner is still alive (the same scheme as bare OCI container ids)."""
    _host, pid, start = ctx.owner.split("/")
    return f"{ctx.run_id.rsplit('-', 1)[-1]}-{pid}-{start}-{host_hash()}"


def split_ref(ref: str) -> tuple[str, str]:
    """``[registry/]path/name:tag`` -> (last path component, tag); no tag -> (name, "")."""
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:
        name, tag = ref, ""
    return name.rsplit("/", 1)[-1], tag


def is_temp_ref(ref: str, tag: str) -> bool:
    return split_ref(ref) == (TEMP_REPO, tag)


def tag_owner_dead(tag: str) -> bool:
    """True only for a forge temp tag made on this host by a process that is gone; any tag
    we cannot read, or one from another host sharing the engine, is left alone."""
    m = _TAG_RE.match(tag)
    if not m or m["host"] != host_hash():
        return False
    return not owner_alive(f"{socket.gethostname()}/{m['pid']}/{m['start']}")


def build_temp_tar(dest: Path, run_id: str) -> Path:
    """The benchmark image's tar (as image.py builds it) plus ``/forge-run``: a layer no other
    image shares, so its removal and the next load or pull are cold everywhere."""
    if host_busybox() is None:
        raise ImageError("the image benchmark builds its image from a static busybox and none "
                         "was found; install busybox-static")
    build_busybox_tar(dest)
    data = f"{run_id}\n".encode()
    info = tarfile.TarInfo("forge-run")
    info.size, info.mode, info.mtime = len(data), 0o444, 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    with tarfile.open(dest, "a") as tar:
        tar.addfile(info, io.BytesIO(data))
    return dest


# -- engines --------------------------------------------------------------------------------

def driver_for(runtime: Runtime) -> ImageStore | None:
    """The runtime's image store, if it has one (docker and podman)."""
    return runtime if isinstance(runtime, ImageStore) else None


def not_applicable_reason(runtime: Runtime) -> str:
    if runtime.kind == "oci":
        return (f"{runtime.name} is a bare OCI runtime: it runs a bundle's rootfs and has no "
                "image store to load or pull into")
    if runtime.kind == "command":
        return f"{runtime.name} is a command runtime: forge cannot load or pull images with it"
    return f"{runtime.name} has no image store forge can drive (docker and podman only)"


# -- measuring ------------------------------------------------------------------------------

@dataclass
class ImageRun(RuntimeRun):
    """One engine's part in the run: its samples and errors, and what it holds right now."""

    driver: ImageStore | None = None
    clock: Clock = time.perf_counter
    target: str = ""
    """The reference each load or pull (re)creates."""
    payload: bytes = b""
    """The saved image, loaded on every iteration (load mode)."""
    present: set[str] = field(default_factory=set)
    """IDs of this run's images on the engine now (removed before each iteration)."""
    seen: set[str] = field(default_factory=set)
    transfer_bytes: int | None = None


def purge(driver: ImageStore, is_target: Callable[[str], bool],
          extra_ids: Iterable[str] = ()) -> int:
    """Remove every image whose tags are all targets, by ID; where an image also carries a tag
    that is not a target, remove only the target tags. Returns how many removals were made."""
    removed = 0
    for img in driver.list_images():
        targets = [t for t in img.tags if is_target(t)]
        if not targets:
            continue
        if len(targets) == len(img.tags):
            driver.remove_image(img.id, force=True)
            removed += 1
        else:
            for t in targets:
                driver.remove_image(t, force=False)
                removed += 1
    for image_id in extra_ids:  # the run's own untagged images, if any
        facts = driver.inspect_image(image_id)
        if facts is not None and all(is_target(t) for t in facts.tags):
            driver.remove_image(image_id, force=True)
            removed += 1
    return removed


def sweep_dead_images(drivers: Sequence[ImageStore], registry: Registry | None,
                      log: Log = lambda _m: None) -> int:
    """Remove temporary images of forge runs that died without cleaning up (SIGKILL, power
    loss); live runs' images, and anything whose owner we cannot judge, are left alone."""
    def dead(ref: str) -> bool:
        name, tag = split_ref(ref)
        return name == TEMP_REPO and tag_owner_dead(tag)

    removed = 0
    for d in drivers:
        try:
            removed += purge(d, dead)
        except ForgeError as exc:
            log(f"{d.name}: could not sweep dead runs' temporary images: {exc}")
    if registry is not None:
        try:
            for tag in registry.tags(TEMP_REPO):
                if tag_owner_dead(tag):
                    removed += registry.delete_tag(TEMP_REPO, tag)
        except ForgeError as exc:
            log(f"could not sweep dead runs' images from the registry: {exc}")
    return removed


class ImageBench:
    """Runs the iterations on each engine in turn, then removes everything the run made."""

    def __init__(self, runs: Sequence[ImageRun], ctx: RunContext, source: str,
                 tar_path: Path, registry: Registry | None = None, *,
                 progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                 log: Log = lambda _m: None, settle_s: float = SETTLE_S) -> None:
        self.runs = list(runs)
        self.ctx = ctx
        self.source = source
        self.tar_path = tar_path
        self.registry = registry
        self.progress = progress or (lambda *_a: None)
        self.cancel = cancel or threading.Event()
        self.log = log
        self.settle_s = settle_s
        self.tag = temp_tag(ctx)
        self.local_ref = f"{TEMP_REPO}:{self.tag}"
        self.remote_ref = f"{registry.address}/{TEMP_REPO}:{self.tag}" if registry else ""
        self.pushed = False
        """True from the moment a push starts: cleanup then deletes the registry tag."""
        self.pushed_by: str | None = None
        self.busy = False
        """An engine or registry call is in flight: an interrupt now may race with it."""

    def own(self, ref: str) -> bool:
        return is_temp_ref(ref, self.tag)

    @contextlib.contextmanager
    def _call(self) -> Iterator[None]:
        self.busy = True
        try:
            yield
        except ForgeError:
            self.busy = False  # the engine answered: nothing is left in flight
            raise
        self.busy = False

    @staticmethod
    def _driver(run: ImageRun) -> ImageStore:
        assert run.driver is not None
        return run.driver

    # -- preparing ----------------------------------------------------------------------------
    def _import(self, run: ImageRun) -> None:
        d = self._driver(run)
        self.log(f"importing {self.local_ref} into {run.runtime.name}")
        with self._call():
            d.import_tar(self.tar_path, self.local_ref)
        facts = d.inspect_image(self.local_ref)
        if facts is None:
            raise EngineError(f"{run.runtime.name}: {self.local_ref} is missing right after "
                              "its import")
        run.present.add(facts.id)
        run.seen.add(facts.id)

    def _prepare_load(self, run: ImageRun) -> None:
        self._import(run)
        run.target = self.local_ref
        with self._call():
            run.payload = self._driver(run).save_image(self.local_ref)
        run.transfer_bytes = len(run.payload)

    def _prepare_pull(self) -> None:
        assert self.registry is not None
        for run in self.runs:
            run.target = self.remote_ref
        for run in self.runs:
            if run.stopped:
                continue
            try:
                self._import(run)
                self.log(f"pushing {self.remote_ref} from {run.runtime.name}")
                self.pushed = True
                with self._call():
                    self._driver(run).push_image(self.local_ref, self.remote_ref,
                                                      TRANSFER_TIMEOUT_S, tls_verify=False)
            except ForgeError as exc:
                run.errors.append(str(exc))
                continue
            self.pushed_by = run.runtime.name
            break
        if self.pushed_by is None:
            for run in self.runs:
                run.stopped = True
                if not run.errors:
                    run.errors.append(f"no engine could push {self.remote_ref}")
            return
        size = None
        with contextlib.suppress(ForgeError):  # only a figure for the report
            size = self.registry.transfer_bytes(TEMP_REPO, self.tag)
        for run in self.runs:
            run.transfer_bytes = size

    def prepare(self) -> None:
        if self.source == "pull":
            self._prepare_pull()
            return
        for run in self.runs:
            try:
                self._prepare_load(run)
            except ForgeError as exc:
                run.errors.append(str(exc))
                run.stopped = True

    # -- one iteration ------------------------------------------------------------------------
    def _remove_own(self, run: ImageRun, image_id: str) -> None:
        """Remove one of this run's images by ID, having checked it carries no other tag."""
        d = self._driver(run)
        facts = d.inspect_image(image_id)
        if facts is None:
            run.present.discard(image_id)
            return
        foreign = [t for t in facts.tags if not self.own(t)]
        if foreign:
            raise EngineError(f"{run.runtime.name}: image {image_id[:19]} is also tagged "
                              f"{foreign[0]}; forge removes only its own temporary images, so "
                              "the run cannot go on cold")
        with self._call():
            d.remove_image(image_id, force=True)
        if d.inspect_image(image_id) is not None:
            raise EngineError(f"{run.runtime.name}: image {image_id[:19]} is still present "
                              "after its removal, so the next load or pull would not be cold")
        run.present.discard(image_id)

    def _evict(self, run: ImageRun) -> None:
        for image_id in sorted(run.present):
            self._remove_own(run, image_id)
        facts = self._driver(run).inspect_image(run.target)
        if facts is not None:
            self._remove_own(run, facts.id)

    def iteration(self, run: ImageRun) -> Sample:
        d = self._driver(run)
        self._evict(run)
        clock = run.clock
        with self._call():
            t0 = clock()
            if self.source == "load":
                d.load_image(run.payload, TRANSFER_TIMEOUT_S)
            else:
                d.pull(run.target, TRANSFER_TIMEOUT_S, tls_verify=False)
            elapsed = ms(clock() - t0)
        facts = d.inspect_image(run.target)
        if facts is None:
            raise EngineError(f"{run.runtime.name}: the {self.source} reported success but "
                              f"{run.target} is not present")
        run.present.add(facts.id)
        run.seen.add(facts.id)
        return Sample(elapsed, {self.source: elapsed})

    def _one(self, run: ImageRun, keep: bool) -> None:
        if run.stopped:
            return
        try:
            sample = self.iteration(run)
        except ForgeError as exc:
            run.record_failure(exc)  # the runner's rule: a hung engine is given up at once
            return
        run.consecutive_errors = 0
        if keep:
            run.samples.append(sample)

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Interrupted("cancelled; the run's temporary images were removed")

    def run(self, iterations: int, warmup: int = 0) -> list[ImageRun]:
        try:
            self.prepare()
            for run in self.runs:
                for w in range(warmup):
                    self._check_cancel()
                    self._one(run, keep=False)
                    self.progress(run.runtime.name, w + 1, warmup, True)
                for i in range(iterations):
                    self._check_cancel()
                    self._one(run, keep=True)
                    self.progress(run.runtime.name, i + 1, iterations, False)
                    if run.stopped:
                        break
        finally:
            with signals_deferred():
                self.cleanup()
        return self.runs

    # -- cleanup ------------------------------------------------------------------------------
    def _cleanup_once(self) -> list[str]:
        problems: list[str] = []
        for run in self.runs:
            try:
                purge(self._driver(run), self.own, run.seen | run.present)
                run.present.clear()
            except EngineTimeout as exc:
                # hung earlier: the adapter refused without asking it again; the next run's
                # sweep removes these images once the engine answers and this process is gone
                problems.append(f"{exc}; its temporary images are left for the next run's "
                                "sweep")
            except ForgeError as exc:
                problems.append(f"{run.runtime.name}: {exc}")
        if self.pushed and self.registry is not None:
            try:
                self.registry.delete_tag(TEMP_REPO, self.tag)
            except ForgeError as exc:
                problems.append(str(exc))
        return problems

    def cleanup(self) -> None:
        """Never raises: what could not be removed is logged, and a later run's sweep removes
        it once this process is gone."""
        rounds = 3 if self.busy else 1
        problems: list[str] = []
        for n in range(rounds):
            if n:
                time.sleep(self.settle_s)
            try:
                problems = self._cleanup_once()
            except Exception as exc:  # noqa: BLE001 - cleanup must never raise
                problems = [f"{type(exc).__name__}: {exc}"]
        self.busy = False
        for p in problems:
            self.log(f"cleanup: {p}")


# -- the document ---------------------------------------------------------------------------

def runtime_entry(run: ImageRun, source: str) -> dict[str, Any]:
    totals = [s.total_ms for s in run.samples]
    entry: dict[str, Any] = {
        "runtime": run.runtime.name,
        "kind": run.runtime.kind,
        "version": run.info.version,
        "source": source,
        "samples": [s.to_dict() for s in run.samples],
        "stats": None,
        "transfer_bytes": run.transfer_bytes,
        "warnings": [],
        "errors": run.errors,
        "not_applicable": None,
    }
    if totals:
        summary = stats.summarize(totals)
        entry["stats"] = summary.to_dict()
        entry["warnings"] = stats.reliability_warnings(totals, summary.outliers)
    return entry


def not_applicable_entry(runtime: Runtime, source: str, reason: str,
                         version: str | None) -> dict[str, Any]:
    return {"runtime": runtime.name, "kind": runtime.kind, "version": version,
            "source": source, "samples": [], "stats": None, "transfer_bytes": None,
            "warnings": [], "errors": [], "not_applicable": reason}


# -- entry point ----------------------------------------------------------------------------

def resolve(config: Config, names: Sequence[str]) -> tuple[list[Runtime], list[Runtime]]:
    """(engines to measure, runtimes named explicitly that the benchmark does not apply to).
    Unnamed runtimes without an image store are skipped silently."""
    if not names:
        selected, _ = select_runtimes(config, None, kinds=("engine",))
        measurable = [r for r in selected if driver_for(r) is not None]
        for r in selected:
            if r not in measurable:
                r.close()
        if not measurable:
            raise RuntimeUnavailable("no docker or podman engine is available for the image "
                                     "benchmark; start one (`make run` starts both)")
        return measurable, []
    known = {r.name: r for r in known_runtimes(config)}
    na: list[Runtime] = []
    try:
        unknown = [n for n in names if n not in known]
        if unknown:
            select_runtimes(config, unknown)  # raises its "unknown runtime" error
        wanted = list(dict.fromkeys(names))
        na = [known[n] for n in wanted if driver_for(known[n]) is None]
        engines = [n for n in wanted if known[n] not in na]
    finally:
        for r in known.values():
            if r not in na:
                r.close()
    if not engines:
        for r in na:
            r.close()
        raise UsageError(f"{not_applicable_reason(na[0])}; the image benchmark measures "
                         "docker and podman")
    try:
        selected, _ = select_runtimes(config, engines)
    except BaseException:
        for r in na:
            r.close()
        raise
    return selected, na


def run_image_bench(opts: ImageOptions, config: Config, *, progress: ProgressFn | None = None,
                    cancel: threading.Event | None = None, log: Log = lambda _m: None,
                    wait: bool = False) -> tuple[dict[str, Any], Path | None]:
    Prepared = tuple[ImageBench, list[Runtime], dict[str, RuntimeInfo], int]

    def prepare(s: Session) -> Prepared:
        registry: Registry | None = None
        if opts.needs_registry():
            registry = Registry(opts.registry_address(), config.timeout_s)
            s.on_exit(contextlib.closing(registry))
            registry.probe()
        selected, na = resolve(config, opts.runtimes)
        s.on_exit(_closing_all([*selected, *na]))
        use_registry = registry if opts.source == "pull" else None
        sweep_dead(selected)
        drivers = {r.name: driver_for(r) for r in selected}
        swept = sweep_dead_images([d for d in drivers.values() if d is not None],
                                  use_registry, s.log)
        if swept:
            s.log(f"removed {swept} temporary image(s) left by forge runs that died")
        infos = {r.name: r.info() for r in [*selected, *na]}
        runs = [ImageRun(r, infos[r.name], driver=drivers[r.name],
                         clock=getattr(r, "clock", time.perf_counter)) for r in selected]
        tmp = s.on_exit(tempfile.TemporaryDirectory(prefix="forge-image-bench-"))
        tar = build_temp_tar(Path(tmp) / "image.tar", s.ctx.run_id)
        bench = ImageBench(runs, s.ctx, opts.source, tar, use_registry, progress=s.progress,
                           cancel=s.cancel, log=s.log)
        return bench, na, infos, tar.stat().st_size

    def measure(s: Session, prepared: Prepared) -> Measured:
        bench, na, infos, image_bytes = prepared
        s.log(f"measuring cold {opts.source}s of {bench.local_ref} "
              f"({image_bytes / 1e6:.1f} MB layer)")
        runs = bench.run(opts.iterations, opts.warmup)
        parameters = {
            "source": opts.source,
            "registry": bench.registry.address if bench.registry else None,
            "iterations": opts.iterations,
            "warmup": opts.warmup,
            "image_bytes": image_bytes,
            "image": bench.remote_ref if bench.registry else bench.local_ref,
            "pushed_by": bench.pushed_by,
        }
        entries = [runtime_entry(r, opts.source) for r in runs]
        entries += [not_applicable_entry(r, opts.source, not_applicable_reason(r),
                                         infos[r.name].version) for r in na]
        nothing = None
        if not any(r.samples for r in runs):
            errors = "; ".join(f"{r.runtime.name}: {r.errors[-1]}" for r in runs if r.errors)
            nothing = f"no engine completed an iteration ({errors})"
        return Measured(entries, parameters, list(infos.values()), runs=runs,
                        iterations=opts.iterations, nothing_measured=nothing)

    session = Session("image", config, progress=progress, cancel=cancel, log=log, wait=wait)
    try:
        return session.run(opts, prepare, measure)
    except KeyboardInterrupt:  # cleanup has run by now (ImageBench.run's finally)
        raise Interrupted("interrupted; the run's temporary images were removed") from None


@contextlib.contextmanager
def _closing_all(runtimes: Sequence[Runtime]) -> Iterator[None]:
    try:
        yield
    finally:
        for r in runtimes:
            with contextlib.suppress(Exception):
                r.close()
