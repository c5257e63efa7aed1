"""Integration tests run the real engines started by `make test` (scripts/services.sh).

An engine that is not reachable is a failure, not a skip: CI must prove the real thing.
Every test is checked afterwards for labelled containers it may have leaked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from forge_desktop.runtimes.base import oci_owner_alive, owner_alive

DOCKER = "/usr/bin/docker" if shutil.which("/usr/bin/docker") else "docker"


def sh(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          check=False)


def labelled(engine: str, dead_only: bool = False) -> list[str]:
    """Labelled containers; with ``dead_only``, those whose owning forge process is gone
    (leaks), so runs of other tests or sessions in progress are not counted."""
    binary = DOCKER if engine == "docker" else "podman"
    out = sh(binary, "ps", "-a", "--filter", "label=io.forge.benchmark", "--format",
             '{{.ID}} {{.Label "io.forge.owner"}}' if engine == "docker" else
             '{{.ID}} {{index .Labels "io.forge.owner"}}')
    rows = [ln.split(maxsplit=1) + [""] for ln in out.stdout.splitlines() if ln.strip()]
    return [r[0] for r in rows if not dead_only or not owner_alive(r[1].strip())]


def oci_leftovers(dead_only: bool = False, runtime: str = "runc") -> list[str]:
    out = sh(runtime, "list", "--format", "json")
    return [c["id"] for c in json.loads(out.stdout or "null") or []
            if c["id"].startswith("forge-") and not (dead_only and oci_owner_alive(c["id"]))]


def remove_all_labelled() -> None:
    for engine in ("docker", "podman"):
        ids = labelled(engine, True)
        if ids:
            sh(DOCKER if engine == "docker" else "podman", "rm", "-f", *ids)
    for runtime in ("runc", "crun"):
        for cid in oci_leftovers(True, runtime):
            sh(runtime, "delete", "-f", cid)


@pytest.fixture(scope="session", autouse=True)
def engines_up() -> None:
    problems = []
    if sh(DOCKER, "version", "--format", "{{.Server.Version}}", timeout=20).returncode:
        problems.append("dockerd is not answering")
    if sh("podman", "--url", "unix:///run/podman/podman.sock", "version",
          timeout=20).returncode:
        problems.append("the podman API service is not answering on /run/podman/podman.sock")
    if problems:
        pytest.fail("; ".join(problems) + " — run the suite with `make test`", pytrace=False)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    yield
    leaks = {"docker": labelled("docker", True), "podman": labelled("podman", True),
             "runc": oci_leftovers(True), "crun": oci_leftovers(True, "crun")}
    leaks = {k: v for k, v in leaks.items() if v}
    if leaks:
        remove_all_labelled()
        pytest.fail(f"labelled containers leaked: {leaks}", pytrace=False)
