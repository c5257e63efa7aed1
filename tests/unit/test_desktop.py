"""Desktop integration (forge_desktop/desktop.py), the icons and the packaging files.

Installs go into a temporary HOME with XDG_DATA_HOME / XDG_CONFIG_HOME pointed at it; the
freedesktop validators (`desktop-file-validate`, `appstreamcli validate --no-net`; Debian
desktop-file-utils and appstream, installed by `make test`) check what was written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forge_desktop import APP_ID, APP_NAME, __version__, desktop
from forge_desktop.actions import ACTIONS
from forge_desktop.errors import ForgeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Ubuntu 22.04): the same parser, packaged as tomli
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import make_icons  # noqa: E402

FORGE_WITH_DESKTOP = """\
import sys
from forge_desktop.cli.app import app
from forge_desktop.cli import cmd_desktop
if not any(g.name == "desktop" for g in app.registered_groups):
    cmd_desktop.register(app)  # until cli/app.py registers it
from forge_desktop.cli import main
main(sys.argv[1:])
"""


def forge_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real `forge` entry (main) with the desktop group, in a child process."""
    return subprocess.run([sys.executable, "-c", FORGE_WITH_DESKTOP, *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root: directories, and files with their mode and content digest."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in filenames:
            p = Path(dirpath, f)
            out[os.path.relpath(p, root)] = (f"{oct(p.stat().st_mode)} "
                                             f"{hashlib.sha256(p.read_bytes()).hexdigest()}")
    return out


def read_entry(path: Path) -> dict[str, dict[str, str]]:
    """Groups -> keys of a desktop file (case-sensitive, no interpolation, # comments)."""
    groups: dict[str, dict[str, str]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip()[1:-1]
            assert current not in groups, f"group {current} twice"
            groups[current] = {}
            continue
        key, _, value = line.partition("=")
        assert current is not None and key not in groups[current], line
        groups[current][key] = value
    return groups


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME with the XDG defaults (variables unset)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A temporary HOME with XDG_DATA_HOME and XDG_CONFIG_HOME set elsewhere in it."""
    dirs = {"HOME": tmp_path / "home", "XDG_DATA_HOME": tmp_path / "home" / "data",
            "XDG_CONFIG_HOME": tmp_path / "home" / "conf"}
    dirs["HOME"].mkdir()
    for name, path in dirs.items():
        monkeypatch.setenv(name, str(path))
    return dirs


# -- Exec quoting ---------------------------------------------------------------------------

@pytest.mark.parametrize(("arg", "written"), [
    ("plain", "plain"),
    ("/opt/my venv/bin/forge", '"/opt/my venv/bin/forge"'),
    ("100%", "100%%"),
    ("a b%", '"a b%%"'),
    ('say "hi"', '"say \\\\"hi\\\\""'),
    ("$HOME", '"\\\\$HOME"'),
    ("`id`", '"\\\\`id\\\\`"'),
    ("back\\slash", '"back\\\\\\\\slash"'),  # a literal backslash is four in the file
    ("it's", '"it\'s"'),
    ("", '""'),
])
def test_exec_quote_follows_the_spec(arg: str, written: str) -> None:
    assert desktop.exec_quote(arg) == written
    assert desktop.parse_exec(written) == [arg]


@given(st.lists(st.text(st.characters(blacklist_categories=("Cc", "Cs"))), min_size=1,
                max_size=5))
def test_exec_line_round_trips(argv: list[str]) -> None:
    argv = ["/usr/bin/forge", *argv]
    assert desktop.parse_exec(desktop.exec_line(argv)) == argv


def test_exec_refuses_control_characters_and_equals_in_the_program() -> None:
    with pytest.raises(ForgeError, match="control character"):
        desktop.exec_quote("a\nb")
    with pytest.raises(ForgeError, match="'='"):
        desktop.exec_line(["/opt/a=b/forge", "window"])
    with pytest.raises(ValueError, match="field code"):
        desktop.parse_exec("forge %f")


def test_desktop_action_ids_are_valid() -> None:
    assert desktop.desktop_action_id("compare") == "compare"
    assert desktop.desktop_action_id("disk_usage.now") == "disk-usage-now"
    for action_id in ACTIONS:
        assert re.fullmatch(r"[A-Za-z0-9-]+", desktop.desktop_action_id(action_id))


# -- what is written ------------------------------------------------------------------------

def test_launcher_has_one_action_group_per_registry_action(home: Path) -> None:
    path = home / "launcher.desktop"
    path.write_text(desktop.launcher_text())
    groups = read_entry(path)
    entry = groups["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Version"] == "1.4"
    assert entry["Name"] == APP_NAME
    assert entry["Icon"] == APP_ID
    assert entry["StartupWMClass"] == APP_ID
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";")
    assert desktop.parse_exec(entry["Exec"]) == [*desktop.forge_command(), "window"]
    assert entry["TryExec"] == desktop.forge_command()[0]
    assert entry["Actions"] == "".join(f"{a};" for a in ACTIONS)
    for action in ACTIONS.values():
        group = groups[f"Desktop Action {action.id}"]
        assert group["Name"] == action.title
        assert desktop.parse_exec(group["Exec"]) == [*desktop.shortcut_command(), "run",
                                                     action.id, "--notify"]
    assert set(groups) == {"Desktop Entry", *(f"Desktop Action {a}" for a in ACTIONS)}
    assert "$" not in path.read_text()  # every placeholder filled
    assert "##" not in path.read_text()  # template comments dropped


def test_autostart_starts_the_tray(home: Path) -> None:
    path = home / "autostart.desktop"
    path.write_text(desktop.autostart_text())
    entry = read_entry(path)["Desktop Entry"]
    assert desktop.parse_exec(entry["Exec"]) == [*desktop.forge_command(), "tray"]
    assert entry["Icon"] == APP_ID
    assert entry["X-GNOME-Autostart-enabled"] == "true"


def test_commands_use_the_entry_points_beside_this_interpreter() -> None:
    bindir = Path(sys.executable).parent
    forge, shortcut = desktop.forge_command(), desktop.shortcut_command()
    assert forge == ([str(bindir / "forge")] if (bindir / "forge").exists()
                     else [sys.executable, "-m", "forge_desktop"])
    assert shortcut == ([str(bindir / "forge-shortcut")]
                        if (bindir / "forge-shortcut").exists()
                        else [sys.executable, "-m", "shortcut_module"])


def test_install_writes_launcher_icons_metainfo_and_autostart(home: Path) -> None:
    written = desktop.install(autostart=True)
    data, config = home / ".local" / "share", home / ".config"
    expected = {data / "applications" / f"{APP_ID}.desktop",
                data / "metainfo" / f"{APP_ID}.metainfo.xml",
                config / "autostart" / f"{APP_ID}.desktop",
                data / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"}
    expected |= {data / "icons" / "hicolor" / f"{s}x{s}" / "apps" / f"{APP_ID}.png"
                 for s in desktop.ICON_SIZES}
    assert {Path(p) for p in written} == expected
    assert set(desktop.installed()) == {str(p) for p in expected}
    for size in desktop.ICON_SIZES:
        png = (data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png")
        assert png_size(png.read_bytes()) == (size, size)
    for path in expected:
        assert path.stat().st_mode & 0o777 == 0o644


def test_xdg_variables_are_honoured_and_relative_ones_ignored(
        xdg: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    desktop.install(autostart=True)
    assert (xdg["XDG_DATA_HOME"] / "applications" / f"{APP_ID}.desktop").is_file()
    assert (xdg["XDG_CONFIG_HOME"] / "autostart" / f"{APP_ID}.desktop").is_file()
    assert not (xdg["HOME"] / ".local").exists()
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")
    assert desktop.data_home() == xdg["HOME"] / ".local" / "share"
    monkeypatch.setenv("XDG_CONFIG_HOME", "")
    assert desktop.config_home() == xdg["HOME"] / ".config"


def test_validators_accept_what_install_wrote(xdg: dict[str, Path]) -> None:
    for tool in ("desktop-file-validate", "appstreamcli"):
        assert shutil.which(tool), f"{tool} is missing: run `make test` (scripts/provision.sh " \
            "test installs desktop-file-utils and appstream)"
    desktop.install(autostart=True)
    launcher, autostart = desktop.launcher_path(), desktop.autostart_path()
    proc = subprocess.run(["desktop-file-validate", str(launcher), str(autostart)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr
    proc = subprocess.run(["appstreamcli", "validate", "--no-net", "--no-color",
                           str(desktop.metainfo_path())],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_uninstall_leaves_home_exactly_as_before(xdg: dict[str, Path]) -> None:
    # things that were there before and must stay: another app's launcher, an empty icon
    # directory, a file in the autostart directory
    apps = xdg["XDG_DATA_HOME"] / "applications"
    apps.mkdir(parents=True)
    (apps / "other.desktop").write_text("[Desktop Entry]\nType=Application\nName=O\nExec=o\n")
    (xdg["XDG_DATA_HOME"] / "icons" / "hicolor" / "48x48" / "apps").mkdir(parents=True)
    (xdg["XDG_CONFIG_HOME"] / "autostart").mkdir(parents=True)
    (xdg["XDG_CONFIG_HOME"] / "autostart" / "keep.desktop").write_text("x")
    before = snapshot(xdg["HOME"])
    desktop.install(autostart=True)
    desktop.install()  # again: a refresh, still one record
    assert snapshot(xdg["HOME"]) != before
    removal = desktop.uninstall()
    assert removal.kept == [] and len(removal.removed) == len(desktop.ICON_SIZES) + 4
    assert snapshot(xdg["HOME"]) == before
    assert desktop.uninstall().removed == []  # a second uninstall has nothing to do


def test_uninstall_keeps_a_file_the_user_changed(home: Path) -> None:
    before = snapshot(home)
    desktop.install()
    launcher = desktop.launcher_path()
    launcher.write_text(launcher.read_text().replace("Terminal=false", "Terminal=true"))
    removal = desktop.uninstall()
    assert removal.kept == [str(launcher)]
    assert launcher.exists()
    assert desktop.installed() == [str(launcher)]
    launcher.unlink()
    assert desktop.uninstall().removed == []  # now tidies the directories and the record
    assert snapshot(home) == before


def test_tray_autostart_toggle_adds_and_removes_only_its_entry(home: Path) -> None:
    before = snapshot(home)
    desktop.install_autostart()
    assert desktop.autostart_path().is_file()
    assert desktop.installed() == [str(desktop.autostart_path())]
    desktop.remove_autostart()
    assert snapshot(home) == before
    desktop.install()
    desktop.install_autostart()
    desktop.remove_autostart()
    assert not desktop.autostart_path().exists() and desktop.launcher_path().exists()
    desktop.uninstall()
    assert snapshot(home) == before


def test_version_1_record_is_still_uninstalled(home: Path) -> None:
    launcher = desktop.launcher_path()
    launcher.parent.mkdir(parents=True)
    launcher.write_text("[Desktop Entry]\n")
    desktop.manifest_path().parent.mkdir(parents=True)
    desktop.manifest_path().write_text(json.dumps([str(launcher)]))
    assert desktop.uninstall().removed == [str(launcher)]
    assert not desktop.manifest_path().exists()


def test_forge_desktop_commands(xdg: dict[str, Path]) -> None:
    env = {**os.environ, **{k: str(v) for k, v in xdg.items()}}
    before = snapshot(xdg["HOME"])
    proc = forge_cli("desktop", "install", "--autostart", env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {desktop.launcher_path()}" in proc.stdout
    assert f"wrote {desktop.autostart_path()}" in proc.stdout
    proc = forge_cli("desktop", "uninstall", env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"removed {desktop.launcher_path()}" in proc.stdout
    assert snapshot(xdg["HOME"]) == before
    proc = forge_cli("desktop", "uninstall", env=env)
    assert proc.returncode == 0 and "nothing to remove" in proc.stdout
    proc = forge_cli("desktop", "install", "--bogus", env=env)
    assert proc.returncode == 2 and proc.stderr.startswith("forge: error:"), proc.stderr


# -- packaging files ------------------------------------------------------------------------

def test_packaging_links_to_the_shipped_templates() -> None:
    shipped = REPO / "forge_desktop" / "assets" / "packaging"
    for name in ("launcher.desktop.in", "launcher-action.desktop.in", "autostart.desktop.in",
                 f"{APP_ID}.metainfo.xml"):
        assert (REPO / "packaging" / name).read_bytes() == (shipped / name).read_bytes()


def test_metainfo_matches_the_app() -> None:
    root = ET.parse(desktop.METAINFO).getroot()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("launchable") == f"{APP_ID}.desktop"
    assert root.findtext("icon") == APP_ID
    releases = root.findall("releases/release")
    assert releases and releases[0].get("version") == __version__, \
        "add a <release> for the new version to the metainfo"


def test_changelog_has_this_version() -> None:
    assert f"## [{__version__}]" in (REPO / "CHANGELOG.md").read_text()


def test_pyinstaller_spec_names_both_entry_points() -> None:
    spec = (REPO / "packaging" / "forge.spec").read_text()
    assert '"forge"' in spec and '"forge-shortcut"' in spec
    assert "forge_desktop/assets" in spec or "forge_desktop\", \"assets" in spec


# -- icons ----------------------------------------------------------------------------------

def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def png_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        chunks.append(data[pos + 4:pos + 8])
        pos += 12 + length
    return chunks


def test_shipped_icons_are_every_size_without_metadata() -> None:
    for size in desktop.ICON_SIZES:
        data = (desktop.ICONS / f"forge-desktop-{size}.png").read_bytes()
        assert png_size(data) == (size, size)
        assert png_chunks(data) == [b"IHDR", b"IDAT", b"IEND"]  # no time, text, profile
    svg = ET.parse(desktop.ICONS / "forge-desktop.svg").getroot()
    assert svg.get("viewBox") == "0 0 256 256"
    assert (REPO / "assets" / "forge-desktop.svg").read_bytes() == \
        (desktop.ICONS / "forge-desktop.svg").read_bytes()
    assert (REPO / "assets" / "icons" / "forge-desktop-48.png").resolve() == \
        (desktop.ICONS / "forge-desktop-48.png").resolve()
    for state in ("idle", "busy", "error"):
        tray = desktop.ASSETS / "tray" / f"forge-desktop-{state}.svg"
        assert ET.parse(tray).getroot().tag.endswith("svg")


def test_icon_files_match_their_build_record() -> None:
    record = json.loads((REPO / "assets" / "icons-build.json").read_text())
    source = (REPO / "assets" / "forge-desktop.svg").read_bytes()
    assert record["source_sha256"] == hashlib.sha256(source).hexdigest(), \
        "assets/forge-desktop.svg changed: run scripts/make_icons.py"
    for rel, digest in record["files"].items():
        assert hashlib.sha256((REPO / rel).read_bytes()).hexdigest() == digest, rel


def test_make_icons_reproduces_the_committed_files() -> None:
    record = json.loads((REPO / "assets" / "icons-build.json").read_text())
    assert make_icons.available(record["renderer"]), \
        f"{record['renderer']} is missing (make test installs ImageMagick)"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "make_icons.py"), "--check"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("renderer", ["pillow", "magick"])
def test_make_icons_is_byte_identical_run_to_run(renderer: str, tmp_path: Path) -> None:
    a = make_icons.build(tmp_path / "a", renderer)
    b = make_icons.build(tmp_path / "b", renderer)
    assert a == b
    for rel in a["files"]:  # type: ignore[attr-defined]
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_pillow_fallback_draws_the_same_geometry(tmp_path: Path) -> None:
    from PIL import Image, ImageChops, ImageStat

    make_icons.build(tmp_path, "pillow")

    def flat(path: Path) -> Image.Image:
        img = Image.open(path).convert("RGBA")
        bg = Image.new("RGBA", img.size, (128, 128, 128, 255))
        bg.alpha_composite(img)
        return bg.convert("RGB")

    fallback = flat(tmp_path / "forge_desktop/assets/icons/forge-desktop-256.png")
    committed = flat(desktop.ICONS / "forge-desktop-256.png")
    diff = ImageStat.Stat(ImageChops.difference(fallback, committed)).mean
    assert max(diff) < 4, diff  # the same picture, up to anti-aliasing


def test_png_codec_round_trips_through_pillow(tmp_path: Path) -> None:
    from PIL import Image

    pixels = bytes((x * 7 + y * 3 + c * 50) % 256 for y in range(16) for x in range(16)
                   for c in range(4))
    png = make_icons.encode_png(16, pixels)
    path = tmp_path / "a.png"
    path.write_bytes(png)
    assert Image.open(path).convert("RGBA").tobytes() == pixels
    Image.frombytes("RGBA", (16, 16), pixels).save(path, optimize=True)  # Pillow's filters
    assert make_icons.decode_png(path.read_bytes()) == (16, 16, pixels)


def test_tray_variants_change_only_the_rim() -> None:
    source = (REPO / "assets" / "forge-desktop.svg").read_text()
    busy = make_icons.tray_variant(source, "busy")
    assert 'id="rim"' in busy and make_icons.STATES["busy"] in busy
    assert len([ln for ln in source.splitlines() if ln not in busy.splitlines()]) == 2


def test_the_manifest_names_the_same_icon() -> None:
    manifest = tomllib.loads((REPO / "shortcut_module" / "manifest.toml").read_text())
    assert manifest["module"]["icon"] == desktop.ICON_NAME
    assert (REPO / manifest["module"]["icon_resource"]).is_file()
