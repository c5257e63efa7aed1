"""The action registry: every user-facing action, defined once.

The tray menu, the results window's run panel, the shortcut module (`forge-shortcut`), the
.desktop launcher actions and the ``forge benchmark ...`` options are all rendered from
``ACTIONS``. An action has typed parameters with defaults, limits, the config.toml key a
default comes from, and the CLI flags that set them; the ``forge`` argv that runs it from a
terminal; for benchmarks a runner that returns the saved result, for views the ``forge``
arguments that open its window. Adding an action, or a parameter, is one entry.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from forge_desktop.errors import UsageError

if TYPE_CHECKING:
    from forge_desktop.config import Config

ProgressFn = Callable[[str, int, int, bool], None]
LogFn = Callable[[str], None]
Runner = Callable[[Mapping[str, Any], "Config", ProgressFn, threading.Event, LogFn],
                  tuple[dict[str, Any], Path | None]]
RUNTIME_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}(?:@[A-Za-z0-9][A-Za-z0-9._-]{0,63})?")
"""A runtime's name; ``ENGINE@ENDPOINT`` is transport mode (a docker context or podman
connection, runtimes/transport.py)."""
ParamKind = Literal["int", "float", "str", "bool", "runtimes", "ints"]

_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._:/@+-]*$")
"""Parameter values are names and numbers: anything else (spaces, quotes, `;`, `$`, newlines,
markup) is refused, so no value can smuggle syntax into an argv, an Exec line or a notification."""

CONFIG_DEFAULTS: dict[str, Callable[[Config], Any]] = {
    "benchmark.iterations": lambda c: c.iterations,
    "benchmark.warmup": lambda c: c.warmup,
}
"""The config.toml keys a parameter's default may come from, and how to read them."""


def _either(choices: tuple[str, ...]) -> str:
    """"load or pull", "none, host or default"."""
    return choices[0] if len(choices) == 1 else \
        f"{', '.join(choices[:-1])} or {choices[-1]}"


@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind
    default: Any
    """The built-in default; with ``config`` set, only when config.toml does not say."""
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    flags: tuple[str, ...] = ()
    """The ``forge`` flags that set it (the first is what ``Action.argv`` writes); empty:
    ``--name``."""
    config: str | None = None
    """A config.toml key (one of ``CONFIG_DEFAULTS``) the default is read from at run time."""

    def __post_init__(self) -> None:
        if self.config is not None and self.config not in CONFIG_DEFAULTS:
            raise ValueError(f"{self.name}: no config key {self.config!r}")

    @property
    def cli_flags(self) -> tuple[str, ...]:
        return self.flags or (f"--{self.name.replace('_', '-')}",)

    def default_for(self, config: Config | None) -> Any:
        """The default as a run sees it: config.toml's value where there is one."""
        if config is not None and self.config is not None:
            return self.coerce(CONFIG_DEFAULTS[self.config](config))
        return self.default

    def default_text(self) -> str:
        """How ``--help`` and the docs say the default: "config benchmark.iterations, else
        10"."""
        shown = (",".join(self.default) or "every available one") if self.kind == "runtimes" \
            else ",".join(map(str, self.default)) if self.kind == "ints" \
            else (str(self.default) or '""')
        return f"config {self.config}, else {shown}" if self.config else shown

    def coerce(self, raw: Any, label: str | None = None) -> Any:
        """A typed, validated value from a raw one (a string from a command line or a value
        from a widget); one clear UsageError otherwise, naming the parameter as ``label``
        (the CLI passes its flag)."""
        where = label or f"parameter {self.name!r}"
        if self.kind == "runtimes":
            items = raw if isinstance(raw, list | tuple) else [
                s for s in str(raw).split(",") if s]
            for item in items:
                # fullmatch: with match, "$" also matches before a final "\n" ("docker\n")
                if not isinstance(item, str) or not RUNTIME_NAME_RE.fullmatch(item):
                    raise UsageError(f"{where}: {item!r} is not a runtime name (NAME, or "
                                     "docker@CONTEXT / podman@CONNECTION for a remote engine)")
            return tuple(items)
        if self.kind == "ints":  # "1,2,4,8" (a command line, a text field) or a list
            parts = list(raw) if isinstance(raw, list | tuple) else str(raw).split(",")
            if not parts or parts == [""]:
                raise UsageError(f"{where} needs at least one number, e.g. 1,2,4")
            values: list[int] = []
            for part in parts:
                if isinstance(part, bool) or not re.fullmatch(r"\s*\d{1,6}\s*", str(part)):
                    raise UsageError(f"{where} takes whole numbers separated by commas, "
                                     f"got {str(raw)[:40]!r}")
                values.append(int(str(part)))
            if any((self.minimum is not None and v < self.minimum)
                   or (self.maximum is not None and v > self.maximum) for v in values):
                raise UsageError(f"{where}: each number must be between {self.minimum:g} and "
                                 f"{self.maximum:g}, got {str(raw)[:40]!r}")
            return tuple(values)
        if self.kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise UsageError(f"{where} must be true or false, got {raw!r}")
        if self.kind in ("int", "float"):
            if isinstance(raw, bool):
                raise UsageError(f"{where} must be a number, got {raw!r}")
            try:
                value: float = int(str(raw)) if self.kind == "int" else float(str(raw))
            except ValueError:
                noun = "an integer" if self.kind == "int" else "a number"
                raise UsageError(f"{where} must be {noun}, got {str(raw)[:40]!r}") from None
            if value != value or (self.minimum is not None and value < self.minimum) or (
                    self.maximum is not None and value > self.maximum):
                raise UsageError(f"{where} must be between {self.minimum:g} and "
                                 f"{self.maximum:g}, got {raw!r}")
            return value
        text = str(raw)
        if not _SAFE_VALUE.fullmatch(text) or len(text) > 200:  # fullmatch: see above
            raise UsageError(f"{where}: {text[:40]!r} contains characters that are not allowed "
                             "(letters, digits and ._:/@+- only)")
        if self.choices and text not in self.choices:
            raise UsageError(f"{where} must be {_either(self.choices)}, got {text!r}")
        return text


@dataclass(frozen=True)
class Action:
    id: str
    title: str
    description: str
    command: tuple[str, ...]
    """The ``forge`` subcommand that does the same from a terminal."""
    params: tuple[Param, ...] = ()
    runner: Runner | None = None
    """None for actions that open a view rather than run a benchmark."""
    view: tuple[str, ...] | None = None
    """The ``forge`` arguments that open this action's window (views only)."""

    def __post_init__(self) -> None:
        if (self.runner is None) == (self.view is None):
            raise ValueError(f"{self.id}: an action either runs (runner) or opens (view)")

    @property
    def is_benchmark(self) -> bool:
        return self.runner is not None

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def validate(self, raw: Mapping[str, Any], cli: bool = False) -> dict[str, Any]:
        """Typed values of the parameters given (none filled in); errors name the CLI flag
        with ``cli``."""
        known = {p.name: p for p in self.params}
        unknown = [k for k in raw if k not in known]
        if unknown:
            names = ", ".join(known) or "none"
            raise UsageError(f"action {self.id!r} has no parameter {unknown[0]!r} "
                             f"(parameters: {names})")
        return {p.name: p.coerce(raw[p.name], p.cli_flags[-1] if cli else None)
                for p in self.params if p.name in raw}

    def resolve(self, raw: Mapping[str, Any], config: Config | None,
                cli: bool = False) -> dict[str, Any]:
        """Every parameter: the given ones validated, the others their default, from
        ``config`` (config.toml) where the parameter names a key."""
        given = self.validate(raw, cli)
        return {p.name: given[p.name] if p.name in given else p.default_for(config)
                for p in self.params}

    def coerce(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """``resolve`` with the built-in defaults (no config.toml)."""
        return self.resolve(raw, None)

    def argv(self, params: Mapping[str, Any] | None = None) -> list[str]:
        """The ``forge`` argv for these parameters. A parameter equal to its built-in default
        is left out unless its default comes from config.toml (there, leaving it out would
        mean config.toml's value, which may differ)."""
        params = params or {}
        values = self.validate(params)
        argv = list(self.command)
        for p in self.params:
            if p.name not in values or (values[p.name] == p.default and p.config is None):
                continue
            value, flag = values[p.name], p.cli_flags[0]
            if p.kind == "runtimes":
                for name in value:
                    argv += [flag, name]
            elif p.kind == "bool":
                argv += [flag] if value else []
            elif p.kind == "ints":
                argv += [flag, ",".join(map(str, value))]
            else:
                argv += [flag, str(value)]
        return argv

    def run(self, params: Mapping[str, Any], progress: ProgressFn, cancel: threading.Event,
            log: LogFn = lambda _m: None) -> tuple[dict[str, Any], Path | None]:
        """Run the benchmark with ``params``; the others take their defaults, read from the
        user's config.toml now (every front end honours it the same way)."""
        if self.runner is None:
            raise UsageError(f"{self.id} opens a view; it has nothing to run")
        from forge_desktop.config import load_config

        config = load_config()
        return self.runner(self.resolve(params, config), config, progress, cancel, log)


# -- runners: thin adapters from parameters to the benchmark modules -----------------------

def _startup(p: Mapping[str, Any], config: Config, progress: ProgressFn,
             cancel: threading.Event, log: LogFn) -> tuple[dict[str, Any], Path | None]:
    from forge_desktop.bench.startup import StartupOptions, run_startup

    opts = StartupOptions(p["runtime"], p["iterations"], p["warmup"], p["network"])
    return run_startup(opts, config, progress=progress, cancel=cancel, log=log)


def _canary(p: Mapping[str, Any], config: Config, progress: ProgressFn,
            cancel: threading.Event, log: LogFn) -> tuple[dict[str, Any], Path | None]:
    from forge_desktop.bench.canary import CanaryOptions, run_canary

    opts = CanaryOptions(p["runtime"], p["iterations"], p["warmup"])
    return run_canary(opts, config, progress=progress, cancel=cancel, log=log)


def _compare(p: Mapping[str, Any], config: Config, progress: ProgressFn,
             cancel: threading.Event, log: LogFn) -> tuple[dict[str, Any], Path | None]:
    from forge_desktop.bench.compare import CompareOptions, run_compare

    opts = CompareOptions(p["runtime"], p["iterations"], p["warmup"], p["baseline"] or None,
                          p["network"], containers=p["containers"])
    return run_compare(opts, config, progress=progress, cancel=cancel, log=log)


def _memory(p: Mapping[str, Any], config: Config, progress: ProgressFn,
            cancel: threading.Event, log: LogFn) -> tuple[dict[str, Any], Path | None]:
    from forge_desktop.bench.memory import MemoryOptions, run_memory

    opts = MemoryOptions(p["runtime"], p["containers"], p["samples"])
    return run_memory(opts, config, progress=progress, cancel=cancel, log=log)


def _disk(p: Mapping[str, Any], config: Config, progress: ProgressFn,
          cancel: threading.Event, log: LogFn) -> tuple[dict[str, Any], Path | None]:
    from forge_desktop.bench.disk import DiskOptions, run_disk

    return run_disk(DiskOptions(p["runtime"]), config, progress=progress, cancel=cancel,
                    log=log)


def _image(p: Mapping[str, Any], config: Config, progress: ProgressFn,
           cancel: threading.Event, log: LogFn) -> tuple[dict[str, Any], Path | None]:
    from forge_desktop.bench.images import ImageOptions, run_image_bench

    opts = ImageOptions(runtimes=p["runtime"], source=p["source"], iterations=p["iterations"],
                        warmup=p["warmup"])
    return run_image_bench(opts, config, progress=progress, cancel=cancel, log=log)


def _scale(p: Mapping[str, Any], config: Config, progress: ProgressFn,
           cancel: threading.Event, log: LogFn) -> tuple[dict[str, Any], Path | None]:
    from forge_desktop.bench.scale import ScaleOptions, run_scale

    opts = ScaleOptions(p["runtime"], p["concurrency"], p["iterations"], p["warmup"])
    return run_scale(opts, config, progress=progress, cancel=cancel, log=log)


_RUNTIMES = Param("runtime", "runtimes", (), "Runtime to measure (repeatable)",
                  flags=("-r", "--runtime"))
_ITERATIONS = Param("iterations", "int", 10, "Measured iterations per runtime", 1, 1000,
                    flags=("-n", "--iterations"), config="benchmark.iterations")
_WARMUP = Param("warmup", "int", 2, "Unmeasured runs first", 0, 100,
                config="benchmark.warmup")
_NETWORK = Param("network", "str", "none", "Network mode", choices=("none", "host", "default"))


ACTIONS: dict[str, Action] = {a.id: a for a in (
    Action("startup", "Startup benchmark", "Time a fresh container on every runtime",
           ("benchmark", "startup"), (_RUNTIMES, _ITERATIONS, _WARMUP, _NETWORK), _startup),
    Action("canary", "Canary round", "A short startup round on every runtime, the one the "
           "tray repeats to watch for a slowdown", ("canary",),
           (_RUNTIMES,
            Param("iterations", "int", 5, "Measured iterations per runtime", 1, 1000,
                  flags=("-n", "--iterations")),
            Param("warmup", "int", 1, "Unmeasured runs first", 0, 100)),
           _canary),
    Action("compare", "Compare runtimes", "Startup, memory and disk of every runtime side by "
           "side", ("benchmark", "compare"),
           (_RUNTIMES, _ITERATIONS, _WARMUP,
            Param("baseline", "str", "", "Runtime the others are compared with (default: the "
                  "slowest)"),
            Param("containers", "int", 3, "Containers for the memory phase", 1, 50), _NETWORK),
           _compare),
    Action("memory", "Memory benchmark", "Daemon and per-container memory",
           ("benchmark", "memory"),
           (_RUNTIMES, Param("containers", "int", 5, "Containers to start", 1, 50),
            Param("samples", "int", 10, "Samples over time while they run", 1, 10000)),
           _memory),
    Action("disk", "Disk usage", "Image store and per-container disk use",
           ("benchmark", "disk"), (_RUNTIMES,), _disk),
    Action("image", "Image load", "Cold image load from a saved tar",
           ("benchmark", "image"),
           (Param("runtime", "runtimes", (), "Engine to measure (repeatable; those without "
                  "an image store are skipped)", flags=("-r", "--runtime")),
            Param("source", "str", "load", "load: the engine loads a saved tar (docker/podman "
                  "load); pull: a pull from --registry", choices=("load", "pull")),
            Param("iterations", "int", 5, "Measured iterations per engine", 1, 1000,
                  flags=("-n", "--iterations")),
            Param("warmup", "int", 1, "Unmeasured (still cold) loads or pulls first", 0, 100)),
           _image),
    Action("scale", "Concurrency scaling", "Throughput and latency with many containers "
           "starting at once", ("benchmark", "scale"),
           (_RUNTIMES,
            Param("concurrency", "ints", (1, 2, 4, 8), "Lifecycles in flight at once, one "
                  "level each, increasing", 1, 32),
            Param("iterations", "int", 20, "Container lifecycles per concurrency level", 1,
                  1000, flags=("-n", "--iterations")),
            _WARMUP),
           _scale),
    Action("results", "Open results", "The results window", ("window",), view=("window",)),
    Action("resources", "System resources", "CPU, memory, disk and containers now",
           ("benchmark", "resources"), view=("window", "--resources")),
)}


def get_action(action_id: str) -> Action:
    try:
        return ACTIONS[action_id]
    except KeyError:
        raise UsageError(f"unknown action {action_id!r}; actions: "
                         f"{', '.join(ACTIONS)}") from None


def headline(doc: Mapping[str, Any]) -> str:
    """The one-line summary a notification shows, shared by every front end."""
    from forge_desktop.results.document import notification

    return notification(doc)
