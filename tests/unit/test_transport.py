"""Transport mode's pure pieces: names, refusals, the overhead figures and their line."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forge_desktop.errors import UsageError
from forge_desktop.hosts import Host
from forge_desktop.results.document import transport_text
from forge_desktop.runtimes import transport

REMOTE = transport.Remote("docker", "beta", Host("beta", "ssh://root@10.0.0.2:2222",
                                                 "10.0.0.2", "root", 2222))


def test_names() -> None:
    assert transport.split_name("docker@beta") == ("docker", "beta")
    assert transport.split_name("podman@ci-1.lan") == ("podman", "ci-1.lan")
    assert transport.split_name("docker") is None
    assert transport.split_name("runc@x") is None


@pytest.mark.parametrize("name", ["docker@-oProxyCommand=x", "docker@a b", "podman@$(id)",
                                  "docker@", "docker@a\nb"])
def test_hostile_endpoint_names_are_refused_before_any_cli_runs(name: str) -> None:
    with pytest.raises(UsageError, match="not a (docker context|podman connection) name"):
        transport.resolve(name, 5.0)


@pytest.mark.parametrize("kind", ["memory", "disk"])
def test_memory_and_disk_refuse_a_remote_engine(kind: str) -> None:
    transport.refuse_remote(("docker", "runc"), kind)  # local names pass
    with pytest.raises(UsageError, match=r"--host NAME -r podman \(agent mode\)"):
        transport.refuse_remote(("runc", "podman@edge"), kind)


def test_figures_subtract_the_local_call_per_lifecycle() -> None:
    # each call: two clock reads; over ssh 2 ms, locally 0.5 ms
    ticks = iter([0.0, 0.002] * 4 + [1.0, 1.0005] * 4)
    fig = transport.transport_figures(REMOTE, lambda: None, lambda: None, None, 4, n=4,
                                      clock=lambda: next(ticks))
    assert fig["call_ms"] == pytest.approx(2.0) and fig["local_call_ms"] == pytest.approx(0.5)
    assert fig["overhead_ms_per_lifecycle"] == pytest.approx(6.0)
    assert fig["endpoint"] == "docker@beta" and fig["local_note"] is None
    assert transport_text({"transport": fig}) == (
        "transport: ssh to 10.0.0.2, ~2.0 ms a call (0.5 ms on the host), ~6.0 ms of each "
        "lifecycle")


def test_without_a_local_call_the_overhead_is_unknown() -> None:
    ticks = iter([0.0, 0.003] * 3)
    fig = transport.transport_figures(REMOTE, lambda: None, None, "unknown: not here", 4, n=3,
                                      clock=lambda: next(ticks))
    assert fig["local_call_ms"] is None and fig["overhead_ms_per_lifecycle"] is None
    assert fig["local_note"] == "unknown: not here"
    assert "its share of each lifecycle unknown" in str(transport_text({"transport": fig}))


@given(st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=5)
                    | st.sampled_from(["a\nb", "\x1b[31m", "\u202e"]),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12))
def test_transport_text_answers_for_any_json(value: Any) -> None:
    line = transport_text({"transport": value})
    assert line is None or (line.startswith("transport: ") and "\n" not in line)
    line = transport_text({"transport": {"host": value, "mode": value, "call_ms": value}})
    assert line is not None and line.isprintable()


def test_via_cli_is_refused_in_transport_mode() -> None:
    from forge_desktop.bench.startup import StartupOptions

    StartupOptions(("docker",), via="cli").validate()
    with pytest.raises(UsageError, match="drives the engine's API only"):
        StartupOptions(("runc", "docker@beta"), via="cli").validate()
