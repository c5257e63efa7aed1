"""Storage faults, for real: a full disk under FORGE_HOME, a process SIGKILLed in the middle
of saving a result, two forges saving into one store at once.

What forge promises (results/store.py): a result file is the old one or the complete new
one, never a part; a failed save says why in one line, leaves no temporary file and no
truncated result; every result saved before stays readable. The benchmarks here are real
runc runs (the cheapest real engine); the containers are checked for leaks afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forge_desktop import lock
from forge_desktop.errors import StoreError
from forge_desktop.results import store
from forge_desktop.results.schema import validate
from tests.conftest import REPO, assert_one_line_error, run_forge
from tests.faults.conftest import record, wait_for
from tests.integration.conftest import engines_up, no_leaks

__all__ = ["engines_up", "no_leaks"]  # autouse: the real engines must answer, nothing leaks

PAGE = os.sysconf("SC_PAGE_SIZE")
KILLS = 50


def leftovers(directory: Path) -> list[str]:
    """Temporary files of the store: ``.<name>.<random>.tmp`` and ``.probe-<random>``."""
    return sorted(p.name for p in directory.iterdir()
                  if p.name.startswith(".") and p.name != ".index.sqlite"
                  and not p.name.startswith(".index.sqlite-"))


def result_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.json") if not p.name.startswith("."))


@pytest.fixture(scope="session")
def runc_bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benchmark image as an OCI bundle, prepared once on the real disk; the fault tests'
    FORGE_HOMEs link to it, so the tiny tmpfs only has to hold results."""
    home = tmp_path_factory.mktemp("bundles") / "forge-home"
    run_forge("image", "prepare", "-r", "runc", env={"FORGE_HOME": str(home)}, check=True)
    return home / "bundles"


def home_with_bundles(home: Path, bundles: Path) -> Path:
    home.mkdir(mode=0o700, parents=True)
    (home / "bundles").symlink_to(bundles)
    return home


# --- a full disk --------------------------------------------------------------------------

@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str = "256k") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where``, unmounted whatever happens. Mounting needs
    root, as the whole fault suite does (its private dockerd too): as another user this is a
    failure that says so, not a skip."""
    assert os.geteuid() == 0, "the fault suite runs as root (`make test`): mounting a " \
        "tmpfs for the disk-full tests needs it"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                    str(where)], check=True, timeout=30)
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], check=False, timeout=30).returncode:
            subprocess.run(["umount", "-l", str(where)], check=False, timeout=30)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(mount: Path, leave_bytes: int) -> None:
    """Fill the filesystem with one file until ``leave_bytes`` (whole pages) are free."""
    with open(mount / "filler", "wb") as fh:
        while (free := free_bytes(mount)) > leave_bytes:
            fh.write(b"\0" * min(free - leave_bytes, 1 << 20))
            fh.flush()
            os.fsync(fh.fileno())
    assert free_bytes(mount) == leave_bytes, free_bytes(mount)


def test_disk_full_fails_in_one_line_and_keeps_earlier_results(
        tmp_path: Path, runc_bundles: Path) -> None:
    with tiny_tmpfs(tmp_path / "tmpfs") as mount:
        home = home_with_bundles(mount / "forge-home", runc_bundles)
        env = {"FORGE_HOME": str(home)}
        run_forge("benchmark", "startup", "-r", "runc", "-n", "3", env=env, check=True)
        run_forge("benchmark", "startup", "-r", "runc", "-n", "3", env=env, check=True)
        store_dir = home / "benchmarks"
        before = {p.name: p.read_bytes() for p in result_files(store_dir)}
        assert len(before) == 2
        # tmpfs hands out whole pages: leave the most that is still too little for a result
        # of this size (a 3-iteration runc result is about 2.5 KB: then not even one page)
        size = max(len(b) for b in before.values())
        leave = (size - 1) // PAGE * PAGE
        fill(mount, leave)

        proc = run_forge("benchmark", "startup", "-r", "runc", "-n", "3", env=env)
        assert_one_line_error(proc, "disk is full", "nothing was saved")
        assert proc.returncode == 1
        assert {p.name: p.read_bytes() for p in result_files(store_dir)} == before
        assert leftovers(store_dir) == []

        listed = run_forge("results", "list", "--json", env=env, check=True)
        assert {r["file"] for r in json.loads(listed.stdout)} == set(before)
        assert listed.stderr == ""
        for name in before:
            shown = run_forge("results", "show", name[:-5], "--json", env=env, check=True)
            assert json.loads(shown.stdout) == json.loads(before[name])
        assert leftovers(store_dir) == []


def test_disk_full_in_the_middle_of_a_write_leaves_the_old_file(tmp_path: Path) -> None:
    """A save that runs out of space part way (the first pages written, then ENOSPC)
    replaces nothing: the old document stays whole and the partial temp file is removed."""
    with tiny_tmpfs(tmp_path / "tmpfs") as mount:
        directory = mount / "benchmarks"
        old = {"schema_version": 1, "id": "r", "kind": "startup",
               "created_at": "2026-01-01T00:00:00Z", "runtimes": [], "generation": 0}
        path = store.save(old, directory)
        before = path.read_bytes()
        fill(mount, 2 * PAGE)
        new = {**old, "generation": 1, "payload": "x" * 64 * 1024}
        with pytest.raises(StoreError, match="the disk is full; nothing was saved"):
            store.save(new, directory)
        assert path.read_bytes() == before
        assert leftovers(directory) == []
        assert free_bytes(mount) == 2 * PAGE  # the partial temp file's pages came back


# --- SIGKILL in the middle of a save -------------------------------------------------------

SAVER = r"""
import json, sys
from pathlib import Path
from forge_desktop.results import store

directory, doc = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
generation = int(sys.argv[3])
print("ready", flush=True)
while True:
    generation += 1
    doc["generation"] = generation
    doc["payload"] = f"{generation:08d}" * 1_000_000
    store.save(doc, directory)
"""


def big_document(run_id: str, generation: int = 0) -> dict[str, Any]:
    """8 MB: long enough to write that a good share of kills land between the temp file's
    creation and the rename (a save takes ~40 ms here, a third of it writing and fsyncing).
    The payload says which generation wrote it, so a mix of two would show."""
    return {"schema_version": 1, "id": run_id, "kind": "startup",
            "created_at": "2026-01-01T00:00:00Z", "complete": True, "environment": {},
            "parameters": {}, "runtimes": [{"runtime": "runc", "samples": [], "errors": []}],
            "generation": generation, "payload": f"{generation:08d}" * 1_000_000}


def check_whole(path: Path, run_id: str) -> int:
    """The file is one complete document, all of it from one generation: that generation."""
    doc = validate(json.loads(path.read_bytes()), path.name)
    assert doc["id"] == run_id
    assert doc["payload"] == f"{doc['generation']:08d}" * 1_000_000
    return int(doc["generation"])


def test_sigkill_during_save_leaves_old_or_new_never_a_part(tmp_path: Path) -> None:
    home = tmp_path / "forge-home"
    directory = home / "benchmarks"
    run_id = "20260101T000000Z-deadbe"
    path = store.save(big_document(run_id), directory)
    spec = tmp_path / "doc.json"
    spec.write_text(json.dumps(big_document(run_id)))
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    generation, completed, mid_save = 0, 0, 0
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for kill in range(KILLS):
        before = set(leftovers(directory))
        child = subprocess.Popen([sys.executable, "-c", SAVER, str(directory), str(spec),
                                  str(generation)], stdout=subprocess.PIPE, text=True,
                                 env=env, cwd=REPO)
        try:
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
            time.sleep(rng.uniform(0, 0.25))
            child.send_signal(signal.SIGKILL)
            assert child.wait(30) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        now = check_whole(path, run_id)  # json.loads works and validate() passes
        assert now >= generation, (kill, seed)
        completed += now > generation
        # killed between mkstemp and rename (or, rarely, between ensure_writable's probe
        # file and its removal: an empty .probe-*)
        mid_save += bool(set(leftovers(directory)) - before)
        generation = now
        for name in leftovers(directory):
            assert (name.startswith(f".{path.name}.") and name.endswith(".tmp")
                    or name.startswith(".probe-")), name
    tmp_left = leftovers(directory)
    record("kills_after_a_save", completed)
    record("kills_with_a_temp_file", mid_save)
    print(f"{KILLS} SIGKILLs (seed {seed}): {completed} after at least one complete save, "
          f"{mid_save} while a temp file existed ({len(tmp_left)} left behind: "
          f"{sum(n.startswith('.probe-') for n in tmp_left)} probes); the file was whole "
          "every time")
    assert completed > 0 and mid_save > 0, f"the kills never hit a save (seed {seed})"

    listed = run_forge("results", "list", "--json", env={"FORGE_HOME": str(home)})
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [run_id]
    for argv in (["results", "list"], ["results", "trend"], ["results", "check"]):
        proc = run_forge(*argv, env={"FORGE_HOME": str(home)})
        assert proc.returncode == 0 and proc.stderr == "", (argv, proc.stderr)


# --- two forges, one store -----------------------------------------------------------------

def test_two_runs_started_together_both_save(tmp_path: Path, runc_bundles: Path) -> None:
    """The second waits for the first (--wait: one benchmark at a time per FORGE_HOME), then
    both results are in the store, whole, and listed."""
    home = home_with_bundles(tmp_path / "forge-home", runc_bundles)
    env = {**os.environ, "FORGE_HOME": str(home)}
    argv = [sys.executable, "-m", "forge_desktop", "benchmark", "startup", "-r", "runc",
            "-n", "10", "--json"]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
    lock_file = home / lock.LOCK_NAME
    wait_for("the first run holds the benchmark lock", lambda: getattr(
        lock.current_holder(lock_file), "pid", None) == first.pid, 120, alive=first)
    second = subprocess.Popen([*argv, "--wait"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    outputs = []
    errs = []
    for p in (first, second):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outputs.append(json.loads(out))
        errs.append(err)
    assert f"waiting for the running benchmark (startup, pid {first.pid}" in errs[1], errs[1]
    ids = {d["id"] for d in outputs}
    assert len(ids) == 2, ids
    saved = result_files(home / "benchmarks")
    assert sorted(p.name for p in saved) == sorted(f"{i}.json" for i in ids)
    for doc in outputs:
        assert json.loads((home / "benchmarks" / f"{doc['id']}.json").read_text()) == doc
    assert leftovers(home / "benchmarks") == []
    listed = run_forge("results", "list", "--json", env={"FORGE_HOME": str(home)}, check=True)
    assert {r["id"] for r in json.loads(listed.stdout)} == ids
