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

DOCKER = "/usr/bin/docker" if shutil.which("/usr/bin/docker") else "docker"


def sh(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          check=False)


def labelled(engine: str) -> list[str]:
    binary = DOCKER if engine == "docker" else "podman"
    out = sh(binary, "ps", "-a", "-q", "--filter", "label=io.forge.benchmark")
    return out.stdout.split()


def oci_leftovers() -> list[str]:
    out = sh("runc", "list", "--format", "json")
    return [c["id"] for c in json.loads(out.stdout or "null") or []
            if c["id"].startswith("forge-")]


def remove_all_labelled() -> None:
    for engine in ("docker", "podman"):
        ids = labelled(engine)
        if ids:
            sh(DOCKER if engine == "docker" else "podman", "rm", "-f", *ids)
    for cid in oci_leftovers():
        sh("runc", "delete", "-f", cid)


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
    leaks = {"docker": labelled("docker"), "podman": labelled("podman"),
             "runc": oci_leftovers()}
    leaks = {k: v for k, v in leaks.items() if v}
    if leaks:
        remove_all_labelled()
        pytest.fail(f"labelled containers leaked: {leaks}", pytrace=False)
