"""Shared fixtures: an isolated FORGE_HOME per test and a way to run the real CLI."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

# The private dockerd and podman service (tests/engines.py), registered here, above tests/faults
# and tests/gui, so that both share one instance of each per session; and private_cri, the view
# from outside of the containerd forge starts for the cri runtime (tests/faults, integration).
from tests.engines import dockerd, podman, private_cri, private_dockerd, private_podman

__all__ = ["dockerd", "podman", "private_cri", "private_dockerd", "private_podman"]

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


BUSY_LOOP = "import time\nend = time.time() + 60\nwhile time.time() < end: pass"


@contextlib.contextmanager
def busy_loop() -> Iterator[int]:
    """A process spinning on a core, as other work competing with a benchmark: forge's noise
    check must name its pid. Not a child of this process (a process's own children are never
    'other'), and busy by its own account (0.2 s of CPU) before it is yielded.

    The check names the three busiest processes, and other sessions load this shared machine.
    With the kernel's autogroups, nice only ranks processes within one session, so the loop
    gets a session of its own (setsid) and that session nice -10 (the suite runs as root):
    nearly a whole core, whatever else runs."""
    out = subprocess.run(["sh", "-c", f'setsid {sys.executable} -c "{BUSY_LOOP}" >/dev/null '
                          "2>&1 & echo $!"], capture_output=True, text=True, check=True,
                         timeout=30)
    proc = psutil.Process(int(out.stdout.strip()))
    try:
        # `setsid` calls setsid(2) after the shell forked it: until then the process is in the
        # caller's session, whose autogroup may be the root one, which takes no nice (EINVAL)
        deadline = time.monotonic() + 30
        while os.getsid(proc.pid) != proc.pid:
            assert time.monotonic() < deadline, "the busy loop did not start a session in 30 s"
            time.sleep(0.01)  # polling interval of an observable state
        Path(f"/proc/{proc.pid}/autogroup").write_text("-10\n")
        while proc.cpu_times().user < 0.2:
            assert time.monotonic() < deadline, "the busy loop did not get 0.2 s of CPU in 30 s"
            time.sleep(0.01)  # polling interval of an observable state
        yield proc.pid
    finally:
        proc.kill()
