"""`forge benchmark image` for real: cold loads and pulls on docker and podman against the
registry `make test` starts, and proof that a run leaves nothing behind and never touches the
user's images."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import assert_one_line_error
from tests.integration.conftest import DOCKER, owner_of, sh, wait_until

STATS_KEYS = {"median_ms", "mean_ms", "stdev_ms", "min_ms", "max_ms", "p95_ms", "ci95_ms",
              "outliers", "n"}
ENTRY_KEYS = {"runtime", "kind", "version", "source", "samples", "stats", "warnings", "errors"}
USER_IMAGE = "forge-bench:busybox"
TEMP_REPO = "forge-bench-tmp"

# `forge benchmark image` through cmd_image.register, whether or not app.py registers it yet.
BOOT = ("import sys; from forge_desktop.cli.app import benchmark_app; "
        "from forge_desktop.cli import cmd_image, main; cmd_image.register(benchmark_app); "
        "main(sys.argv[1:])")


def forge_image_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", BOOT, "benchmark", "image", *args]


def run_image(*args: str, env: dict[str, str] | None = None, check: bool = False,
              timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(forge_image_argv(*args), capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"forge benchmark image {' '.join(args)} failed "
                             f"({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def results(home: Path) -> list[Path]:
    return sorted((home / "benchmarks").glob("*.json")) if (home / "benchmarks").exists() \
        else []


def temp_refs(engine: str) -> list[str]:
    """Every forge-bench-tmp reference on the engine (local and registry-prefixed)."""
    binary = DOCKER if engine == "docker" else "podman"
    out = sh(binary, "images", "--format", "{{.Repository}}:{{.Tag}}")
    assert out.returncode == 0, out.stderr
    return [ref for ref in out.stdout.split()
            if ref.rpartition(":")[0].rsplit("/", 1)[-1] == TEMP_REPO]


def image_id(engine: str, ref: str) -> str:
    binary = DOCKER if engine == "docker" else "podman"
    return sh(binary, "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def registry_tags(registry: str) -> list[str]:
    resp = requests.get(f"http://{registry}/v2/{TEMP_REPO}/tags/list", timeout=10)
    if resp.status_code == 404:
        return []
    resp.raise_for_status()
    return list(resp.json().get("tags") or [])


@pytest.fixture(scope="session")
def registry() -> str:
    address = os.environ.get("FORGE_TEST_REGISTRY")
    if not address:
        pytest.fail("FORGE_TEST_REGISTRY is not set: run the suite with `make test`, which "
                    "starts a registry (scripts/services.sh start registry)", pytrace=False)
    try:
        requests.get(f"http://{address}/v2/", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(f"the registry at {address} (FORGE_TEST_REGISTRY) does not answer ({exc}); "
                    "run the suite with `make test`", pytrace=False)
    return address


@pytest.fixture(scope="session")
def user_image_ids() -> dict[str, str]:
    """The user's benchmark image on both engines (made by `forge image prepare` if missing:
    the startup tests need it too), and its IDs before any image benchmark ran."""
    if not (image_id("docker", USER_IMAGE) and image_id("podman", USER_IMAGE)):
        proc = subprocess.run([sys.executable, "-m", "forge_desktop", "image", "prepare",
                               "-r", "docker", "-r", "podman"], capture_output=True, text=True,
                              timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr
    ids = {e: image_id(e, USER_IMAGE) for e in ("docker", "podman")}
    assert all(ids.values()), ids
    return ids


@pytest.fixture(autouse=True)
def nothing_left(user_image_ids: dict[str, str]) -> Iterator[None]:
    """After every test: no temporary image on either engine, the user's image untouched."""
    yield
    for engine in ("docker", "podman"):
        assert temp_refs(engine) == [], f"{engine} kept temporary images"
        assert image_id(engine, USER_IMAGE) == user_image_ids[engine], \
            f"{USER_IMAGE} on {engine} was removed or re-tagged"


@pytest.mark.parametrize("source", ["load", "pull"])
def test_cold_load_and_pull_on_docker_and_podman(forge_home: Path, registry: str,
                                                 source: str) -> None:
    proc = run_image("--source", source, "-n", "2", "--json", check=True,
                     env={"FORGE_REGISTRY": registry})
    doc = json.loads(proc.stdout)  # stdout is the document and nothing else
    assert doc["kind"] == "image" and doc["schema_version"] == 1 and doc["complete"]
    params = doc["parameters"]
    assert {"source", "registry", "iterations", "image_bytes"} <= set(params)
    assert params["source"] == source and params["iterations"] == 2
    assert params["registry"] == (registry if source == "pull" else None)
    assert 1_000_000 < params["image_bytes"] < 10_000_000  # busybox-static plus one file
    tag = params["image"].rsplit(":", 1)[1]
    assert params["image"].rpartition(":")[0].endswith(TEMP_REPO)
    assert doc["id"].rsplit("-", 1)[1] in tag
    by_name = {r["runtime"]: r for r in doc["runtimes"]}
    assert set(by_name) == {"docker", "podman"}, "runc must be skipped silently by default"
    for name, r in by_name.items():
        assert set(r) >= ENTRY_KEYS and r["kind"] == "engine" and r["version"], name
        assert r["source"] == source and not r["errors"] and r["not_applicable"] is None
        assert len(r["samples"]) == 2
        for sample in r["samples"]:
            assert list(sample["phases_ms"]) == [source]  # only the load or pull is timed
            assert sample["phases_ms"][source] == sample["total_ms"]
        assert set(r["stats"]) == STATS_KEYS
        s = r["stats"]
        # docs/ENGINES.md: a pull of the busybox image takes ~120 ms here; loads are similar.
        assert 5 < s["min_ms"] <= s["median_ms"] <= s["max_ms"] < 15_000, (name, s)
        assert s["ci95_ms"][0] <= s["median_ms"] <= s["ci95_ms"][1]
        assert 100_000 < r["transfer_bytes"] < 10_000_000
    if source == "pull":
        assert params["pushed_by"] in by_name
        assert tag not in registry_tags(registry), "the run's manifest was left in the registry"
    saved = results(forge_home)
    assert len(saved) == 1 and json.loads(saved[0].read_text()) == doc


def test_table_and_not_applicable_runtime(forge_home: Path) -> None:
    proc = run_image("-r", "docker", "-r", "runc", "-n", "1", "--warmup", "0", check=True)
    assert "docker" in proc.stdout and "Median" in proc.stdout and "saved" in proc.stdout
    assert "runc: not applicable" in proc.stdout
    (saved,) = results(forge_home)
    by_name = {r["runtime"]: r for r in json.loads(saved.read_text())["runtimes"]}
    assert set(by_name) == {"docker", "runc"}
    runc = by_name["runc"]
    assert runc["samples"] == [] and runc["stats"] is None and not runc["errors"]
    assert "no image store" in runc["not_applicable"]


@pytest.mark.parametrize("source", ["load", "pull"])
def test_sigint_mid_run_leaves_no_temporary_image(forge_home: Path, registry: str,
                                                  source: str) -> None:
    proc = subprocess.Popen(forge_image_argv("--source", source, "--registry", registry,
                                             "-n", "200"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the temporary tag carries the owner's pid and start ticks (bench/images.py temp_tag)
    _host, pid, start = owner_of(proc.pid).split("/")
    mine = f"-{pid}-{start}-"
    wait_until("a temporary image of the forge run exists", lambda: any(
        mine in ref for e in ("docker", "podman") for ref in temp_refs(e)), 60, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert_one_line_error(subprocess.CompletedProcess(proc.args, 130, out, err), "interrupted")
    assert [t for t in registry_tags(registry) if mine in t] == []
    assert results(forge_home) == []


# -- bad input: one clear line, non-zero exit, no traceback, no result file ----------------

@pytest.mark.parametrize("args, needle", [
    (["-n", "0"], "between 1 and 1000"),
    (["-n", "1001"], "between 1 and 1000"),
    (["--registry", "nonsense"], "HOST:PORT"),
    (["--registry", "127.0.0.1:1"], "registry 127.0.0.1:1 does not answer"),
    (["--source", "pull", "--registry", "127.0.0.1:1"], "start one or pass --registry"),
    (["--source", "ftp"], "--source must be load or pull"),
    (["-r", "runc"], "no image store"),
    (["-r", "nosuch"], "unknown runtime 'nosuch'"),
])
def test_bad_input(forge_home: Path, args: list[str], needle: str) -> None:
    assert_one_line_error(run_image(*args), needle)
    assert results(forge_home) == []


def test_pull_without_an_answering_default_registry(forge_home: Path) -> None:
    proc = run_image("--source", "pull", env={"FORGE_REGISTRY": "127.0.0.1:1"})
    assert_one_line_error(proc, "registry 127.0.0.1:1 does not answer")
    assert_one_line_error(run_image("--source", "pull", env={"FORGE_REGISTRY": "junk"}),
                          "FORGE_REGISTRY must look like HOST:PORT")
    assert results(forge_home) == []
