"""Shared fixtures: an isolated FORGE_HOME per test and a way to run the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "tests" / "artifacts"


@pytest.fixture
def forge_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "forge-home"
    monkeypatch.setenv("FORGE_HOME", str(home))
    return home


def run_forge(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
              check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI in a child process, exactly as a user would."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "forge_desktop", *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"forge {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """A user's mistake: non-zero exit, one line on stderr starting 'forge: error:', no
    traceback, nothing on stdout."""
    assert proc.returncode != 0, proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in lines if ln.startswith("forge: error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle.lower() in errors[0].lower(), errors[0]


# --- the fault suite's output, read by scripts/reliability_doc.py ----------------------------
# Each fault test records what it measured with pytest's `record_property(name, value)`; the
# figures and every test's outcome land in tests/artifacts/faults-report.json, from which
# docs/RELIABILITY.md is written (no figure there is typed by hand).

FAULT_REPORT = ARTIFACTS / "faults-report.json"
_fault_results: dict[str, dict[str, object]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.nodeid.startswith("tests/faults/"):
        return
    entry = _fault_results.setdefault(report.nodeid, {"outcome": "passed", "figures": {}})
    if report.failed or (report.skipped and entry["outcome"] == "passed"):
        entry["outcome"] = "failed" if report.failed else "skipped"
    if report.when == "call":
        entry["figures"] = dict(report.user_properties)
        entry["duration_s"] = round(report.duration, 3)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _fault_results:
        return
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    FAULT_REPORT.write_text(json.dumps({"python": sys.version.split()[0],
                                        "tests": _fault_results}, indent=2, default=str) + "\n")
