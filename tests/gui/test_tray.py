"""`forge tray` for real: Xvfb + trayer, a private session bus with a recording notification
server, the real engines. Screenshots are kept in tests/artifacts/."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from forge_desktop import APP_ID
from tests.gui.conftest import ARTIFACTS, REPO, NotifyServer
from tests.integration.conftest import labelled, oci_leftovers


def xdotool(*args: str) -> str:
    return subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=20,
                          check=False).stdout.strip()


def find_icon(timeout_s: float = 20) -> tuple[int, int, int, int]:
    """The tray icon: a window of class APP_ID embedded in trayer, about 22x22."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for wid in xdotool("search", "--classname", APP_ID).split():
            geo = xdotool("getwindowgeometry", "--shell", wid)
            values = dict(line.split("=") for line in geo.splitlines() if "=" in line)
            w, h = int(values.get("WIDTH", 0)), int(values.get("HEIGHT", 0))
            if 12 <= w <= 64 and 12 <= h <= 64:
                return int(values["X"]), int(values["Y"]), w, h
        time.sleep(0.2)
    raise AssertionError("the tray icon did not appear in trayer")


def screenshot(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    subprocess.run(["import", "-window", "root", str(path)], check=True, timeout=30)
    return path


def colours(path: Path) -> int:
    out = subprocess.run(["identify", "-format", "%k", str(path)], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    return int(out.strip())


def start_tray(env: dict[str, str]) -> subprocess.Popen[str]:
    """Start `forge tray` on the X server (never offscreen) and wait for its icon."""
    env = {k: v for k, v in env.items() if k != "QT_QPA_PLATFORM"}
    proc = subprocess.Popen([sys.executable, "-m", "forge_desktop", "tray"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        find_icon(20)
    except AssertionError:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        raise
    return proc


@pytest.fixture
def tray(desktop_env: dict[str, str],
         tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    home = tmp_path / "forge-home"
    home.mkdir()
    (home / "tray.json").write_text(json.dumps({"iterations": 3, "refresh_s": 1}))
    proc = start_tray({**os.environ, "FORGE_HOME": str(home)})
    try:
        yield proc, home
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_tray_menu_runs_a_startup_benchmark_and_notifies(
        tray: tuple[subprocess.Popen[str], Path], notify_server: NotifyServer) -> None:
    proc, home = tray
    x, y, w, h = find_icon()
    time.sleep(1.5)  # a refresh or two: the icon shows live bars
    screenshot("tray-icon.png")
    xdotool("mousemove", str(x + w // 2), str(y + h // 2), "click", "3")
    time.sleep(1.0)
    shot = screenshot("tray-menu.png")
    assert colours(shot) > 10, "the screenshot of the open menu is blank"
    # the first enabled item is "Startup benchmark" (the usage line above it is disabled)
    xdotool("key", "Down", "Return")
    call = notify_server.wait_for(lambda c: str(c["summary"]).startswith("Startup finished"),
                                  timeout_s=180)
    for name in ("docker", "podman", "runc"):
        assert name in str(call["summary"]), call
    assert "Open results" in call["actions"]  # type: ignore[operator]
    saved = list((home / "benchmarks").glob("*.json"))
    assert len(saved) == 1
    doc = json.loads(saved[0].read_text())
    assert doc["kind"] == "startup" and doc["parameters"]["iterations"] == 3
    assert str(call["body"]).endswith(saved[0].name)
    assert labelled("docker", True) == [] and labelled("podman", True) == []
    assert oci_leftovers(True) == []
    assert proc.poll() is None, "the tray died"


def test_second_start_activates_the_first(tray: tuple[subprocess.Popen[str], Path]) -> None:
    proc, home = tray
    find_icon()
    second = subprocess.run([sys.executable, "-m", "forge_desktop", "tray"], cwd=REPO,
                            env={**os.environ, "FORGE_HOME": str(home)}, capture_output=True,
                            text=True, timeout=30)
    assert second.returncode == 0 and "already running" in second.stderr
    assert proc.poll() is None
    assert xdotool("search", "--classname", APP_ID).split()


def test_malformed_settings_are_ignored_with_a_warning(desktop_env: dict[str, str],
                                                       tmp_path: Path) -> None:
    home = tmp_path / "forge-home"
    home.mkdir()
    (home / "tray.json").write_text(json.dumps({"refresh_s": "fast", "iterations": -4,
                                                "notifications": "yes please"}))
    proc = start_tray({**os.environ, "FORGE_HOME": str(home)})
    try:
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "ignoring refresh_s='fast'" in err and "ignoring iterations=-4" in err
    assert "Traceback" not in err


def test_no_tray_host_says_so_once_and_keeps_working(tmp_path: Path,
                                                     desktop_env: dict[str, str]) -> None:
    """An X server without a tray host (a second Xvfb, no trayer)."""
    display = ":98"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        home = tmp_path / "forge-home"
        proc = subprocess.Popen([sys.executable, "-m", "forge_desktop", "tray"], cwd=REPO,
                                env={**os.environ, "DISPLAY": display, "FORGE_HOME": str(home)},
                                stderr=subprocess.PIPE, text=True)
        time.sleep(4)
        assert proc.poll() is None, "without a tray host forge must keep running"
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        assert err.count("no system tray host") == 1, err
        assert "AppIndicator" in err and "Traceback" not in err
    finally:
        xvfb.terminate()
        xvfb.wait(10)
        shutil.rmtree(tmp_path / "forge-home", ignore_errors=True)


def test_the_tray_menu_honours_config_toml(desktop_env: dict[str, str], tmp_path: Path,
                                           notify_server: NotifyServer) -> None:
    """`[benchmark] iterations = 3` and no iterations of the tray's own: the menu's startup
    benchmark measures 3 iterations."""
    home = tmp_path / "forge-home"
    home.mkdir()
    (home / "config.toml").write_text("[benchmark]\niterations = 3\nwarmup = 0\n")
    (home / "tray.json").write_text(json.dumps({"runtimes": ["runc"], "refresh_s": 1}))
    proc = start_tray({**os.environ, "FORGE_HOME": str(home)})
    try:
        x, y, w, h = find_icon()
        shown = set(xdotool("search", "--onlyvisible", "--pid", str(proc.pid)).split())
        xdotool("mousemove", str(x + w // 2), str(y + h // 2), "click", "3")
        deadline = time.monotonic() + 20  # the menu is a new visible window of the tray's
        while set(xdotool("search", "--onlyvisible", "--pid", str(proc.pid)).split()) <= shown:
            assert time.monotonic() < deadline, "the tray menu did not open"
            time.sleep(0.1)
        xdotool("key", "Down", "Return")  # the first enabled item: "Startup benchmark"
        call = notify_server.wait_for(
            lambda c: str(c["summary"]).startswith("Startup finished"), timeout_s=180)
        (saved,) = (home / "benchmarks").glob("*.json")
        doc = json.loads(saved.read_text())
        assert doc["parameters"]["iterations"] == 3 and doc["parameters"]["warmup"] == 0
        (entry,) = doc["runtimes"]
        assert entry["runtime"] == "runc" and entry["stats"]["n"] == 3
        assert str(call["body"]) == f"Saved as {saved.name}"
        assert oci_leftovers(True) == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
