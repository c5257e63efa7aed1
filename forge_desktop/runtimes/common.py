"""Helpers shared by adapters: timed subprocesses, error wording (what a failed request to an
engine means), image-name checks, engines' streamed JSON."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from forge_desktop.errors import EngineError, EngineTimeout, UsageError

Clock = Callable[[], float]
"""Seconds from an arbitrary origin; ``time.perf_counter`` unless a test injects one."""

MAX_IN_FLIGHT = 32
"""Requests one adapter may have in flight at once (the scale benchmark's highest level): its
API client keeps that many connections open, rather than the SDKs' 10, beyond which every
extra request opens a connection, discards it and logs a warning."""
_IMAGE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._/:@-]{0,254}$")


def check_image_name(image: str) -> str:
    """Refuse names that are not image references (spaces, shell syntax, newlines)."""
    # fullmatch, not match: "$" also matches before a final newline ("busybox\n")
    if not _IMAGE_RE.fullmatch(image) or ".." in image:
        raise UsageError(f"{image!r} is not a valid image name (expected e.g. busybox:latest)")
    return image


def split_tag(image: str) -> tuple[str, str]:
    """``[registry/]path:tag`` -> (repository, tag); no tag -> "latest". A registry's port
    is not a tag (the colon must be in the last path component)."""
    if ":" not in image.split("/")[-1]:
        return image, "latest"
    repo, _, tag = image.rpartition(":")
    return repo, tag or "latest"


def size_or_none(value: Any) -> int | None:
    """Engines report unknown sizes as -1 or leave them out."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)


def known_sum(values: Sequence[int | None]) -> int:
    return sum(v for v in values if v is not None)


def overlay_layer_dirs(graph_driver: dict[str, Any]) -> dict[str, str]:
    """The overlay directories a created container owns, from its ``GraphDriver``: its own
    layer (parent of UpperDir and WorkDir) and, for docker, the ``-init`` layer it writes
    /etc/hosts and friends into (the first LowerDir entry, ending in ``-init/diff``)."""
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


def unix_get_json(endpoint: str, api_path: str, timeout_s: float) -> Any:
    """One HTTP/1.0 GET on an engine's unix socket, by hand, decoded from JSON; None when it
    does not answer 200. No SDK and no http.client (which pulls in the email package and
    ssl, megabytes an idle tray should not carry)."""
    if not endpoint.startswith("unix://"):
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(endpoint.removeprefix("unix://"))
            sock.sendall(f"GET {api_path} HTTP/1.0\r\nHost: engine\r\n\r\n".encode())
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.") or head.split(b" ", 2)[1] != b"200":
            return None
        return json.loads(body)
    except (OSError, ValueError, IndexError):
        return None


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


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from (``__cause__``, else ``__context__``)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def is_timeout(exc: BaseException) -> bool:
    """A read or connect timeout anywhere in the chain (podman-py hides it under APIError)."""
    return any("timed out" in str(e) or "Timeout" in type(e).__name__
               for e in exception_chain(exc))


def socket_permission_reason(sock: str) -> str:
    """Why this user may not use an engine's socket, and the one thing that fixes it: join
    the socket's group, or log in again when the group was joined after this session began
    (a process's groups are fixed at login)."""
    import grp
    import pwd
    import stat

    try:
        user = pwd.getpwuid(os.getuid()).pw_name
        st = os.stat(sock)
        group = grp.getgrgid(st.st_gid)
    except (KeyError, OSError):
        return f"permission denied on {sock}; run forge as a user who may use it"
    mode = stat.S_IMODE(st.st_mode)
    if st.st_gid == 0 or mode & 0o060 != 0o060 or st.st_gid in os.getgroups():
        # the group cannot help (root's group, no group access) or is already ours
        return (f"permission denied on {sock} (mode {mode:o}, group {group.gr_name}); "
                "run forge as a user who may use it, e.g. root")
    if user in group.gr_mem or pwd.getpwnam(user).pw_gid == st.st_gid:
        return (f"permission denied on {sock}: {user} is in the '{group.gr_name}' group, but "
                f"this login session started before that; log in again (or run "
                f"`newgrp {group.gr_name}`)")
    return (f"permission denied on {sock}: add {user} to the '{group.gr_name}' group "
            f"(`sudo usermod -aG {group.gr_name} {user}`, then log in again)")


def explain_connection_error(exc: BaseException, endpoint: str, engine: str,
                             start_hint: str) -> str:
    """Turn a requests/socket failure into a sentence a user can act on."""
    # podman-py wraps the requests error in an APIError whose text is only the URL and
    # "(POST operation failed)": the cause (refused, reset, ...) is further down the chain
    text = " ".join(f"{e!r} {e}" for e in exception_chain(exc))
    sock = endpoint.removeprefix("unix://")
    if "PermissionError" in text or "Permission denied" in text:
        return socket_permission_reason(sock)
    if "FileNotFoundError" in text or "No such file" in text:
        return f"{engine} is not running: no socket at {sock}; {start_hint}"
    if "ConnectionRefused" in text or "Connection refused" in text:
        return f"{engine} is not running: {endpoint} refuses connections; {start_hint}"
    if "Timeout" in text or "timed out" in text:
        return f"{engine} at {endpoint} did not answer in time; is the daemon hung?"
    if any(s in text for s in ("RemoteDisconnected", "Connection aborted", "Connection reset",
                               "BrokenPipe")):
        # the daemon went away in the middle of a request (killed, crashed, restarted)
        return (f"{engine} at {endpoint} closed the connection in the middle of a request; "
                f"did it stop or crash? {start_hint}")
    return f"{engine} at {endpoint} cannot be reached: {first_line(str(exc))}"


def connection_failed(exc: BaseException) -> bool:
    """requests could not reach the daemon or lost the connection (not an HTTP error)."""
    try:
        from requests.exceptions import ConnectionError as RequestsConnectionError
    except ImportError:  # pragma: no cover - a dependency of the docker SDK
        return False
    return isinstance(exc, RequestsConnectionError)


def json_objects(text: str) -> Iterator[dict[str, Any]]:
    """Engines stream progress as JSON objects, one after another; skip what is not one."""
    decoder = json.JSONDecoder()
    i = 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return
        try:
            obj, i = decoder.raw_decode(text, i)
        except ValueError:
            return
        if isinstance(obj, dict):
            yield obj


def stream_error(obj: dict[str, Any]) -> str | None:
    err = obj.get("error") or (obj.get("errorDetail") or {}).get("message")
    return str(err) if err else None


@functools.cache
def setpriv_with_pdeathsig() -> str | None:
    """util-linux's setpriv if it knows --pdeathsig (2.33 and later), else None: how a
    daemon forge starts for a run (podman's API service, a private containerd) ends with forge
    even when forge is SIGKILLed, without preexec_fn (unsafe in a threaded process)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    try:
        out = subprocess.run([setpriv, "--help"], capture_output=True, text=True, timeout=5,
                             check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return setpriv if "--pdeathsig" in out.stdout else None
