"""The installed launcher, for real: `forge desktop install` into a temporary HOME, then every
`[Desktop Action]` Exec line parsed back per the Desktop Entry spec and run as a launcher
would (no terminal, no shell) against the real engines, with the recording notification
server on the private session bus. Uninstall must leave the HOME as it was.

The Exec lines carry no parameters: the launcher runs the registry defaults (config.toml's
`benchmark.iterations`, else 10, for startup and compare), the same answer as the tray and
`forge benchmark ...`; all five benchmark actions take about a minute here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from forge_desktop import APP_ID, desktop
from forge_desktop.actions import ACTIONS, headline
from forge_desktop.results.document import verdicts
from tests.engines import wait_for
from tests.gui.conftest import NotifyServer
from tests.integration.conftest import DOCKER, oci_leftovers
from tests.unit.test_desktop import forge_cli, read_entry, snapshot

BENCHMARKS = [a.id for a in ACTIONS.values() if a.is_benchmark]
VIEWS = [a.id for a in ACTIONS.values() if not a.is_benchmark]


@dataclass
class Installed:
    root: Path
    env: dict[str, str]
    before: dict[str, str]
    groups: dict[str, dict[str, str]]

    def exec_argv(self, action_id: str) -> list[str]:
        return desktop.parse_exec(self.groups[f"Desktop Action {action_id}"]["Exec"])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("launcher")
    home = root / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share"),
           "XDG_CONFIG_HOME": str(home / ".config")}
    env.pop("QT_QPA_PLATFORM", None)
    before = snapshot(home)
    proc = forge_cli("desktop", "install", env=env)
    assert proc.returncode == 0, proc.stderr
    launcher = home / ".local" / "share" / "applications" / f"{APP_ID}.desktop"
    yield Installed(root, env, before, read_entry(launcher))


@dataclass(frozen=True)
class Ran:
    pid: int
    """The forge-shortcut process: the owner of the containers its run creates."""
    returncode: int
    stdout: str
    stderr: str


def run_exec(argv: list[str], env: dict[str, str], timeout: float = 300) -> Ran:
    """As a launcher runs it: an argv, no shell, no terminal on stdin."""
    with subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        out, err = proc.communicate(timeout=timeout)
    return Ran(proc.pid, proc.returncode, out, err)


def leftovers(pid: int) -> list[str]:
    """Containers still there whose owner was the forge-shortcut process ``pid`` (labels on
    engines, the id prefix on runc): only this run's, whatever other test sessions do."""
    found = []
    for binary in (DOCKER, "podman"):
        out = subprocess.run([binary, "ps", "-a", "--filter", "label=io.forge.owner",
                              "--format", "{{.ID}} {{.Labels}}"], capture_output=True,
                             text=True, timeout=60, check=False).stdout
        found += [f"{binary}:{ln.split()[0]}" for ln in out.splitlines()
                  if re.search(rf"io\.forge\.owner[=:][^,\s]*/{pid}/", ln)]
    found += [f"runc:{c}" for c in oci_leftovers() if c.startswith(f"forge-{pid}-")]
    return found


@pytest.mark.parametrize("action_id", BENCHMARKS)
def test_benchmark_launcher_action_saves_a_result_and_notifies(
        action_id: str, installed: Installed, notify_server: NotifyServer,
        tmp_path: Path) -> None:
    argv = installed.exec_argv(action_id)
    assert argv[-3:] == ["run", action_id, "--notify"]
    env = {**installed.env, "FORGE_HOME": str(tmp_path / "forge-home")}
    start = time.monotonic()
    proc = run_exec(argv, env)
    took = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    results = sorted((tmp_path / "forge-home" / "benchmarks").glob("*.json"))
    assert len(results) == 1, results
    doc = json.loads(results[0].read_text())
    assert doc["kind"] == action_id and doc["complete"]
    assert proc.stdout.strip() == headline(doc)
    call = notify_server.wait_for(lambda c: True, timeout_s=30)
    assert call["summary"] == headline(doc)
    # the verdict, one line per runtime, not the file name
    assert call["body"] == "\n".join(verdicts(doc)) and verdicts(doc)
    assert results[0].name not in str(call["body"])
    assert call["app_name"] == "Forge Desktop"
    # the launcher installed the icon in the theme: the server draws it by name
    assert call["app_icon"] == APP_ID
    assert call["hints"]["desktop-entry"] == APP_ID  # type: ignore[index]
    assert len(notify_server.calls()) == 1
    print(f"{action_id}: {took:.1f} s")
    assert not leftovers(proc.pid)


def test_the_launcher_honours_config_toml(installed: Installed, notify_server: NotifyServer,
                                        tmp_path: Path) -> None:
    """`[benchmark] iterations = 3`: the startup Exec line, as written, measures 3 per runtime."""
    home = tmp_path / "forge-home"
    home.mkdir()
    (home / "config.toml").write_text("[benchmark]\niterations = 3\nwarmup = 0\n")
    proc = run_exec(installed.exec_argv("startup"), {**installed.env, "FORGE_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    (saved,) = (home / "benchmarks").glob("*.json")
    doc = json.loads(saved.read_text())
    assert doc["parameters"]["iterations"] == 3 and doc["parameters"]["warmup"] == 0
    assert doc["runtimes"] and all(e["stats"]["n"] == 3 for e in doc["runtimes"]), [
        (e["runtime"], e.get("stats")) for e in doc["runtimes"]]
    call = notify_server.wait_for(lambda c: True, timeout_s=30)
    assert call["summary"] == headline(doc)
    assert not leftovers(proc.pid)


def test_a_failing_launcher_action_notifies_the_error(
        installed: Installed, notify_server: NotifyServer, tmp_path: Path) -> None:
    argv = [*installed.exec_argv("disk"), "--param", "runtime=nosuch"]
    proc = run_exec(argv, {**installed.env, "FORGE_HOME": str(tmp_path / "forge-home")})
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("forge-shortcut: error: "), proc.stderr
    assert "nosuch" in lines[0]
    call = notify_server.wait_for(lambda c: True, timeout_s=30)
    assert call["summary"] == "Disk usage failed"
    assert call["body"] == lines[0].removeprefix("forge-shortcut: error: ")


def test_a_launcher_benchmark_stopped_by_sigterm_cleans_up_and_says_so(
        installed: Installed, notify_server: NotifyServer, tmp_path: Path) -> None:
    """A session ending sends SIGTERM: exit 130, containers removed, "cancelled" notified."""
    argv = [*installed.exec_argv("startup"), "--param", "iterations=200"]
    env = {**installed.env, "FORGE_HOME": str(tmp_path / "forge-home")}
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        def measuring() -> bool:  # a container of this run exists on some runtime
            assert proc.poll() is None, f"forge-shortcut exited ({proc.returncode}) early"
            return bool(leftovers(proc.pid))

        wait_for(f"a container of forge-shortcut {proc.pid}", measuring, 120, interval_s=0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == ("forge-shortcut: error: interrupted; the run's "
                                            "containers were removed")
    call = notify_server.wait_for(lambda c: True, timeout_s=30)
    assert call["summary"] == "Startup benchmark cancelled"
    assert not leftovers(proc.pid)
    assert not list((tmp_path / "forge-home" / "benchmarks").glob("*.json"))


def _alive(pid: int) -> bool:
    """Exists and is not a zombie (the detached window is not our child: init reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _windows_of(pid: int) -> list[str]:
    out = subprocess.run(["xdotool", "search", "--all", "--onlyvisible", "--pid", str(pid),
                          "--classname", APP_ID], capture_output=True, text=True, timeout=20,
                         check=False).stdout
    return out.split()


@pytest.mark.parametrize("action_id", VIEWS)
def test_view_launcher_action_opens_its_window(action_id: str, installed: Installed,
                                               desktop_env: dict[str, str],
                                               tmp_path: Path) -> None:
    argv = installed.exec_argv(action_id)
    # the window keeps its geometry in XDG_CONFIG_HOME: user state, not part of the install
    env = {**installed.env, "FORGE_HOME": str(tmp_path / "forge-home"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    proc = run_exec(argv, env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Opened {ACTIONS[action_id].title} (pid "), proc.stdout
    pid = int(proc.stdout.rsplit("pid ", 1)[1].rstrip(")\n"))
    try:
        def shown() -> bool:
            assert _alive(pid), f"the window (pid {pid}) exited"
            return bool(_windows_of(pid))

        wait_for(f"a window of class {APP_ID} from pid {pid}", shown, 30, interval_s=0.3)
    finally:
        os.kill(pid, signal.SIGTERM)
        try:
            wait_for(f"the window (pid {pid}) to exit on SIGTERM", lambda: not _alive(pid), 20,
                     interval_s=0.1)
        except AssertionError:
            os.kill(pid, signal.SIGKILL)
            raise


def test_uninstall_leaves_home_as_before(installed: Installed) -> None:
    """Last in this module: everything above ran from this install."""
    proc = forge_cli("desktop", "uninstall", env=installed.env)
    assert proc.returncode == 0, proc.stderr
    assert snapshot(Path(installed.env["HOME"])) == installed.before
