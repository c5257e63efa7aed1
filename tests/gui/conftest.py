"""GUI tests need the X server + tray host and the private session bus that `make test`
starts (scripts/services.sh start x dbus). Missing ones are failures, not skips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines import PrivateDockerd, remove_owned

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"


@pytest.fixture(scope="session")
def desktop_env() -> dict[str, str]:
    missing = [v for v in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS") if not os.environ.get(v)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not set: run the suite with `make test` (it starts "
                    "Xvfb, trayer and a private session bus)", pytrace=False)
    return {"DISPLAY": os.environ["DISPLAY"],
            "DBUS_SESSION_BUS_ADDRESS": os.environ["DBUS_SESSION_BUS_ADDRESS"]}


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
