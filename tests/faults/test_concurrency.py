"""Two forge runs at once on the shared engines: each sweeps leftovers of dead runs when it
starts, and must never take the other's (live) containers for leftovers. They use two
FORGE_HOMEs (two users, or two checkouts): within one, the benchmark lock lets only one run
at a time (tests/integration/test_lock.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.faults.conftest import Forge, Spawn, base_env, labelled, owned_by, results

N = 15


def test_two_concurrent_runs_both_complete(shared_engines: None, forge_home: Path,
                                           tmp_path: Path, spawn: Spawn) -> None:
    args = ("benchmark", "startup", "-r", "docker", "-r", "podman", "-n", str(N),
            "--warmup", "1", "--json")
    other_home = tmp_path / "other-forge-home"
    first: Forge = spawn(*args)
    second: Forge = spawn(*args, env=base_env(FORGE_HOME=str(other_home)))
    overlapped = False  # at some moment both runs had containers on the engines
    while first.running() and second.running() and not overlapped:
        live = labelled("docker") + labelled("podman")
        overlapped = bool(owned_by(first.pid, live) and owned_by(second.pid, live))
        time.sleep(0.02)
    assert overlapped, "the two runs never measured at the same time"
    docs = []
    for forge in (first, second):
        proc = forge.finish(timeout=240)
        assert proc.returncode == 0, proc.stderr
        docs.append(json.loads(proc.stdout))
    assert docs[0]["id"] != docs[1]["id"]
    for doc in docs:
        assert doc["complete"], [e["errors"] for e in doc["runtimes"]]
        by = {e["runtime"]: e for e in doc["runtimes"]}
        assert set(by) == {"docker", "podman"}
        for name, e in by.items():
            assert e["errors"] == [], (name, e["errors"])
            assert len(e["samples"]) == N and e["stats"]["n"] == N, name
    saved = {json.loads(p.read_text())["id"]: json.loads(p.read_text()) for home in
             (forge_home, other_home) for p in results(home)}
    assert set(saved) == {d["id"] for d in docs}, "a result is missing from the store"
    assert all(saved[d["id"]] == d for d in docs), "a saved result differs from its run's"
    for forge in (first, second):
        assert owned_by(forge.pid, labelled("docker")) == []
        assert owned_by(forge.pid, labelled("podman")) == []
