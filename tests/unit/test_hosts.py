"""Hosts (forge_desktop/hosts.py) and the fleet document (forge_desktop/fleet.py), no ssh."""

from __future__ import annotations

import shlex
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forge_desktop.config import parse_config
from forge_desktop.errors import ConfigError, StoreError, UsageError
from forge_desktop.fleet import HostRun, accept, fleet_document
from forge_desktop.hosts import Host, check_name, parse_host, remote_command, select, ssh_argv

SHELL_SYNTAX = set(" \t\n\r;&|$`'\"<>()*?[]{}!#\\")
"""What a shell reads as more than a word."""

HOST = Host("alpha", "ssh://root@127.0.0.1:2201", "127.0.0.1", "root", 2201)


def _config(table: dict[str, Any]) -> Any:
    return parse_config({"hosts": {"h": table}})


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_a_host_name_is_a_plain_word_or_refused(name: str) -> None:
    try:
        check_name(name)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    assert name[0] in string.ascii_lowercase + string.digits
    assert set(name) <= set(string.ascii_lowercase + string.digits + "-_")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(sorted(SHELL_SYNTAX | {"-", "o", "=", "@", ":"})),
               min_size=1, max_size=30).filter(lambda s: bool(set(s) & SHELL_SYNTAX)))
def test_urls_with_shell_syntax_are_refused(junk: str) -> None:
    with pytest.raises(ConfigError) as err:
        _config({"url": f"ssh://root@host{junk}x"})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("url", [
    "ssh://-oProxyCommand=touch@x", "ssh://root@-oProxyCommand=sh", "ssh://root@host:0",
    "ssh://root@host:70000", "ssh://root@host;id", "ssh://root@$(id)", "ssh://ro ot@host",
    "ssh://root@host\n", "http://root@host", "ssh://", "ssh://root@host/x;y",
    "ssh://root@[::1", "ssh://root@ho..st", "root@host", 7])
def test_hostile_urls_are_refused(url: Any) -> None:
    with pytest.raises(ConfigError):
        _config({"url": url})


@pytest.mark.parametrize("options", [
    ["-oProxyCommand=sh -c id"], ["-o", "ProxyCommand=sh"], ["-o", "StrictHostKeyChecking=no"],
    ["-oStrictHostKeyChecking=no"], ["-o", "stricthostkeychecking=no"],
    ["-o", "LocalCommand=id"], ["-o", "PermitLocalCommand=yes"], ["-o", "KnownHostsCommand=x"],
    ["-F", "/tmp/evil_config"], ["-i", "key;id"], ["-i", "-oProxyCommand=x"], ["-i"],
    ["-J", "a b"], ["-o", "ProxyJump=-oProxyCommand=x"], ["-o", "IdentityFile=a\nb"],
    ["-R", "80:localhost:80"], ["--", "x"], "-i key", [3]])
def test_hostile_ssh_options_are_refused(options: Any) -> None:
    with pytest.raises(ConfigError) as err:
        _config({"url": "ssh://root@host", "ssh_options": options})
    assert "\n" not in str(err.value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=20), min_size=1, max_size=4))
def test_accepted_ssh_options_carry_no_shell_syntax_and_no_forbidden_key(opts: list[str]
                                                                         ) -> None:
    try:
        host = parse_host("h", {"url": "ssh://h", "ssh_options": opts}, "t")
    except ConfigError:
        return
    for item in host.ssh_options:
        assert not set(item) & SHELL_SYNTAX
        assert "proxycommand" not in item.lower() and "stricthostkeychecking" not in item.lower()


def test_no_password_settings_and_forge_path_checked() -> None:
    with pytest.raises(ConfigError, match="no passwords in config"):
        _config({"url": "ssh://root@host", "password": "x"})
    with pytest.raises(ConfigError, match="forge"):
        _config({"url": "ssh://root@host", "forge": "forge; rm -rf ~"})
    with pytest.raises(ConfigError, match="forge"):
        _config({"url": "ssh://root@host", "forge": "-oProxyCommand=x"})
    with pytest.raises(ConfigError, match="not allowed"):
        parse_config({"hosts": {"all": {"url": "ssh://h"}}})


def test_a_good_host_parses() -> None:
    (host,) = _config({"url": "ssh://bench@ci-runner-3.example:2222", "forge": "~/.local/bin/forge",
                       "ssh_options": ["-i", "~/.ssh/bench", "-oIdentitiesOnly=yes"]}).hosts
    assert (host.user, host.hostname, host.port) == ("bench", "ci-runner-3.example", 2222)
    assert host.ssh_options == ("-i", "~/.ssh/bench", "-o", "IdentitiesOnly=yes")
    argv = ssh_argv(host, [host.forge, "--version"], 30)
    assert argv[:7] == ["ssh", "-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                        "-o"]
    assert argv[-3:] == ["--", "ci-runner-3.example", "~/.local/bin/forge --version"]
    assert argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-l") + 1] == "bench"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=5))
def test_every_remote_argument_reaches_the_remote_shell_as_one_word(args: list[str]) -> None:
    """What the remote shell splits the command into is exactly the argv forge meant."""
    if args[0].startswith("~/"):
        args[0] = "x" + args[0]
    assert shlex.split(remote_command(args)) == args


def test_select_hosts() -> None:
    hosts = {"alpha": HOST, "beta": Host("beta", "ssh://b", "b")}
    assert [h.name for h in select(["all"], hosts)] == ["alpha", "beta"]
    assert [h.name for h in select(["beta", "alpha", "beta"], hosts)] == ["beta", "alpha"]
    with pytest.raises(UsageError, match="no such host"):
        select(["gamma"], hosts)
    with pytest.raises(UsageError, match="not allowed"):
        select(["-oProxyCommand=x"], hosts)


def _doc(id_: str, samples: dict[str, list[float]]) -> dict[str, Any]:
    return {"schema_version": 1, "id": id_, "kind": "startup", "created_at": "2026-01-01T00:00:00Z",
            "complete": True, "environment": {"host": "h"}, "parameters": {},
            "runtimes": [{"runtime": rt, "errors": [],
                          "samples": [{"total_ms": v} for v in xs],
                          "stats": {"median_ms": sorted(xs)[len(xs) // 2]}}
                         for rt, xs in samples.items()]}


def test_a_result_from_a_host_is_checked_like_a_foreign_file() -> None:
    good = _doc("20260101T000000Z-abc123", {"runc": [10.0, 11.0, 12.0]})
    import json

    doc = accept(HOST, "startup", json.dumps({**good, "host": "elsewhere"}).encode())
    assert doc["host"] == "alpha"
    for bad, why in ((b"not json", "not JSON"), (b"[]", "not a forge result"),
                     (json.dumps({**good, "kind": "memory"}).encode(), "not startup"),
                     (json.dumps({**good, "id": "../../etc/x"}).encode(), "plain name"),
                     (json.dumps({**good, "runtimes": [{"runtime": "a\x1b[2J"}]}).encode(),
                      "control characters"),
                     (json.dumps({**good, "schema_version": 99}).encode(), "newer")):
        with pytest.raises(StoreError, match=why):
            accept(HOST, "startup", bad)


def test_fleet_document_ratios_and_effects() -> None:
    fast = [10.0 + 0.1 * i for i in range(20)]
    slow = [20.0 + 0.1 * i for i in range(20)]
    a = HostRun(HOST, _doc("a", {"runc": slow, "docker": [2 * x for x in slow]}))
    b = HostRun(Host("beta", "ssh://b", "b"), _doc("b", {"runc": fast,
                                                         "docker": [2 * x for x in fast]}))
    c = HostRun(Host("gone", "ssh://g", "g"), reason="host gone: cannot connect")
    doc = fleet_document([a, b, c], "startup", {}, None)
    comp = doc["comparison"]
    assert comp["baseline_host"] == "alpha"  # the slower one
    rows = {(r["host"], r["runtime"]): r for r in comp["ratios"]}
    assert set(rows) == {("beta", "runc"), ("beta", "docker")}
    from statistics import median

    for r in rows.values():  # beta's medians are 10.95 and 21.9 ms, alpha's 20.95 and 41.9
        assert r["verdict"] == "faster" and r["ratio"] == round(median(slow) / median(fast), 4)
        assert r["p_value"] < 0.001
    assert comp["baseline_runtime"] == "docker"
    (effect,) = comp["engine_effect"]
    assert effect["runtime"] == "runc" and effect["holds_on_every_host"] is True
    assert effect["verdicts"] == {"alpha": "faster", "beta": "faster"}
    (host_effect,) = comp["host_effect"]
    assert host_effect["same_for_every_runtime"] is True
    assert doc["complete"] is False
    assert doc["hosts"][2] == {"name": "gone", "url": "ssh://g", "result_id": None,
                               "error": "host gone: cannot connect"}
    chosen = fleet_document([a, b], "startup", {}, "beta")["comparison"]
    assert chosen["baseline_host"] == "beta"
    assert {r["verdict"] for r in chosen["ratios"]} == {"slower"}


def test_a_fleet_reads_as_tables_in_the_window_and_the_exports() -> None:
    """results/export/report.py's model: what the window's detail view, Markdown and HTML
    show of a fleet (hosts x runtimes, ratios with CIs, engine ratios, effects)."""
    from forge_desktop.results.export import report
    from forge_desktop.results.export.markdown import to_markdown

    fast = [10.0 + 0.1 * i for i in range(20)]
    slow = [20.0 + 0.1 * i for i in range(20)]
    a = HostRun(HOST, _doc("ra", {"runc": slow, "docker": [2 * x for x in slow]}))
    b = HostRun(Host("beta", "ssh://b", "b"), _doc("rb", {"runc": fast,
                                                          "docker": [2 * x for x in fast]}))
    doc = fleet_document([a, b], "startup", {"iterations": 20}, None)
    part = report.section(doc)
    assert part.heading.startswith("Fleet · ")
    tables = {t.title: t for t in part.tables}
    grid = tables["Hosts × runtimes (Startup)"]
    assert grid.columns == ("Host", "Result", "docker", "runc")
    # the medians each host's result holds (_doc: the 11th of 20 sorted samples)
    assert grid.rows == (("alpha (baseline)", "ra", "42.0 ms", "21.0 ms"),
                         ("beta", "rb", "22.0 ms", "11.0 ms"))
    against = tables["Against the baseline host, alpha"]
    assert [r[:2] + r[-1:] for r in against.rows] == [("beta", "docker", "faster"),
                                                      ("beta", "runc", "faster")]
    assert all(r[6].endswith("×") and r[7] == "<0.001" for r in against.rows)
    assert [r[:2] for r in tables["Runtimes within each host, against docker"].rows] == [
        ("alpha", "runc"), ("beta", "runc")]
    effects = tables["Host effect or engine effect"].rows
    assert ("engine", "runc vs docker", "startup", "alpha: faster, beta: faster",
            "on every host") in effects
    assert ("host", "beta vs alpha", "startup", "docker: faster, runc: faster",
            "for every runtime") in effects
    text = to_markdown([doc])
    assert "Against the baseline host, alpha" in text and "on every host" in text
