"""The disk benchmark for real on docker, podman and runc, checked against independent
measurements (the engines' own CLIs, ``du``), and its failure modes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from forge_desktop.bench.disk import ENTRY_KEYS
from tests.conftest import assert_one_line_error, run_forge
from tests.integration.conftest import DOCKER, sh

IMAGE = "forge-bench:busybox"
PODMAN = ["podman", "--url", "unix:///run/podman/podman.sock"]
KB = 1000
MIB = 1024 * 1024


def _disk_registered() -> bool:
    from forge_desktop.cli.app import benchmark_app

    return any(c.name == "disk" for c in benchmark_app.registered_commands)


_SHIM = ("import sys\nfrom forge_desktop.cli.app import benchmark_app\n"
         "from forge_desktop.cli import cmd_disk, main\n"
         "cmd_disk.register(benchmark_app)\nmain(sys.argv[1:])\n")


def forge_disk(*args: str, env: dict[str, str] | None = None,
               check: bool = False) -> subprocess.CompletedProcess[str]:
    """``forge benchmark disk ARGS`` as a user runs it. Until cli/app.py registers the
    command, the same entry point (``main``) is run with it registered by hand."""
    if _disk_registered():
        return run_forge("benchmark", "disk", *args, env=env, check=check)
    proc = subprocess.run([sys.executable, "-c", _SHIM, "benchmark", "disk", *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"forge benchmark disk {' '.join(args)} failed "
                             f"({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def results(home: Path) -> list[Path]:
    return sorted((home / "benchmarks").glob("*.json")) if (home / "benchmarks").exists() \
        else []


def du_bytes(*paths: str) -> int:
    """Allocated bytes as du counts them (one filesystem, hard links once)."""
    out = sh("du", "-scx", "-B1", *paths)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.splitlines()[-1].split()[0])


def near(value: int | None, reference: int, rel: float, abs_bytes: int = 0) -> bool:
    return value is not None and abs(value - reference) <= rel * reference + abs_bytes


def my_labels() -> list[str]:
    """Labels that mark a container as this (live) pytest process's: a sweep of dead runs
    leaves it alone, and removes it if pytest is killed."""
    me = f"{socket.gethostname()}/{os.getpid()}/{int(psutil.Process().create_time() * 100)}"
    return ["--label", "io.forge.benchmark=test-disk", "--label", f"io.forge.owner={me}"]


STORES = {"docker": [DOCKER, "info", "--format", "{{.DockerRootDir}}"],
          "podman": [*PODMAN, "info", "--format", "{{.Store.GraphRoot}}"]}


@dataclass
class Measured:
    doc: dict[str, Any]
    home: Path
    du_around: dict[str, tuple[int, int]]
    """du of each engine's store just before and just after the run: other sessions use the
    same engines, so the store may change meanwhile; forge's walk must fall in between."""

    def within_du(self, name: str, value: int | None, slack: int = 512 * 1024) -> bool:
        lo, hi = sorted(self.du_around[name])
        return value is not None and lo - slack <= value <= hi + slack


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Measured:
    """One real run on every runtime, shared by the checks below (it takes a few seconds)."""
    home = tmp_path_factory.mktemp("disk") / "forge-home"
    roots = {name: sh(*argv).stdout.strip() for name, argv in STORES.items()}
    before = {name: du_bytes(root) for name, root in roots.items()}
    proc = forge_disk("--json", env={"FORGE_HOME": str(home)}, check=True)
    after = {name: du_bytes(root) for name, root in roots.items()}
    return Measured(json.loads(proc.stdout), home,
                    {name: (before[name], after[name]) for name in roots})


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["runtime"]: r for r in doc["runtimes"]}


def test_document_shape_and_saved_file(measured: Measured) -> None:
    doc, home = measured.doc, measured.home
    assert doc["kind"] == "disk" and doc["schema_version"] == 1 and doc["complete"]
    assert doc["parameters"]["image"] == IMAGE and doc["targets"] == []
    runtimes = by_name(doc)
    assert {"docker", "podman", "runc"} <= set(runtimes)
    for r in runtimes.values():
        assert set(r) >= set(ENTRY_KEYS), set(ENTRY_KEYS) - set(r)
        assert r["version"] and r["errors"] == [] and r["warnings"] == [], r
        for img in r["images"]:
            assert set(img) == {"id", "tags", "size_bytes", "shared_bytes"}
    for name in ("docker", "podman"):
        r = runtimes[name]
        assert r["kind"] == "engine"
        for key in ("images_bytes", "containers_bytes", "volumes_bytes", "dangling_images",
                    "stopped_containers", "reclaimable_bytes", "store_fs_bytes",
                    "per_container_bytes", "container_size_rw_bytes",
                    "container_size_root_fs_bytes"):
            assert isinstance(r[key], int) and r[key] >= 0, (name, key, r[key])
    assert isinstance(runtimes["docker"]["build_cache_bytes"], int)
    assert runtimes["podman"]["build_cache_bytes"] is None  # no build cache apart from images
    runc = runtimes["runc"]
    assert runc["kind"] == "oci"
    for key in ("containers_bytes", "volumes_bytes", "build_cache_bytes", "dangling_images",
                "stopped_containers", "reclaimable_bytes", "container_size_rw_bytes"):
        assert runc[key] is None, key  # does not apply: null, never 0
    saved = results(home)
    assert len(saved) == 1 and json.loads(saved[0].read_text()) == doc


def test_nothing_of_the_run_is_left(measured: Measured) -> None:
    doc, home = measured.doc, measured.home
    run_id = doc["id"]
    for binary in ([DOCKER], PODMAN):
        out = sh(*binary, "ps", "-a", "-q", "--filter", f"label=io.forge.benchmark={run_id}")
        assert out.returncode == 0 and out.stdout.strip() == "", (binary, out.stdout)
    runs = home / "bundles" / "forge-bench_busybox" / "runs"
    assert not list(runs.glob(f"{run_id}*")) if runs.exists() else True


def test_docker_figures_match_independent_checks(measured: Measured) -> None:
    r = by_name(measured.doc)["docker"]
    image_size = int(sh(DOCKER, "image", "inspect", IMAGE, "--format", "{{.Size}}").stdout)
    (ours,) = [i for i in r["images"] if IMAGE in i["tags"]]
    assert ours["size_bytes"] == image_size
    assert 1.5e6 < image_size < 3e6  # docs/ENGINES.md: the busybox image is ~2 MB
    assert r["images_bytes"] >= image_size
    root = sh(DOCKER, "info", "--format", "{{.DockerRootDir}}").stdout.strip()
    assert r["store_path"] == root
    assert measured.within_du("docker", r["store_fs_bytes"]), \
        (r["store_fs_bytes"], measured.du_around)
    assert r["store_fs_bytes"] >= r["images_bytes"]
    # a created, never started container: nothing written, the image under it
    assert r["container_size_rw_bytes"] == 0
    assert r["container_size_root_fs_bytes"] == image_size


def test_docker_per_container_matches_du(measured: Measured) -> None:
    r = by_name(measured.doc)["docker"]
    parts = r["per_container_parts"]
    assert set(parts) >= {"container_dir_bytes", "layer_bytes", "init_layer_bytes"}
    assert r["per_container_bytes"] == sum(parts.values())
    assert 40 * KB <= r["per_container_bytes"] <= 400 * KB  # docs/ENGINES.md: ~112 kB
    root = r["store_path"]
    cid = sh(DOCKER, "create", *my_labels(), IMAGE, "true").stdout.strip()
    assert cid
    try:
        gd = json.loads(sh(DOCKER, "inspect", "--format", "{{json .GraphDriver.Data}}",
                           cid).stdout)
        layer = os.path.dirname(gd["UpperDir"])
        paths = [f"{root}/containers/{cid}", layer, f"{layer}-init"]
        layerdb = f"{root}/image/overlay2/layerdb/mounts/{cid}"
        if os.path.isdir(layerdb):
            paths.append(layerdb)
        reference = du_bytes(*paths)
    finally:
        sh(DOCKER, "rm", "-f", cid)
    # the same files for another container of the same image: close to exact
    assert near(r["per_container_bytes"], reference, 0.1), (r["per_container_bytes"],
                                                            reference)


def test_podman_figures_match_independent_checks(measured: Measured) -> None:
    r = by_name(measured.doc)["podman"]
    image_size = int(sh(*PODMAN, "image", "inspect", f"localhost/{IMAGE}", "--format",
                        "{{.Size}}").stdout)
    (ours,) = [i for i in r["images"] if f"localhost/{IMAGE}" in i["tags"]]
    assert ours["size_bytes"] == image_size and 1.5e6 < image_size < 3e6
    assert r["images_bytes"] >= image_size
    root = sh(*PODMAN, "info", "--format", "{{.Store.GraphRoot}}").stdout.strip()
    assert r["store_path"] == root
    assert measured.within_du("podman", r["store_fs_bytes"]), \
        (r["store_fs_bytes"], measured.du_around)
    assert r["container_size_rw_bytes"] == 0
    assert near(r["container_size_root_fs_bytes"], image_size, 0.05)


def test_podman_per_container_matches_du(measured: Measured) -> None:
    r = by_name(measured.doc)["podman"]
    parts = r["per_container_parts"]
    assert set(parts) == {"container_dir_bytes", "layer_bytes"}
    assert r["per_container_bytes"] == sum(parts.values())
    assert 16 * KB <= r["per_container_bytes"] <= 200 * KB  # docs/ENGINES.md: ~48 kB
    root = r["store_path"]
    cid = sh(*PODMAN, "create", *my_labels(), f"localhost/{IMAGE}", "true").stdout.strip()
    assert cid
    try:
        gd = json.loads(sh(*PODMAN, "inspect", "--format", "{{json .GraphDriver.Data}}",
                           cid).stdout)
        reference = du_bytes(f"{root}/overlay-containers/{cid}",
                             os.path.dirname(gd["UpperDir"]))
    finally:
        sh(*PODMAN, "rm", "-f", cid)
    # the same files for another container of the same image: close to exact
    assert near(r["per_container_bytes"], reference, 0.1), (r["per_container_bytes"],
                                                            reference)


def test_runc_figures(measured: Measured) -> None:
    doc, home = measured.doc, measured.home
    r = by_name(doc)["runc"]
    bundle = home / "bundles" / "forge-bench_busybox"
    assert r["store_path"] == str(bundle)
    # the adapter leaves an empty runs/ behind after the store was walked: one dir block
    assert near(r["store_fs_bytes"], du_bytes(str(bundle)), 0, 8192)
    assert r["images_bytes"] == du_bytes(str(bundle / "rootfs"))
    assert 1.5e6 < r["images_bytes"] < 3e6
    assert r["images"] == [{"id": None, "tags": [IMAGE], "size_bytes": r["images_bytes"],
                            "shared_bytes": None}]
    # a run's bundle dir: a directory and its config.json, the rootfs is shared
    assert r["per_container_parts"] == {"bundle_dir_bytes": r["per_container_bytes"]}
    assert 4096 <= r["per_container_bytes"] <= 64 * 1024


def test_table_output(forge_home: Path) -> None:
    proc = forge_disk("-r", "runc", "-r", "docker", check=True)
    out = proc.stdout
    assert "docker" in out and "runc" in out and "podman" not in out
    assert "/var/lib/docker" in out and "MiB" in out and "saved" in out
    assert "Target" not in out
    assert len(results(forge_home)) == 1


def test_missed_target_exits_3(forge_home: Path) -> None:
    proc = forge_disk("-r", "runc", "-r", "podman", "--max-disk-mb", "0.000001")
    assert proc.returncode == 3, proc.stderr
    rows = [ln.split() for ln in proc.stdout.splitlines() if ln.split()[:1] in (["runc"],
                                                                                ["podman"])]
    assert [row[0] for row in rows] == ["runc", "podman"], proc.stdout
    assert all("missed" in row for row in rows), proc.stdout
    assert "target missed" in proc.stderr and "Traceback" not in proc.stderr
    (saved,) = results(forge_home)  # a missed target is still a result worth keeping
    targets = json.loads(saved.read_text())["targets"]
    assert {t["runtime"] for t in targets} == {"runc", "podman"}
    for t in targets:
        assert t["metric"] == "disk_mb" and t["met"] is False
        assert t["limit"] == 0.000001 and 1.4 < t["value"] < 3


def test_met_target_in_json(forge_home: Path) -> None:
    proc = forge_disk("-r", "runc", "--max-disk-mb", "100", "--json", "--no-save", check=True)
    doc = json.loads(proc.stdout)
    (target,) = doc["targets"]
    r = doc["runtimes"][0]
    assert target["met"] is True and target["value"] == pytest.approx(
        (r["benchmark_image_bytes"] + r["per_container_bytes"]) / MIB, abs=1e-3)
    assert results(forge_home) == []


def test_walk_budget_runs_out_without_hanging(forge_home: Path) -> None:
    """In process, with a budget too small for any walk: null figures and warnings, the
    engine's own figures still there, and the container removed."""
    from forge_desktop.bench.disk import disk_entry
    from forge_desktop.runtimes.base import new_run_context
    from forge_desktop.runtimes.docker import DockerRuntime

    rt = DockerRuntime()
    ctx = new_run_context()
    try:
        start = time.monotonic()
        entry = disk_entry(rt, IMAGE, ctx, walk_budget_s=1e-9)
        assert time.monotonic() - start < 20
    finally:
        rt.cleanup(ctx.run_id)
        rt.close()
    assert entry["errors"] == []
    assert entry["store_fs_bytes"] is None and entry["per_container_bytes"] is None
    assert any("time budget" in w for w in entry["warnings"])
    assert entry["images_bytes"] and entry["container_size_root_fs_bytes"]
    left = sh(DOCKER, "ps", "-a", "-q", "--filter", f"label=io.forge.benchmark={ctx.run_id}")
    assert left.stdout.strip() == ""


# -- bad input: one clear line, non-zero exit, no traceback, no result file ----------------

@pytest.mark.parametrize("args, needle", [
    (["--max-disk-mb", "abc"], "--max-disk-mb"),
    (["--max-disk-mb", "-1"], "positive number"),
    (["--max-disk-mb", "0"], "positive number"),
    (["--max-disk-mb", "nan"], "positive number"),
    (["-r", "nosuch"], "unknown runtime 'nosuch'"),
    (["-r", "docker", "--image", "busybox; rm -rf /"], "not a valid image name"),
])
def test_bad_input(forge_home: Path, args: list[str], needle: str) -> None:
    proc = forge_disk(*args)
    assert_one_line_error(proc, needle)
    assert results(forge_home) == []


def test_command_runtime_is_refused(forge_home: Path) -> None:
    forge_home.mkdir(parents=True)
    (forge_home / "config.toml").write_text('[runtimes.sleeper]\nrun = ["sleep", "0"]\n')
    assert_one_line_error(forge_disk("-r", "sleeper"), "command runtime")
    assert results(forge_home) == []


def test_stopped_daemon(forge_home: Path, tmp_path: Path) -> None:
    proc = forge_disk("-r", "docker", env={"DOCKER_HOST": f"unix://{tmp_path}/absent.sock"})
    assert_one_line_error(proc, "docker is not running")
    assert results(forge_home) == []
