"""Shared fixtures: an isolated FORGE_HOME per test and a way to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# The private dockerd and podman service (tests/engines.py), registered here, above tests/faults
# and tests/gui, so that both share one instance of each per session.
from tests.engines import dockerd, podman, private_dockerd, private_podman

__all__ = ["dockerd", "podman", "private_dockerd", "private_podman"]

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
