"""Private engines for tests that break an engine on purpose: a second dockerd and a podman API
service on a store of their own, started once per session, so killing or freezing them never
disturbs the shared engines other tests (and other test sessions) use. Used by the fault suite
(tests/faults) and by the GUI tests that make an engine fail under a running tray or window
(tests/gui); the fixtures are registered in tests/conftest.py so both directories share one
instance of each daemon.

- ``private_dockerd``: a second dockerd with its own socket, data-root, exec-root (and so its
  own containerd), pidfile; forge reaches it through DOCKER_HOST.
- ``private_podman``: podman with its own storage (CONTAINERS_STORAGE_CONF) and tmp_dir
  (CONTAINERS_CONF), and a ``podman system service`` on its own socket (CONTAINER_HOST). The
  same environment also drives forge's *temporary* podman service (started when the default
  socket is missing), inside a private mount namespace where a tmpfs hides /run/podman.

Nothing is skipped: an engine that cannot be started is a failure.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
LABEL_RUN = "io.forge.benchmark"
LABEL_OWNER = "io.forge.owner"
ENGINE_VARS = ("DOCKER_HOST", "CONTAINER_HOST", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF")


# -- small helpers --------------------------------------------------------------------------

def sh(*argv: str, env: dict[str, str] | None = None, timeout: float = 60,
       check: bool = False) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          env=env, check=False, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def base_env(**extra: str) -> dict[str, str]:
    """The test's environment without any engine endpoint, plus ``extra``: runs on the shared
    engines get their defaults, runs on a private engine name it explicitly."""
    env = {k: v for k, v in os.environ.items() if k not in ENGINE_VARS}
    env.update(extra)
    return env


def wait_for(what: str, predicate: Callable[[], bool], timeout_s: float,
             interval_s: float = 0.05, alive: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if alive is not None and alive.poll() is not None:
            out, err = alive.communicate()
            raise AssertionError(f"forge exited ({alive.returncode}) before {what}:\n{err}")
        if time.monotonic() > deadline:
            stacks = ""
            if alive is not None:  # where forge is stuck: faulthandler dumps on SIGABRT
                alive.send_signal(signal.SIGABRT)
                stacks = "\n" + alive.communicate()[1][-3000:]
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}{stacks}")
        time.sleep(interval_s)


def unix_http_ok(sock: Path, path: str = "/_ping") -> bool:
    if not sock.exists():
        return False
    conn = http.client.HTTPConnection("localhost", timeout=2)
    conn.sock = socket.socket(socket.AF_UNIX)
    try:
        conn.sock.settimeout(2)
        conn.sock.connect(str(sock))
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(text in a for a in p.info["cmdline"] or []):
                found.append(p)
    return found


def kill_tree(procs: Sequence[psutil.Process]) -> None:
    everything = list(procs)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            everything += p.children(recursive=True)
    for p in everything:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(everything, timeout=10)


def unmount_under(root: Path) -> None:
    """Lazily unmount everything mounted under ``root`` (deepest first) so it can be removed."""
    prefix = str(root).rstrip("/") + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            points.append(point)
    for point in sorted(points, key=lambda p: p.count("/"), reverse=True):
        sh("umount", "-l", point, timeout=20)


# -- what a forge run left on an engine ----------------------------------------------------

@dataclass(frozen=True)
class Container:
    id: str
    owner: str
    run: str
    state: str


def labelled(engine: str, env: dict[str, str] | None = None) -> list[Container]:
    """Every labelled container on a docker or podman store, with owner and state."""
    if engine == "docker":
        label = '{{.Label "%s"}}'
        binary = DOCKER
    else:
        label = '{{index .Labels "%s"}}'
        binary = "podman"
    fmt = "\t".join(["{{.ID}}", label.replace("%s", LABEL_OWNER),
                     label.replace("%s", LABEL_RUN), "{{.State}}"])
    argv = [binary, "ps", "-a", "--no-trunc", "--filter", f"label={LABEL_RUN}", "--format", fmt]
    out = sh(*argv, env=env or base_env(), timeout=30)
    assert out.returncode == 0, f"{engine} ps failed: {out.stderr}"
    rows = [ln.split("\t") for ln in out.stdout.splitlines() if ln.strip()]
    return [Container(r[0], r[1], r[2], r[3] if len(r) > 3 else "") for r in rows]


def owned_by(pid: int, containers: Sequence[Container]) -> list[Container]:
    return [c for c in containers if f"/{pid}/" in c.owner]


STORES: dict[str, tuple[str, dict[str, str] | None, Callable[[], None]]] = {}
"""Private container stores to check for leaks after a test, once their fixture started them
(name -> (engine, environment, make it answer))."""


# -- a private dockerd -------------------------------------------------------------------------

class PrivateDockerd:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "docker.sock"
        self.log = root / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return base_env(DOCKER_HOST=f"unix://{self.sock}")

    def answering(self) -> bool:
        try:
            return sh(DOCKER, "version", "--format", "{{.Server.Version}}", env=self.env,
                      timeout=5).returncode == 0
        except subprocess.TimeoutExpired:  # frozen, or still starting
            return False

    def start(self) -> None:
        """Start it; on a loaded machine its containerd may miss dockerd's start-up deadline
        ("timeout waiting for containerd to start"), so a failed start is retried twice."""
        for attempt in range(3):
            if self._start_once(last=attempt == 2):
                return

    def _start_once(self, last: bool) -> bool:
        assert self.proc is None or self.proc.poll() is not None, "dockerd already runs"
        # a SIGKILLed dockerd leaves its pidfile, and a new one refuses to start while the
        # file names a process that exists (the old pid, reaped now, may be reused); its
        # containerd, if still there, would hold the socket the new one needs
        (self.root / "dockerd.pid").unlink(missing_ok=True)
        kill_tree([p for p in processes_mentioning(str(self.root / "exec"))
                   if p.name() == "containerd"])
        # ... and its socket and pidfile: with shims still running (SIGKILL during a memory
        # run), dockerd otherwise waits for that dead containerd until "timeout waiting for
        # containerd to start" (15 s) and exits
        for stale in (self.root / "exec" / "containerd").glob("containerd.*"):
            if stale.suffix in (".sock", ".pid", ".ttrpc") or stale.name.endswith(".sock.ttrpc"):
                stale.unlink(missing_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["dockerd", "--host", f"unix://{self.sock}",
                 "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                 "--pidfile", str(self.root / "dockerd.pid"), "--bridge=none",
                 "--iptables=false", "--ip6tables=false",
                 "--default-ulimit", "nofile=1024:1024", "--default-ulimit", "nproc=1024:1024"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while not self.answering():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                if not last:
                    with contextlib.suppress(ProcessLookupError):
                        self.proc.kill()
                    self.proc.wait()
                    return False
                tail = self.log.read_text(errors="replace").splitlines()[-15:]
                pytest.fail("the private dockerd did not start:\n" + "\n".join(tail),
                            pytrace=False)
            time.sleep(0.2)
        return True

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def send(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL, reaped: its containerd dies with it, running shims stay."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def ensure_running(self) -> None:
        """Leave it running and unfrozen for the next test, whatever this one did."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.send(signal.SIGCONT)
            if self.answering():
                return
            self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.send(signal.SIGCONT)
                self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # its containerd and the containerd-shims of any container still running
        kill_tree(processes_mentioning(str(self.root)))

    def shims(self) -> list[psutil.Process]:
        return [p for p in processes_mentioning(f"{self.root}/exec/containerd")
                if "shim" in p.name()]

    def _orphans(self, settle_s: float) -> list[tuple[psutil.Process, str]]:
        deadline = time.monotonic() + settle_s
        while True:
            running = set(sh(DOCKER, "ps", "-q", "--no-trunc", env=self.env).stdout.split())
            orphans = []
            for p in self.shims():
                with contextlib.suppress(psutil.Error):
                    args = p.cmdline()
                    cid = args[args.index("-id") + 1] if "-id" in args else "?"
                    if cid not in running:
                        orphans.append((p, cid))
            if not orphans or time.monotonic() > deadline:
                return orphans
            time.sleep(0.2)

    def orphan_shims(self, settle_s: float = 5.0) -> list[str]:
        """containerd-shims of containers that do not run (a removed container's shim takes
        a moment to exit, so they get ``settle_s`` to go)."""
        return [f"{p.pid} {cid[:12]}" for p, cid in self._orphans(settle_s)]

    def reap_orphan_shims(self, settle_s: float = 5.0) -> list[str]:
        """Kill orphan shims (and what runs under them), returning what they were: a dockerd
        SIGKILLed in the middle of a container create leaves them behind (engine-level, docker
        no longer knows the container; see docs/RELIABILITY.md)."""
        orphans = self._orphans(settle_s)
        found = []
        for p, cid in orphans:
            with contextlib.suppress(psutil.Error):
                found.append(f"{cid[:12]} (shim {p.pid}, {p.memory_info().rss // 1024} kB RSS, "
                             f"{len(p.children())} child)")
        kill_tree([p for p, _ in orphans])
        return found


@pytest.fixture(scope="session")
def private_dockerd() -> Iterator[PrivateDockerd]:
    # short path: containerd's socket lives under exec-root and unix paths stop at 108 bytes
    root = Path(tempfile.mkdtemp(prefix="forge-faults-docker-", dir="/tmp"))
    daemon = PrivateDockerd(root)
    try:
        daemon.start()
        STORES["private dockerd"] = ("docker", daemon.env, daemon.ensure_running)
        home = root / "prepare-home"
        proc = sh(sys.executable, "-m", "forge_desktop", "image", "prepare", "-r", "docker",
                  env={**daemon.env, "FORGE_HOME": str(home)}, timeout=180)
        assert proc.returncode == 0, f"forge image prepare on the private dockerd: {proc.stderr}"
        yield daemon
    finally:
        STORES.pop("private dockerd", None)
        daemon.stop()
        unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dockerd(private_dockerd: PrivateDockerd) -> Iterator[PrivateDockerd]:
    """The private dockerd, running and unfrozen before and after the test."""
    private_dockerd.ensure_running()
    yield private_dockerd
    private_dockerd.ensure_running()


# -- private podman storage, its API service, and the temporary-service namespace -------------

NS_SCRIPT = """#!/bin/sh
# Inside `unshare --mount`: hide the default podman socket from forge (and only from it).
set -e
mount -t tmpfs -o size=1m,mode=0755 forge-faults /run/podman
exec "$@"
"""


class PrivatePodman:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "podman.sock"
        self.log = root / "service.log"
        self.proc: subprocess.Popen[bytes] | None = None
        (root / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{root}/graph"\n'
            f'runroot = "{root}/run"\n')
        (root / "containers.conf").write_text(
            '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
            f'[engine]\nruntime = "runc"\ntmp_dir = "{root}/tmp"\n')
        self.ns_script = root / "hide-podman-socket.sh"
        self.ns_script.write_text(NS_SCRIPT)
        self.ns_script.chmod(0o755)

    @property
    def storage_env(self) -> dict[str, str]:
        """The private store, no API endpoint: the podman CLI works on it directly."""
        return base_env(CONTAINERS_STORAGE_CONF=str(self.root / "storage.conf"),
                        CONTAINERS_CONF=str(self.root / "containers.conf"))

    @property
    def env(self) -> dict[str, str]:
        """forge through the private API service."""
        return {**self.storage_env, "CONTAINER_HOST": f"unix://{self.sock}"}

    @property
    def hidden_socket(self) -> tuple[str, ...]:
        """Prefix for forge's argv: a mount namespace where /run/podman is an empty tmpfs, so
        forge finds no socket and starts its temporary service (with storage_env)."""
        return ("unshare", "--mount", "--propagation", "private", str(self.ns_script))

    def answering(self) -> bool:
        return unix_http_ok(self.sock)

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "service already runs"
        self.sock.unlink(missing_ok=True)  # a SIGKILLed service leaves its socket behind
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["podman", "system", "service", "--time=0", f"unix://{self.sock}"],
                env=self.storage_env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        deadline = time.monotonic() + 30
        while not self.answering():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace").splitlines()[-15:]
                pytest.fail("the private podman service did not start:\n" + "\n".join(tail),
                            pytrace=False)
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def ensure_running(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
            if self.answering():
                return
            self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        sh("podman", "rm", "-a", "-f", "-t", "0", env=self.storage_env, timeout=120)
        # conmons (and anything else) still working on the private store
        kill_tree(processes_mentioning(str(self.root)))


@pytest.fixture(scope="session")
def private_podman() -> Iterator[PrivatePodman]:
    root = Path(tempfile.mkdtemp(prefix="forge-faults-podman-", dir="/tmp"))
    service = PrivatePodman(root)
    try:
        service.start()
        STORES["private podman"] = ("podman", service.storage_env, service.ensure_running)
        home = root / "prepare-home"
        proc = sh(sys.executable, "-m", "forge_desktop", "image", "prepare", "-r", "podman",
                  env={**service.env, "FORGE_HOME": str(home)}, timeout=180)
        assert proc.returncode == 0, f"forge image prepare on the private podman: {proc.stderr}"
        yield service
    finally:
        STORES.pop("private podman", None)
        service.stop()
        unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def podman(private_podman: PrivatePodman) -> Iterator[PrivatePodman]:
    private_podman.ensure_running()
    yield private_podman
    private_podman.ensure_running()


def remove_owned(pid: int, env: dict[str, str]) -> list[str]:
    """Force-remove the labelled containers process ``pid`` owns on a private docker store,
    returning their ids: a test's own leftovers, removed also when the test failed."""
    ids = [c.id for c in owned_by(pid, labelled("docker", env))]
    if ids:
        sh(DOCKER, "rm", "-f", *ids, env=env, timeout=60, check=True)
    return ids


# -- the cri runtime's private containerd ------------------------------------------------------

def cri_env() -> dict[str, str]:
    """The shared engines' defaults and no CRI endpoint: forge starts its private containerd
    (the machine has no CRI socket of its own)."""
    return {k: v for k, v in base_env().items() if k != "CONTAINER_RUNTIME_ENDPOINT"}


@pytest.fixture
def private_cri(forge_home: Path) -> Iterator[PrivateCri]:
    """The private containerd forge starts for runs of this test's FORGE_HOME, seen from
    outside; whatever a failing test left of it is removed afterwards."""
    p = PrivateCri()
    yield p
    p.remove()


class PrivateCri:
    """The private containerd of one FORGE_HOME, seen from outside forge."""

    def __init__(self) -> None:
        from forge_desktop.runtimes.cri import PrivateContainerd

        self.paths = PrivateContainerd(30.0)  # of FORGE_HOME, set by forge_home
        self.state = self.paths.state

    def daemons(self) -> list[psutil.Process]:
        return [p for p in processes_mentioning(str(self.paths.config))
                if p.name() == "containerd"]

    def pid(self) -> int:
        (daemon,) = self.daemons()
        return int(daemon.pid)

    def shims(self) -> list[psutil.Process]:
        """containerd-shim-runc-v2 processes serving pods of this containerd (they name its
        socket on their command line and outlive it)."""
        return [p for p in processes_mentioning(str(self.paths.socket))
                if p.name().startswith("containerd-shim")]

    def pods_of(self, pid: int) -> list[str]:
        """Sandboxes of forge process ``pid``, through the running private containerd."""
        import grpc

        from forge_desktop.runtimes.cri_api import cri_pb2
        from forge_desktop.runtimes.cri_api.cri_pb2_grpc import RuntimeServiceStub

        if not self.paths.socket.exists():
            return []
        with grpc.insecure_channel(self.paths.address) as channel:
            try:
                items = RuntimeServiceStub(channel).ListPodSandbox(  # type: ignore[no-untyped-call]
                    cri_pb2.ListPodSandboxRequest(), timeout=5).items
            except grpc.RpcError:
                return []
        return [p.id for p in items if p.labels.get(LABEL_OWNER, "").split("/")[1:2]
                == [str(pid)]]

    def left(self) -> dict[str, object]:
        """What is left of this FORGE_HOME's private containerd and its pods: nothing, after
        a run that cleaned up."""
        found: dict[str, object] = {}
        if self.daemons():
            found["containerd"] = [p.pid for p in self.daemons()]
        if self.shims():
            found["shims"] = [p.pid for p in self.shims()]
        if self.state.exists():
            found["state directory"] = str(self.state)
        if self.paths.has_leftovers():
            found["tasks in state"] = sorted(
                p.name for p in (self.state / "io.containerd.runtime.v2.task" / "k8s.io")
                .iterdir())
        return found

    def remove(self) -> None:
        """After the test: whatever a failure left (processes, mounts, state)."""
        kill_tree(self.daemons() + self.shims())
        # the shims' rootfs mounts sit under the state directory until they are gone
        mounts = [ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines()
                  if ln.split()[1].startswith(str(self.state))]
        for point in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", point], check=False, timeout=30)
        shutil.rmtree(self.state, ignore_errors=True)
