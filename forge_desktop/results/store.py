"""Results on disk: one JSON file per run in ``$FORGE_HOME/benchmarks``, written atomically."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from forge_desktop.config import benchmarks_dir
from forge_desktop.errors import StoreError
from forge_desktop.results.schema import validate


def why_failed(exc: OSError) -> str:
    """An OSError in words a user acts on."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied"
    return exc.strerror or str(exc)


def ensure_writable(directory: Path | None = None) -> Path:
    """Create the store (0700) and prove we can write there, before spending minutes on a
    benchmark whose result could not be kept."""
    directory = directory or benchmarks_dir()
    try:
        directory.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory.mkdir(exist_ok=True, mode=0o700)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StoreError(f"cannot write results to {directory}: {why_failed(exc)}; set "
                         "FORGE_HOME to a writable directory") from None
    return directory


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Temp file in the same directory, fsync, rename, fsync the directory: a reader sees the
    old state or the complete new file, never a part. ``mode``: the new file's permissions
    (default: mkstemp's private 0600)."""
    directory = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {why_failed(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
        dfd = os.open(directory, os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StoreError(f"cannot write {path}: {why_failed(exc)}; nothing was saved") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, doc: Any) -> None:
    atomic_write_bytes(path, (json.dumps(doc, indent=2) + "\n").encode())


def save(doc: dict[str, Any], directory: Path | None = None) -> Path:
    directory = ensure_writable(directory)
    path = directory / f"{doc['id']}.json"
    atomic_write_json(path, validate(doc))
    return path


def load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"no result at {path}") from None
    except (OSError, ValueError, RecursionError) as exc:
        # ValueError: JSONDecodeError, UnicodeDecodeError, and an int of more than 4300
        # digits (sys.int_info), which json.loads refuses with a bare ValueError
        raise StoreError(f"{path.name} is unreadable ({type(exc).__name__}); move it aside") \
            from None
    return validate(doc, path.name)
