"""Hosts over real ssh: listing, host keys, a benchmark run where the engines are, a fleet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from forge_desktop import __version__
from tests.conftest import assert_one_line_error
from tests.fleet.conftest import Fleet


def forge(env: dict[str, str], *args: str, timeout: float = 600
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "forge_desktop", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, check=False,
                          stdin=subprocess.DEVNULL)


def test_hosts_json_shows_both_reachable(local_home: tuple[Path, dict[str, str]]) -> None:
    _, env = local_home
    proc = forge(env, "hosts", "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout) if r["source"] == "config.toml"}
    assert set(rows) == {"alpha", "beta"}
    for row in rows.values():
        assert row["reachable"] is True, row
        assert row["forge_version"] == __version__
        assert row["reason"] is None


def test_unknown_and_wrong_host_keys_are_refused(fleet: Fleet, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    wrong = tmp_path / "known_hosts_wrong"  # alpha's address with beta's key
    wrong.write_text(f"[127.0.0.1]:{fleet.hosts['alpha'].port} "
                     f"{fleet.hosts['beta'].host_key_line}\n")
    home = tmp_path / "home"
    home.mkdir()
    alpha = fleet.hosts["alpha"]
    (home / "config.toml").write_text(
        fleet.host_table("unknown", alpha, empty) + fleet.host_table("changed", alpha, wrong))
    env = {**dict(__import__("os").environ), "FORGE_HOME": str(home)}
    proc = forge(env, "hosts", "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout) if r["source"] == "config.toml"}
    assert rows["unknown"]["reachable"] is False
    assert "host key is not in known_hosts" in rows["unknown"]["reason"]
    assert rows["changed"]["reachable"] is False
    assert "host key changed" in rows["changed"]["reason"]
    # nothing was written to the known_hosts files: no key is ever accepted
    assert empty.read_text() == ""
    run = forge(env, "benchmark", "startup", "--host", "unknown", "-r", "runc", "-n", "1",
                timeout=120)
    assert run.returncode == 1
    # one line, forge's: ssh's own "Host key verification failed." is not relayed too
    assert run.stderr.strip().splitlines() == [
        line for line in run.stderr.strip().splitlines() if line.startswith("forge: error: ")]
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "host unknown: its host key is not in known_hosts" in run.stderr


def test_startup_on_alpha_is_saved_here_with_host(local_home: tuple[Path, dict[str, str]],
                                                  fleet: Fleet) -> None:
    home, env = local_home
    proc = forge(env, "benchmark", "startup", "--host", "alpha", "-r", "runc", "-n", "5",
                 "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["host"] == "alpha"
    assert doc["kind"] == "startup"
    (entry,) = doc["runtimes"]
    assert entry["runtime"] == "runc" and entry["stats"]["median_ms"] > 0
    assert len(entry["samples"]) == 5
    saved = json.loads((home / "benchmarks" / f"{doc['id']}.json").read_text())
    assert saved == doc
    # the remote forge kept its own copy in its own store, without the host stamp
    remote = json.loads((fleet.hosts["alpha"].forge_home / "benchmarks" /
                         f"{doc['id']}.json").read_text())
    assert "host" not in remote and remote["runtimes"] == doc["runtimes"]
    machines = forge(env, "results", "machines", "--json", "--baseline-runtime", "runc")
    assert machines.returncode == 0, machines.stderr
    assert any(r["host"].startswith("alpha (") for r in json.loads(machines.stdout))
    table = forge(env, "benchmark", "startup", "--host", "alpha", "-r", "runc", "-n", "2")
    assert table.returncode == 0, table.stderr
    assert "startup" in table.stdout and "run on host alpha" in table.stdout
    assert f"saved {home / 'benchmarks'}" in table.stdout


def test_fleet_of_alpha_and_beta(local_home: tuple[Path, dict[str, str]]) -> None:
    """beta's docker is another daemon than alpha's: the fleet compares two real hosts."""
    home, env = local_home
    proc = forge(env, "benchmark", "startup", "--host", "alpha", "--host", "beta", "-r", "runc",
                 "-r", "docker", "-n", "5", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "fleet" and doc["fleet_kind"] == "startup"
    assert [h["name"] for h in doc["hosts"]] == ["alpha", "beta"]
    comp = doc["comparison"]
    ids = {h["name"]: h["result_id"] for h in doc["hosts"]}
    host_docs = {n: json.loads((home / "benchmarks" / f"{i}.json").read_text())
                 for n, i in ids.items()}
    medians = {n: {e["runtime"]: e["stats"]["median_ms"] for e in d["runtimes"]}
               for n, d in host_docs.items()}
    # the default baseline is the slower host: the larger geometric mean of the medians
    gm = {n: (m["runc"] * m["docker"]) ** 0.5 for n, m in medians.items()}
    assert comp["baseline_host"] == max(gm, key=lambda n: gm[n])
    other = "beta" if comp["baseline_host"] == "alpha" else "alpha"
    rows = {(r["host"], r["runtime"], r["metric"]): r for r in comp["ratios"]}
    assert set(rows) == {(other, "runc", "startup"), (other, "docker", "startup")}
    for (_, runtime, _), r in rows.items():
        assert r["ratio"] == round(medians[comp["baseline_host"]][runtime]
                                   / medians[other][runtime], 4)
        assert r["ci95"][0] <= r["ratio"] <= r["ci95"][1]
        assert 0 <= r["p_value"] <= 1
        assert r["verdict"] in ("faster", "slower", "no significant difference")
    # engines within each host: against the slower runtime on the baseline host
    base_rt = max(medians[comp["baseline_host"]], key=lambda r: medians[comp["baseline_host"]][r])
    assert comp["baseline_runtime"] == base_rt
    cand = "runc" if base_rt == "docker" else "docker"
    assert {(r["host"], r["runtime"]) for r in comp["engine_ratios"]} == {
        ("alpha", cand), ("beta", cand)}
    (effect,) = comp["engine_effect"]
    calls = {r["host"]: r["verdict"] for r in comp["engine_ratios"]}
    assert effect["verdicts"] == calls
    assert effect["holds_on_every_host"] == (
        len(set(calls.values())) == 1 and calls["alpha"] != "no significant difference")
    assert [h["name"] for h in doc["hosts"]] == [d["host"] for d in host_docs.values()]
    assert (home / "benchmarks" / f"{doc['id']}.json").is_file()
    shown = forge(env, "results", "show", doc["id"])
    assert shown.returncode == 0, shown.stderr
    assert f"host alpha: result {ids['alpha']}" in shown.stdout
    assert f"baseline host: {comp['baseline_host']}" in shown.stdout
    listed = forge(env, "results", "list", "--json")
    assert {r["id"] for r in json.loads(listed.stdout)} == {doc["id"], *ids.values()}


def test_a_failing_host_does_not_stop_the_others(fleet: Fleet, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    alpha = fleet.hosts["alpha"]
    (home / "config.toml").write_text(
        fleet.host_table("alpha", alpha)
        + f'[hosts.gone]\nurl = "ssh://root@127.0.0.1:{_closed_port()}"\n')
    env = {**dict(__import__("os").environ), "FORGE_HOME": str(home)}
    proc = forge(env, "benchmark", "startup", "--host", "alpha", "--host", "gone", "-r", "runc",
                 "-n", "3", "--json")
    assert proc.returncode == 1, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("forge: error:")]
    assert errors == [next(ln for ln in errors if "host gone: cannot connect" in ln)]
    doc = json.loads(proc.stdout)
    alpha_row = next(h for h in doc["hosts"] if h["name"] == "alpha")
    assert (home / "benchmarks" / f"{alpha_row['result_id']}.json").is_file()
    assert next(h for h in doc["hosts"] if h["name"] == "gone")["result_id"] is None


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_hostile_host_and_unknown_name_are_one_line(local_home: tuple[Path, dict[str, str]]
                                                    ) -> None:
    home, env = local_home
    proc = forge(env, "benchmark", "startup", "--host", "-oProxyCommand=touch /tmp/x", "-r",
                 "runc")
    assert_one_line_error(proc, "--host", "not allowed")
    proc = forge(env, "benchmark", "startup", "--host", "nosuch", "-r", "runc")
    assert_one_line_error(proc, "no such host", "alpha, beta")
    (home / "config.toml").write_text(
        '[hosts.evil]\nurl = "ssh://root@127.0.0.1"\nssh_options = ["-oProxyCommand=sh"]\n')
    proc = forge(env, "hosts")
    assert_one_line_error(proc, "ProxyCommand", "not allowed")


def test_sigint_during_a_fleet_run_stops_every_host(local_home: tuple[Path, dict[str, str]],
                                                    fleet: Fleet) -> None:
    """Ctrl-C here: exit 130, each remote forge got SIGINT, removed its containers and ended."""
    import signal
    import threading

    from tests.engines import sh, wait_for

    _, env = local_home
    proc = subprocess.Popen([sys.executable, "-m", "forge_desktop", "benchmark", "startup",
                             "--host", "alpha", "--host", "beta", "-r", "runc", "-r", "docker",
                             "-n", "1000", "--warmup", "0"], env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or []), daemon=True)
    reader.start()
    remote: dict[str, int] = {}
    try:
        def measuring() -> bool:
            for name, host in fleet.hosts.items():
                if name not in remote and any(f"[{name}] " in ln and "noise check" in ln
                                              for ln in list(lines)):
                    pids = [p.pid for p in host.remote_forges()]
                    assert len(pids) == 1, pids
                    remote[name] = pids[0]
            return len(remote) == 2

        wait_for("both hosts measuring", measuring, 240, interval_s=0.1)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    err = "".join(lines)
    assert code == 130, err[-3000:]
    assert "forge: error: interrupted" in err
    for name, pid in remote.items():
        assert not __import__("psutil").pid_exists(pid), f"forge still runs on {name}"
        assert f"[{name}] forge: error: interrupted" in err, err[-3000:]
    runc = sh("runc", "list", "-q", timeout=30).stdout.split()
    assert [c for c in runc for pid in remote.values() if c.startswith(f"forge-{pid}-")] == []
    from tests.engines import labelled, owned_by

    beta_env = {"DOCKER_HOST": _beta_docker_host(fleet)}
    for name, pid in remote.items():
        docker_env = None if name == "alpha" else {**env, **beta_env}
        assert owned_by(pid, labelled("docker", docker_env)) == [], name


def _beta_docker_host(fleet: Fleet) -> str:
    text = fleet.hosts["beta"].forge.read_text()
    return text.split("DOCKER_HOST='", 1)[1].split("'", 1)[0]


def test_hosts_check_says_what_is_missing(fleet: Fleet, tmp_path: Path,
                                          local_home: tuple[Path, dict[str, str]]) -> None:
    home, env = local_home
    proc = forge(env, "hosts", "check", "alpha", "--json", timeout=300)
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["forge"]["status"] == "ok"
    assert checks["FORGE_HOME"]["detail"].startswith(str(fleet.hosts["alpha"].forge_home))
    for name in ("runtime docker", "runtime runc", "image on docker"):
        assert checks[name]["status"] == "ok", checks[name]
    assert "tray host" not in checks  # a benchmark host needs no desktop
    assert proc.returncode == (1 if any(c["status"] == "fail" for c in checks.values())
                               else 0)
    (home / "config.toml").write_text(fleet.config(
        f'[hosts.bare]\nurl = "{fleet.hosts["alpha"].url}"\nforge = "/nonexistent/forge"\n'
        f'ssh_options = ["-i", "{fleet.client_key}", "-o", '
        f'"UserKnownHostsFile={fleet.known_hosts}"]\n'))
    proc = forge(env, "hosts", "check", "bare", timeout=120)
    assert proc.returncode == 1
    assert proc.stdout.startswith("fail forge: host bare: no forge command '/nonexistent/forge' "
                                  "there; install forge-desktop")


def test_agent_mode_medians_agree_with_a_local_run(local_home: tuple[Path, dict[str, str]],
                                                   fleet: Fleet, tmp_path: Path) -> None:
    """Timings are taken on the host: forge there (over ssh) and forge here, on the same
    machine, measure the same runc startup at the same time (this forge starts when alpha's
    is seen running, so both import, check noise and prepare alike, then overlap). Sized by
    tests/integration/conftest.py's `disagreement` (exact Mann-Whitney p < 1e-4 and a median
    ratio beyond 1.1x either way: a false failure < 1e-4 for exchangeable sets, which two
    overlapping runs of 30 are when ssh adds nothing to the timings)."""
    from tests.engines import wait_for
    from tests.integration.conftest import disagreement

    _, env = local_home
    here_env = {**env, "FORGE_HOME": str(tmp_path / "here")}
    args = [sys.executable, "-m", "forge_desktop", "benchmark", "startup", "-r", "runc", "-n",
            "30", "--warmup", "2", "--json", "--no-save"]

    def start(argv: list[str], e: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(argv, env=e, text=True, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    procs = [start([*args, "--host", "alpha"], env)]
    try:
        wait_for("forge running on alpha", lambda: bool(fleet.hosts["alpha"].remote_forges()),
                 120, interval_s=0.01, alive=procs[0])
        procs.append(start(args, here_env))
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    remote, local = (json.loads(out)["runtimes"][0] for out, _ in outs)
    assert json.loads(outs[0][0])["host"] == "alpha"
    problem = disagreement("runc on alpha vs here", [s["total_ms"] for s in remote["samples"]],
                           [s["total_ms"] for s in local["samples"]])
    assert problem is None, problem


def test_a_host_that_hangs_is_given_up_after_timeout_s(fleet: Fleet, tmp_path: Path) -> None:
    """A host that accepts the connection and never speaks (a socket of this test that
    listens and never accepts): given up after benchmark.timeout_s, with one line."""
    import os
    import socket
    import time

    home = tmp_path / "home"
    home.mkdir()
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        port = mute.getsockname()[1]
        (home / "config.toml").write_text(
            "[benchmark]\ntimeout_s = 2\n" + fleet.host_table("alpha", fleet.hosts["alpha"])
            + f'[hosts.mute]\nurl = "ssh://root@127.0.0.1:{port}"\n')
        env = {**os.environ, "FORGE_HOME": str(home)}
        t0 = time.monotonic()
        proc = forge(env, "hosts", "--json", timeout=60)
        listed = time.monotonic() - t0
        t0 = time.monotonic()
        run = forge(env, "benchmark", "startup", "--host", "mute", "-r", "runc", "-n", "1",
                    timeout=60)
        ran = time.monotonic() - t0
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["mute"]["reachable"] is False and "host mute" in rows["mute"]["reason"]
    assert rows["alpha"]["reachable"] is True
    # 2 s of ssh's connect timeout, plus starting two Pythons on a loaded machine
    assert listed < 20 and ran < 20, (listed, ran)
    assert run.returncode == 1
    assert [ln for ln in run.stderr.splitlines() if ln.startswith("forge: error:")] == [
        next(ln for ln in run.stderr.splitlines() if "host mute: cannot connect" in ln)]
