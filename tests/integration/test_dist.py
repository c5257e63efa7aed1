"""`make dist` for real: packaging/dist.sh builds the sdist, the wheel (from the sdist) and the
PyInstaller one-folder bundle and runs the bundle's smoke commands; then the artifacts are
inspected and the bundle runs a real benchmark and installs a launcher pointing into itself.

Slow: about 50 s on an idle 2-core machine (90 s under load), most of it PyInstaller.
Needs the 'dist' extra (build, pyinstaller) in the venv.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from forge_desktop import APP_ID, __version__
from forge_desktop.desktop import ICON_SIZES, parse_exec
from tests.unit.test_desktop import read_entry

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [m for m in ("build", "PyInstaller") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: install the dist extra "
                    "(.venv/bin/pip install -e '.[dist]')", pytrace=False)
    out = tmp_path_factory.mktemp("dist")
    start = time.monotonic()
    proc = subprocess.run([str(REPO / "packaging" / "dist.sh"), str(out)], cwd=REPO,
                          env={**os.environ, "PYTHON": sys.executable,
                               "FORGE_DIST_WORK": str(out / "work")},
                          capture_output=True, text=True, timeout=1500, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"forge {__version__}" in proc.stdout
    print(f"packaging/dist.sh: {time.monotonic() - start:.0f} s")
    return out


def one(paths: list[Path]) -> Path:
    assert len(paths) == 1, paths
    return paths[0]


def test_wheel_ships_both_packages_their_data_and_entry_points(dist: Path) -> None:
    wheel = one(sorted(dist.glob(f"forge_desktop-{__version__}-*.whl")))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = z.read(f"forge_desktop-{__version__}.dist-info/entry_points.txt").decode()
    expected = {"shortcut_module/__init__.py", "shortcut_module/cli.py",
                "shortcut_module/manifest.toml", "forge_desktop/desktop.py",
                "forge_desktop/assets/icons/forge-desktop.svg",
                "forge_desktop/assets/packaging/launcher.desktop.in",
                "forge_desktop/assets/packaging/launcher-action.desktop.in",
                "forge_desktop/assets/packaging/autostart.desktop.in",
                f"forge_desktop/assets/packaging/{APP_ID}.metainfo.xml",
                *(f"forge_desktop/assets/tray/forge-desktop-{s}.svg"
                  for s in ("idle", "busy", "error")),
                *(f"forge_desktop/assets/icons/forge-desktop-{n}.png" for n in ICON_SIZES)}
    assert expected <= names, sorted(expected - names)
    assert not any(n.startswith(("tests/", "packaging/", "assets/")) for n in names)
    assert "forge = forge_desktop.cli:main" in entry_points
    assert "forge-shortcut = shortcut_module.cli:main" in entry_points


def test_sdist_has_the_sources(dist: Path) -> None:
    sdist = one(sorted(dist.glob(f"forge_desktop-{__version__}.tar.gz")))
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for name in ("pyproject.toml", "README.md", "CHANGELOG.md", "docs/BENCHMARKING.md",
                 "assets/forge-desktop.svg", "scripts/make_icons.py", "packaging/forge.spec",
                 "packaging/dist.sh", f"packaging/{APP_ID}.metainfo.xml",
                 "forge_desktop/assets/icons/forge-desktop-48.png",
                 "shortcut_module/manifest.toml"):
        assert name in names, name
    assert not any(n.startswith((".venv/", ".run/", ".hypothesis/", ".git/")) for n in names)


def test_bundle_runs_a_benchmark_in_process(dist: Path, tmp_path: Path) -> None:
    bundle = dist / "forge"
    env = {**os.environ, "FORGE_HOME": str(tmp_path / "forge-home")}
    proc = subprocess.run([str(bundle / "forge-shortcut"), "run", "disk", "--param",
                           "runtime=runc", "--json"], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "disk" and doc["complete"]
    assert (tmp_path / "forge-home" / "benchmarks" / f"{doc['id']}.json").is_file()
    proc = subprocess.run([str(bundle / "forge"), "benchmark", "resources"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr


def test_bundle_installs_a_launcher_pointing_into_itself(dist: Path, tmp_path: Path) -> None:
    bundle = dist / "forge"
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": "", "XDG_CONFIG_HOME": ""}
    proc = subprocess.run([str(bundle / "forge"), "desktop", "install"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr + " (is cmd_desktop registered in cli/app.py?)"
    groups = read_entry(home / ".local" / "share" / "applications" / f"{APP_ID}.desktop")
    assert parse_exec(groups["Desktop Entry"]["Exec"]) == [str(bundle / "forge"), "window"]
    assert parse_exec(groups["Desktop Action compare"]["Exec"]) == [
        str(bundle / "forge-shortcut"), "run", "compare", "--notify"]
    assert (home / ".local" / "share" / "icons" / "hicolor" / "48x48" / "apps"
            / f"{APP_ID}.png").is_file()
    proc = subprocess.run([str(bundle / "forge"), "desktop", "uninstall"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in home.rglob("*")) == []
