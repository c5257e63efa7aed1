"""The Python API of the shortcut module, over the action registry (forge_desktop.actions).

    list_actions() -> [info, ...]      what the manifest says about every action
    describe(id)   -> info             one of them
    run(id, **params) -> Outcome       a benchmark in this process, or a view opened detached

Running, outcomes, notification texts and opening views are forge_desktop.jobs', shared with
the tray and the window.

Only registered actions run, with parameters validated by ``Action.validate`` (after a first
check here that refuses control characters and surrounding whitespace, which the registry's
patterns let through at the end of a value). Nothing goes through a shell: benchmarks run
in-process, views are started from an argv list. Importing this module imports neither the
engines' SDKs nor scipy nor Qt.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

from forge_desktop.actions import ACTIONS, Action, LogFn, Param, ProgressFn, get_action
from forge_desktop.errors import UsageError
from forge_desktop.jobs import Outcome, execute, failures, notification, open_view

__all__ = ["Outcome", "describe", "failures", "list_actions", "notification", "run",
           "run_action", "validate_params"]
PROGRAM = "forge-shortcut"

_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# -- what the manifest, `list` and `describe` say -------------------------------------------

def _number(p: Param, value: float | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if p.kind in ("int", "ints") else float(value)


def param_info(action: Action, p: Param) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": p.name, "type": p.kind,
        "default": list(p.default) if isinstance(p.default, tuple) else p.default,
        "help": p.help,
        "forge_flag": p.cli_flags[0],
    }
    if p.config is not None:
        info["config"] = p.config
    if p.minimum is not None:
        info["minimum"] = _number(p, p.minimum)
    if p.maximum is not None:
        info["maximum"] = _number(p, p.maximum)
    if p.choices:
        info["choices"] = list(p.choices)
    return info


def action_info(action: Action) -> dict[str, Any]:
    """One action as the manifest describes it: ``argv`` is what a shortcut binds (the module
    runs it), ``forge_argv`` the terminal command that does the same, ``opens`` (views) the
    window it starts."""
    info: dict[str, Any] = {
        "id": action.id, "title": action.title, "description": action.description,
        "kind": "benchmark" if action.is_benchmark else "view",
        "argv": [PROGRAM, "run", action.id],
        "forge_argv": ["forge", *action.command],
    }
    if action.view is not None:
        info["opens"] = ["forge", *action.view]
    info["params"] = [param_info(action, p) for p in action.params]
    return info


def list_actions() -> list[dict[str, Any]]:
    return [action_info(a) for a in ACTIONS.values()]


def describe(action_id: str) -> dict[str, Any]:
    return action_info(get_action(action_id))


# -- validation -----------------------------------------------------------------------------

def _check_raw(action: Action, key: str, value: Any) -> None:
    values = value if isinstance(value, list | tuple) else [value]
    for item in values:
        if isinstance(item, str) and (_CONTROL.search(item) or item != item.strip()):
            raise UsageError(f"parameter {key!r} of {action.id!r}: {item[:40]!r} contains "
                             "whitespace or control characters, which are not allowed")


def validate_params(action: Action, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Typed values of the parameters given (the others take their defaults when the action
    runs: config.toml's where the registry names a key); one clear UsageError for an unknown
    name, a wrong type, a value out of range or a value carrying syntax."""
    for key, value in raw.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise UsageError(f"{key!r} is not a parameter name")
        _check_raw(action, key, value)
    return action.validate(raw)


def parse_assignments(pairs: list[str], action: Action) -> dict[str, Any]:
    """``KEY=VALUE`` strings from the command line; a runtimes parameter may repeat."""
    kinds = {p.name: p.kind for p in action.params}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if key.replace("-", "_") in kinds:  # --param max-x=1 names max_x
            key = key.replace("-", "_")
        if not sep or not key:
            raise UsageError(f"--param takes KEY=VALUE, got {pair[:40]!r}")
        if kinds.get(key) == "runtimes":  # runtime=docker,podman or repeated
            out[key] = [*out.get(key, []), *(v for v in value.split(",") if v)]
        elif key in out:
            raise UsageError(f"parameter {key!r} given twice")
        else:
            out[key] = value
    return out


# -- running --------------------------------------------------------------------------------

def _noop_progress(_name: str, _done: int, _total: int, _warmup: bool) -> None:
    return None


def run_action(action_id: str, params: Mapping[str, Any] | None = None, *,
               progress: ProgressFn | None = None, cancel: threading.Event | None = None,
               log: LogFn | None = None) -> Outcome:
    """Run one registry action. Bad input raises UsageError; a run that fails, is cancelled
    or saves an incomplete result is an Outcome with that status and exit code. A benchmark
    while another runs (in any front end) is refused: an Outcome "failed", exit 75."""
    action = get_action(action_id)
    values = validate_params(action, params or {})
    if not action.is_benchmark:
        return open_view(action)
    return execute(action, values, progress or _noop_progress, cancel or threading.Event(),
                   log or (lambda _m: None))


def run(action_id: str, /, **params: Any) -> Outcome:
    """``run("compare", runtime=["docker", "podman"], iterations=5)``."""
    return run_action(action_id, params)
