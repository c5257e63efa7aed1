"""The cri runtime for real: containerd's CRI plugin over gRPC, in the private containerd forge
starts (this machine has no CRI socket of its own), listed, measured alone and compared with
docker and podman; nothing of it left afterwards."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_forge
from tests.engines import PrivateCri, cri_env

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a private containerd needs root")

PHASES = ["sandbox", "create", "start", "ready", "stop", "remove"]


def test_runtimes_lists_cri_available(forge_home: Path, private_cri: PrivateCri) -> None:
    proc = run_forge("runtimes", "--json", env=cri_env(), check=True)
    (cri,) = [r for r in json.loads(proc.stdout) if r["name"] == "cri"]
    assert cri["available"] is True, cri
    assert cri["kind"] == "engine" and cri["network"] == "host"
    assert cri["version"].startswith("containerd ")
    assert private_cri.left() == {}, "listing runtimes must not start a containerd"


def test_startup_on_cri(forge_home: Path, private_cri: PrivateCri) -> None:
    proc = run_forge("benchmark", "startup", "-r", "cri", "-n", "5", "--json", env=cri_env(),
                     check=True)
    doc = json.loads(proc.stdout)
    assert doc["complete"]
    (entry,) = doc["runtimes"]
    assert entry["runtime"] == "cri" and not entry["errors"]
    assert entry["network"] == "host"
    assert "cri: not like-for-like: its containers use the host network, the others " \
           "--network none" in doc["like_for_like_warnings"]
    s = entry["stats"]
    assert s["n"] == 5 and 0 < s["min_ms"] <= s["median_ms"] <= s["max_ms"] < 30_000
    p = entry["percentiles_ms"]
    assert s["min_ms"] <= p["p50"] <= p["p90"] <= p["p99"] <= s["max_ms"]
    assert abs(p["p50"] - s["median_ms"]) < 1e-3
    assert list(entry["phase_medians_ms"]) == PHASES
    assert entry["phase_medians_ms"]["sandbox"] > 0
    for sample in entry["samples"]:
        assert list(sample["phases_ms"]) == PHASES
        # the total is the six phases end to end: equal up to the rounding of seven numbers
        assert abs(sum(sample["phases_ms"].values()) - sample["total_ms"]) < 1e-3, sample
        # the container's process started after the sandbox was asked for, within the run
        assert 0 < sample["to_exec_ms"] < sample["total_ms"], sample
    assert doc["environment"]["runtimes"]["cri"]["version"].startswith("containerd ")
    assert private_cri.left() == {}, "the run left its containerd, a shim or a task"


def test_compare_cri_docker_podman(forge_home: Path, private_cri: PrivateCri) -> None:
    proc = run_forge("benchmark", "compare", "-r", "cri", "-r", "docker", "-r", "podman",
                     "-n", "3", "--warmup", "0", "--json", env=cri_env(), check=True)
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "compare", doc["kind"]
    text = json.dumps(doc)
    by_name = {r["runtime"]: r for r in doc["runtimes"]}
    assert set(by_name) == {"cri", "docker", "podman"}, by_name.keys()
    cri = by_name["cri"]
    assert not cri.get("errors"), cri.get("errors")
    assert "cri: not like-for-like: its containers use the host network" in text
    # the same busybox layer on every runtime (the tar image.py built, imported into each)
    assert "image content differs" not in text
    assert private_cri.left() == {}


def test_cri_is_measured_only_when_named(forge_home: Path) -> None:
    """With no -r, the runs measure every available runtime but cri (host network, and a
    containerd to start): a user asks for it by name."""
    from forge_desktop.config import load_config
    from forge_desktop.runtimes.registry import known_runtimes, select_runtimes

    config = load_config()
    assert "cri" in [r.name for r in known_runtimes(config)]
    selected, _ = select_runtimes(config, None)
    assert "cri" not in [r.name for r in selected]
    named, _ = select_runtimes(config, ["cri"])
    assert [r.name for r in named] == ["cri"]


def test_user_cri_socket_is_used_as_is(forge_home: Path, tmp_path: Path,
                                       private_cri: PrivateCri) -> None:
    """CONTAINER_RUNTIME_ENDPOINT names a CRI socket that answers: forge uses it and starts no
    containerd of its own. The socket here is a containerd this test starts with the config
    a first forge run wrote (that run also imported the benchmark and pause images into it)."""
    from forge_desktop.runtimes.cri import CriRuntime

    run_forge("benchmark", "startup", "-r", "cri", "-n", "1", "--warmup", "0", "--no-save",
              env=cri_env(), check=True)
    private_cri.paths.start(CriRuntime.ping)
    try:
        other_home = tmp_path / "other-home"
        proc = run_forge("benchmark", "startup", "-r", "cri", "-n", "2", "--warmup", "0",
                         "--json", env={**cri_env(), "FORGE_HOME": str(other_home),
                                        "CONTAINER_RUNTIME_ENDPOINT": private_cri.paths.address},
                         check=True)
        doc = json.loads(proc.stdout)
        assert doc["environment"]["runtimes"]["cri"]["endpoint"] == private_cri.paths.address
        assert len(doc["runtimes"][0]["samples"]) == 2
        assert not (other_home / "cri").exists(), "forge started a containerd of its own"
        assert private_cri.shims() == [], "the run left a pod on the user's containerd"
    finally:
        private_cri.paths.stop()
    assert private_cri.left() == {}
