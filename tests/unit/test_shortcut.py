"""The shortcut module: its manifest is the registry's, its API and `forge-shortcut` run only
registered actions with validated parameters, and it starts fast. Real benchmark runs through
the launcher's Exec lines are in tests/gui/test_launcher.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from forge_desktop import APP_ID, __version__, lock
from forge_desktop.actions import ACTIONS
from forge_desktop.errors import Busy, UsageError
from shortcut_module import api, cli, manifest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Ubuntu 22.04): the same parser, packaged as tomli
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]


def shortcut(*args: str, env: dict[str, str] | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shortcut_module", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})},
                          check=False)


def assert_one_line_error(proc: subprocess.CompletedProcess[str] | tuple[int, str, str],
                          *needles: str, code: int = 2) -> None:
    rc, out, err = (proc.returncode, proc.stdout, proc.stderr) \
        if isinstance(proc, subprocess.CompletedProcess) else proc
    assert rc == code, (rc, out, err)
    assert out == "", out
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("forge-shortcut: error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err


# -- the manifest ---------------------------------------------------------------------------

def test_committed_manifest_is_the_rendered_one() -> None:
    assert manifest.PATH.read_text(encoding="utf-8") == manifest.render(), \
        "shortcut_module/manifest.toml is stale: run python -m shortcut_module.manifest"
    assert manifest.main(["--check"]) == 0


def test_manifest_describes_the_module_and_every_action() -> None:
    data = tomllib.loads(manifest.render())
    module = data["module"]
    assert (module["id"], module["version"], module["icon"]) == (APP_ID, __version__, APP_ID)
    assert module["name"] and module["description"]
    assert [a["id"] for a in data["actions"]] == list(ACTIONS)
    for entry in data["actions"]:
        action = ACTIONS[entry["id"]]
        assert entry["title"] == action.title and entry["description"] == action.description
        assert entry["argv"] == ["forge-shortcut", "run", action.id]
        assert entry["forge_argv"] == ["forge", *action.command]
        assert entry["kind"] == ("benchmark" if action.is_benchmark else "view")
        assert [p["name"] for p in entry["params"]] == [p.name for p in action.params]
        for p, param in zip(entry["params"], action.params, strict=True):
            assert p["type"] == param.kind
            default = list(param.default) if isinstance(param.default, tuple) \
                else param.default
            assert p["default"] == default
            assert action.coerce({p["name"]: p["default"]})[p["name"]] == param.default
    assert data["actions"] == api.list_actions()


def test_toml_strings_are_escaped() -> None:
    text = manifest._toml_value('a "b" \\ c\n\x7f')
    assert tomllib.loads(f"x = {text}")["x"] == 'a "b" \\ c\n\x7f'


# -- the API --------------------------------------------------------------------------------

def test_describe_and_list() -> None:
    info = api.describe("compare")
    assert info["kind"] == "benchmark"
    assert {p["name"] for p in info["params"]} == {p.name for p in ACTIONS["compare"].params}
    assert api.describe("resources")["opens"] == ["forge", "window", "--resources"]
    assert api.describe("results")["opens"] == ["forge", "window"]
    with pytest.raises(UsageError, match="unknown action 'nope'"):
        api.describe("nope")


BAD_PARAMS: list[tuple[str, dict[str, Any], str]] = [
    ("compare", {"bogus": "1"}, "no parameter 'bogus'"),
    ("compare", {"iterations": "abc"}, "must be an integer"),
    ("compare", {"iterations": "2.5"}, "must be an integer"),
    ("compare", {"iterations": "0"}, "between 1 and 1000"),
    ("compare", {"iterations": True}, "must be a number"),
    ("compare", {"iterations": "2\n"}, "control characters"),
    ("compare", {"iterations": " 2"}, "whitespace"),
    ("compare", {"baseline": "; rm -rf /"}, "not allowed"),
    ("compare", {"baseline": "$(id)"}, "not allowed"),
    ("compare", {"baseline": "`id`"}, "not allowed"),
    ("compare", {"baseline": "docker\n"}, "control characters"),
    ("compare", {"baseline": "<b>docker</b>"}, "not allowed"),
    ("startup", {"network": "host; id"}, "not allowed"),
    ("startup", {"runtime": ["docker", "$(id)"]}, "not a runtime name"),
    ("startup", {"runtime": ["runc\n"]}, "control characters"),
    ("startup", {"runtime": "docker;id"}, "not a runtime name"),
    ("results", {"x": "1"}, "no parameter 'x'"),
    ("nope", {}, "unknown action"),
]


@pytest.mark.parametrize(("action_id", "params", "message"), BAD_PARAMS)
def test_run_refuses_bad_input_before_doing_anything(action_id: str, params: dict[str, Any],
                                                     message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("$", r"\$")):
        api.run_action(action_id, params)


def test_assignments() -> None:
    action = ACTIONS["compare"]
    assert api.parse_assignments(["runtime=docker,podman", "runtime=runc", "iterations=3"],
                                 action) == {"runtime": ["docker", "podman", "runc"],
                                             "iterations": "3"}
    assert api.validate_params(action, {"runtime": ["docker"], "iterations": "3"})[
        "iterations"] == 3
    with pytest.raises(UsageError, match="given twice"):
        api.parse_assignments(["iterations=3", "iterations=4"], action)
    with pytest.raises(UsageError, match="KEY=VALUE"):
        api.parse_assignments(["iterations"], action)


def test_notification_words() -> None:
    """The body is the verdict a person wants, not where the result was saved."""
    done = api.Outcome("disk", "finished", 0, "Disk finished: runc 8 KiB per container",
                       {"kind": "disk", "runtimes": [{"runtime": "runc",
                                                      "per_container_bytes": 8192}]},
                       Path("/x/20260101T000000Z-abc.json"))
    assert api.notification(done) == ("Disk finished: runc 8 KiB per container",
                                      "runc 8.0 KiB per container")
    compared = api.Outcome("compare", "finished", 0, "Compare finished", {
        "kind": "compare", "comparison": {"baseline": "docker", "ratios": [
            {"metric": "startup", "runtime": "podman", "ratio": 1.43, "ci95": [1.3, 1.95]},
            {"metric": "startup", "runtime": "crun", "ratio": 0.5, "ci95": [0.4, 0.625]},
            {"metric": "disk", "runtime": "podman", "ratio": 2.0, "ci95": None}]}},
        Path("/x/20260101T000000Z-abc.json"))
    assert api.notification(compared) == ("Compare finished",
                                          "podman 1.43x faster than docker [1.30-1.95]\n"
                                          "crun 2.00x slower than docker [1.60-2.50]")
    partial = api.Outcome("startup", "finished", 1, "Startup finished: runc 30 ms",
                          {"kind": "startup", "runtimes": [
                              {"runtime": "runc", "stats": {"median_ms": 30.04,
                                                            "ci95_ms": [29.5, 31.25]}},
                              {"runtime": "docker", "errors": ["gone", "again"]}]}, None)
    assert api.notification(partial) == ("Startup finished: runc 30 ms",
                                         "runc median 30.0 ms [29.5-31.2]\n"
                                         "failed: docker: gone (and 1 more)\nNot saved")
    assert api.notification(api.Outcome("compare", "failed", 1, "no engine")) == (
        "Compare runtimes failed", "no engine")
    assert api.notification(api.Outcome("compare", "cancelled", 130, "interrupted")) == (
        "Compare runtimes cancelled", "interrupted")
    assert api.notification(api.Outcome("results", "opened", 0, "Opened", pid=1)) is None


def test_a_second_benchmark_is_refused_while_one_runs(forge_home: Path) -> None:
    hold = lock.try_acquire("startup")  # another front end's benchmark, as far as the lock sees
    assert hold is not None
    try:
        outcome = api.run_action("disk", {"runtime": "runc"})
    finally:
        hold.release()
    assert (outcome.status, outcome.exit_code) == ("failed", Busy.exit_code) == ("failed", 75)
    assert f"(startup, pid {os.getpid()}, since " in outcome.text
    again = lock.try_acquire("disk")  # released
    assert again is not None
    again.release()


def _fake_forge(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    from forge_desktop import desktop

    monkeypatch.setattr(desktop, "forge_command", lambda: [sys.executable, "-c", code])


def test_views_open_detached(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_forge(monkeypatch, "import os, sys, time; assert sys.argv[1:] == ['window', "
                "'--resources'], sys.argv; assert os.getsid(0) == os.getpid(); time.sleep(30)")
    outcome = api.run("resources")
    assert outcome.status == "opened" and outcome.exit_code == 0 and outcome.pid
    try:
        assert outcome.argv is not None and outcome.argv[-2:] == ["window", "--resources"]
        os.kill(outcome.pid, 0)  # still running, in its own session
    finally:
        os.kill(outcome.pid, signal.SIGTERM)


def test_a_view_that_cannot_start_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_forge(monkeypatch, "import sys; print('no display', file=sys.stderr); sys.exit(1)")
    outcome = api.run("results")
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert outcome.text == "Open results did not open: no display"
    _fake_forge(monkeypatch, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert api.run("results").text == "Open results did not open: it was killed by SIGSEGV"


# -- the command ----------------------------------------------------------------------------

def test_list_and_describe(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(["list"], capsys)
    assert code == 0 and [ln.split()[0] for ln in out.splitlines()] == list(ACTIONS)
    code, out, _ = run_main(["list", "--json"], capsys)
    assert code == 0 and json.loads(out) == api.list_actions()
    code, out, _ = run_main(["describe", "startup"], capsys)
    assert code == 0 and "iterations" in out and "default 10 [1-1000]" in out
    code, out, _ = run_main(["describe", "image", "--json"], capsys)
    assert code == 0 and json.loads(out) == api.describe("image")


@pytest.mark.parametrize("args", [
    ["run", "nope"],
    ["run", "compare", "--param", "bogus=1"],
    ["run", "compare", "--param", "iterations=abc"],
    ["run", "compare", "--param", "iterations=1e3"],
    ["run", "compare", "--param", "warmup=-1"],
    ["run", "compare", "--param", "iterations"],
    ["run", "compare", "--param", "baseline=; rm -rf /"],
    ["run", "compare", "--param", "baseline=$(id)"],
    ["run", "compare", "--param", "baseline=`id`"],
    ["run", "compare", "--param", "baseline=docker\nrm -rf /"],
    ["run", "compare", "--param", "baseline=<b>bold</b>"],
    ["run", "startup", "--param", "runtime=docker;id"],
    ["run", "startup", "--param", "network=$(id)"],
    ["run", "compare", "--bogus"],
    ["describe", "nope"],
    ["frobnicate"],
])
def test_refusals_are_one_line_and_exit_2(args: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(run_main(args, capsys))


def test_refusals_through_the_real_entry_point_notify_nothing_without_a_bus(
        forge_home: Path) -> None:
    env = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent"}
    proc = shortcut("run", "compare", "--param", "baseline=$(id)", "--notify", env=env)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and proc.stdout == ""
    assert lines[0].startswith("forge-shortcut: warning: notification not shown")
    assert_one_line_error((proc.returncode, proc.stdout, "\n".join(lines[1:])), "$(id)")
    assert_one_line_error(shortcut("run", "startup", "--param", "iterations=`id`"),
                          "must be an integer")
    proc = shortcut()
    assert proc.returncode == 2 and "usage: forge-shortcut" in proc.stderr


def test_version() -> None:
    proc = shortcut("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"forge-shortcut {__version__}"


def test_starts_fast_without_heavy_imports() -> None:
    code = ("import sys, time; t = time.perf_counter(); import shortcut_module.cli; "
            "heavy = [m for m in ('docker', 'podman', 'scipy', 'numpy', 'PySide6', 'rich', "
            "'typer', 'psutil', 'dbus_fast', 'desktop_notifier') if m in sys.modules]; "
            "print(heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        assert shortcut("list").returncode == 0
        best = min(best, time.perf_counter() - start)
    assert best < 1.0, f"forge-shortcut list took {best:.2f} s"


def test_a_run_takes_its_defaults_from_config_toml(forge_home: Path) -> None:
    """`[benchmark] iterations = 3`: forge-shortcut measures 3 iterations, as `forge` does."""
    forge_home.mkdir(parents=True)
    (forge_home / "config.toml").write_text("[benchmark]\niterations = 3\nwarmup = 0\n")
    proc = shortcut("run", "startup", "--param", "runtime=runc", "--json", timeout=240)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["parameters"]["iterations"] == 3 and doc["parameters"]["warmup"] == 0
    (entry,) = doc["runtimes"]
    assert entry["runtime"] == "runc" and entry["stats"]["n"] == 3
    assert len(entry["samples"]) == 3
    proc = shortcut("run", "startup", "--param", "runtime=runc", "--param", "iterations=2",
                    "--json", timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["runtimes"][0]["stats"]["n"] == 2  # given wins
