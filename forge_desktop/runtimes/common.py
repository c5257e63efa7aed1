"""Helpers shared by adapters: timed subprocesses, error wording, image-name checks."""

from __future__ import annotations

import re
import subprocess
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


def timed_cmd(argv: Sequence[str], timeout_s: float, what: str,
              clock: Clock = time.perf_counter) -> float:
    """Wall time in ms of one command run to completion, output discarded, as hyperfine -N."""
    start = clock()
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
    except OSError as exc:
        raise EngineError(f"{what}: cannot start {argv[0]}: {exc.strerror}") from None
    try:
        _out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise EngineTimeout(f"{what} did not finish within {timeout_s:g} s") from None
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    elapsed = clock() - start
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise EngineError(f"{what} exited with status {proc.returncode}: {tail[0][:300]}")
    return ms(elapsed)


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
