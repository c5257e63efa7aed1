"""Helpers shared by adapters: timed subprocesses, error wording, image-name checks."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Sequence

from forge_desktop.errors import EngineError, UsageError

Clock = Callable[[], float]
"""Seconds from an arbitrary origin; ``time.perf_counter`` unless a test injects one."""

_IMAGE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._/:@-]{0,254}$")


def check_image_name(image: str) -> str:
    """Refuse names that are not image references (spaces, shell syntax, newlines)."""
    if not _IMAGE_RE.match(image) or ".." in image:
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
        raise EngineError(f"{what} did not finish within {timeout_s:g} s") from None
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
        raise EngineError(f"{what} did not finish within {timeout_s:g} s") from None
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
