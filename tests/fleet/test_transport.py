"""Transport mode (issue 14, point 4): ``-r docker@CONTEXT`` / ``-r podman@CONNECTION`` drive a
remote engine over real ssh from here, with the transport's per-call cost reported beside the
phases. The contexts live in a private DOCKER_CONFIG and the connection in a private
CONTAINERS_CONF, so the user's own are never read or touched. The ssh key and known_hosts come
from config.toml's host at the same address (a context's url has no room for them)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import assert_one_line_error
from tests.engines import DOCKER, PrivateDockerd, base_env, labelled, owned_by, sh, wait_for
from tests.fleet.conftest import Fleet
from tests.fleet.test_hosts import forge


@pytest.fixture
def transport_env(fleet: Fleet, local_home: tuple[Path, dict[str, str]], tmp_path: Path
                  ) -> Iterator[dict[str, str]]:
    """The local forge's env with docker contexts ``beta`` (ssh to test host beta, whose
    sessions reach its private dockerd) and ``sock`` (a unix socket), and the podman
    connection ``pod-alpha`` (ssh to alpha, the shared podman service's socket)."""
    _, env = local_home
    conf = tmp_path / "containers.conf"
    conf.write_text("")
    env = {**env, "DOCKER_CONFIG": str(tmp_path / "docker-config"),
           "CONTAINERS_CONF": str(conf)}
    beta, alpha = fleet.hosts["beta"], fleet.hosts["alpha"]
    sh(DOCKER, "context", "create", "beta", "--docker", f"host={beta.url}", env=env,
       check=True)
    sh(DOCKER, "context", "create", "sock", "--docker", "host=unix:///var/run/docker.sock",
       env=env, check=True)
    sh("podman", "system", "connection", "add", "pod-alpha", "--identity",
       str(fleet.client_key), f"{alpha.url}/run/podman/podman.sock", env=env, check=True)
    yield env


def _events(env: dict[str, str], since: float, until: float, run_id: str) -> list[str]:
    """Container create events of one run on the engine ``env`` points at."""
    out = sh(DOCKER, "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}",
             "--filter", "event=create", "--filter", f"label=io.forge.benchmark={run_id}",
             "--format", "{{.ID}}", env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def _dial_stdios(fleet: Fleet) -> list[psutil.Process]:
    return [p for p in fleet.hosts["beta"].sessions()
            if "dial-stdio" in " ".join(p.cmdline())]


def test_startup_on_beta_over_ssh(transport_env: dict[str, str], fleet: Fleet,
                                  private_dockerd: PrivateDockerd) -> None:
    since = time.time()
    proc = forge(transport_env, "benchmark", "startup", "-r", "docker@beta", "-n", "5",
                 "--json")
    until = time.time() + 1
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    (entry,) = doc["runtimes"]
    assert entry["runtime"] == "docker@beta"
    assert len(entry["samples"]) == 5 and entry["stats"]["median_ms"] > 0
    # the 5 measured lifecycles and 2 warmups ran on beta's private dockerd, none here
    assert len(_events(private_dockerd.env, since, until, doc["id"])) == 7
    assert _events(base_env(), since, until, doc["id"]) == []
    tr = entry["transport"]
    assert tr["mode"] == "ssh" and tr["endpoint"] == "docker@beta"
    assert tr["url"] == fleet.hosts["beta"].url and tr["calls_per_lifecycle"] == 4
    # beta is this machine, so the same /_ping is timed on its daemon's own socket. A call
    # over ssh is that call plus two ssh processes, sshd and dial-stdio each way: the median
    # of 15 would only fall under the local median if 8 of 15 ssh calls did (with p <= 0.1
    # each, P <= C(15,8) 0.1^8 = 6.4e-5 < 1/1000)
    assert tr["local_call_ms"] is not None and tr["call_ms"] > tr["local_call_ms"], tr
    assert tr["overhead_ms_per_lifecycle"] == pytest.approx(
        4 * (tr["call_ms"] - tr["local_call_ms"]), abs=1e-3)
    # the table says it in words
    shown = forge(transport_env, "results", "show", doc["id"])
    assert shown.returncode == 0, shown.stderr
    assert "docker@beta: transport: ssh to 127.0.0.1, ~" in " ".join(shown.stdout.split())
    assert _dial_stdios(fleet) == []  # every ssh of the run ended with it


def test_compare_notes_transport_beside_a_local_runtime(transport_env: dict[str, str],
                                                        private_dockerd: PrivateDockerd) -> None:
    proc = forge(transport_env, "benchmark", "compare", "-r", "docker@beta", "-r", "runc",
                 "-n", "3", "--warmup", "1", "--containers", "1")
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "docker@beta: transport: ssh to 127.0.0.1" in out
    assert "docker@beta: not like-for-like with runc: it is reached over ssh" in out


def test_podman_connection_over_ssh(transport_env: dict[str, str], fleet: Fleet) -> None:
    proc = forge(transport_env, "benchmark", "startup", "-r", "podman@pod-alpha", "-n", "5",
                 "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    (entry,) = doc["runtimes"]
    assert entry["runtime"] == "podman@pod-alpha" and len(entry["samples"]) == 5
    tr = entry["transport"]
    assert tr["endpoint"] == "podman@pod-alpha" and tr["calls_per_lifecycle"] == 4
    # the forward adds ssh, sshd and sshd's connection to the socket (sizing as above)
    assert tr["local_call_ms"] is not None and tr["call_ms"] > tr["local_call_ms"], tr
    assert [p for p in psutil.process_iter(["cmdline"])
            if "forge-ssh-" in " ".join(p.info["cmdline"] or [])] == []  # forward closed


def test_sigint_leaves_nothing_on_beta(transport_env: dict[str, str], fleet: Fleet,
                                       private_dockerd: PrivateDockerd) -> None:
    events = subprocess.Popen([DOCKER, "events", "--filter", "event=start", "--filter",
                               "label=io.forge.benchmark", "--format", "{{.ID}}"],
                              env=private_dockerd.env, stdout=subprocess.PIPE, text=True)
    started: list[str] = []
    reader = threading.Thread(target=lambda: started.extend(events.stdout or []), daemon=True)
    reader.start()
    proc = subprocess.Popen([sys.executable, "-m", "forge_desktop", "benchmark", "startup",
                             "-r", "docker@beta", "-n", "1000", "--warmup", "0"],
                            env=transport_env, text=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for("a container started on beta", lambda: len(started) >= 2, 240, alive=proc)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
    finally:
        for p in (proc, events):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert proc.returncode == 130, err[-3000:]
    assert "forge: error: interrupted" in err
    assert owned_by(proc.pid, labelled("docker", private_dockerd.env)) == []
    wait_for("beta's dial-stdio sessions to end", lambda: _dial_stdios(fleet) == [], 30)


def test_bad_endpoints_are_one_line_and_start_nothing(
        transport_env: dict[str, str], fleet: Fleet, tmp_path: Path,
        private_dockerd: PrivateDockerd) -> None:
    before = labelled("docker", private_dockerd.env)
    unknown = forge(transport_env, "benchmark", "startup", "-r", "docker@nope", "-n", "1")
    assert_one_line_error(unknown, "no docker context 'nope'", "docker context create")
    local = forge(transport_env, "benchmark", "startup", "-r", "docker@sock", "-n", "1")
    assert_one_line_error(local, "unix:///var/run/docker.sock", "not ssh://", "-r docker")
    hostile = forge(transport_env, "benchmark", "startup", "-r", "docker@-oProxyCommand=x",
                    "-n", "1")
    assert_one_line_error(hostile, "is not a runtime name")
    # beta's address with a known_hosts that does not know it: refused, never accepted
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    home = tmp_path / "stranger-home"
    home.mkdir()
    (home / "config.toml").write_text(fleet.host_table("beta", fleet.hosts["beta"], empty))
    stranger = forge({**transport_env, "FORGE_HOME": str(home)}, "benchmark", "startup",
                     "-r", "docker@beta", "-n", "1")
    assert_one_line_error(stranger, "host key is not in known_hosts")
    assert empty.read_text() == ""
    memory = forge(transport_env, "benchmark", "memory", "-r", "docker@beta")
    assert_one_line_error(memory, "--host NAME -r docker (agent mode)")
    assert labelled("docker", private_dockerd.env) == before
    assert _dial_stdios(fleet) == []


def test_canary_and_scale_take_a_remote_engine(transport_env: dict[str, str],
                                               private_dockerd: PrivateDockerd) -> None:
    canary = forge(transport_env, "benchmark", "canary", "-r", "docker@beta", "--json")
    assert canary.returncode == 0, canary.stderr
    (entry,) = json.loads(canary.stdout)["runtimes"]
    assert entry["runtime"] == "docker@beta" and entry["transport"]["mode"] == "ssh"
    scale = forge(transport_env, "benchmark", "scale", "-r", "docker@beta", "--concurrency",
                  "1,2", "-n", "4", "--warmup", "0", "--json")
    assert scale.returncode == 0, scale.stderr
    (entry,) = json.loads(scale.stdout)["runtimes"]
    assert entry["transport"]["endpoint"] == "docker@beta"
    assert [len(level["latencies_ms"]) for level in entry["levels"]] == [4, 4]
    # beta's daemon runs elsewhere as far as forge knows: its CPU is unknown, not zero
    assert all(level["engine_cpu_s"] is None for level in entry["levels"]), entry["levels"]


def test_a_frozen_remote_daemon_is_given_up_as_a_local_one(
        transport_env: dict[str, str], fleet: Fleet, dockerd: PrivateDockerd) -> None:
    """beta's dockerd stops answering mid-run (SIGSTOP): every call over ssh has the adapter's
    timeout, so forge gives up after it, as for a local daemon, and the next run sweeps."""
    home = Path(transport_env["FORGE_HOME"])
    config = home / "config.toml"
    config.write_text(config.read_text() + "\n[benchmark]\ntimeout_s = 5\n")
    events = subprocess.Popen([DOCKER, "events", "--filter", "event=start", "--filter",
                               "label=io.forge.benchmark", "--format", "{{.ID}}"],
                              env=dockerd.env, stdout=subprocess.PIPE, text=True)
    started: list[str] = []
    reader = threading.Thread(target=lambda: started.extend(events.stdout or []), daemon=True)
    reader.start()
    proc = subprocess.Popen([sys.executable, "-m", "forge_desktop", "benchmark", "startup",
                             "-r", "docker@beta", "-n", "300", "--warmup", "0"],
                            env=transport_env, text=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for("containers started on beta", lambda: len(started) >= 3, 240, alive=proc)
        frozen = time.monotonic()
        dockerd.send(signal.SIGSTOP)
        try:
            _out, err = proc.communicate(timeout=90)
            took_s = time.monotonic() - frozen
        finally:
            dockerd.send(signal.SIGCONT)
    finally:
        for p in (proc, events):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert_one_line_error(subprocess.CompletedProcess(proc.args, proc.returncode, "", err),
                          "docker@beta", "did not answer within 5 s")
    assert took_s >= 4.5, f"gave up {took_s:.1f} s after the freeze, before its timeout"
    print(f"beta's dockerd SIGSTOP: exit {took_s:.2f} s after the freeze: "
          f"{err.strip().splitlines()[-1]}")
    wait_for("beta's dial-stdio sessions to end", lambda: _dial_stdios(fleet) == [], 30)
    # thawed, the daemon answers again: the next run sweeps what the hung call left
    wait_for("the thawed dockerd to answer", dockerd.answering, 30)
    sweep = forge(transport_env, "benchmark", "startup", "-r", "docker@beta", "-n", "1",
                  "--warmup", "0", "--no-save")
    assert sweep.returncode == 0, sweep.stderr
    assert owned_by(proc.pid, labelled("docker", dockerd.env)) == []
