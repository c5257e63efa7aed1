"""The action registry: every user-facing action, defined once.

The tray menu, the results window's run panel, the shortcut module (`forge-shortcut`) and the
.desktop launcher actions are all rendered from ``ACTIONS``. An action has typed parameters
with defaults and validation, the ``forge`` argv that runs it from a terminal, and for
benchmarks a runner that returns the saved result. Adding an action is one entry.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from forge_desktop.errors import UsageError

ProgressFn = Callable[[str, int, int, bool], None]
LogFn = Callable[[str], None]
Runner = Callable[[Mapping[str, Any], ProgressFn, threading.Event, LogFn],
                  tuple[dict[str, Any], Path | None]]
ParamKind = Literal["int", "float", "str", "bool", "runtimes"]

_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._:/@+-]*$")
"""Parameter values are names and numbers: anything else (spaces, quotes, `;`, `$`, newlines,
markup) is refused, so no value can smuggle syntax into an argv, an Exec line or a notification."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None

    def coerce(self, raw: Any) -> Any:
        """A typed, validated value from a raw one (a string from a command line or a value
        from a widget); one clear UsageError otherwise."""
        where = f"parameter {self.name!r}"
        if self.kind == "runtimes":
            items = raw if isinstance(raw, list | tuple) else [
                s for s in str(raw).split(",") if s]
            for item in items:
                # fullmatch: with match, "$" also matches before a final "\n" ("docker\n")
                if not isinstance(item, str) or not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", item):
                    raise UsageError(f"{where}: {item!r} is not a runtime name")
            return tuple(items)
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
            raise UsageError(f"{where} must be one of {', '.join(self.choices)}, got {text!r}")
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
    flags: Mapping[str, str] | None = None
    """Parameter name -> CLI flag, where it differs from ``--name``."""

    @property
    def is_benchmark(self) -> bool:
        return self.runner is not None

    def coerce(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        known = {p.name: p for p in self.params}
        unknown = [k for k in raw if k not in known]
        if unknown:
            names = ", ".join(known) or "none"
            raise UsageError(f"action {self.id!r} has no parameter {unknown[0]!r} "
                             f"(parameters: {names})")
        return {p.name: p.coerce(raw[p.name]) if p.name in raw else p.default
                for p in self.params}

    def argv(self, params: Mapping[str, Any] | None = None) -> list[str]:
        """The ``forge`` argv for these parameters (defaults omitted)."""
        values = self.coerce(params or {})
        argv = list(self.command)
        for p in self.params:
            value = values[p.name]
            if value == p.default:
                continue
            flag = (self.flags or {}).get(p.name, f"--{p.name.replace('_', '-')}")
            if p.kind == "runtimes":
                for name in value:
                    argv += [flag, name]
            elif p.kind == "bool":
                argv += [flag] if value else []
            else:
                argv += [flag, str(value)]
        return argv

    def run(self, params: Mapping[str, Any], progress: ProgressFn, cancel: threading.Event,
            log: LogFn = lambda _m: None) -> tuple[dict[str, Any], Path | None]:
        if self.runner is None:
            raise UsageError(f"{self.id} opens a view; it has nothing to run")
        return self.runner(self.coerce(params), progress, cancel, log)


# -- runners: thin adapters from parameters to the benchmark modules -----------------------

def _config() -> Any:
    from forge_desktop.config import load_config

    return load_config()


def _startup(p: Mapping[str, Any], progress: ProgressFn, cancel: threading.Event,
             log: LogFn) -> tuple[dict[str, Any], Path | None]:
    from forge_desktop.bench.startup import StartupOptions, run_startup

    opts = StartupOptions(p["runtime"], p["iterations"], p["warmup"], p["network"])
    return run_startup(opts, _config(), progress=progress, cancel=cancel, log=log)


def _compare(p: Mapping[str, Any], progress: ProgressFn, cancel: threading.Event,
             log: LogFn) -> tuple[dict[str, Any], Path | None]:
    from forge_desktop.bench.compare import CompareOptions, run_compare

    opts = CompareOptions(p["runtime"], p["iterations"], p["warmup"], p["baseline"] or None,
                          containers=p["containers"])
    return run_compare(opts, _config(), progress=progress, cancel=cancel, log=log)


def _memory(p: Mapping[str, Any], progress: ProgressFn, cancel: threading.Event,
            log: LogFn) -> tuple[dict[str, Any], Path | None]:
    from forge_desktop.bench.memory import MemoryOptions, run_memory

    opts = MemoryOptions(p["runtime"], p["containers"], p["samples"])
    return run_memory(opts, _config(), progress=progress, cancel=cancel, log=log)


def _disk(p: Mapping[str, Any], progress: ProgressFn, cancel: threading.Event,
          log: LogFn) -> tuple[dict[str, Any], Path | None]:
    from forge_desktop.bench.disk import DiskOptions, run_disk

    return run_disk(DiskOptions(p["runtime"]), _config(), progress=progress, cancel=cancel,
                    log=log)


def _image(p: Mapping[str, Any], progress: ProgressFn, cancel: threading.Event,
           log: LogFn) -> tuple[dict[str, Any], Path | None]:
    from forge_desktop.bench.images import ImageOptions, run_image_bench

    opts = ImageOptions(runtimes=p["runtime"], source=p["source"], iterations=p["iterations"])
    return run_image_bench(opts, _config(), progress=progress, cancel=cancel, log=log)


_RUNTIMES = Param("runtime", "runtimes", (), "Runtimes to measure (default: every available)")


def _iterations(default: int) -> Param:
    return Param("iterations", "int", default, "Measured iterations per runtime", 1, 1000)


ACTIONS: dict[str, Action] = {a.id: a for a in (
    Action("startup", "Startup benchmark", "Time a fresh container on every runtime",
           ("benchmark", "startup"),
           (_RUNTIMES, _iterations(10), Param("warmup", "int", 2, "Unmeasured runs", 0, 100),
            Param("network", "str", "none", "Network mode", choices=("none", "host",
                                                                     "default"))),
           _startup, {"runtime": "-r", "iterations": "-n"}),
    Action("compare", "Compare runtimes", "Startup, memory and disk of every runtime side by "
           "side", ("benchmark", "compare"),
           (_RUNTIMES, _iterations(10), Param("warmup", "int", 2, "Unmeasured runs", 0, 100),
            Param("baseline", "str", "", "Baseline runtime (default: the slowest)"),
            Param("containers", "int", 3, "Containers for the memory phase", 1, 50)),
           _compare, {"runtime": "-r", "iterations": "-n"}),
    Action("memory", "Memory benchmark", "Daemon and per-container memory",
           ("benchmark", "memory"),
           (_RUNTIMES, Param("containers", "int", 5, "Containers to start", 1, 50),
            Param("samples", "int", 10, "Samples over time", 1, 10000)),
           _memory, {"runtime": "-r"}),
    Action("disk", "Disk usage", "Image store and per-container disk use",
           ("benchmark", "disk"), (_RUNTIMES,), _disk, {"runtime": "-r"}),
    Action("image", "Image load", "Cold image load from a saved tar",
           ("benchmark", "image"),
           (_RUNTIMES, Param("source", "str", "load", "load or pull",
                             choices=("load", "pull")), _iterations(5)),
           _image, {"runtime": "-r", "iterations": "-n"}),
    Action("results", "Open results", "The results window", ("window",)),
    Action("resources", "System resources", "CPU, memory, disk and containers now",
           ("benchmark", "resources")),
)}


def get_action(action_id: str) -> Action:
    try:
        return ACTIONS[action_id]
    except KeyError:
        raise UsageError(f"unknown action {action_id!r}; actions: "
                         f"{', '.join(ACTIONS)}") from None


def headline(doc: Mapping[str, Any]) -> str:
    """The one-line summary a notification shows, shared by every front end."""
    kind = doc.get("kind", "benchmark")
    entries = [e for e in doc.get("runtimes", []) if isinstance(e, dict)]
    if kind == "compare" and doc.get("comparison"):
        from forge_desktop.bench.compare import headline as compare_headline

        return compare_headline(doc)
    if kind in ("startup", "image"):
        timed = sorted((e["stats"]["median_ms"], e["runtime"]) for e in entries
                       if e.get("stats"))
        if timed:
            what = "Startup" if kind == "startup" else "Image " + str(
                doc.get("parameters", {}).get("source", "load"))
            return f"{what} finished: " + ", ".join(f"{n} {m:.0f} ms" for m, n in timed)
    if kind == "memory":
        per = [(e["per_container_bytes"], e["runtime"]) for e in entries
               if e.get("per_container_bytes") is not None]
        if per:
            return "Memory finished: " + ", ".join(
                f"{n} {b / 1048576:.1f} MiB per container" for b, n in sorted(per))
    if kind == "disk":
        per = [(e["per_container_bytes"], e["runtime"]) for e in entries
               if e.get("per_container_bytes") is not None]
        if per:
            return "Disk finished: " + ", ".join(
                f"{n} {b / 1024:.0f} KiB per container" for b, n in sorted(per))
    return f"{str(kind).capitalize()} finished"
