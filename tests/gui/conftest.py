"""GUI tests need the X server + tray host that `make test` starts (scripts/services.sh start
x); each test session runs its own session bus. Missing ones are failures, not skips."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines import PrivateDockerd, remove_owned

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"


BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@pytest.fixture(scope="session")
def desktop_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The X server + tray host, and a session bus of this test session's own: other test
    sessions on the machine run recording notification servers too, and on a shared bus the
    name org.freedesktop.Notifications would go to whichever claimed it last."""
    if not os.environ.get("DISPLAY"):
        pytest.fail("DISPLAY not set: run the suite with `make test` (it starts Xvfb and "
                    "trayer)", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="forge-gui-bus-", dir="/tmp"))  # short socket path
    config = root / "session.conf"
    config.write_text(BUS_CONFIG.format(socket=root / "bus.sock"))
    bus = subprocess.Popen(["dbus-daemon", "--nofork", "--nopidfile", "--print-address=1",
                            f"--config-file={config}"], stdout=subprocess.PIPE, text=True)
    assert bus.stdout is not None
    address = bus.stdout.readline().strip()  # printed once it listens
    previous = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    try:
        assert address.startswith("unix:"), f"the private session bus did not start: {address!r}"
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = address  # for in-process GUIs and children
        yield {"DISPLAY": os.environ["DISPLAY"], "DBUS_SESSION_BUS_ADDRESS": address}
    finally:
        if previous is None:
            os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = previous
        bus.terminate()
        bus.wait(10)
        shutil.rmtree(root, ignore_errors=True)


class NotifyServer:
    """The recording notification server of tests/gui/notify_server.py, as a process."""

    def __init__(self, record: Path) -> None:
        self.record = record
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.gui.notify_server",
                                      str(record)], cwd=REPO, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", line

    def calls(self) -> list[dict[str, object]]:
        if not self.record.exists():
            return []
        return [json.loads(ln) for ln in self.record.read_text().splitlines() if ln.strip()]

    def wait_for(self, predicate: object, timeout_s: float = 120) -> dict[str, object]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for call in self.calls():
                if callable(predicate) and predicate(call):
                    return call
            time.sleep(0.2)
        raise AssertionError(f"no matching Notify call within {timeout_s} s: {self.calls()}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def notify_server(desktop_env: dict[str, str], tmp_path: Path) -> Iterator[NotifyServer]:
    server = NotifyServer(tmp_path / "notify.jsonl")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_dockerd(dockerd: PrivateDockerd, monkeypatch: pytest.MonkeyPatch
                ) -> Iterator[PrivateDockerd]:
    """The private dockerd (tests/engines.py) as this process's docker, for an in-process tray
    or window whose engine the test kills: running before and after the test, and the
    containers this process (the GUI's runs) owns there removed afterwards, also on failure."""
    monkeypatch.setenv("DOCKER_HOST", dockerd.env["DOCKER_HOST"])
    try:
        yield dockerd
    finally:
        dockerd.ensure_running()
        remove_owned(os.getpid(), dockerd.env)
