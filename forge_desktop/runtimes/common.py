"""Helpers shared by adapters: timed subprocesses, error wording, image-name checks."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence

from forge_desktop.errors import EngineError, EngineTimeout, UsageError

Clock = Callable[[], float]
"""Seconds from an arbitrary origin; ``time.perf_counter`` unless a test injects one."""

_IMAGE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._/:@-]{0,254}$")


def check_image_name(image: str) -> str:
    """Refuse names that are not image references (spaces, shell syntax, newlines)."""
    # fullmatch, not match: "$" also matches before a final newline ("busybox\n")
    if not _IMAGE_RE.fullmatch(image) or ".." in image:
        raise UsageError(f"{image!r} is not a valid image name (expected e.g. busybox:latest)")
    return image


def ms(seconds: float) -> float:
    return seconds * 1000.0


def run_cmd(argv: Sequence[str], timeout_s: float, what: str) -> subprocess.CompletedProcess[str]:
    """Run a command without a shell; a timeout or a missing binary becomes an EngineError."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise EngineTimeout(f"{what} did not finish within {timeout_s:g} s") from None
    except OSError as exc:
        raise EngineError(f"{what} could not start {argv[0]}: {exc.strerror}") from None


_RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)
"""Python ignores these; a child must start with their defaults, as Popen's restore_signals
gives it, or a command writing to a closed pipe would not stop."""


def timed_cmd(argv: Sequence[str], timeout_s: float, what: str,
              clock: Clock = time.perf_counter) -> float:
    """Wall time in ms of one command run to completion, as hyperfine -N times it: from just
    before the spawn to the reaping of the child, stdin and stdout on /dev/null (stderr is
    kept in a temporary file for the error message).

    posix_spawn and a pidfd rather than subprocess.Popen: Popen's own work around the child
    (its exec-error pipe, closing descriptors, a selector loop reading stderr) made each
    reading about 1.4 ms longer than hyperfine's for the same process, with the kernel's
    fork-to-exit as reference (benchmarks/harness_agreement.py): 14% of a 10 ms crun run."""
    with tempfile.TemporaryFile() as err, open(os.devnull, "r+b") as null:
        actions = [(os.POSIX_SPAWN_DUP2, null.fileno(), 0),
                   (os.POSIX_SPAWN_DUP2, null.fileno(), 1),
                   (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
        start = clock()
        try:
            pid = os.posix_spawnp(argv[0], list(argv), os.environ, file_actions=actions,
                                  setsigdef=_RESTORED_SIGNALS)
        except OSError as exc:
            raise EngineError(f"{what}: cannot start {argv[0]}: {exc.strerror}") from None
        try:
            status = _wait(pid, timeout_s)
        except OSError as exc:  # pidfd_open needs Linux 5.3 (and a seccomp profile allowing it)
            _kill(pid)
            raise EngineError(f"{what}: cannot wait for {argv[0]}: {exc.strerror}") from None
        except BaseException:  # Ctrl-C while waiting: no orphan left running
            _kill(pid)
            raise
        elapsed = clock() - start
        if status is None:
            _kill(pid)
            raise EngineTimeout(f"{what} did not finish within {timeout_s:g} s")
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-1:] \
                or ["(no output)"]
            raise EngineError(f"{what} exited with status {code}: {tail[0][:300]}")
    return ms(elapsed)


def _wait(pid: int, timeout_s: float) -> int | None:
    """The child's wait status once it exits, None if it is still running after timeout_s.
    A pidfd becomes readable when the process exits: no polling loop, no SIGCHLD handler."""
    fd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(timeout_s * 1000):
            return None
    finally:
        os.close(fd)
    return os.waitpid(pid, 0)[1]


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def first_line(text: str, limit: int = 300) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return (lines[0] if lines else "")[:limit]


def rfc3339_ns(stamp: str) -> int | None:
    """Nanoseconds since the epoch from an RFC 3339 time with up to 9 fractional digits
    (Go's format, which datetime.fromisoformat truncates to microseconds)."""
    import datetime as dt

    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$",
                 stamp.strip())
    if not m:
        return None
    base = dt.datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z"
                                                    else m.group(3)))
    if base.year < 1971:  # Go's zero time: never started
        return None
    frac = int((m.group(2) or "0").ljust(9, "0"))
    return int(base.timestamp()) * 1_000_000_000 + frac


def to_exec_ms(started_at: str, wall0_ns: int) -> float | None:
    """Milliseconds from our create request to the engine's StartedAt (set once the
    container's process was started): what the user's workload waits for."""
    started = rfc3339_ns(started_at)
    return round((started - wall0_ns) / 1e6, 4) if started is not None else None
