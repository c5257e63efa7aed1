"""Pure parts of the disk benchmark: the filesystem walker, engine reports -> entry fields,
targets and option checks."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from forge_desktop.bench import disk
from forge_desktop.bench.disk import (
    ENTRY_KEYS,
    DiskOptions,
    TreeUsage,
    disk_entry,
    measure_tree,
    tree_bytes,
)
from forge_desktop.bench.targets import evaluate
from forge_desktop.cli.cmd_disk import disk_table, store_lines
from forge_desktop.errors import Interrupted, UsageError
from forge_desktop.models import RunContext
from forge_desktop.runtimes.docker import docker_df_fields, docker_layer_dirs
from forge_desktop.runtimes.podman import podman_df_fields, podman_layer_dirs
from tests.unit.fakes import FakeRuntime

MIB = 1024 * 1024


def blocks(path: Path) -> int:
    return os.lstat(path).st_blocks * 512


def make_tree(root: Path) -> dict[str, Path]:
    """Files of known sizes, a nested dir, a hard link and a symlink to a big outside file."""
    root.mkdir()
    (root / "sub" / "deeper").mkdir(parents=True)
    files = {"empty": root / "empty", "one": root / "one", "page": root / "sub" / "page",
             "odd": root / "sub" / "deeper" / "odd", "big": root / "big"}
    sizes = {"empty": 0, "one": 1, "page": 4096, "odd": 10_000, "big": 300_000}
    for name, path in files.items():
        path.write_bytes(os.urandom(sizes[name]))
    os.link(files["big"], root / "sub" / "big-again")  # same inode: counted once
    outside = root.parent / "outside.bin"
    outside.write_bytes(os.urandom(2 * MIB))
    (root / "link-out").symlink_to(outside)  # never followed
    (root / "sub" / "dangling").symlink_to("/nonexistent/forge")
    return files


def expected_bytes(root: Path) -> int:
    """Independent sum: lstat of the root and of every entry, inodes once."""
    total, seen = blocks(root), set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


# -- tree_bytes -------------------------------------------------------------------------------

def test_walker_counts_allocated_blocks_like_du(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    files = make_tree(root)
    usage = tree_bytes(root)
    assert usage == TreeUsage(str(root), expected_bytes(root))
    assert usage.warnings() == []
    # every regular file's bytes are in, the 2 MiB behind the symlink and the hard link are not
    assert usage.used_bytes is not None
    assert sum(f.stat().st_size for f in files.values()) <= usage.used_bytes < 2 * MIB
    if shutil.which("du"):
        du = subprocess.run(["du", "-sx", "-B1", str(root)], capture_output=True, text=True,
                            check=True)
        assert usage.used_bytes == int(du.stdout.split()[0])


def test_walker_counts_a_sparse_file_by_its_blocks(tmp_path: Path) -> None:
    root = tmp_path / "sparse"
    root.mkdir()
    with open(root / "hole", "wb") as fh:
        fh.truncate(512 * MIB)
    usage = tree_bytes(root)
    assert usage.used_bytes is not None and usage.used_bytes < MIB


def test_walker_on_a_single_file_and_a_missing_path(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 5000)
    assert tree_bytes(f).used_bytes == blocks(f)
    missing = tree_bytes(tmp_path / "absent")
    assert missing.used_bytes is None and "does not exist" in missing.warnings()[0]


def test_walker_gives_up_at_its_budget(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    make_tree(root)
    usage = tree_bytes(root, budget_s=0)
    assert usage.used_bytes is None and usage.timed_out
    assert "time budget" in usage.warnings()[0]
    ticks = itertools.count()  # a clock that advances one second per look
    stepped = tree_bytes(root, budget_s=4, clock=lambda: float(next(ticks)))
    assert stepped.timed_out and stepped.used_bytes is None
    patient = tree_bytes(root, budget_s=10_000, clock=lambda: float(next(ticks)))
    assert patient.used_bytes == expected_bytes(root)


def test_unreadable_directory_makes_a_lower_bound(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "tree"
    make_tree(root)
    full = expected_bytes(root)
    real_scandir = os.scandir
    locked = str(root / "sub")

    def scandir(path: Any) -> Any:
        if str(path) == locked:
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    usage = tree_bytes(root)
    assert usage.unreadable == 1 and usage.used_bytes is not None
    assert usage.used_bytes < full
    assert "lower bound" in usage.warnings()[0]


def test_walker_stays_on_one_filesystem(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    mnt = root / "mnt"
    mnt.mkdir()
    # The suite runs as root (make test, .ci/run): a mount that fails is a broken test host,
    # and walking across mount points is what `forge benchmark disk` promises not to do.
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "forge", str(mnt)],
                             capture_output=True, text=True, timeout=30, check=False)
    assert mounted.returncode == 0, f"cannot mount a tmpfs (the suite runs as root): " \
                                    f"{mounted.stderr.strip()}"
    try:
        (mnt / "payload").write_bytes(os.urandom(4 * MIB))
        usage = tree_bytes(root)
        assert usage.used_bytes == blocks(root)  # the mount point and its content are skipped
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_measure_tree_abandons_a_stuck_walker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk, "_WALK_GRACE_S", 0.05)
    monkeypatch.setattr(disk, "tree_bytes", lambda *_a, **_k: time.sleep(30))  # a hung mount
    start = time.monotonic()
    usage = measure_tree("/hung", budget_s=0.05)
    assert time.monotonic() - start < 2
    assert usage.timed_out and usage.used_bytes is None


def test_cancel_stops_the_wait_for_a_stuck_walker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk, "tree_bytes", lambda *_a, **_k: time.sleep(30))  # a hung mount
    cancel = threading.Event()
    threading.Timer(0.05, cancel.set).start()
    start = time.monotonic()
    with pytest.raises(Interrupted, match="cancelled"):
        measure_tree("/hung", budget_s=60, cancel=cancel)
    assert time.monotonic() - start < 10  # not the 60 s budget: the wait looks at cancel


def test_a_cancelled_walk_stops_at_its_next_entry(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"d{i}").mkdir()
    cancel = threading.Event()
    cancel.set()
    usage = tree_bytes(tmp_path, cancel=cancel)
    assert usage.cancelled and usage.used_bytes is None


# -- engine reports -> fields -----------------------------------------------------------------

DOCKER_DF: dict[str, Any] = {
    "LayersSize": 5_000_000,
    "Images": [
        {"Id": "sha256:a", "RepoTags": ["app:1", "app:latest"], "Size": 3_000_000,
         "SharedSize": 1_000_000, "Containers": 2},
        {"Id": "sha256:b", "RepoTags": ["<none>:<none>"], "Size": 1_500_000,
         "SharedSize": 1_000_000, "Containers": 0},
        {"Id": "sha256:c", "RepoTags": None, "Size": 1_500_000, "SharedSize": -1,
         "Containers": 0},
    ],
    "Containers": [
        {"Id": "1", "State": "running", "SizeRw": 100},
        {"Id": "2", "State": "exited", "SizeRw": 40},
        {"Id": "3", "State": "created"},
    ],
    "Volumes": [
        {"Name": "used", "UsageData": {"RefCount": 1, "Size": 7000}},
        {"Name": "orphan", "UsageData": {"RefCount": 0, "Size": 3000}},
        {"Name": "unknown", "UsageData": {"RefCount": 0, "Size": -1}},
    ],
    "BuildCache": [{"ID": "x", "Size": 900, "Shared": False, "InUse": False},
                   {"ID": "y", "Size": 100, "Shared": True, "InUse": False}],
    "BuilderSize": 1000,
}


def test_docker_df_fields() -> None:
    f = docker_df_fields(DOCKER_DF)
    assert f["images_bytes"] == 5_000_000
    assert f["containers_bytes"] == 140 and f["stopped_containers"] == 2
    assert f["volumes_bytes"] == 10_000 and f["build_cache_bytes"] == 1000
    assert f["dangling_images"] == 2
    assert f["images"][0] == {"id": "sha256:a", "tags": ["app:1", "app:latest"],
                              "size_bytes": 3_000_000, "shared_bytes": 1_000_000}
    assert f["images"][2]["shared_bytes"] is None  # -1: unknown, not 0
    # images: 5 MB minus the 2 MB unique to the used image; stopped containers 40;
    # unreferenced volumes 3000; unshared idle cache 900
    assert f["reclaimable_bytes"] == 3_000_000 + 40 + 3000 + 900


def test_docker_df_fields_of_an_empty_engine() -> None:
    f = docker_df_fields({"LayersSize": 0, "Images": [], "Containers": [], "Volumes": None,
                          "BuildCache": None, "BuilderSize": 0})
    assert f["images_bytes"] == f["containers_bytes"] == f["volumes_bytes"] == 0
    assert f["build_cache_bytes"] == 0 and f["reclaimable_bytes"] == 0 and f["images"] == []


def test_podman_df_fields_merge_names_and_have_no_build_cache() -> None:
    df = {
        "Images": [
            {"Repository": "localhost/app", "Tag": "1", "ImageID": "a", "Size": 3000,
             "SharedSize": 1000, "UniqueSize": 2000, "Containers": 1},
            {"Repository": "localhost/app", "Tag": "latest", "ImageID": "a", "Size": 3000,
             "SharedSize": 1000, "UniqueSize": 2000, "Containers": 1},
            {"Repository": "<none>", "Tag": "<none>", "ImageID": "b", "Size": 1500,
             "SharedSize": 1000, "UniqueSize": 500, "Containers": 0},
        ],
        "Containers": [{"ContainerID": "1", "RWSize": 10, "Status": "running"},
                       {"ContainerID": "2", "RWSize": 20, "Status": "exited"}],
        "Volumes": [{"VolumeName": "v", "Links": 0, "Size": 300, "ReclaimableSize": 300}],
    }
    f = podman_df_fields(df)
    assert [i["tags"] for i in f["images"]] == [["localhost/app:1", "localhost/app:latest"], []]
    assert f["images_bytes"] == 2000 + 500 + 1000
    assert f["build_cache_bytes"] is None
    assert f["dangling_images"] == 1 and f["stopped_containers"] == 1
    assert f["containers_bytes"] == 30 and f["volumes_bytes"] == 300
    assert f["reclaimable_bytes"] == 500 + 20 + 300


def test_layer_dirs_from_graph_driver() -> None:
    docker_gd = {"Name": "overlay2", "Data": {
        "LowerDir": "/d/overlay2/abc-init/diff:/d/overlay2/img/diff",
        "UpperDir": "/d/overlay2/abc/diff", "WorkDir": "/d/overlay2/abc/work",
        "MergedDir": "/d/overlay2/abc/merged"}}
    assert docker_layer_dirs(docker_gd) == {"layer_bytes": "/d/overlay2/abc",
                                            "init_layer_bytes": "/d/overlay2/abc-init"}
    podman_gd = {"Name": "overlay", "Data": {"LowerDir": "/s/overlay/img/diff",
                                             "UpperDir": "/s/overlay/ctr/diff",
                                             "WorkDir": "/s/overlay/ctr/work"}}
    assert podman_layer_dirs(podman_gd) == {"layer_bytes": "/s/overlay/ctr"}
    assert docker_layer_dirs({"Name": "vfs", "Data": None}) == {}


# -- targets, options, entries, table ---------------------------------------------------------

def test_good_options() -> None:
    DiskOptions().validate()
    with pytest.raises(UsageError):
        DiskOptions(walk_budget_s=0).validate()


def test_unsupported_runtime_gets_an_error_and_null_fields() -> None:
    entry = disk_entry(FakeRuntime("fake"), "img", RunContext("r", "h/1/2"))
    assert tuple(entry) == ENTRY_KEYS
    assert entry["version"] == "1.0" and entry["errors"] and "docker" in entry["errors"][0]
    for key in ("images_bytes", "per_container_bytes", "store_fs_bytes", "reclaimable_bytes"):
        assert entry[key] is None


def test_table_shows_units_nulls_and_targets() -> None:
    from rich.console import Console

    docker = {"runtime": "docker", "version": "20", "images_bytes": 2 * MIB,
              "containers_bytes": 0, "volumes_bytes": 0, "build_cache_bytes": 0,
              "reclaimable_bytes": MIB, "store_fs_bytes": 3 * MIB,
              "per_container_bytes": 106_496, "store_path": "/var/lib/docker", "errors": [],
              "benchmark_image_bytes": 2 * MIB}
    runc: dict[str, Any] = {**dict.fromkeys(docker), "runtime": "runc", "errors": ["boom"]}
    runtimes: list[dict[str, Any]] = [docker, runc]
    doc: dict[str, Any] = {"parameters": {"image": "img"}, "runtimes": runtimes}
    doc["targets"] = evaluate(doc, {"disk_mb": 1.0})
    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(disk_table(doc))
    text = console.export_text()
    assert "2.0" in text and "104.0" in text and "/var/lib/docker" in text
    assert "missed" in text and "unknown" in text and "failed" in text
    assert "MiB = 1024*1024" in text
    assert store_lines(doc) == ["docker store: /var/lib/docker", "runc store: -"]
