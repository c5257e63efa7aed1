"""Hosts found in docker contexts and podman connections (their own config files, made here)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.engines import sh
from tests.fleet.conftest import Fleet
from tests.fleet.test_hosts import forge


def test_docker_contexts_and_podman_connections_are_hosts(fleet: Fleet, tmp_path: Path,
                                                          local_home: tuple[Path, dict[str, str]]
                                                          ) -> None:
    _, env = local_home
    alpha = fleet.hosts["alpha"]
    docker_config = tmp_path / "docker-config"
    containers_conf = tmp_path / "containers.conf"
    containers_conf.write_text("")
    env = {**env, "DOCKER_CONFIG": str(docker_config), "CONTAINERS_CONF": str(containers_conf)}
    for name in ("ctx-alpha", "Upper"):  # "Upper": a name forge refuses, skipped with a note
        sh("docker", "context", "create", name, "--docker",
           f"host=ssh://root@127.0.0.1:{alpha.port}", env=env, check=True)
    sh("docker", "context", "create", "local-socket", "--docker",
       "host=unix:///var/run/docker.sock", env=env, check=True)
    sh("podman", "system", "connection", "add", "pod-alpha", "--identity",
       str(fleet.client_key), f"ssh://root@127.0.0.1:{alpha.port}/run/podman/podman.sock",
       env=env, check=True)
    proc = forge(env, "hosts", "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == {"alpha", "beta", "ctx-alpha", "pod-alpha"}  # no unix socket context
    assert rows["ctx-alpha"]["source"] == "docker context ctx-alpha"
    assert rows["ctx-alpha"]["url"] == f"ssh://root@127.0.0.1:{alpha.port}"
    assert rows["pod-alpha"]["source"] == "podman connection pod-alpha"
    # the user's own known_hosts (none here) decides: an unknown key is never accepted
    for name in ("ctx-alpha", "pod-alpha"):
        assert rows[name]["reachable"] is False
        assert "host key is not in known_hosts" in rows[name]["reason"], rows[name]
    assert "docker context 'Upper' skipped" in proc.stderr
    # config.toml wins over a discovered host of the same name
    assert rows["alpha"]["source"] == "config.toml" and rows["alpha"]["reachable"] is True
