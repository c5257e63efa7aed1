"""A long-lived helper in a private mount namespace with cgroup2 mounted on /sys/fs/cgroup.

crun refuses a cgroup-v1-hybrid host ("cgroups in hybrid mode not supported"), even with
``--cgroup-manager=disabled``; in a mount namespace of its own where /sys/fs/cgroup is a
cgroup2 filesystem it runs (docs/BENCHMARKING.md, "crun on a cgroup v1 host"). Wrapping every
``crun run`` in ``unshare -m sh -c 'mount ...; crun ...'`` would time unshare, a shell and a
mount on top of crun. Instead one helper per run enters the namespace once; forge sends it a
command line per iteration and the helper times only that child, with the same code
(``timed_cmd``) that times runc from forge itself. The request round trip stays outside the
clock.

Protocol: JSON lines. Request ``{"seq", "op", "argv", "timeout", "what"}``, reply with the same
``seq``; the helper's first line (seq 0) says whether the mount worked. It exits at EOF on
stdin, so it never outlives forge (even after SIGKILL). Run as a file with ``python -I -S``:
it imports only the standard library and forge's ``runtimes.common``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

if __name__ == "__main__":  # started by path: make the forge package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from forge_desktop.errors import EngineError, EngineTimeout  # noqa: E402
from forge_desktop.runtimes.common import first_line, run_cmd, timed_cmd  # noqa: E402

GRACE_S = 5.0
"""How much longer than a request's own timeout forge waits for the helper's answer (the
helper enforces the request's timeout on its child itself)."""


# --- inside the namespace ------------------------------------------------------------------

def _detach(argv: list[str], timeout: float, what: str) -> dict[str, Any]:
    # a detached container inherits the runtime's stdio: a pipe would never reach EOF
    with tempfile.TemporaryFile() as err:
        try:
            code = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=err, timeout=timeout, check=False).returncode
        except subprocess.TimeoutExpired:
            return {"error": f"{what} did not finish within {timeout:g} s", "timeout": True}
        err.seek(0)
        return {"rc": code, "stderr": err.read().decode(errors="replace")}


def _serve_one(request: dict[str, Any]) -> dict[str, Any]:
    argv, timeout, op = list(request["argv"]), float(request["timeout"]), request["op"]
    what = str(request["what"])
    try:
        if op == "timed":
            return {"ms": timed_cmd(argv, timeout, what)}
        if op == "run":
            out = run_cmd(argv, timeout, what)
            return {"rc": out.returncode, "stdout": out.stdout, "stderr": out.stderr}
        if op == "detach":
            return _detach(argv, timeout, what)
    except EngineTimeout as exc:
        return {"error": str(exc), "timeout": True}
    except EngineError as exc:
        return {"error": str(exc), "timeout": False}
    return {"error": f"unknown request {op!r}", "timeout": False}


def _reply(out: IO[str], doc: dict[str, Any]) -> None:
    out.write(json.dumps(doc) + "\n")
    out.flush()


def main() -> int:
    # started in a session of its own, so a terminal's Ctrl-C reaches forge only, which then
    # cleans up with its own commands (delete and list need no namespace) and closes stdin
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = sys.stdout
    try:
        shared = os.readlink("/proc/self/ns/mnt") == os.readlink(f"/proc/{os.getppid()}/ns/mnt")
    except OSError:  # forge's namespaces are out of sight from a user namespace of our own
        shared = False
    if shared:  # never mount over the host's /sys/fs/cgroup: only inside a namespace of ours
        _reply(out, {"seq": 0, "ok": False, "error": "not in a private mount namespace"})
        return 1
    try:
        mount = run_cmd(["mount", "-t", "cgroup2", "none", "/sys/fs/cgroup"], 10,
                        "mount cgroup2")
        ready: dict[str, Any] = {"seq": 0, "ok": mount.returncode == 0,
                                 "error": first_line(mount.stderr) or None}
    except EngineError as exc:
        ready = {"seq": 0, "ok": False, "error": str(exc)}
    try:
        _reply(out, ready)
        if not ready["ok"]:
            return 1
        for line in sys.stdin:
            request = json.loads(line)
            _reply(out, {"seq": request["seq"], **_serve_one(request)})
    except (BrokenPipeError, KeyboardInterrupt):
        pass  # forge went away: nothing is left to answer
    return 0


# --- forge's side ----------------------------------------------------------------------------

FROZEN_FLAG = "--forge-nshelper"
"""First argument that makes the bundle's ``forge`` executable act as the helper
(forge_desktop.cli.main): a PyInstaller bundle has no Python to run this file with."""


def helper_argv() -> list[str]:
    if getattr(sys, "frozen", False):  # forge or forge-shortcut of a bundle: its forge
        return [str(Path(sys.executable).with_name("forge")), FROZEN_FLAG]
    return [sys.executable, "-I", "-S", __file__]


class NamespaceHelper:
    """forge's end of the helper: start it, send command lines, stop it.

    ``prefix`` enters the namespaces (``unshare --mount``, plus ``--user --map-root-user
    --cgroup`` for a user who is not root)."""

    def __init__(self, prefix: list[str], what: str, timeout_s: float) -> None:
        self.what = what
        self._seq = 0
        self._lock = threading.Lock()
        """One request on the pipe at a time: the helper serves them in turn, so threads
        calling at once (the scale benchmark) wait here instead of mixing their lines."""
        self._buf = b""
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the helper
        try:
            self.proc = subprocess.Popen(
                [*prefix, *helper_argv()], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=self._err, start_new_session=True)
        except OSError as exc:
            self._err.close()
            raise EngineError(f"{what}: cannot start {prefix[0]}: {exc.strerror}") from None
        try:
            ready = self._read(0, time.monotonic() + timeout_s)
        except BaseException:  # Ctrl-C included: the helper must not outlive this object
            self.close()
            raise
        if not ready.get("ok"):
            self.close()
            raise EngineError(f"{what}: cannot mount cgroup2 in a private namespace: "
                              f"{ready.get('error') or 'no reason given'}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _stderr(self) -> str:
        """unshare's refusal (its first line), or a traceback's exception (its last)."""
        self._err.seek(0)
        lines = self._err.read().decode(errors="replace").strip().splitlines() or ["no message"]
        return first_line(lines[-1] if lines[0].startswith("Traceback") else lines[0])

    def _read(self, seq: int, deadline: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                doc = json.loads(line)
                if doc.get("seq") == seq:  # an answer to an interrupted request is skipped
                    return dict(doc)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.close()
                raise EngineTimeout(f"{self.what}: the namespace helper did not answer "
                                    "in time; it was stopped")
            chunk = os.read(fd, 65536)
            if not chunk:
                self.proc.wait()
                raise EngineError(f"{self.what}: the namespace helper exited "
                                  f"(status {self.proc.returncode}): {self._stderr()}")
            self._buf += chunk

    def request(self, op: str, argv: list[str], timeout_s: float, what: str) -> dict[str, Any]:
        """Send one command line (``what`` names it in errors); raises EngineTimeout or
        EngineError as ``timed_cmd`` would."""
        with self._lock:
            return self._request(op, argv, timeout_s, what)

    def _request(self, op: str, argv: list[str], timeout_s: float, what: str
                 ) -> dict[str, Any]:
        if self.proc.poll() is not None or self.proc.stdin is None:
            raise EngineError(f"{self.what}: the namespace helper is not running")
        self._seq += 1
        try:
            self.proc.stdin.write((json.dumps({"seq": self._seq, "op": op, "argv": argv,
                                               "timeout": timeout_s, "what": what})
                                   + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise EngineError(f"{self.what}: the namespace helper exited: "
                              f"{self._stderr()}") from None
        doc = self._read(self._seq, time.monotonic() + timeout_s + GRACE_S)
        if "error" in doc:
            raise (EngineTimeout if doc.get("timeout") else EngineError)(doc["error"])
        return doc

    def close(self) -> None:
        """End the helper: EOF first, then SIGKILL to its whole session (crun children)."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._err.close()


if __name__ == "__main__":
    sys.exit(main())
