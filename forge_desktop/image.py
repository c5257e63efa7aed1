"""The benchmark image: the same small image on every runtime.

Pull the configured image (default busybox:latest) where a registry answers; where none does,
build ``forge-bench:busybox`` from the host's static busybox and import the same tar into
every engine, so every runtime runs identical layer content. Bare OCI runtimes get a rootfs
exported from an engine (or unpacked from that tar) under ``$FORGE_HOME/bundles``.
"""

from __future__ import annotations

import functools
import json
import shutil
import struct
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from forge_desktop import safetar
from forge_desktop.config import DEFAULT_IMAGE, FALLBACK_IMAGE, forge_home
from forge_desktop.errors import ForgeError, ImageError, failure_reason
from forge_desktop.models import RunContext
from forge_desktop.runtimes.base import ImageSource, Runtime
from forge_desktop.runtimes.common import check_image_name
from forge_desktop.runtimes.oci import bundle_root, rootfs_dir, rootfs_ready

PULL_TIMEOUT_S = 120.0
BUSYBOX_APPLETS = ("sh", "true", "echo", "sleep", "cat", "ls", "date")

Log = Callable[[str], None]


def _engines(runtimes: Sequence[Runtime]) -> list[ImageSource]:
    """The engines: runtimes with an image store to pull into and export a rootfs from."""
    return [r for r in runtimes if r.kind == "engine" and isinstance(r, ImageSource)]


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a PT_INTERP header (no dynamic loader needed)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only; that is every host here
                return False
            order = "<" if head[5] == 1 else ">"
            phoff, = struct.unpack_from(order + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
            fh.seek(phoff)
            table = fh.read(phentsize * phnum)
    except (OSError, struct.error):
        return False
    types = (struct.unpack_from(order + "I", table, i * phentsize)[0] for i in range(phnum))
    return 3 not in types  # PT_INTERP


def host_busybox() -> Path | None:
    """A statically linked busybox (Debian's busybox-static): it runs in an empty rootfs."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        path = Path(candidate)
        if path.is_file() and is_static_elf(path):
            return path
    return None


def build_busybox_tar(dest: Path) -> Path:
    busybox = host_busybox()
    if busybox is None:
        raise ImageError(
            "no registry answered and no static busybox was found to build "
            f"{FALLBACK_IMAGE}; install busybox-static, or load an image and pass --image")
    with tempfile.TemporaryDirectory(prefix="forge-rootfs-") as tmp:
        root = Path(tmp)
        (root / "bin").mkdir()
        shutil.copy2(busybox, root / "bin" / "busybox")
        for applet in BUSYBOX_APPLETS:
            (root / "bin" / applet).symlink_to("busybox")
        (root / "tmp").mkdir()
        with tarfile.open(dest, "w") as tar:
            for path in sorted(root.rglob("*")):
                info = tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
                info.mtime = 0  # reproducible: the same tar gives the same layer everywhere
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                if info.isreg():
                    with open(path, "rb") as fh:
                        tar.addfile(info, fh)
                else:
                    tar.addfile(info)
    return dest


def _write_rootfs(image: str, fill: Callable[[Path], None], source: dict[str, Any]) -> None:
    """Fill a fresh rootfs beside the old one, then swap it in, so a crash leaves no half."""
    root = bundle_root(image)
    # `forge image prepare` may be the first command run (`make run` starts with it): create
    # FORGE_HOME private (0700), as store.ensure_writable does, not with the umask's 0755
    forge_home().mkdir(mode=0o700, parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".rootfs-", dir=root))
    try:
        fill(tmp)
        (root / "source.json").unlink(missing_ok=True)
        shutil.rmtree(rootfs_dir(image), ignore_errors=True)
        tmp.rename(rootfs_dir(image))
        (root / "source.json").write_text(json.dumps(source))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _ensure_rootfs(image: str, engines: Sequence[ImageSource], ctx: RunContext,
                   tar_path: Path | None, log: Log) -> None:
    for engine in engines:
        try:
            if not engine.has_image(image):
                continue
            layers = engine.image_layers(image)
        except ForgeError:
            continue
        source = {"image": image, "engine": engine.name, "layers": layers}
        if rootfs_ready(image):
            old = json.loads((bundle_root(image) / "source.json").read_text())
            if old.get("layers") == layers:
                return
        log(f"exporting {image} from {engine.name} into an OCI bundle")
        _write_rootfs(image, functools.partial(engine.export_rootfs, image, ctx=ctx), source)
        return
    if rootfs_ready(image):
        return
    if tar_path is None and image == FALLBACK_IMAGE:
        with tempfile.TemporaryDirectory() as tmp:
            tar = build_busybox_tar(Path(tmp) / "busybox.tar")
            _write_rootfs(image, lambda d: _untar(tar, d), {"image": image, "engine": None})
        return
    if tar_path is not None:
        _write_rootfs(image, lambda d: _untar(tar_path, d), {"image": image, "engine": None})
        return
    raise ImageError(f"{image} is on no engine, so no OCI bundle can be made from it; "
                     "pull it with docker or podman first")


def _untar(tar_path: Path, dest: Path) -> None:
    with tarfile.open(tar_path) as tar:
        safetar.extract(tar, dest)


def _has(engine: ImageSource, ref: str) -> bool:
    """For engines that only export a rootfs: one that cannot answer does not have it."""
    try:
        return bool(engine.has_image(ref))
    except ForgeError:
        return False


def prepare_each(runtimes: Sequence[Runtime], ctx: RunContext, image: str | None = None,
                 sources: Sequence[Runtime] = (), log: Log = lambda _m: None
                 ) -> tuple[str, dict[str, str]]:
    """Make ``image`` (default: busybox:latest or its local stand-in) usable by every runtime
    in ``runtimes``; ``sources`` are further engines a bare OCI bundle may be exported from.
    Returns the image reference to benchmark and, by runtime name, the reason each runtime
    that could not be prepared was left out (its pull or import failed, the OCI rootfs could
    not be exported or unpacked, or anything else went wrong on the way): one runtime's
    failure never stops the others. ImageError only when no runtime could be prepared."""
    requested = check_image_name(image or DEFAULT_IMAGE)
    oci = [r for r in runtimes if r.kind == "oci"]
    failed: dict[str, str] = {}

    def fail(who: Sequence[Runtime | ImageSource], exc: Exception) -> None:
        for r in who:
            failed.setdefault(r.name, failure_reason(exc))

    def engines() -> list[ImageSource]:
        return [e for e in _engines(runtimes) if e.name not in failed]

    def exporters() -> list[ImageSource]:
        return engines() + [e for e in _engines(sources) if e.name not in
                            {r.name for r in runtimes}]

    def missing_on(ref: str) -> list[ImageSource]:
        missing = []
        for e in engines():
            try:
                if not e.has_image(ref):
                    missing.append(e)
            except Exception as exc:  # noqa: BLE001 - this engine's failure, not the run's
                fail([e], exc)
        return missing

    def done(ref: str, tar_path: Path | None = None) -> tuple[str, dict[str, str]]:
        if oci:
            try:
                _ensure_rootfs(ref, exporters(), ctx, tar_path, log)
            except Exception as exc:  # noqa: BLE001 - e.g. a TypeError in an unpacker once
                fail(oci, exc)        # aborted every runtime of the run, not just runc
        if all(r.name in failed for r in runtimes):
            raise ImageError(f"image {ref} could not be prepared on any runtime ("
                             + "; ".join(f"{n}: {why}" for n, why in failed.items())
                             + "); pull or load it first")
        return ref, failed

    candidates = [requested]
    if requested == DEFAULT_IMAGE:
        candidates.append(FALLBACK_IMAGE)  # a stand-in prepared earlier counts
    for ref in candidates:
        if not missing_on(ref) and (not oci or any(_has(e, ref) for e in exporters())
                                    or rootfs_ready(ref)):
            return done(ref)

    pull_failed: dict[str, str] = {}
    for engine in missing_on(requested):
        log(f"pulling {requested} on {engine.name}")
        try:
            engine.pull(requested, PULL_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - this engine's failure, not the run's
            pull_failed[engine.name] = failure_reason(exc)
    if not pull_failed and (engines() or not oci):
        return done(requested)
    if requested != DEFAULT_IMAGE:
        failed.update(pull_failed)  # the user's image, wherever it could be pulled
        return done(requested)

    log(f"no registry answered; building {FALLBACK_IMAGE} from the host's static busybox")
    with tempfile.TemporaryDirectory(prefix="forge-image-") as tmp:
        try:
            tar = build_busybox_tar(Path(tmp) / "busybox.tar")
        except Exception as exc:  # noqa: BLE001 - reported as every runtime's reason
            fail(runtimes, exc)
            return done(FALLBACK_IMAGE)
        for engine in missing_on(FALLBACK_IMAGE):
            log(f"importing {FALLBACK_IMAGE} into {engine.name}")
            try:
                engine.import_tar(tar, FALLBACK_IMAGE)
            except Exception as exc:  # noqa: BLE001 - this engine's failure, not the run's
                fail([engine], exc)
        return done(FALLBACK_IMAGE, tar)


def prepare_image(runtimes: Sequence[Runtime], ctx: RunContext, image: str | None = None,
                  sources: Sequence[Runtime] = (), log: Log = lambda _m: None) -> str:
    """``prepare_each`` for callers that need every runtime: ImageError naming each one that
    could not be prepared. Returns the image reference to benchmark."""
    ref, failed = prepare_each(runtimes, ctx, image, sources, log)
    if failed:
        raise ImageError(f"image {ref} could not be prepared for "
                         + "; ".join(f"{n}: {why}" for n, why in failed.items()))
    return ref
