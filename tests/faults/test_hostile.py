"""Hostile input: no option value, config file, result file, image name, action parameter,
notification body or launcher argument crashes forge or reaches a shell.

Property tests (hypothesis). The CLI runs in this process (``forge_desktop.cli.main``) with
FORGE_DEBUG=1, so a bug surfaces as its own exception instead of forge's one-line "internal
error". FORGE_HOME is a fresh temporary directory and no example touches an engine: every
benchmark names a runtime that does not exist (forge refuses it before it asks any engine),
and ``forge runtimes`` runs with no engine socket, no runtime binary on PATH and config
runtimes' version commands stubbed out.

Every input tried is counted; the totals are written to tests/artifacts/hostile-inputs.json
(docs/RELIABILITY.md quotes them).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from forge_desktop import actions, desktop, notify
from forge_desktop.cli import main as forge_main
from forge_desktop.config import BUILTIN_RUNTIMES
from forge_desktop.errors import ForgeError, UsageError
from forge_desktop.image import prepare_image
from forge_desktop.models import RunContext
from forge_desktop.results.schema import KINDS
from forge_desktop.runtimes import command as command_runtime
from forge_desktop.runtimes.common import check_image_name
from tests.conftest import ARTIFACTS
from tests.engines import wait_for
from tests.faults.conftest import HUGE_CONFIG_S

EXIT_CODES = {0, 1, 2, 3, 130}
TRIED: Counter[str] = Counter()
"""Inputs tried per area (hypothesis' shrinking runs included)."""
RUNS: Counter[str] = Counter()

SCALE = float(os.environ.get("FORGE_HOSTILE_SCALE", "1"))
"""More examples for a soak run (FORGE_HOSTILE_SCALE=20); 1 keeps each test under ~20 s."""


def examples(n: int) -> int:
    return max(1, int(n * SCALE))


FAST = settings(max_examples=examples(150), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
"""About 20 ms an example in process: every test stays well under 20 s."""


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Iterator[None]:
    yield
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    counts = {**dict(sorted(TRIED.items())), "total": sum(TRIED.values()), **RUNS}
    (ARTIFACTS / "hostile-inputs.json").write_text(json.dumps(counts, indent=2) + "\n")


# --- running forge in this process --------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def environ(**values: str | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def forge(args: Sequence[str], home: Path, **env: str | None) -> Outcome:
    """``forge ARGS`` in process: exit code and what it wrote. Any exception but SystemExit
    escapes (FORGE_DEBUG=1): that is a bug. The streams encode as a UTF-8 terminal's do
    (stdout strict, stderr backslashreplace), so text UTF-8 cannot carry fails here too."""
    RUNS["forge commands run in process"] += 1
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace",
                           write_through=True)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    code: int
    try:
        with environ(FORGE_HOME=str(home), FORGE_DEBUG="1", **env), \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                forge_main(list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    out.flush()
    err.flush()
    return Outcome(tuple(args), code, out_bytes.getvalue().decode(),
                   err_bytes.getvalue().decode())


def check(o: Outcome, *, warnings: bool = False) -> None:
    """Exit code forge documents; a failure is exactly one line ``forge: error: ...`` on
    stderr (with ``warnings``, ``warning: ...`` lines may come before it)."""
    assert o.code in EXIT_CODES, o
    assert "Traceback" not in o.stderr and "internal error" not in o.stderr, o
    lines = [ln for ln in o.stderr.split("\n") if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("forge: error:")]
    others = [ln for ln in lines if not ln.startswith("forge: error:")]
    if o.code in (1, 2, 130):
        assert len(errors) == 1, o
        assert "\r" not in errors[0], o
    else:
        assert not errors, o
    if warnings:
        assert all(ln.startswith("warning: ") for ln in others), o
    else:
        assert not others, o


# --- hostile values -----------------------------------------------------------------------

MARKER = Path(tempfile.gettempdir()) / "forge-pwned"
SHELL = [f"$(touch {MARKER})", f"`touch {MARKER}`", f"; touch {MARKER}", f"| touch {MARKER}",
         f"&& touch {MARKER}", f"\ntouch {MARKER}", "> /etc/forge-pwned", "$HOME", "${IFS}",
         "'", '"', "\\", "\\\\", "\n", "\r\n", "\x00", "\t", " ", "", "\x1b[2J",
         "\x1b]52;c;cHduZWQ=\x07", "[bold]x[/bold]", "[/]", "[link=file:///etc/passwd]x[/link]",
         "<b>x</b>", "<a href='https://example.com'>x</a>", "&amp;", "&", "%u", "%%", "%",
         "--help", "-", "--", "-r", "*", "?", "~", "~nosuchuser/x", "../../etc/passwd",
         "/etc/passwd",
         "\u202eevil", "\u2028", "\ufeff", "\U0001f4a5", "\udcff", "9" * 5000, "1e999", "nan",
         "inf", "-inf", "-1", "0", "0x10", "1_000", " 5 ", "\uff15", "1e-320", "-0", "NaN",
         "busybox:latest", "docker", "runc", "none", "host", "default", "api", "cli", "load"]

NUMERIC = st.one_of(st.integers(), st.integers(-(10**40), 10**40),
                    st.floats(allow_nan=True, allow_infinity=True)).map(str)
SURROGATES = st.binary(max_size=24).map(lambda b: b.decode("utf-8", "surrogateescape"))
HOSTILE = st.one_of(
    NUMERIC, st.text(max_size=40), st.sampled_from(SHELL), SURROGATES,
    st.tuples(st.sampled_from(SHELL), st.text(max_size=8), st.sampled_from(SHELL))
    .map("".join))

MISSING = "nosuch-runtime"
"""Named in every benchmark: forge refuses an unknown runtime before any engine is asked."""

BENCH_OPTIONS: dict[str, tuple[str, ...]] = {
    "startup": ("-n", "--iterations", "--warmup", "--network", "--image", "--via",
                "--max-startup-ms"),
    "memory": ("--containers", "--samples", "--interval", "--image", "--max-memory-mb"),
    "compare": ("-n", "--warmup", "--baseline", "--network", "--image", "--containers",
                "--seed", "--max-startup-ms", "--max-memory-mb", "--max-disk-mb"),
    "disk": ("--image", "--max-disk-mb"),
    "image": ("--source", "--registry", "-n", "--warmup"),
}
_HOST_PORT = re.compile(r"^\s*[\[\]A-Za-z0-9.:-]+:[0-9]{1,5}\s*$")


def _harmless(command: str, option: str, value: str) -> str:
    """Keep the image benchmark off the network: no pull, no registry that could answer."""
    if command == "image" and option == "--source" and value == "pull":
        return "pull;"
    if command == "image" and option == "--registry" and _HOST_PORT.match(value):
        return "127.0.0.1:1"  # refused at once
    return value


@st.composite
def benchmark_argv(draw: st.DrawFn, command: str) -> list[str]:
    options = draw(st.lists(st.sampled_from(BENCH_OPTIONS[command]), min_size=1, max_size=4))
    argv = ["benchmark", command]
    for option in options:
        value = _harmless(command, option, draw(HOSTILE))
        if option.startswith("--") and draw(st.booleans()):
            argv.append(f"{option}={value}")
        else:
            argv += [option, value]
    argv += draw(st.lists(st.sampled_from(["--json", "--no-save"]), max_size=2))
    runtimes = draw(st.lists(HOSTILE, max_size=2))
    for name in runtimes:
        argv += ["-r", name]
    at = draw(st.integers(2, len(argv)))
    argv[at:at] = ["--runtime", MISSING]
    if command == "image":  # --source pull only with a registry that cannot answer
        argv += ["--registry", "127.0.0.1:1"] if "--registry" not in options else []
    return argv


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "forge-home"


# --- 1. command-line option values ---------------------------------------------------------

@pytest.mark.parametrize("command", sorted(BENCH_OPTIONS))
def test_benchmark_option_values_never_crash(command: str, home: Path) -> None:
    @FAST
    @given(argv=benchmark_argv(command))
    def run(argv: list[str]) -> None:
        TRIED[f"cli benchmark {command}"] += 1
        o = forge(argv, home)
        check(o)
        if o.code == 0:
            assert "--help" in argv, o  # nothing else may succeed: the runtime is unknown
        assert not MARKER.exists()

    run()


RESULTS_OPTIONS: dict[str, tuple[str, ...]] = {
    "list": ("--kind", "-r", "--since", "--limit", "--from"),
    "trend": ("-r", "--metric", "--limit", "--from"),
    "check": ("--baseline", "--last", "--max-regression", "--from"),
    "machines": ("--baseline-runtime", "--from"),
    "show": ("--from",),
    "export": ("--format", "--from"),
    "changes": ("-r", "--metric", "--since", "--from"),
    "ack": ("--from",),
}


@st.composite
def results_argv(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(RESULTS_OPTIONS)))
    argv = ["results", command]
    if command in ("show", "export", "ack"):
        argv.append(draw(HOSTILE))
    for option in draw(st.lists(st.sampled_from(RESULTS_OPTIONS[command]), max_size=3)):
        argv.append(f"{option}={draw(HOSTILE)}" if option.startswith("--")
                    else option)
        if not option.startswith("--"):
            argv.append(draw(HOSTILE))
    return argv


def test_results_option_values_never_crash(home: Path) -> None:
    (home / "benchmarks").mkdir(parents=True)
    write_result(home / "benchmarks", good_document("20260101T000000Z-aaaaaa"))

    @FAST
    @given(argv=results_argv())
    def run(argv: list[str]) -> None:
        TRIED["cli results"] += 1
        if "export" in argv:
            argv = [*argv, "-o", "-"]  # never a file in the current directory
        check(forge(argv, home), warnings=True)
        assert not MARKER.exists()

    run()


@pytest.mark.parametrize("argv", [
    ["results", "list", "--from", "~nosuchuser/results"],
    ["results", "list", "--from", "x" * 5000],
    ["results", "list", "--from", "/proc/self/status"],
    ["results", "export", "20260101T000000Z-aaaaaa", "-f", "md", "-o", "~nosuchuser/r.md"],
    ["results", "export", "20260101T000000Z-aaaaaa", "-f", "md", "-o", "/tmp/" + "x" * 300],
    ["results", "export", "20260101T000000Z-aaaaaa", "-o", "/nonexistent/dir/r.json"],
    ["results", "export", "20260101T000000Z-aaaaaa", "-o", "/proc/self/r.json"],
])
def test_unusable_paths_fail_in_one_line(argv: list[str], home: Path) -> None:
    """Paths that expanduser() or stat() raise for (unknown user, ENAMETOOLONG)."""
    (home / "benchmarks").mkdir(parents=True)
    write_result(home / "benchmarks", good_document("20260101T000000Z-aaaaaa"))
    TRIED["cli results"] += 1
    o = forge(argv, home)
    check(o)
    assert o.code in (1, 2), o


# --- 2. config.toml ---------------------------------------------------------------------

def toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=True)  # a JSON string is a TOML basic string


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(value)


TOML_SCALARS = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1), st.integers(-3, 3000),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(SHELL[:30]))
TOML_VALUES = st.recursive(
    TOML_SCALARS, lambda kids: st.lists(kids, max_size=4)
    | st.dictionaries(st.text(max_size=8), kids, max_size=3), max_leaves=12)
KEYS = ("image", "iterations", "warmup", "timeout_s", "run", "version", "startup_ms",
        "memory_mb", "disk_mb")
TABLES = ("benchmark", "runtimes", "targets", "runtimes.mine", "runtimes.docker",
          "runtimes.Bad Name", "runtimes.x\n", "a.b.c", "benchmark.image")


@st.composite
def config_with_wrong_types(draw: st.DrawFn) -> str:
    """The real keys in the real tables, each with a value of any type."""
    lines = []
    for table in draw(st.lists(st.sampled_from(TABLES), max_size=4, unique=True)):
        header = ".".join(toml_string(p) if not re.fullmatch(r"[A-Za-z0-9_-]+", p) else p
                          for p in table.split("."))
        lines.append(f"[{header}]")
        for key in draw(st.lists(st.sampled_from(KEYS), max_size=4, unique=True)):
            lines.append(f"{key} = {toml_value(draw(TOML_VALUES))}")
    if draw(st.booleans()):  # the top-level keys, also of any type
        lines.insert(0, f"{draw(st.sampled_from(['benchmark', 'runtimes', 'targets']))} = "
                        f"{toml_value(draw(TOML_VALUES))}")
    return "\n".join(lines) + "\n"


@st.composite
def tomlish(draw: st.DrawFn) -> str:
    """Lines that look like TOML, often are not: headers, keys, garbage."""
    pieces = st.one_of(
        st.sampled_from(TABLES).map(lambda t: f"[{t}]"),
        st.sampled_from(TABLES).map(lambda t: f"[[{t}]]"),
        st.tuples(st.sampled_from(KEYS), TOML_VALUES).map(lambda kv: f"{kv[0]} = "
                                                          f"{toml_value(kv[1])}"),
        st.tuples(st.sampled_from(KEYS), st.text(max_size=20)).map(lambda kv: f"{kv[0]} = "
                                                                   f"{kv[1]}"),
        st.text(max_size=30),
        st.sampled_from(['"""', "'''", "[", "]]", "= 1", "a = 1979-05-27T07:32:00Z",
                         "a = 0x_ff", "a = +inf", "\\u0000", "a.b.c = 1", "a = {b = 1,}"]))
    return "\n".join(draw(st.lists(pieces, max_size=10)))


@st.composite
def deeply_nested(draw: st.DrawFn) -> str:
    depth = draw(st.one_of(st.integers(1, 3000), st.integers(900, 1100)))
    shape = draw(st.sampled_from(["array", "inline", "dotted", "header"]))
    if shape == "array":
        return f"[benchmark]\nimage = {'[' * depth}1{']' * depth}\n"
    if shape == "inline":
        return f"[targets]\nstartup_ms = {'{a = ' * depth}1{'}' * depth}\n"
    if shape == "dotted":
        return ".".join(["a"] * depth) + " = 1\n"
    return "[" + ".".join(["runtimes"] + ["a"] * depth) + "]\nrun = ['x']\n"


CONFIGS = st.one_of(
    st.binary(max_size=300).map(lambda b: b),
    tomlish().map(str.encode),
    config_with_wrong_types().map(str.encode),
    deeply_nested().map(str.encode),
    st.tuples(config_with_wrong_types(), st.binary(max_size=8)).map(
        lambda t: t[0].encode() + t[1]),
    config_with_wrong_types().map(lambda s: s.encode("utf-16")))


@contextlib.contextmanager
def no_engines(scratch: Path) -> Iterator[dict[str, str]]:
    """``forge runtimes`` here reaches no engine and runs no command: no socket, an empty
    PATH, and a config runtime's version command stubbed out."""
    empty = scratch / "empty-path"
    empty.mkdir(exist_ok=True)
    ran: list[list[str]] = []

    def stub(argv: Sequence[str], timeout_s: float, what: str) -> subprocess.CompletedProcess[str]:
        ran.append(list(argv))
        return subprocess.CompletedProcess(list(argv), 0, "stub 1.0\n", "")

    with mock.patch.object(command_runtime, "run_cmd", stub):
        yield {"PATH": str(empty), "DOCKER_HOST": f"unix://{scratch}/no-docker.sock",
               "CONTAINER_HOST": f"unix://{scratch}/no-podman.sock"}


def test_config_files_never_crash(home: Path, tmp_path: Path) -> None:
    home.mkdir()

    @FAST
    @given(data=CONFIGS, which=st.sampled_from(["startup", "runtimes"]))
    def run(data: bytes, which: str) -> None:
        TRIED["config.toml"] += 1
        (home / "config.toml").write_bytes(data)
        if which == "startup":
            o = forge(["benchmark", "startup", "-r", MISSING, "-n", "1"], home)
            check(o)
            assert o.code == 2, o  # ConfigError or the unknown runtime: both usage errors
            return
        with no_engines(tmp_path) as env:
            o = forge(["runtimes", "--json"], home, **env)
        check(o, warnings=True)
        if o.code == 0:
            names = [r["name"] for r in json.loads(o.stdout)]
            assert set(BUILTIN_RUNTIMES) <= set(names), o

    run()


@pytest.mark.parametrize("shape", ["comments", "string", "keys", "tables", "array"])
def test_huge_config_files(shape: str, home: Path, tmp_path: Path) -> None:
    """Megabytes of config: parsed or refused in one line, in seconds, without a crash."""
    home.mkdir()
    big = {"comments": "# x\n" * 2_000_000,
           "string": f"[benchmark]\nimage = \"{'a' * 8_000_000}\"\n",
           "keys": "[targets]\n" + "".join(f"k{i} = {i}\n" for i in range(200_000)),
           "tables": "".join(f"[runtimes.r{i}]\nrun = ['/nonexistent/r{i}']\n"
                             for i in range(20_000)),
           "array": "[benchmark]\nimage = [" + "1," * 1_000_000 + "]\n"}[shape]
    (home / "config.toml").write_text(big)
    TRIED["config.toml"] += 1
    start = time.monotonic()
    o = forge(["benchmark", "startup", "-r", MISSING], home)
    took_s = time.monotonic() - start
    check(o)
    print(f"huge config ({shape}): {took_s:.2f} s")
    assert took_s < HUGE_CONFIG_S, f"{took_s:.1f} s: {o}"
    with no_engines(tmp_path) as env:
        check(forge(["runtimes", "--json"], home, **env), warnings=True)


# --- 3. result files ---------------------------------------------------------------------

def good_document(run_id: str, created: str = "2026-01-01T00:00:00.000Z",
                  median: float = 40.0) -> dict[str, Any]:
    """A startup result as forge writes it (fields trimmed to those readers use)."""
    samples = [{"total_ms": median + d, "phases_ms": {"run": median + d}}
               for d in (-1.0, 0.0, 1.0, 0.5, -0.5)]
    stats = {"median_ms": median, "mean_ms": median, "stdev_ms": 0.8, "min_ms": median - 1,
             "max_ms": median + 1, "p95_ms": median + 1, "ci95_ms": [median - 1, median + 1],
             "outliers": 0, "n": 5}
    return {"schema_version": 1, "id": run_id, "kind": "startup", "created_at": created,
            "complete": True,
            "environment": {"host": "fuzz", "os": "Debian", "kernel": "6.1", "arch": "x86_64",
                            "cpu_model": "cpu", "cpu_count": 4, "memory_total_bytes": 2**33,
                            "cgroup_version": "v2", "runtimes": {"runc": {"version": "1.1"}}},
            "parameters": {"iterations": 5, "warmup": 1, "network": "none",
                           "image": "forge-bench:busybox", "via": "api", "command": ["true"]},
            "runtimes": [{"runtime": "runc", "kind": "oci", "version": "1.1", "via": "command",
                          "samples": samples, "stats": stats,
                          "phase_medians_ms": {"run": median}, "warnings": [], "errors": []}]}


def write_result(directory: Path, doc: Any, name: str | None = None) -> Path:
    path = directory / (name or f"{doc['id']}.json")
    path.write_text(json.dumps(doc))
    return path


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(SHELL[:40]))
JSON_VALUES = st.recursive(
    JSON_SCALARS, lambda kids: st.lists(kids, max_size=4)
    | st.dictionaries(st.text(max_size=10), kids, max_size=4), max_leaves=20)
class Huge:
    """A number of 5000 digits: more than json.loads reads (sys.int_info), so it is written
    into the file by ``dumps`` rather than by json.dumps, which refuses it too."""


def dumps(doc: Any) -> bytes:
    text = json.dumps(doc, default=lambda _o: "\x00huge\x00")
    return text.replace('"\\u0000huge\\u0000"', "9" * 5000).encode()


NUMBERS = st.one_of(st.integers(-10, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(-(10**400), 10**400), st.builds(Huge), JSON_SCALARS)


def sometimes(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the plausible value, sometimes anything at all."""
    return st.one_of(value, value, value, JSON_VALUES)


@st.composite
def runtime_entries(draw: st.DrawFn) -> dict[str, Any]:
    names = st.one_of(st.sampled_from(["runc", "docker", "podman", "crun"]), HOSTILE)
    samples = st.lists(st.fixed_dictionaries(
        {"total_ms": NUMBERS},
        optional={"phases_ms": sometimes(st.dictionaries(st.text(max_size=6), NUMBERS,
                                                          max_size=3)),
                  "to_exec_ms": NUMBERS}), max_size=6)
    stat_keys = ("median_ms", "mean_ms", "stdev_ms", "min_ms", "max_ms", "p95_ms", "outliers",
                 "n")
    stats = st.fixed_dictionaries({}, optional={
        **dict.fromkeys(stat_keys, NUMBERS), "ci95_ms": sometimes(st.lists(NUMBERS, max_size=3))})
    size_keys = ("per_container_bytes", "daemon_pss_bytes", "daemon_rss_bytes",
                 "benchmark_image_bytes", "images_bytes", "store_fs_bytes")
    sizes = st.fixed_dictionaries({}, optional={
        **dict.fromkeys(size_keys, NUMBERS), "warnings": sometimes(st.lists(HOSTILE, max_size=2))})
    entry: dict[str, Any] = draw(st.fixed_dictionaries({"runtime": sometimes(names)}, optional={
        "kind": sometimes(st.sampled_from(["oci", "engine", "command"])),
        "version": sometimes(HOSTILE), "via": sometimes(st.sampled_from(["api", "cli"])),
        "samples": sometimes(samples), "stats": sometimes(stats),
        "to_exec_stats": sometimes(stats),
        "phase_medians_ms": sometimes(st.dictionaries(HOSTILE, NUMBERS, max_size=3)),
        "warnings": sometimes(st.lists(HOSTILE, max_size=2)),
        "errors": sometimes(st.lists(HOSTILE, max_size=2)),
        "memory": sometimes(sizes), "disk": sometimes(sizes),
        "per_container_bytes": NUMBERS, "daemon_pss_bytes": NUMBERS,
        "density": sometimes(st.lists(sizes, max_size=2)),
        "not_applicable": sometimes(HOSTILE), "transfer_bytes": NUMBERS}))
    return entry


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """Result documents: mostly the right envelope, with anything inside."""
    run_id = draw(st.one_of(st.just("20260102T000000Z-bbbbbb"), HOSTILE))
    doc: dict[str, Any] = {
        "schema_version": draw(st.one_of(st.just(1), st.just(1), st.sampled_from(
            [0, -1, 2, 99, 10**30, True, 1.0, "1", None]))),
        "id": run_id,
        "kind": draw(sometimes(st.sampled_from(KINDS))),
        "created_at": draw(sometimes(st.one_of(st.sampled_from([
            "2026-01-02T00:00:00.000Z", "2026-01-02", "0001-01-01T00:00:00-12:00",
            "9999-12-31T23:59:59.999999+14:00", "2026-13-45T99:00:00Z", "yesterday", ""]),
            st.datetimes().map(lambda d: d.isoformat()), HOSTILE))),
        "complete": draw(JSON_SCALARS),
        "environment": draw(sometimes(st.fixed_dictionaries({}, optional=dict.fromkeys(
            ("host", "os", "kernel", "cpu_model", "cpu_count", "memory_total_bytes",
             "cgroup_version", "runtimes"), JSON_VALUES)))),
        "parameters": draw(sometimes(st.fixed_dictionaries({}, optional={
            k: sometimes(HOSTILE) for k in ("iterations", "network", "image", "via",
                                            "command", "containers", "source",
                                            "registry")}))),
        "runtimes": draw(sometimes(st.lists(runtime_entries(), max_size=3))),
    }
    for extra in draw(st.lists(st.sampled_from(["comparison", "targets", "timing",
                                                "like_for_like_warnings", "surprise"]),
                               max_size=2, unique=True)):
        doc[extra] = draw(JSON_VALUES)
    for key in draw(st.lists(st.sampled_from(sorted(doc)), max_size=2, unique=True)):
        if draw(st.booleans()):
            del doc[key]
    return doc


def nest(depth: int, kind: str) -> str:
    return ("[" * depth + "1" + "]" * depth) if kind == "array" else \
        ('{"a":' * depth + "1" + "}" * depth)


@st.composite
def file_bytes(draw: st.DrawFn) -> bytes:
    """What a file in $FORGE_HOME/benchmarks may hold."""
    shape = draw(st.sampled_from(["doc", "doc", "doc", "json", "bytes", "deep", "huge",
                                  "newer", "not-utf8", "utf16", "truncated"]))
    if shape == "doc":
        return dumps(draw(documents()))
    if shape == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    if shape == "bytes":
        return draw(st.binary(max_size=200))
    if shape == "deep":  # near and past the parser's recursion limit, anywhere in a document
        depth = draw(st.one_of(st.integers(1, 5000), st.integers(900, 1000)))
        where = draw(st.sampled_from(["environment", "parameters", "stats", "samples",
                                      "top", "id"]))
        inner = nest(depth, draw(st.sampled_from(["array", "object"])))
        text = json.dumps(good_document("20260103T000000Z-cccccc"))
        if where == "top":
            return inner.encode()
        if where == "id":
            return text.replace('"20260103T000000Z-cccccc"', inner, 1).encode()
        if where == "environment":
            return text.replace('"os": "Debian"', f'"os": {inner}', 1).encode()
        if where == "parameters":
            return text.replace('"network": "none"', f'"network": {inner}', 1).encode()
        if where == "stats":
            return text.replace('"median_ms": 40.0', f'"median_ms": {inner}', 1).encode()
        return text.replace('"phases_ms": {"run": 39.0}', f'"phases_ms": {inner}', 1).encode()
    if shape == "huge":
        doc = good_document("20260104T000000Z-dddddd")
        size = draw(st.sampled_from([10**5, 2 * 10**6]))
        target = draw(st.sampled_from(["errors", "samples", "os"]))
        if target == "errors":
            doc["runtimes"][0]["errors"] = ["e" * size]
        elif target == "samples":
            doc["runtimes"][0]["samples"] *= size // 5000
        else:
            doc["environment"]["os"] = "\x1b" * size
        return json.dumps(doc).encode()
    if shape == "newer":
        doc = good_document("20260105T000000Z-eeeeee")
        doc["schema_version"] = draw(st.integers(2, 10**30))
        return json.dumps(doc).encode()
    if shape == "not-utf8":
        raw = json.dumps(good_document("20260106T000000Z-ffffff")).encode()
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"])) \
            + raw[at:]
    if shape == "utf16":
        return json.dumps(good_document("20260107T000000Z-999999")).encode(
            draw(st.sampled_from(["utf-16", "utf-32", "utf-8-sig"])))
    raw = dumps(draw(documents()))
    return raw[:draw(st.integers(0, len(raw)))]


def skipped_files(stderr: str) -> set[str]:
    return {m[1] for m in re.finditer(r"^warning: skipping (r\d+\.json):", stderr, re.M)}


def test_result_files_never_crash_history_commands(home: Path) -> None:
    """list, trend, check and machines over a folder of hostile files: every file is listed
    or skipped with one warning line; the good result is always listed."""

    @settings(FAST, max_examples=examples(40))
    @given(files=st.lists(file_bytes(), min_size=1, max_size=4))
    def run(files: list[bytes]) -> None:
        TRIED["result files (history)"] += len(files)
        store = home / "benchmarks"
        shutil.rmtree(home, ignore_errors=True)
        store.mkdir(parents=True)
        write_result(store, good_document("20260101T000000Z-aaaaaa"), "good.json")
        for i, data in enumerate(files):
            (store / f"r{i}.json").write_bytes(data)
        listed = forge(["results", "list", "--json"], home)
        check(listed, warnings=True)
        assert listed.code == 0, listed
        rows = json.loads(listed.stdout)
        names = {r["file"] for r in rows}
        assert "good.json" in names, listed
        assert names | skipped_files(listed.stderr) | {"good.json"} == \
            {"good.json", *(f"r{i}.json" for i in range(len(files)))}, listed
        for argv in (["results", "list"], ["results", "trend"],
                     ["results", "trend", "--metric", "per_container_memory"],
                     ["results", "trend", "--metric", "disk"],
                     ["results", "check"], ["results", "check", "--json"],
                     ["results", "machines"], ["results", "machines", "--json"],
                     ["results", "changes"], ["results", "changes", "--json"]):
            o = forge(argv, home)
            check(o, warnings=True)
            assert o.code in (0, 3), o
            if "--json" in argv:
                json.loads(o.stdout)

    run()


def test_result_files_never_crash_show_and_export(home: Path, tmp_path: Path) -> None:
    """show and export of one hostile file: its content, or one error line."""
    store = home / "benchmarks"
    store.mkdir(parents=True)

    @settings(FAST, max_examples=examples(60))
    @given(data=file_bytes())
    def run(data: bytes) -> None:
        TRIED["result files (show/export)"] += 1
        for old in store.iterdir():
            old.unlink()
        (store / "r0.json").write_bytes(data)
        out = tmp_path / "report.html"
        for argv in (["results", "show", "r0"], ["results", "show", "r0", "--json"],
                     ["results", "export", "r0"], ["results", "export", "r0", "-f", "csv"],
                     ["results", "export", "r0", "-f", "md"],
                     ["results", "export", "r0", "-f", "html", "-o", str(out)]):
            o = forge(argv, home)
            check(o, warnings=True)
            if o.code == 0 and ("--json" in argv or argv[1:] == ["export", "r0"]):
                json.loads(o.stdout)

    run()


HOSTILE_NAMES = ["a\nb.json", "\x1b[2J.json", "[red]x[red].json", "-rf.json", "$(id).json",
                 ".hidden.json", "x.json.tmp", " .json", "\udcff.json", "\u202e.json"]


def test_hostile_file_names_are_skipped_on_one_line(home: Path) -> None:
    store = home / "benchmarks"
    store.mkdir(parents=True)
    write_result(store, good_document("20260101T000000Z-aaaaaa"))
    for name in HOSTILE_NAMES:
        (store / name).write_bytes(b"{not json")
        TRIED["result files (history)"] += 1
    for argv in (["results", "list"], ["results", "list", "--json"], ["results", "trend"],
                 ["results", "check"], ["results", "machines"], ["results", "changes"]):
        o = forge(argv, home)
        check(o, warnings=True)
        assert o.code == 0, o
        warned = [ln for ln in o.stderr.split("\n") if ln.startswith("warning: skipping")]
        # one line per visible *.json file; dotfiles and *.tmp are not results at all
        assert len(warned) == 8, o
        assert "\x1b" not in o.stderr and "\x1b" not in o.stdout, o


def test_control_characters_in_results_never_reach_the_terminal(home: Path) -> None:
    """A result from elsewhere (a colleague, a CI artifact) cannot send escape sequences
    (OSC 52 sets the clipboard, others retitle or redraw the terminal) through forge."""
    store = home / "benchmarks"
    store.mkdir(parents=True)
    esc = "\x1b]52;c;cHduZWQ=\x1b\\\x1b[2J\x9b31m"
    doc = good_document("20260101T000000Z-aaaaaa")
    doc["environment"]["host"] = f"host{esc}"
    doc["environment"]["cpu_model"] = f"cpu{esc}"
    doc["runtimes"][0]["version"] = f"1.1{esc}"
    doc["runtimes"][0]["errors"] = [f"failed{esc}"]
    doc["parameters"]["image"] = f"img{esc}"
    write_result(store, doc)
    write_result(store, good_document("20260102T000000Z-bbbbbb", "2026-01-02T00:00:00Z"))
    bad_id = good_document(f"20260103T000000Z-{esc}", "2026-01-03T00:00:00Z")
    write_result(store, bad_id, "escape-id.json")
    for argv in (["results", "list"], ["results", "show", "20260101T000000Z-aaaaaa"],
                 ["results", "trend"], ["results", "check"], ["results", "machines"],
                 ["results", "changes"], ["results", "changes", "--json"],
                 ["results", "export", "20260101T000000Z-aaaaaa", "-f", "md"],
                 ["results", "export", "20260101T000000Z-aaaaaa", "-f", "csv"]):
        TRIED["result files (show/export)"] += 1
        o = forge(argv, home)
        check(o, warnings=True)
        assert o.code in (0, 3), o
        for stream in (o.stdout, o.stderr):
            assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", stream), (argv, stream)


# --- 4. names, parameters, notifications, launchers ------------------------------------

SHELL_SYNTAX = set(" \t\r\n\x0b\x0c;|&$`'\"<>()*?!{}[]~#\\%=,\x00")
GOOD_IMAGES = ["busybox", "busybox:latest", "forge-bench:busybox",
               "localhost/forge-bench:busybox", "registry.example.com:5000/team/app:1.2-rc_3",
               "busybox@sha256:" + "a" * 64, "127.0.0.1:5000/forge-image-bench:t"]


@FAST
@given(name=st.one_of(HOSTILE, st.tuples(st.sampled_from(GOOD_IMAGES), st.sampled_from(SHELL),
                                         st.sampled_from(["", "\n"])).map("".join)))
@example("busybox:latest\n")
@example("forge-bench:busybox\n--privileged")
def test_image_names_with_syntax_are_refused(name: str) -> None:
    TRIED["image names"] += 1
    try:
        accepted = check_image_name(name)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    assert accepted == name
    assert not set(name) & SHELL_SYNTAX, repr(name)
    assert name.isascii() and name.isprintable() and not name.startswith("-"), repr(name)
    assert ".." not in name


@pytest.mark.parametrize("name", GOOD_IMAGES)
def test_real_image_names_are_accepted(name: str) -> None:
    assert check_image_name(name) == name


class Untouchable:
    """A runtime that fails the test if anything is asked of it."""

    name = "untouchable"
    kind = "engine"

    def __getattr__(self, attr: str) -> Any:
        raise AssertionError(f"the runtime was asked for {attr!r} before the image name was "
                             "checked")


SYNTAX = [s for s in SHELL if set(s) & SHELL_SYNTAX]


@settings(FAST, max_examples=examples(60))
@given(name=st.tuples(st.sampled_from(GOOD_IMAGES), st.sampled_from(SYNTAX)).map("".join))
@example("busybox\n")
def test_hostile_image_is_refused_before_any_runtime_is_asked(name: str) -> None:
    TRIED["image names"] += 1
    ctx = RunContext("20260101T000000Z-aaaaaa", "host/1/1")
    with pytest.raises(UsageError, match="not a valid image name"):
        prepare_image([Untouchable()], ctx, name)  # type: ignore[list-item]


RAW_PARAMS = st.one_of(HOSTILE, st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                       st.booleans(), st.none(), st.lists(HOSTILE, max_size=3),
                       st.tuples(HOSTILE), st.dictionaries(st.text(max_size=3), HOSTILE,
                                                           max_size=2))
SAFE_TOKEN = re.compile(r"[A-Za-z0-9._:/@+-]*")


@settings(FAST, max_examples=examples(300))
@given(action_id=st.sampled_from(sorted(actions.ACTIONS)), data=st.data())
def test_action_parameters_refuse_syntax(action_id: str, data: st.DataObject) -> None:
    action = actions.ACTIONS[action_id]
    assume(action.params)
    param = data.draw(st.sampled_from(action.params))
    raw = data.draw(RAW_PARAMS)
    TRIED["action parameters"] += 1
    try:
        value = param.coerce(raw)
    except UsageError as exc:
        assert "\n" not in str(exc) and "\r" not in str(exc), str(exc)
        return
    if param.kind == "runtimes":
        assert all(actions.RUNTIME_NAME_RE.fullmatch(v) for v in value), value
    elif param.kind in ("int", "float"):
        assert isinstance(value, int | float) and not isinstance(value, bool)
        assert math.isfinite(value), value
        assert param.minimum is None or value >= param.minimum
        assert param.maximum is None or value <= param.maximum
    elif param.kind == "str":
        assert SAFE_TOKEN.fullmatch(value), repr(value)
    argv = action.argv({param.name: raw})
    for token in argv:
        assert SAFE_TOKEN.fullmatch(token), (raw, argv)


@settings(FAST, max_examples=examples(100))
@given(names=st.lists(HOSTILE, min_size=1, max_size=3))
@example(["docker\n"])
def test_runtime_names_with_syntax_are_refused(names: list[str]) -> None:
    """A runtime name reaches argv, labels and notifications: only [a-z][a-z0-9_-]*."""
    TRIED["runtime names"] += 1
    param = actions.ACTIONS["startup"].params[0]
    assert param.kind == "runtimes"
    try:
        value = param.coerce(names)
    except UsageError:
        value = None
    if value is not None:
        assert all(re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", n) for n in value), value
    from forge_desktop.config import parse_config
    from forge_desktop.errors import ConfigError

    for name in names:
        try:
            config = parse_config({"runtimes": {name: {"run": ["/nonexistent/x"]}}})
        except ConfigError as exc:
            assert "\n" not in str(exc).replace("\\n", "")
            continue
        assert all(re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", c.name)
                   for c in config.command_runtimes), repr(name)


# notifications ---------------------------------------------------------------------------

ENTITY = re.compile(r"&(?:amp|lt|gt|quot|#x27|#39);")


def _is_control(c: str) -> bool:
    return (c < " " and c not in "\n\t") or c == "\x7f" or "\ud800" <= c <= "\udfff"


def assert_plain_markup(sent: str, original: str, limit: int) -> None:
    """``sent`` shows ``original`` (its first ``limit`` characters) literally on a server that
    renders the notification markup (<b>, <i>, <a href>, <img>): no tag, no cut entity, no
    NUL (D-Bus refuses it), nothing added."""
    assert "<" not in sent and ">" not in sent, sent
    assert all(ENTITY.match(sent, m.start()) for m in re.finditer("&", sent)), sent
    shown = html.unescape(sent)
    assert not any(_is_control(c) for c in shown), repr(sent)
    assert len(shown) <= limit
    rest = iter(original[:limit].encode("utf-8", "replace").decode("utf-8"))
    assert all(c in rest for c in shown), (sent, original)  # a subsequence, in order
    if not any(_is_control(c) for c in original):
        assert shown == original[:limit], (sent, original)


class RecordingNotifier:
    sent: list[dict[str, Any]] = []

    _backend = None  # no D-Bus backend: forge's desktop-entry hint wrapper leaves it alone

    def __init__(self, app_name: str, app_icon: Any = None) -> None:
        self.app_name = app_name
        self.app_icon = app_icon

    async def send(self, **kwargs: Any) -> None:
        RecordingNotifier.sent.append(kwargs)


async def _server_answers(timeout_s: float = 2.0) -> None:
    return None


@settings(FAST, max_examples=examples(200))
@given(title=st.one_of(HOSTILE, st.text(min_size=190, max_size=260)),
       body=st.one_of(HOSTILE, st.text(min_size=980, max_size=1100),
                      st.integers(0, 1100).map(lambda n: "x" * n + "&<>" * 5)))
def test_notification_bodies_are_escaped(title: str, body: str) -> None:
    TRIED["notification bodies"] += 1
    RecordingNotifier.sent.clear()
    n = notify.Notifier()
    with mock.patch.object(notify, "server_available", _server_answers), \
            mock.patch("desktop_notifier.DesktopNotifier", RecordingNotifier):
        assert asyncio.run(n._send(title, body, None)) == "sent"
    (call,) = RecordingNotifier.sent
    assert_plain_markup(call["title"], title, 200)
    assert_plain_markup(call["message"], body, 1000)


@pytest.fixture
def private_bus(tmp_path: Path) -> Iterator[str]:
    """A session bus of our own: the tray tests' notification server is not disturbed and
    does not answer in its place."""
    proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address.startswith("unix:"), address
        yield address
    finally:
        proc.terminate()
        proc.wait(10)


def test_notification_markup_arrives_escaped_over_dbus(private_bus: str,
                                                       tmp_path: Path) -> None:
    """The real path: desktop-notifier over D-Bus to the recording server of the GUI tests."""
    record = tmp_path / "notify.jsonl"
    with environ(DBUS_SESSION_BUS_ADDRESS=private_bus):
        server = subprocess.Popen([sys.executable, "-m", "tests.gui.notify_server",
                                   str(record)], cwd=Path(__file__).resolve().parents[2],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            bodies = [f"<b>runc</b> & <a href='https://example.com'>x</a> {s}"
                      for s in SHELL[:20]] + ["&amp;" * 300]
            n = notify.Notifier()
            try:
                for body in bodies:
                    TRIED["notification bodies"] += 1
                    assert n.notify("<i>Startup</i>", body).result(timeout=20) == "sent"
            finally:
                n.close()
        finally:
            server.terminate()
            server.wait(10)
    calls = [json.loads(ln) for ln in record.read_text().splitlines()]
    assert len(calls) == len(bodies)
    for call, body in zip(calls, bodies, strict=True):
        assert_plain_markup(call["summary"], "<i>Startup</i>", 200)
        assert_plain_markup(call["body"], body, 1000)


# .desktop Exec lines ------------------------------------------------------------------------

RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def spec_unescape_string(value: str) -> str:
    """Desktop Entry spec, "Possible value types": \\s \\n \\t \\r \\\\ in a string value."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(
                nxt, "\\" + nxt))
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def spec_parse_exec(value: str) -> list[str]:
    """Written from the spec, "The Exec key", independently of forge_desktop.desktop: undo the
    string escapes, split on unquoted spaces, undo double quotes (inside them a backslash
    escapes ``"`` `` ` `` ``$`` ``\\``), then expand ``%%``; any other field code or an
    unquoted reserved character is a malformed line."""
    text = spec_unescape_string(value)
    args: list[str] = []
    i, current, in_arg = 0, "", False
    while i < len(text):
        c = text[i]
        if c == " ":
            if in_arg:
                args.append(current)
            current, in_arg = "", False
            i += 1
            continue
        in_arg = True
        if c == '"':
            i += 1
            while True:
                assert i < len(text), f"unterminated quote in {value!r}"
                c = text[i]
                if c == "\\":
                    assert text[i + 1] in '"`$\\', f"bad escape in {value!r}"
                    current += text[i + 1]
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    current += c
                    i += 1
            continue
        assert c not in RESERVED, f"unquoted reserved {c!r} in {value!r}"
        current += c
        i += 1
    if in_arg:
        args.append(current)
    expanded = []
    for arg in args:
        out, j = "", 0
        while j < len(arg):
            if arg[j] == "%":
                assert arg[j + 1:j + 2] == "%", f"field code %{arg[j + 1:j + 2]} in {value!r}"
                out += "%"
                j += 2
            else:
                out += arg[j]
                j += 1
        expanded.append(out)
    return expanded


EXEC_ARGS = st.one_of(HOSTILE, st.text(alphabet=st.sampled_from(sorted(RESERVED - {"\n", "\t"})
                                                                + list("%ab=é\\"))))


@settings(FAST, max_examples=examples(400))
@given(args=st.lists(EXEC_ARGS, min_size=1, max_size=5))
def test_exec_quoting_round_trips_per_the_spec(args: list[str]) -> None:
    TRIED["exec arguments"] += len(args)
    argv = ["/usr/bin/forge", *args]
    try:
        line = desktop.exec_line(argv)
    except ForgeError as exc:  # refused: only for characters an Exec line cannot carry
        assert any(ord(c) < 0x20 or c == "\x7f" for a in args for c in a), (args, exc)
        return
    assert "\n" not in line and "\r" not in line
    assert spec_parse_exec(line) == argv, line


def _probe_argv(record: Path) -> list[str]:
    """A program that records its own argv (as JSON) and does nothing else. It writes a temp
    file and renames it: once the record exists, it is whole."""
    code = ("import json,os,sys; open(sys.argv[1] + '.tmp', 'w').write(json.dumps(sys.argv[2:]));"
            " os.rename(sys.argv[1] + '.tmp', sys.argv[1])")
    return [sys.executable, "-c", code, str(record)]


PAYLOADS = [f"$(touch {MARKER})", f"`touch {MARKER}`", f"x; touch {MARKER}",
            f"x | touch {MARKER}", f"x && touch {MARKER}", f"$(touch {MARKER})%u",
            f"\"$(touch {MARKER})\"", f"'$(touch {MARKER})'", f"\\\"; touch {MARKER}; \\\"",
            "%f", "%%u", "$HOME", "~", "*", "a\\b", "#comment", "a=b"]


def test_exec_line_runs_no_payload_when_run_without_a_shell(tmp_path: Path) -> None:
    """Parsed the spec's way and run with subprocess (no shell): the program gets each
    payload as one literal argument and nothing runs."""
    MARKER.unlink(missing_ok=True)
    record = tmp_path / "argv.json"
    line = desktop.exec_line([*_probe_argv(record), *PAYLOADS])
    TRIED["exec arguments"] += len(PAYLOADS)
    argv = spec_parse_exec(line)
    subprocess.run(argv, check=True, timeout=30)
    assert json.loads(record.read_text()) == PAYLOADS
    assert not MARKER.exists()


def test_exec_line_runs_no_payload_when_glib_launches_it(tmp_path: Path) -> None:
    """GLib's own launcher (gio launch: GKeyFile, field codes, g_shell_parse_argv), an
    implementation independent of ours, also passes each payload as one literal argument."""
    assert shutil.which("gio"), "gio is missing: scripts/provision.sh installs libglib2.0-bin"
    MARKER.unlink(missing_ok=True)
    record = tmp_path / "argv.json"
    entry = tmp_path / "forge-hostile.desktop"
    entry.write_text("[Desktop Entry]\nType=Application\nName=forge hostile\n"
                     f"Exec={desktop.exec_line([*_probe_argv(record), *PAYLOADS])}\n")
    TRIED["exec arguments"] += len(PAYLOADS)
    subprocess.run(["gio", "launch", str(entry)], check=True, timeout=30,
                   capture_output=True)
    # gio returns once the program is spawned; the record appears whole when it has run
    wait_for("the launched program's record", record.exists, 20)
    assert json.loads(record.read_text()) == PAYLOADS
    assert not MARKER.exists()
