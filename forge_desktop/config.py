"""``$FORGE_HOME/config.toml`` (FORGE_HOME defaults to ``~/.forge``); defaults live here in code."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge_desktop.errors import ConfigError
from forge_desktop.hosts import Host, parse_hosts

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Ubuntu 22.04): the same parser, packaged as tomli
    import tomli as tomllib

DEFAULT_IMAGE = "busybox:latest"
FALLBACK_IMAGE = "forge-bench:busybox"
"""Built from the host's static busybox when no registry answers (see image.py)."""

MAX_ITERATIONS = 1000
"""Cap on ``-n``: 1000 container starts take 5-10 minutes on an engine; more is a typo."""
MAX_WARMUP = 100
DEFAULT_TIMEOUT_S = 30.0
"""Every call to an engine gives up after this long (config: ``benchmark.timeout_s``)."""

CHECK_SETTINGS = {"max_regression_pct": (0.01, 1000.0), "alpha": (1e-9, 0.5),
                  "session_drift_pct": (0.0, 1000.0)}
"""The keys of ``[check]`` and their ranges."""

BUILTIN_RUNTIMES = ("docker", "podman", "runc", "crun")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def forge_home() -> Path:
    env = os.environ.get("FORGE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".forge"


def benchmarks_dir() -> Path:
    return forge_home() / "benchmarks"


def profiles_dir() -> Path:
    return forge_home() / "profiles"


def config_path() -> Path:
    return forge_home() / "config.toml"


@dataclass(frozen=True)
class CommandRuntimeConfig:
    """A user-defined CLI runtime: argument lists with ``{image}`` and ``{command}`` slots."""

    name: str
    run: tuple[str, ...]
    version: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Config:
    image: str = DEFAULT_IMAGE
    iterations: int = 10
    warmup: int = 2
    timeout_s: float = DEFAULT_TIMEOUT_S
    command_runtimes: tuple[CommandRuntimeConfig, ...] = ()
    targets: dict[str, float] = field(default_factory=dict)
    check: dict[str, float] = field(default_factory=dict)
    """``[check]``: the settings of ``forge results check`` given here (results/history.py
    holds their defaults; the command line wins)."""
    hosts: tuple[Host, ...] = ()
    """``[hosts.NAME]``: remote hosts a benchmark may run on (forge_desktop/hosts.py)."""
    source: Path | None = None


def _argv(value: Any, where: str) -> tuple[str, ...]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(a, str) and a for a in value)):
        raise ConfigError(
            f"{where} must be a non-empty list of strings, e.g. "
            '["forge-runtime", "run", "--rm", "{image}", "{command}"]; got ' + repr(value)[:80]
        )
    return tuple(value)


def _number(table: dict[str, Any], key: str, default: float, where: str,
            lo: float, hi: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}.{key} must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{where}.{key} must be between {lo:g} and {hi:g}, got {value!r}")
    return float(value)


def parse_config(data: dict[str, Any], source: Path | None = None) -> Config:
    where = str(source) if source else "config.toml"
    bench = data.get("benchmark", {})
    if not isinstance(bench, dict):
        raise ConfigError(f"{where}: [benchmark] must be a table")
    image = bench.get("image", DEFAULT_IMAGE)
    if not isinstance(image, str) or not image.strip():
        raise ConfigError(f"{where}: benchmark.image must be an image name, got {image!r}")
    runtimes: list[CommandRuntimeConfig] = []
    table = data.get("runtimes", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [runtimes] must be a table of [runtimes.NAME] tables")
    for name, spec in table.items():
        if not _NAME_RE.fullmatch(name):  # not match: "$" would let "name\n" through
            raise ConfigError(f"{where}: runtime name {name!r} must match {_NAME_RE.pattern}")
        if name in BUILTIN_RUNTIMES:
            raise ConfigError(f"{where}: [runtimes.{name}] would shadow the built-in runtime "
                              f"{name!r}; pick another name")
        if not isinstance(spec, dict) or "run" not in spec:
            raise ConfigError(f"{where}: [runtimes.{name}] needs run = [\"binary\", ...]")
        run = _argv(spec["run"], f"{where}: runtimes.{name}.run")
        version = _argv(spec["version"], f"{where}: runtimes.{name}.version") \
            if "version" in spec else None
        runtimes.append(CommandRuntimeConfig(name, run, version))
    targets_raw = data.get("targets", {})
    if not isinstance(targets_raw, dict):
        raise ConfigError(f"{where}: [targets] must be a table")
    targets = {k: _number(targets_raw, k, 0, f"{where}: targets", 0, 1e12) for k in targets_raw}
    check_raw = data.get("check", {})
    if not isinstance(check_raw, dict):
        raise ConfigError(f"{where}: [check] must be a table")
    unknown = sorted(set(check_raw) - set(CHECK_SETTINGS))
    if unknown:
        raise ConfigError(f"{where}: [check] has no setting {unknown[0]!r}; the settings are "
                          f"{', '.join(CHECK_SETTINGS)}")
    check = {k: _number(check_raw, k, 0, f"{where}: check", *CHECK_SETTINGS[k])
             for k in check_raw}
    hosts = parse_hosts(data.get("hosts", {}), where)
    return Config(
        image=image.strip(),
        iterations=int(_number(bench, "iterations", 10, f"{where}: benchmark", 1,
                               MAX_ITERATIONS)),
        warmup=int(_number(bench, "warmup", 2, f"{where}: benchmark", 0, MAX_WARMUP)),
        timeout_s=_number(bench, "timeout_s", DEFAULT_TIMEOUT_S, f"{where}: benchmark", 1, 3600),
        command_runtimes=tuple(runtimes),
        targets=targets,
        check=check,
        hosts=hosts,
        source=source,
    )


def load_config(path: Path | None = None) -> Config:
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return Config()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}; check its permissions") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix it or move it aside") from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively: a thousand "[" exhaust
        # the stack (tests/faults/test_hostile.py). No config is nested like that.
        raise ConfigError(f"{path} is nested too deeply to be a forge config; fix it or move "
                          "it aside") from None
    return parse_config(data, path)
