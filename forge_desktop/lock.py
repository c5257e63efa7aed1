"""One benchmark at a time per FORGE_HOME, across processes and front ends.

The lock is ``flock`` on ``$FORGE_HOME/benchmark.lock``: the kernel drops it when the holder's
file is closed, so it is released however the holder dies (exit, exception, SIGKILL) and a
stale pid file can never block a run. The holder writes what it runs (kind, pid, start time)
into the locked file, so a refused front end can say what it waits for.

``flock`` locks belong to an open file description, so two threads of one process that each
open the file refuse each other too (the tray and the window in one process). A job thread
that was handed a hold taken on another thread (``JobRunner.submit`` takes it on the GUI
thread, so the refusal is immediate) binds it; the benchmark session on that thread then finds
it and does not lock again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from forge_desktop.errors import Busy, Interrupted, StoreError

LOCK_NAME = "benchmark.lock"
RECORD_BYTES = 512
"""The holder's record is padded to this size and written in one ``pwrite``, so a reader never
sees half of a new record over the tail of an old one."""
POLL_S = 0.2
"""How often ``--wait`` tries again: the lock has no wake-up that also honours Cancel."""
_RECORD_GRACE_S = 1.0
"""A holder writes its record right after locking; a reader that finds it empty waits this
long for it before saying the holder is unknown."""

_bound = threading.local()


@dataclass(frozen=True)
class Holder:
    kind: str
    pid: int
    since: float
    """time.time() when it took the lock."""

    def describe(self) -> str:
        when = datetime.fromtimestamp(self.since)
        stamp = when.strftime("%H:%M:%S") if when.date() == datetime.now().date() \
            else when.strftime("%Y-%m-%d %H:%M:%S")
        return f"{self.kind}, pid {self.pid}, since {stamp}"


def lock_path() -> Path:
    from forge_desktop.config import forge_home

    return forge_home() / LOCK_NAME


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot use {path.parent} for the benchmark lock: "
                         f"{exc.strerror or exc}; set FORGE_HOME to a writable directory"
                         ) from None


def _read_holder(fd: int) -> Holder | None:
    deadline = time.monotonic() + _RECORD_GRACE_S
    while True:
        raw = os.pread(fd, RECORD_BYTES, 0).decode(errors="replace").strip()
        if raw:
            try:
                rec = json.loads(raw)
                return Holder(str(rec["kind"]), int(rec["pid"]), float(rec["since"]))
            except (ValueError, KeyError, TypeError):
                return None
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)  # the holder is between flock and pwrite: microseconds


def busy_message(holder: Holder | None) -> str:
    what = holder.describe() if holder else "its details could not be read"
    # no "--wait" here: the tray, the window and forge-shortcut have none (the CLI adds it)
    return f"a benchmark is already running ({what}); wait for it to end or cancel it"


class Hold:
    """A taken lock. ``release`` (or closing the process) gives it back."""

    def __init__(self, fd: int, path: Path, holder: Holder) -> None:
        self.fd: int | None = fd
        self.path = path
        self.holder = holder

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)  # releases the flock

    @contextlib.contextmanager
    def bound(self) -> Iterator[Hold]:
        """Make this hold the current thread's: a session on it uses it instead of locking."""
        previous = getattr(_bound, "hold", None)
        _bound.hold = self
        try:
            yield self
        finally:
            _bound.hold = previous


def try_acquire(kind: str, path: Path | None = None) -> Hold | None:
    """Take the lock, or None when another holder has it."""
    path = path or lock_path()
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    holder = Holder(kind, os.getpid(), time.time())
    record = json.dumps({"kind": holder.kind, "pid": holder.pid, "since": holder.since})
    os.pwrite(fd, record.encode().ljust(RECORD_BYTES), 0)
    return Hold(fd, path, holder)


def current_holder(path: Path | None = None) -> Holder | None:
    """Who holds the lock now, or None when it is free."""
    path = path or lock_path()
    if not path.exists():
        return None
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        return None
    finally:
        os.close(fd)


def acquire(kind: str, *, wait: bool = False, cancel: threading.Event | None = None,
            log: Callable[[str], None] = lambda _m: None, path: Path | None = None) -> Hold:
    """Take the lock; Busy (exit 75) naming the holder, or with ``wait`` wait for it (Cancel
    stops the wait)."""
    path = path or lock_path()
    stop = cancel or threading.Event()
    told = False
    while True:
        hold = try_acquire(kind, path)
        if hold is not None:
            return hold
        if not wait:
            raise Busy(busy_message(current_holder(path)))
        if not told:
            holder = current_holder(path)
            log(f"waiting for the running benchmark "
                f"({holder.describe() if holder else 'details unknown'}) to end")
            told = True
        if stop.wait(POLL_S):
            raise Interrupted("cancelled while waiting for the running benchmark")


@contextlib.contextmanager
def held(kind: str, *, wait: bool = False, cancel: threading.Event | None = None,
         log: Callable[[str], None] = lambda _m: None) -> Iterator[Hold]:
    """The lock for the duration of a benchmark: the hold bound to this thread if there is one
    for this FORGE_HOME (a job handed it over), else a new one, released on the way out."""
    path = lock_path()
    hold: Hold | None = getattr(_bound, "hold", None)
    if hold is not None and hold.fd is not None and hold.path == path:
        yield hold
        return
    hold = acquire(kind, wait=wait, cancel=cancel, log=log, path=path)
    try:
        with hold.bound():
            yield hold
    finally:
        hold.release()
