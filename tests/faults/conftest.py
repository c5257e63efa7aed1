"""Fault injection on the REAL engines (issue 8): signals to forge, SIGKILL, engines killed or
frozen mid-run, a registry dying mid-pull, concurrent runs.

Faults that would disturb the shared engines other tests use (killing or freezing a daemon,
leaving a dead run's containers behind) are injected into engines of our own: the private
dockerd and podman service of tests/engines.py (fixtures ``dockerd``/``private_dockerd`` and
``podman``/``private_podman``, shared with the GUI tests), and a registry per test that needs
one (``start_registry``, here).

Only runc's state directory (/run/runc) cannot be private: forge has no option for runc's
--root. A test that SIGKILLs forge on runc leaves dead-owner containers there for the second
it takes the next run to sweep them.

Every check is scoped to the forge processes a test started (their pid is in the owner label,
the bare OCI id and the temporary image tag), so runs of other sessions on the shared engines
neither fail these tests nor get touched by them. Nothing is skipped: an engine that cannot be
started is a failure.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from forge_desktop.runtimes.oci import OciRuntime

# The private engines and the helpers that inspect a store live in tests/engines.py (the GUI
# tests use them too); they are re-exported here for the fault tests' imports.
from tests.engines import (
    DOCKER,
    ENGINE_VARS,
    LABEL_OWNER,
    LABEL_RUN,
    NS_SCRIPT,
    STORES,
    Container,
    PrivateDockerd,
    PrivatePodman,
    base_env,
    kill_tree,
    labelled,
    owned_by,
    processes_mentioning,
    sh,
    unix_http_ok,
    unmount_under,
    wait_for,
)

__all__ = ["DENSITY_KILLED_EXIT_S", "DOCKER", "ENGINE_FROZEN_EXIT_S", "ENGINE_KILLED_EXIT_S",
           "ENGINE_VARS", "HUGE_CONFIG_S", "LABEL_OWNER", "LABEL_RUN", "NS_SCRIPT",
           "REGISTRY_KILLED_EXIT_S", "SIGNAL_EXIT_S", "STORES", "SWEEP_RUN_S", "TEMP_REPO",
           "TEMP_SERVICE_EXIT_S", "TIMEOUT_S", "Container", "Forge", "PrivateDockerd",
           "PrivatePodman", "Registry", "Spawn", "base_env", "descendants", "free_port",
           "kill_tree",
           "labelled", "leaks_of", "oci_ids", "owned_by", "processes_mentioning", "results",
           "runc_has", "sh", "still_running", "temp_images", "temp_images_of",
           "temporary_services", "unix_http_ok", "unmount_under", "wait_for", "write_timeout"]

TEMP_REPO = "forge-bench-tmp"
TIMEOUT_S = 5
"""``[benchmark] timeout_s`` of the engine-fault tests."""


# -- time bounds ------------------------------------------------------------------------------
# Each is a figure of docs/RELIABILITY.md (the row named) plus a stated margin. The margins come
# from 5 runs of tests/faults/test_interrupts.py, test_engine_faults.py and test_hostile.py's
# huge configs on a 2-core VM shared with seven other test sessions (load average 7-10, twice
# the 3-5 under which RELIABILITY.md was measured): each margin covers the slowest time seen
# there with about 50% to spare, since exit and cleanup are CPU-bound and stretch with load.
# Hang guards (`Forge.finish(timeout=...)`) are separate and far longer.

SIGNAL_EXIT_S = 1.2 + 2.3
"""Signal mid-run to exit 130: "Exit 130 0.1-1.2 s after the signal"; slowest seen 2.26 s
(SIGTERM during `image`)."""
TEMP_SERVICE_EXIT_S = 0.7 + 1.3
"""Signal with forge's temporary podman service: "exit 130 0.3-0.7 s after the signal";
slowest seen 1.28 s."""
SWEEP_RUN_S = 2.2 + 7.8
"""The run after a SIGKILLed one, sweep included: "that run takes 1.4-2.2 s in all"; slowest
seen 6.44 s (podman)."""
ENGINE_KILLED_EXIT_S = 2.3 + 5.2
"""dockerd or the podman service SIGKILLed mid-run to forge's exit: "Exit 1 in 1.0-2.3 s"
(podman 0.9-1.6 s); slowest seen 4.86 s (dockerd during `compare`). That forge noticed the
death rather than timing out is the error line's ("did not answer within" is not in it)."""
DENSITY_KILLED_EXIT_S = 0.4 + 1.6
"""dockerd SIGKILLed mid-density to exit: "Exit 1 in 0.4 s"; slowest seen 1.05 s."""
ENGINE_FROZEN_EXIT_S = 6.7 + 8.3
"""dockerd or the podman service frozen mid-run to exit: "Exit 1 5.8-6.7 s after the freeze
(timeout 5 s)"; slowest seen 11.4 s (podman; dockerd 10.0 s), i.e. 6.4 s after the timeout."""
REGISTRY_KILLED_EXIT_S = 15.0 + 5.0
"""Registry SIGKILLed mid-pull to exit: "Exit 1 in 11-15 s after the kill"; slowest seen
14.98 s (median 13.0 s)."""
HUGE_CONFIG_S = 6.0 + 6.0
"""A megabytes-large config.toml parsed or refused: "in under 6 s"; slowest seen 8.33 s
(a 1 M-element array; median 4.06 s)."""


# -- small helpers --------------------------------------------------------------------------

_running: list[pytest.Item] = []


@pytest.fixture(autouse=True)
def _recorded_test(request: pytest.FixtureRequest) -> Iterator[None]:
    _running.append(request.node)
    yield
    _running.pop()


def record(name: str, value: float) -> None:
    """A figure of the running test for docs/RELIABILITY.md (scripts/reliability_doc.py reads
    them from tests/artifacts/faults-report.json)."""
    _running[-1].user_properties.append((name, round(value, 3)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def still_running(procs: Sequence[psutil.Process]) -> list[str]:
    """Those of ``procs`` that still run (same pid and start time), as readable strings."""
    alive = []
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
    return alive


# -- what a forge run left behind ------------------------------------------------------------

def oci_ids(pid: int | None = None) -> list[str]:
    """Bare OCI (runc) containers of forge; with ``pid``, only that forge process's."""
    out = sh("runc", "list", "--format", "json", timeout=30)
    ids = [c["id"] for c in json.loads(out.stdout or "null") or []]
    # and what `runc list` skips: a state directory a killed `runc run` left before it wrote
    # state.json (the next run's sweep removes it; runtimes/oci.py half_made)
    ids += [d.name for d in OciRuntime("runc").half_made(set(ids))]
    mine = [i for i in ids if i.startswith("forge-")]
    return [i for i in mine if pid is None or i.startswith(f"forge-{pid}-")]


def runc_has(cid: str) -> bool:
    return sh("runc", "state", cid, timeout=30).returncode == 0


def temp_images(engine: str, env: dict[str, str] | None = None) -> list[str]:
    binary = DOCKER if engine == "docker" else "podman"
    out = sh(binary, "images", "--format", "{{.Repository}}:{{.Tag}}", env=env or base_env())
    assert out.returncode == 0, out.stderr
    return [ref for ref in out.stdout.split()
            if ref.rpartition(":")[0].rsplit("/", 1)[-1] == TEMP_REPO]


def temp_images_of(pid: int, engine: str, env: dict[str, str] | None = None) -> list[str]:
    return [ref for ref in temp_images(engine, env) if f"-{pid}-" in ref.rpartition(":")[2]]


def results(home: Path) -> list[Path]:
    return sorted((home / "benchmarks").glob("*.json")) if (home / "benchmarks").exists() \
        else []


def write_timeout(home: Path, timeout_s: float = TIMEOUT_S) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(f"[benchmark]\ntimeout_s = {timeout_s}\n")


# -- forge in the background ------------------------------------------------------------------

@dataclass
class Forge:
    """One ``forge`` CLI process, in its own process group (as a shell job is)."""

    args: tuple[str, ...]
    env: dict[str, str]
    wrap: tuple[str, ...] = ()
    proc: subprocess.Popen[str] = field(init=False)
    started_s: float = field(init=False)

    def __post_init__(self) -> None:
        argv = [*self.wrap, sys.executable, "-m", "forge_desktop", *self.args]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=self.env, start_new_session=True)
        self.started_s = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid  # unshare and sh exec: the pid stays forge's

    def running(self) -> bool:
        return self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        """Like a terminal's Ctrl-C or `kill -TERM -PGID`: forge and its children get it."""
        os.killpg(self.proc.pid, sig)

    def finish(self, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError(f"forge {' '.join(self.args)} did not exit within "
                                 f"{timeout:g} s (hang):\n{err}") from None
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)

def leaks_of(pids: Sequence[int]) -> dict[str, list[str]]:
    """What the forge processes ``pids`` (all exited) left behind, per store."""
    found: dict[str, list[str]] = {}
    def nothing() -> None:
        return None

    shared: dict[str, tuple[str, dict[str, str] | None, Callable[[], None]]] = {
        "docker": ("docker", None, nothing), "podman": ("podman", None, nothing)}
    for name, (engine, env, ensure) in {**shared, **STORES}.items():
        ensure()  # a test may have left its private daemon killed or frozen
        left = [f"container {c.id[:12]}" for pid in pids for c in owned_by(pid, labelled(
            engine, env))]
        left += [f"image {ref}" for pid in pids for ref in temp_images_of(pid, engine, env)]
        if left:
            found[name] = left
    runc = [cid for pid in pids for cid in oci_ids(pid)]
    if runc:
        found["runc"] = runc
    return found


Spawn = Callable[..., Forge]
"""The ``spawn`` fixture: ``spawn(*args, env=None, wrap=())`` starts forge."""


@pytest.fixture
def forge_tmp() -> Iterator[Path]:
    """TMPDIR of the test's forge processes: what a killed run leaves in its temporary
    directories (an image tar, a service directory) stays here and is removed with it. Short,
    because forge's temporary podman service puts its socket in it (108-byte limit)."""
    path = Path(tempfile.mkdtemp(prefix="forge-faults-tmp-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def spawn(forge_tmp: Path) -> Iterator[Callable[..., Forge]]:
    """Start forge processes. Afterwards, every one of them must have exited and left no
    labelled container, bare OCI container or temporary image on any store (tests that SIGKILL
    forge must have had the next run sweep by then)."""
    started: list[Forge] = []

    def start(*args: str, env: dict[str, str] | None = None,
              wrap: Sequence[str] = ()) -> Forge:
        f = Forge(tuple(args), {**(env or base_env()), "TMPDIR": str(forge_tmp),
                                "PYTHONFAULTHANDLER": "1"}, tuple(wrap))
        started.append(f)
        return f

    yield start
    hung = [f for f in started if f.running()]
    for f in hung:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(f.pid, signal.SIGKILL)
        f.proc.communicate()
    leaks = leaks_of([f.pid for f in started])
    assert not hung, f"forge still running at the end of the test: {[f.args for f in hung]}"
    assert not leaks, f"left behind by this test's forge runs: {leaks}"


# -- the shared engines ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def shared_engines() -> None:
    problems = []
    if sh(DOCKER, "version", "--format", "{{.Server.Version}}", env=base_env(),
          timeout=20).returncode:
        problems.append("dockerd is not answering")
    if not unix_http_ok(Path("/run/podman/podman.sock")):
        problems.append("the podman API service is not answering on /run/podman/podman.sock")
    if problems:
        pytest.fail("; ".join(problems) + " — run the suite with `make test`", pytrace=False)


def temporary_services(pid: int) -> list[psutil.Process]:
    """The podman API services forge process ``pid`` started (its children)."""
    return [p for p in descendants(pid)
            if "podman" in p.name() and "service" in p.cmdline()]


# -- a private registry ------------------------------------------------------------------------

@dataclass
class Registry:
    address: str
    proc: subprocess.Popen[bytes]
    log: Path

    def manifests_served(self, agent: str) -> int:
        """Manifest GETs this registry answered to clients whose User-Agent starts with
        ``agent`` (``docker/``, ``containers/`` for podman): one per pull (its access log)."""
        if not self.log.exists():
            return 0
        return sum(1 for ln in self.log.read_text(errors="replace").splitlines()
                   if 'msg="response completed"' in ln and "http.request.method=GET" in ln
                   and "/manifests/" in ln and f'http.request.useragent="{agent}' in ln)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def start_registry(tmp_path: Path) -> Iterator[Callable[[], Registry]]:
    started: list[Registry] = []

    def start() -> Registry:
        port = free_port()
        config = tmp_path / f"registry-{port}.yml"
        config.write_text(
            "version: 0.1\nlog: {level: info}\n"  # info: its access log, one line a request
            f"storage: {{filesystem: {{rootdirectory: {tmp_path}/registry-{port}}}, "
            "delete: {enabled: true}}\n"
            f"http: {{addr: 127.0.0.1:{port}}}\n")
        with open(tmp_path / f"registry-{port}.log", "ab") as log:
            proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True)
        reg = Registry(f"127.0.0.1:{port}", proc, tmp_path / f"registry-{port}.log")
        started.append(reg)

        def up() -> bool:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/v2/")
                return conn.getresponse().status == 200
            except OSError:
                return False

        deadline = time.monotonic() + 20
        while not up():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the private registry did not start", pytrace=False)
            time.sleep(0.05)
        return reg

    yield start
    for reg in started:
        if reg.proc.poll() is None:
            reg.kill()
