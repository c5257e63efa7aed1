"""Remote hosts for the fleet tests: real OpenSSH servers on 127.0.0.1 ports.

Each test host is an ``sshd -D`` of ours (its own host key, config, pid file) accepting one
per-run client key; the client's known_hosts is written here, so ssh verifies every host key as
it would for a user. "forge on the host" is this checkout's forge behind a wrapper script that
gives the host its own FORGE_HOME (its own store, lock and bundles) and, for beta, its own
dockerd: a fleet result then really differs by host. sshd missing is a failure that says what
to install, never a skip. Every sshd started here is stopped here, with its sessions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.engines import PrivateDockerd, base_env, sh

SSHD = "/usr/sbin/sshd"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class SshHost:
    name: str
    port: int
    root: Path
    proc: subprocess.Popen[bytes]
    host_key_line: str
    """``ssh-ed25519 AAAA...``: the server's public host key."""
    forge: Path
    forge_home: Path

    @property
    def url(self) -> str:
        return f"ssh://{_user()}@127.0.0.1:{self.port}"

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_key_line}"

    def sessions(self) -> list[psutil.Process]:
        """Everything running under this sshd (its sessions and what they started)."""
        with contextlib.suppress(psutil.Error):
            found: list[psutil.Process] = psutil.Process(self.proc.pid).children(recursive=True)
            return found
        return []

    def remote_forges(self) -> list[psutil.Process]:
        found = []
        for p in self.sessions():
            with contextlib.suppress(psutil.Error):
                if "forge_desktop" in " ".join(p.cmdline()):
                    found.append(p)
        return found


@dataclass
class Fleet:
    hosts: dict[str, SshHost]
    client_key: Path
    known_hosts: Path
    root: Path

    def host_table(self, name: str, host: SshHost, known_hosts: Path | None = None) -> str:
        return (f'[hosts.{name}]\nurl = "{host.url}"\nforge = "{host.forge}"\n'
                f'ssh_options = ["-i", "{self.client_key}", "-o", "IdentitiesOnly=yes", '
                f'"-o", "UserKnownHostsFile={known_hosts or self.known_hosts}"]\n')

    def config(self, *extra: str) -> str:
        return "\n".join([*(self.host_table(n, h) for n, h in self.hosts.items()), *extra])


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wrapper(path: Path, forge_home: Path, env: dict[str, str]) -> None:
    """The forge command on a test host: this checkout's forge with the host's own home (an
    ssh session starts with sshd's default environment, not the test's)."""
    keep = {k: v for k, v in env.items() if k in ("PATH", "DISPLAY", "FORGE_TEST_REGISTRY",
                                                   "DOCKER_HOST", "XDG_RUNTIME_DIR")}
    lines = ["#!/bin/sh", *(f"export {k}='{v}'" for k, v in keep.items()),
             f"export FORGE_HOME='{forge_home}'",
             f'exec {sys.executable} -m forge_desktop "$@"']
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)


def start_host(name: str, root: Path, client_pub: Path, env: dict[str, str]) -> SshHost:
    d = root / name
    d.mkdir(parents=True)
    key = d / "host_key"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"forge-test-{name}", "-f",
       str(key), check=True)
    shutil.copy(client_pub, d / "authorized_keys")
    forge_home = d / "forge-home"
    _wrapper(d / "forge", forge_home, env)
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    last = ""
    for _ in range(3):  # the free port may be taken again before sshd binds it
        port = _free_port()
        conf = d / "sshd_config"
        conf.write_text("\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {key}",
            f"AuthorizedKeysFile {d / 'authorized_keys'}", "PermitRootLogin prohibit-password",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
            "StrictModes no", f"PidFile {d / 'sshd.pid'}", "LogLevel ERROR",
            # every session's engine, as a user's profile would set it: `docker system
            # dial-stdio` (transport mode, -r docker@CONTEXT) then reaches the host's own
            # dockerd (beta: the private one)
            *([f"SetEnv DOCKER_HOST={env['DOCKER_HOST']}"] if "DOCKER_HOST" in env else [])])
            + "\n")
        log = (d / "sshd.log").open("ab")
        proc = subprocess.Popen([SSHD, "-f", str(conf), "-D", "-e"], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while proc.poll() is None and not _listening(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None and _listening(port):
            return SshHost(name, port, d, proc, key.with_suffix(".pub").read_text()
                           .split(" forge-test")[0].strip(), d / "forge", forge_home)
        stop_host_proc(proc)
        last = (d / "sshd.log").read_text(errors="replace")[-500:]
    raise AssertionError(f"sshd for test host {name} did not listen: {last}")


def stop_host_proc(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(psutil.Error):
        children = psutil.Process(proc.pid).children(recursive=True)
        for c in children:
            with contextlib.suppress(psutil.Error):
                c.terminate()
        psutil.wait_procs(children, timeout=60)
        for c in children:
            with contextlib.suppress(psutil.Error):
                c.kill()
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory, private_dockerd: PrivateDockerd
          ) -> Iterator[Fleet]:
    """alpha and beta: two sshd test hosts; alpha's docker is the shared dockerd, beta's the
    private one of tests/engines.py (its own daemon, store and containerd), and both reach
    this machine's runc, crun and podman."""
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh") is None:
        pytest.fail(f"{SSHD} or ssh is missing: the fleet tests need real OpenSSH; run "
                    "scripts/provision.sh test (it installs openssh-server and "
                    "openssh-client)", pytrace=False)
    root = tmp_path_factory.mktemp("fleet")
    client = root / "client_key"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(client), check=True)
    hosts: dict[str, SshHost] = {}
    try:
        for name, env in (("alpha", base_env()), ("beta", private_dockerd.env)):
            hosts[name] = start_host(name, root, client.with_suffix(".pub"), env)
        known = root / "known_hosts"
        known.write_text("".join(h.known_hosts_line() + "\n" for h in hosts.values()))
        yield Fleet(hosts, client, known, root)
    finally:
        for h in hosts.values():
            stop_host_proc(h.proc)


@pytest.fixture
def local_home(tmp_path: Path, fleet: Fleet) -> Iterator[tuple[Path, dict[str, str]]]:
    """A local FORGE_HOME whose config.toml names alpha and beta, and the env to run forge."""
    home = tmp_path / "local-home"
    home.mkdir()
    (home / "config.toml").write_text(fleet.config())
    yield home, {**base_env(), "FORGE_HOME": str(home)}
