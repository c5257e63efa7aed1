"""forge as a desktop user who is not root: real accounts made for the test, the real engines.

``desktop`` is in the ``docker`` group and has /etc/subuid and /etc/subgid ranges (rootless
podman: forge starts its temporary ``podman system service`` as that user); ``outsider`` has
neither. Each runs forge with its own HOME, FORGE_HOME and a 0700 XDG_RUNTIME_DIR of its own,
as a login session would give. At teardown every process of the account's uid (rootless
podman's pause process, a session bus) is killed, then the account, its home (with podman's
rootless storage) and its runtime directory are removed.

The project's venv may use an interpreter under a directory others cannot search (pyenv in
/root, mode 0700). Rather than loosen /root, each command runs in a private mount namespace
where that directory is a tmpfs holding only the interpreter's tree (bound read-only from the
real one): nothing on the host changes and nothing outlives the command.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from forge_desktop import APP_ID
from forge_desktop.models import LABEL_RUN
from tests.gui.conftest import BUS_CONFIG
from tests.integration.conftest import DOCKER, sh

VENV_BIN = Path(sys.executable).parent
"""The venv's bin: the forge and forge-shortcut a user of this checkout runs."""


def hidden_ancestor(path: Path) -> tuple[Path, str] | None:
    """The first directory on ``path`` that others cannot search, and the entry under it that
    leads to ``path``; None when every ancestor is searchable."""
    parts = path.resolve().parts
    for i in range(1, len(parts) - 1):
        here = Path(*parts[:i + 1])
        if not here.stat().st_mode & stat.S_IXOTH:
            return here, parts[i + 1]
    return None


# Runs as root in a new mount namespace: shows only $hidden/$entry (the interpreter's tree)
# through a tmpfs over $hidden, makes "/" shared again inside the namespace (rootless podman
# expects it), then becomes the user.
AS_USER = r"""
set -eu
scratch=$1 hidden=$2 entry=$3 groups=$4; shift 4
if [ -n "$hidden" ]; then
    t=$(mktemp -d "$scratch/mnt.XXXXXX")
    mount --bind "$hidden/$entry" "$t"
    mount -o remount,bind,ro "$t"
    mount -t tmpfs -o mode=0755,size=64k forge-nonroot "$hidden"
    mkdir "$hidden/$entry"
    mount --move "$t" "$hidden/$entry"
    rmdir "$t"
    mount --make-rshared /
fi
exec setpriv $groups "$@"
"""


@dataclass
class User:
    name: str
    uid: int
    gid: int
    home: Path
    runtime_dir: Path
    scratch: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def forge_home(self) -> Path:
        return self.home / "forge-home"

    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name,
                "SHELL": "/bin/sh", "LANG": "C.UTF-8",
                "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "XDG_RUNTIME_DIR": str(self.runtime_dir), "FORGE_HOME": str(self.forge_home),
                **self.extra_env}

    def argv(self, *cmd: str, groups: str = "--init-groups",
             env: dict[str, str] | None = None) -> list[str]:
        """``cmd`` as this user, with a login's groups (``groups`` is setpriv's option) and
        environment, nothing inherited from root's."""
        hidden = hidden_ancestor(Path(sys.executable))
        full_env = {**self.env(), **(env or {})}
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", AS_USER,
                "as-user", str(self.scratch), str(hidden[0]) if hidden else "",
                hidden[1] if hidden else "", groups, f"--reuid={self.uid}",
                f"--regid={self.gid}", "--", "env", "-i",
                *(f"{k}={v}" for k, v in full_env.items()), *cmd]

    def run(self, *cmd: str, timeout: float = 120, groups: str = "--init-groups",
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*cmd, groups=groups, env=env), capture_output=True,
                              text=True, timeout=timeout, check=False, cwd=self.home,
                              stdin=subprocess.DEVNULL)

    def forge(self, *args: str, timeout: float = 180, groups: str = "--init-groups",
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(str(VENV_BIN / "forge"), *args, timeout=timeout, groups=groups, env=env)

    def processes(self) -> list[psutil.Process]:
        """This user's live processes (a zombie has exited: only its parent has not reaped it
        yet, so it is neither running nor a leftover)."""
        found = []
        for p in psutil.process_iter(["uids", "status"]):
            uids = p.info["uids"]
            if (uids is not None and self.uid in (uids.real, uids.effective)
                    and p.info["status"] != psutil.STATUS_ZOMBIE):
                found.append(p)
        return found

    def cmdlines(self) -> list[list[str]]:
        """The command lines of this user's live processes (one that exits meanwhile is gone)."""
        lines = []
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                lines.append(p.cmdline())
        return lines


def wait_until(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not (callable(predicate) and predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:g} s")
        time.sleep(0.05)


def subid_lines(name: str) -> list[str]:
    return [ln for f in ("/etc/subuid", "/etc/subgid")
            for ln in Path(f).read_text().splitlines() if ln.startswith(f"{name}:")]


@contextlib.contextmanager
def account(scratch: Path, *, docker_group: bool, subids: bool) -> Iterator[User]:
    name = f"forgenr-{secrets.token_hex(3)}"
    count = "65536" if subids else "0"
    argv = ["useradd", "--create-home", "--shell", "/bin/sh", "-K", f"SUB_UID_COUNT={count}",
            "-K", f"SUB_GID_COUNT={count}", *(["--groups", "docker"] if docker_group else []),
            name]
    made = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    entry = pwd.getpwnam(name)
    user = User(name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir),
                Path("/run/user") / str(entry.pw_uid), scratch)
    try:
        user.runtime_dir.parent.mkdir(mode=0o755, exist_ok=True)
        user.runtime_dir.mkdir(mode=0o700)
        os.chown(user.runtime_dir, user.uid, user.gid)
        assert len(subid_lines(name)) == (2 if subids else 0), subid_lines(name)
        yield user
    finally:
        teardown(user)


def teardown(user: User) -> None:
    """Kill every process of the uid (only that uid), then remove the account and its
    files. Fails if a process survives SIGKILL."""
    for p in user.processes():
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    wait_until(lambda: not user.processes(), 30, f"processes of uid {user.uid} to end")
    gone = subprocess.run(["userdel", "--remove", user.name], capture_output=True, text=True,
                          timeout=60, check=False)
    shutil.rmtree(user.home, ignore_errors=True)  # rootless storage userdel may leave
    shutil.rmtree(user.runtime_dir, ignore_errors=True)
    for leftover in Path("/tmp").iterdir():  # e.g. a temporary podman service's directory
        with contextlib.suppress(OSError):
            if leftover.lstat().st_uid == user.uid:
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    assert gone.returncode == 0, gone.stderr
    assert not subid_lines(user.name), "userdel left the account's subordinate ids"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nonroot")
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def desktop(scratch: Path) -> Iterator[User]:
    with account(scratch, docker_group=True, subids=True) as user:
        yield user


@pytest.fixture(scope="module")
def outsider(scratch: Path) -> Iterator[User]:
    with account(scratch, docker_group=False, subids=False) as user:
        yield user


def runtimes_of(user: User, groups: str = "--init-groups",
                env: dict[str, str] | None = None) -> dict[str, dict[str, object]]:
    proc = user.forge("runtimes", "--json", timeout=120, groups=groups, env=env)
    assert proc.returncode == 0, proc.stderr
    return {r["name"]: r for r in json.loads(proc.stdout)}


def podman_ps(user: User) -> list[str]:
    out = user.run("podman", "ps", "-a", "--format", "{{.ID}}", timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


# --- what a desktop user can use ---------------------------------------------------------

def test_desktop_user_has_docker_podman_and_runc(desktop: User) -> None:
    found = runtimes_of(desktop)
    for name in ("docker", "podman", "runc"):
        assert found[name]["available"] is True and found[name]["reason"] is None, found[name]
    assert "/run/user/" in str(found["podman"]["endpoint"])  # the user's own, rootless


def test_desktop_user_benchmarks_every_runtime(desktop: User) -> None:
    prep = desktop.forge("image", "prepare", timeout=240)
    assert prep.returncode == 0, prep.stderr
    assert "ready on docker, podman, runc" in prep.stdout, prep.stdout
    proc = desktop.forge("benchmark", "startup", "-r", "docker", "-r", "podman", "-r", "runc",
                         "-n", "3", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    by_name = {r["runtime"]: r for r in doc["runtimes"]}
    assert sorted(by_name) == ["docker", "podman", "runc"]
    for name, entry in by_name.items():
        totals = [s["total_ms"] for s in entry["samples"]]
        assert len(totals) == 3 and all(t > 0 for t in totals), (name, entry)
        assert entry["stats"]["n"] == 3, name
    # rootless podman: forge's temporary service as this user, in the user's storage
    assert "/forge-podman-" in doc["environment"]["runtimes"]["podman"]["endpoint"]

    saved = desktop.forge_home / "benchmarks" / f"{doc['id']}.json"
    st = saved.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (desktop.uid, desktop.gid, 0o600)
    assert json.loads(saved.read_text())["id"] == doc["id"]

    left = sh(DOCKER, "ps", "-aq", "--filter", f"label={LABEL_RUN}={doc['id']}")
    assert left.returncode == 0 and left.stdout.split() == [], left
    assert podman_ps(desktop) == []
    runc = desktop.run("runc", "list", "--quiet", timeout=60)  # rootless state in the runtime dir
    assert runc.returncode == 0 and runc.stdout.split() == [], runc
    # the temporary service ended with forge (podman's own pause process may stay)
    services = [cmd for cmd in desktop.cmdlines() if "service" in cmd]
    assert services == [], services


def test_desktop_user_shortcut_measures_docker(desktop: User) -> None:
    proc = desktop.run(str(VENV_BIN / "forge-shortcut"), "run", "startup", "--param",
                       "runtime=docker", "--param", "iterations=3", "--json", timeout=240)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [r["runtime"] for r in doc["runtimes"]] == ["docker"]
    assert len(doc["runtimes"][0]["samples"]) == 3
    saved = desktop.forge_home / "benchmarks" / f"{doc['id']}.json"
    assert saved.stat().st_uid == desktop.uid


def tray_icons(pid: int) -> list[str]:
    """Visible windows of ``pid`` with the tray icon's class, about icon-sized."""
    out = subprocess.run(["xdotool", "search", "--all", "--pid", str(pid), "--classname",
                          APP_ID],
                         capture_output=True, text=True, timeout=20, check=False).stdout
    icons = []
    for wid in out.split():
        geo = subprocess.run(["xdotool", "getwindowgeometry", "--shell", wid],
                             capture_output=True, text=True, timeout=20, check=False).stdout
        values = dict(ln.split("=", 1) for ln in geo.splitlines() if "=" in ln)
        if 12 <= int(values.get("WIDTH", 0)) <= 64 and 12 <= int(values.get("HEIGHT", 0)) <= 64:
            icons.append(wid)
    return icons


def test_desktop_user_tray_shows_its_icon_and_stops_on_sigterm(desktop: User) -> None:
    """On the shared Xvfb and trayer, with the user's own session bus (as a login has: the
    suite's private bus belongs to root and admits root only)."""
    display = os.environ.get("DISPLAY")
    if not display:
        pytest.fail("DISPLAY not set: run the suite with `make test` (Xvfb and trayer)",
                    pytrace=False)
    sock = desktop.runtime_dir / "bus"
    config = desktop.home / "session-bus.conf"  # the test's tmp dirs are root's, 0700
    config.write_text(BUS_CONFIG.format(socket=sock))
    config.chmod(0o644)
    bus = subprocess.Popen(desktop.argv("dbus-daemon", f"--config-file={config}", "--nofork",
                                        "--nopidfile", "--print-address=1"),
                           stdout=subprocess.PIPE, text=True, cwd=desktop.home)
    tray: subprocess.Popen[str] | None = None
    try:
        assert bus.stdout is not None
        address = bus.stdout.readline().strip()
        assert address.startswith(f"unix:path={sock}"), address
        tray = subprocess.Popen(
            desktop.argv(str(VENV_BIN / "forge"), "tray",
                         env={"DISPLAY": display, "DBUS_SESSION_BUS_ADDRESS": address}),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=desktop.home)
        # unshare, sh, setpriv and env each exec the next: the tray is this very pid
        wait_until(lambda: tray.poll() is not None or tray_icons(tray.pid), 60,
                   "the tray icon in trayer")
        assert tray.poll() is None, tray.communicate(timeout=30)
        assert psutil.Process(tray.pid).uids().real == desktop.uid
        tray.send_signal(signal.SIGTERM)
        _out, err = tray.communicate(timeout=30)
        assert tray.returncode == 0, err
        assert "Traceback" not in err, err
    finally:
        for proc in (tray, bus):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)


# --- what each missing runtime needs, in one line ----------------------------------------

def test_outside_the_docker_group_docker_says_join_it(outsider: User) -> None:
    docker = runtimes_of(outsider)["docker"]
    assert docker["available"] is False
    assert docker["reason"] == (
        f"permission denied on /var/run/docker.sock: add {outsider.name} to the 'docker' "
        f"group (`sudo usermod -aG docker {outsider.name}`, then log in again)")


def test_a_session_older_than_the_group_says_log_in_again(desktop: User) -> None:
    """The account is in the docker group, but this process runs with only its primary group,
    as a session that began before `usermod -aG docker` does."""
    docker = runtimes_of(desktop, groups=f"--groups={desktop.gid}")["docker"]
    assert docker["available"] is False
    assert docker["reason"] == (
        f"permission denied on /var/run/docker.sock: {desktop.name} is in the 'docker' group, "
        "but this login session started before that; log in again (or run `newgrp docker`)")


def test_without_newuidmap_podman_says_install_uidmap(desktop: User) -> None:
    """A PATH where podman is found but newuidmap and newgidmap are not (as on a machine
    without the uidmap package): podman itself then cannot start for this user."""
    bare = desktop.home / "bin-without-uidmap"  # the test's tmp dirs are root's, 0700
    bare.mkdir(mode=0o755, exist_ok=True)
    for tool in ("podman", "runc", "setpriv"):
        with contextlib.suppress(FileExistsError):
            (bare / tool).symlink_to(shutil.which(tool) or tool)
    path = {"PATH": str(bare)}
    for p in desktop.processes():  # a pause process from earlier tests would hide the lack
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    wait_until(lambda: not desktop.processes(), 30, "the desktop user's processes to end")
    itself = desktop.run("podman", "info", env=path, timeout=60)
    assert itself.returncode != 0 and "newuidmap" in itself.stderr, itself.stderr
    podman = runtimes_of(desktop, env=path)["podman"]
    assert podman["available"] is False
    assert podman["reason"] == (
        f"rootless podman needs newuidmap and newgidmap to map {desktop.name}'s /etc/subuid "
        "range: install the 'uidmap' package (`sudo apt install uidmap`)")


def test_without_subordinate_ids_podman_still_measures(outsider: User) -> None:
    """No /etc/subuid range is no reason: podman maps the user's own uid alone, which is
    enough for forge's image (all its files are root's), so it must not be called missing."""
    assert runtimes_of(outsider)["podman"]["available"] is True
    prep = outsider.forge("image", "prepare", "-r", "podman", timeout=240)
    assert prep.returncode == 0, prep.stderr
    proc = outsider.forge("benchmark", "startup", "-r", "podman", "-n", "3", "--json",
                          timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["runtimes"][0]["samples"]) == 3
    assert podman_ps(outsider) == []
