"""Transport mode (issue 14, point 4): ``docker@CONTEXT`` and ``podman@CONNECTION`` drive a
remote engine through the endpoint of a docker context or podman connection, over the system
OpenSSH client with forge's safety rules (hosts.py: ``ssh://`` only, names and urls checked,
host keys always verified, BatchMode, a connect timeout).

Neither SDK's own ssh path is used: docker 7.2.0's shell-out (``use_ssh_client=True``) runs
``ssh -- HOST docker system dial-stdio`` with no BatchMode and no host-key or connect-timeout
option, reads the ssh process's pipe with no timeout (a hung host hangs forge) and makes a new
ssh process, a full handshake, for every API call (its pool is not kept); podman-py 5.8.0
forwards the socket with ``-o "StrictHostKeyChecking no"``. So docker's connections are
dialled here (one ssh ``dial-stdio`` per pooled connection, over a socketpair: a real socket,
whose timeout applies) and podman's remote socket is forwarded here with ``ssh -L``.

Also here: timing the per-call overhead of the transport (``transport_figures``), reported
beside a result's phases, never taken out of them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from forge_desktop.bench import stats
from forge_desktop.errors import ConfigError, RuntimeUnavailable, UsageError
from forge_desktop.hosts import Host, parse_host, run_remote, ssh_argv, ssh_failure

REMOTE_RE = re.compile(r"(docker|podman)@(.*)", re.DOTALL)
_ENDPOINT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A docker context or podman connection name as forge accepts it on a command line."""
CALLS_TIMED = 15
"""Cheap calls timed over the transport (and locally): enough for a median and its CI."""


def split_name(name: str) -> tuple[str, str] | None:
    """``docker@beta`` -> (``docker``, ``beta``); None for a local runtime's name."""
    m = REMOTE_RE.fullmatch(name)
    return (m.group(1), m.group(2)) if m else None


@dataclass(frozen=True)
class Remote:
    engine: str
    """docker or podman."""
    endpoint_name: str
    """The docker context or podman connection."""
    host: Host
    socket_path: str | None = None
    """podman: the engine's socket on the host (from the connection's URI)."""

    @property
    def runtime_name(self) -> str:
        return f"{self.engine}@{self.endpoint_name}"


def _cli(argv: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    if shutil.which(argv[0]) is None:
        raise UsageError(f"-r {argv[0]}@...: the {argv[0]} command is not installed here; "
                         f"transport mode reads the {argv[0]} CLI's own list of endpoints")
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL, check=False, errors="replace")
    except subprocess.TimeoutExpired:
        raise UsageError(f"{' '.join(argv[:3])} did not answer within {timeout_s:g} s") \
            from None


def resolve(name: str, timeout_s: float, configured: Sequence[Host] = ()) -> Remote:
    """``docker@CONTEXT`` / ``podman@CONNECTION`` -> the host behind it; a UsageError in one
    line when the endpoint is unknown, not ssh://, or anything forge refuses. A config.toml
    host at the same address (user, host, port) lends the endpoint its ``ssh_options`` (a
    key, a known_hosts file): a context's url has no room for them."""
    parts = split_name(name)
    assert parts is not None
    engine, endpoint = parts
    shown = repr(endpoint)[1:-1][:64]
    if not _ENDPOINT_NAME_RE.fullmatch(endpoint):
        raise UsageError(f"-r {engine}@{shown}: not a {engine} "
                         f"{'context' if engine == 'docker' else 'connection'} name (letters, "
                         "digits, . _ -, starting with a letter or digit)")
    if engine == "docker":
        what = f"docker context {endpoint}"
        proc = _cli(["docker", "context", "inspect", endpoint], timeout_s)
        if proc.returncode != 0:
            raise UsageError(f"-r docker@{endpoint}: no docker context {endpoint!r} (docker "
                             "context ls lists them; create one with docker context create "
                             f"{endpoint} --docker host=ssh://USER@HOST)")
        try:
            url = json.loads(proc.stdout)[0]["Endpoints"]["docker"]["Host"]
        except (ValueError, LookupError, TypeError):
            raise UsageError(f"-r docker@{endpoint}: docker context inspect gave no endpoint") \
                from None
        options: list[str] = []
    else:
        what = f"podman connection {endpoint}"
        proc = _cli(["podman", "system", "connection", "list", "--format", "json"], timeout_s)
        try:
            rows = json.loads(proc.stdout) if proc.returncode == 0 else []
        except ValueError:
            rows = []
        row = next((r for r in rows if isinstance(r, dict) and r.get("Name") == endpoint),
                   None) if isinstance(rows, list) else None
        if row is None:
            raise UsageError(f"-r podman@{endpoint}: no podman connection {endpoint!r} (podman "
                             "system connection list lists them; add one with podman system "
                             f"connection add {endpoint} ssh://USER@HOST/run/podman/podman.sock)")
        url = row.get("URI")
        identity = row.get("Identity")
        options = ["-i", identity] if isinstance(identity, str) and identity else []
    if not isinstance(url, str) or not url.startswith("ssh://"):
        raise UsageError(f"-r {engine}@{endpoint}: the {what} points at "
                         f"{repr(str(url))[1:-1][:80]}, not ssh://; transport mode drives "
                         f"remote engines over ssh only (this machine's engine is -r {engine})")
    try:
        host = parse_host(endpoint.lower().replace(".", "-")[:32], {"url": url,
                                                                    "ssh_options": options},
                          what, what)
    except (ConfigError, UsageError) as exc:
        raise UsageError(f"-r {engine}@{endpoint}: {exc}") from None
    for known in configured:
        if (known.hostname, known.port, known.user) == (host.hostname, host.port, host.user):
            host = replace(host, ssh_options=(*host.ssh_options, *known.ssh_options))
            break
    path = url.split("/", 3)[3] if url.count("/") >= 3 else ""
    socket_path = "/" + path if path else None
    if engine == "podman" and socket_path is None:
        raise UsageError(f"-r podman@{endpoint}: the connection's url names no socket path "
                         "(ssh://USER@HOST/run/podman/podman.sock)")
    return Remote(engine, endpoint, host, socket_path)


# --- reaching the engine ----------------------------------------------------------------------

class Dialer:
    """Opens one ``ssh HOST docker system dial-stdio`` per connection, over a socketpair, so
    the caller gets a real socket (its timeout applies). The ssh processes run in their own
    session: a Ctrl-C in the terminal reaches forge only, which then still removes its
    containers through them."""

    def __init__(self, host: Host, remote: list[str], timeout_s: float) -> None:
        self.host = host
        self.remote = remote
        self.timeout_s = timeout_s
        self.procs: list[subprocess.Popen[bytes]] = []

    def dial(self) -> socket.socket:
        ours, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen(ssh_argv(self.host, self.remote, self.timeout_s),
                                    stdin=theirs.fileno(), stdout=theirs.fileno(),
                                    stderr=subprocess.PIPE,
                                    start_new_session=True)
        except OSError as exc:
            ours.close()
            raise RuntimeUnavailable(f"cannot run ssh: {exc.strerror or exc}; install "
                                     "openssh-client") from None
        finally:
            theirs.close()
        self.procs = [p for p in self.procs if p.poll() is None] + [proc]
        ours.settimeout(self.timeout_s)
        return ours

    def failure(self) -> str | None:
        """Why an ssh of ours exited (a refused host key, a login refused), if one did."""
        for proc in self.procs:
            # the connection closed because ssh is exiting: give it a moment to finish
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(min(5.0, self.timeout_s))
            if proc.poll() is not None and proc.returncode != 0 and proc.stderr is not None:
                err = proc.stderr.read().decode(errors="replace")
                if proc.returncode == 255:
                    return ssh_failure(self.host, 255, err)
                return (f"host {self.host.name}: {' '.join(self.remote)} failed there (exit "
                        f"{proc.returncode}: {' '.join(err.split())[:160]})")
        return None

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
        self.procs = []


class Forward:
    """``ssh -N -L LOCAL.sock:REMOTE.sock HOST``: the remote engine's socket, here."""

    def __init__(self, host: Host, remote_path: str, timeout_s: float) -> None:
        self.host = host
        self.remote_path = remote_path
        self.timeout_s = timeout_s
        self.dir = tempfile.mkdtemp(prefix="forge-ssh-")
        self.local = os.path.join(self.dir, "engine.sock")
        self.proc: subprocess.Popen[bytes] | None = None

    def open(self) -> str:
        argv = ssh_argv(self.host, ["true"], self.timeout_s)
        # -N: no remote command (the "true" ssh_argv appends is dropped); the forward only
        argv = [*argv[:-3], "-N", "-o", "ExitOnForwardFailure=yes",
                "-L", f"{self.local}:{self.remote_path}", "--", self.host.hostname]
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         start_new_session=True)
        except OSError as exc:
            raise RuntimeUnavailable(f"cannot run ssh: {exc.strerror or exc}; install "
                                     "openssh-client") from None
        deadline = time.monotonic() + self.timeout_s
        while not os.path.exists(self.local):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") \
                    if self.proc.stderr else ""
                raise RuntimeUnavailable(ssh_failure(self.host, self.proc.returncode, err))
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeUnavailable(f"host {self.host.name}: the ssh forward of "
                                         f"{self.remote_path} was not up within "
                                         f"{self.timeout_s:g} s")
            time.sleep(0.02)
        return self.local

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


# --- what the transport costs -----------------------------------------------------------------

def is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def time_calls(call: Callable[[], object], n: int = CALLS_TIMED,
               clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """``n`` calls after one untimed one (which opens the connection), in ms."""
    call()
    out = []
    for _ in range(n):
        t0 = clock()
        call()
        out.append((clock() - t0) * 1000.0)
    return out


def remote_env(host: Host, var: str, timeout_s: float) -> str | None:
    """A variable of the host's ssh sessions (e.g. DOCKER_HOST, which decides the engine
    ``docker system dial-stdio`` reaches there)."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        proc = run_remote(host, ["printenv", var], timeout_s)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    return None


def transport_figures(remote: Remote, call: Callable[[], object],
                      local_call: Callable[[], object] | None, local_why: str | None,
                      calls_per_lifecycle: int, n: int = CALLS_TIMED,
                      clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    """The ``transport`` object of a result entry: the median of ``n`` cheap calls over ssh,
    the same call on the engine's own socket when this machine can make it (a loopback host),
    and what that difference costs one measured lifecycle of ``calls_per_lifecycle`` calls."""
    over = stats.summarize(time_calls(call, n, clock))
    out: dict[str, Any] = {
        "mode": "ssh", "endpoint": remote.runtime_name, "url": remote.host.url,
        "host": remote.host.hostname, "calls_timed": n,
        "call_ms": round(over.median_ms, 4),
        "call_ci95_ms": [round(over.ci95_ms[0], 4), round(over.ci95_ms[1], 4)],
        "local_call_ms": None, "calls_per_lifecycle": calls_per_lifecycle,
        "overhead_ms_per_lifecycle": None, "local_note": local_why,
    }
    if local_call is not None:
        local = stats.summarize(time_calls(local_call, n, clock))
        out["local_call_ms"] = round(local.median_ms, 4)
        out["overhead_ms_per_lifecycle"] = round(
            calls_per_lifecycle * max(over.median_ms - local.median_ms, 0.0), 4)
        out["local_note"] = None
    return out


def unix_get(path: str, url: str, timeout_s: float) -> bytes:
    """One ``GET url`` on a unix socket, the body (for the local side of the figures)."""
    import http.client

    conn = http.client.HTTPConnection("localhost", timeout=timeout_s)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(path)
        conn.sock = sock
        conn.request("GET", url)
        return conn.getresponse().read()
    finally:
        conn.close()


def local_socket(candidates: list[str | None], identity: Callable[[str], object],
                 remote_identity: object) -> str | None:
    """Of this machine's engine sockets, the one whose engine answers with
    ``remote_identity`` (the same daemon the transport reaches), if any."""
    for cand in candidates:
        if not cand or not cand.startswith("unix://"):
            continue
        path = cand.removeprefix("unix://")
        if not Path(path).exists():
            continue
        with contextlib.suppress(Exception):
            if identity(path) == remote_identity:
                return path
    return None


def refuse_remote(names: tuple[str, ...], kind: str) -> None:
    """memory and disk read this machine's processes and directories: of a remote engine they
    would read nothing true, so a transport-mode name is refused before anything starts."""
    for name in names:
        if (parts := split_name(name)) is not None:
            raise UsageError(f"-r {name}: the {kind} benchmark reads the engine's processes "
                             "and store on the machine it runs on, which transport mode cannot;"
                             f" run it there with --host NAME -r {parts[0]} (agent mode)")
