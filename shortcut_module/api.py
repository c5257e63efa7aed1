"""The Python API of the shortcut module, over the action registry (forge_desktop.actions).

    list_actions() -> [info, ...]      what the manifest says about every action
    describe(id)   -> info             one of them
    run(id, **params) -> Outcome       a benchmark in this process, or a view opened detached

Only registered actions run, with parameters validated by ``Action.coerce`` (after a first
check here that refuses control characters and surrounding whitespace, which the registry's
patterns let through at the end of a value). Nothing goes through a shell: benchmarks run
in-process, views are started from an argv list. Importing this module imports neither the
engines' SDKs nor scipy nor Qt.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from forge_desktop.actions import ACTIONS, Action, Param, get_action, headline
from forge_desktop.errors import ForgeError, Interrupted, UsageError

PROGRAM = "forge-shortcut"
Status = Literal["finished", "failed", "cancelled", "opened"]
ProgressFn = Callable[[str, int, int, bool], None]
LogFn = Callable[[str], None]
VIEW_GRACE_S = 1.0
"""A view that dies within this long (no display, GUI extra missing) is reported as failed."""

_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# -- what the manifest, `list` and `describe` say -------------------------------------------

def view_command(action: Action) -> list[str]:
    """The ``forge`` arguments that open a view action's window. A view whose terminal
    command is not ``window ...`` (resources: ``benchmark resources`` prints panels) opens the
    window on its page, ``window --<id>``, as the tray does: a shortcut has no terminal."""
    if action.command[:1] == ("window",):
        return list(action.command)
    return ["window", f"--{action.id}"]


def _number(p: Param, value: float | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if p.kind == "int" else float(value)


def param_info(action: Action, p: Param) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": p.name, "type": p.kind,
        "default": list(p.default) if isinstance(p.default, tuple) else p.default,
        "help": p.help,
        "forge_flag": (action.flags or {}).get(p.name, f"--{p.name.replace('_', '-')}"),
    }
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
    if not action.is_benchmark:
        info["opens"] = ["forge", *view_command(action)]
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
    """Typed values for every parameter (defaults filled in); one clear UsageError for an
    unknown name, a wrong type, a value out of range or a value carrying syntax."""
    for key, value in raw.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise UsageError(f"{key!r} is not a parameter name")
        _check_raw(action, key, value)
    return action.coerce(raw)


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

@dataclass(frozen=True)
class Outcome:
    action: str
    status: Status
    exit_code: int
    """0 done, 1 failed (or some runtime failed), 2 bad usage, 130 interrupted."""
    text: str
    """The headline, the error line, or what was opened."""
    doc: dict[str, Any] | None = None
    path: Path | None = None
    pid: int | None = None
    argv: list[str] | None = None


def _noop_progress(_name: str, _done: int, _total: int, _warmup: bool) -> None:
    return None


def failures(doc: Mapping[str, Any]) -> list[str]:
    """One line per runtime that failed in a result that was still saved."""
    lines = []
    for entry in doc.get("runtimes", []):
        errors = entry.get("errors") if isinstance(entry, dict) else None
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            lines.append(f"{entry.get('runtime')}: {errors[0]}{more}")
    return lines


def open_view(action: Action, values: Mapping[str, Any], grace_s: float = VIEW_GRACE_S
              ) -> Outcome:
    """Start the view's window detached (own session, no terminal); report it as failed when
    it exits with an error within ``grace_s``, with its last stderr line."""
    from forge_desktop.desktop import forge_command

    extra = action.argv(values)[len(action.command):] if action.command[:1] == ("window",) \
        else []
    argv = [*forge_command(), *view_command(action), *extra]
    with tempfile.TemporaryFile() as err:  # unlinked already: nothing is left behind
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err, start_new_session=True, close_fds=True)
        except OSError as exc:
            return Outcome(action.id, "failed", 1, f"cannot start {argv[0]}: "
                           f"{exc.strerror or exc}", argv=argv)
        try:
            code = proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            return Outcome(action.id, "opened", 0, f"Opened {action.title}", pid=proc.pid,
                           argv=argv)
        if code == 0:
            return Outcome(action.id, "opened", 0, f"Opened {action.title}", pid=proc.pid,
                           argv=argv)
        err.seek(0)
        lines = [ln.strip() for ln in err.read().decode(errors="replace").splitlines()
                 if ln.strip()]
        if lines:
            why = lines[-1]
        elif code < 0:
            why = f"it was killed by {_signal_name(-code)}"
        else:
            why = f"it exited with status {code}"
        return Outcome(action.id, "failed", 1, f"{action.title} did not open: {why}",
                       argv=argv)


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def run_action(action_id: str, params: Mapping[str, Any] | None = None, *,
               progress: ProgressFn | None = None, cancel: threading.Event | None = None,
               log: LogFn | None = None) -> Outcome:
    """Run one registry action. Bad input raises UsageError; a run that fails, is cancelled
    or saves an incomplete result is an Outcome with that status and exit code. A benchmark
    while another runs (in any front end) is refused: an Outcome "failed", exit 75."""
    action = get_action(action_id)
    values = validate_params(action, params or {})
    if not action.is_benchmark:
        return open_view(action, values)
    try:
        doc, path = action.run(values, progress or _noop_progress,
                               cancel or threading.Event(), log or (lambda _m: None))
    except Interrupted as exc:
        return Outcome(action.id, "cancelled", 130, str(exc))
    except ForgeError as exc:
        return Outcome(action.id, "failed", exc.exit_code, str(exc))
    complete = bool(doc.get("complete", True))
    return Outcome(action.id, "finished", 0 if complete else 1, headline(doc), doc, path)


def run(action_id: str, /, **params: Any) -> Outcome:
    """``run("compare", runtime=["docker", "podman"], iterations=5)``."""
    return run_action(action_id, params)


def notification(outcome: Outcome) -> tuple[str, str] | None:
    """(title, body) of the completion notification, in the tray's words; None for a view
    that opened (the window is the answer)."""
    action = ACTIONS.get(outcome.action)
    title = action.title if action else outcome.action
    if outcome.status == "finished":
        body = f"Saved as {outcome.path.name}" if outcome.path else "Not saved"
        failed = failures(outcome.doc or {})
        if failed:
            body += f"; failed: {failed[0]}" + (f" (+{len(failed) - 1} more)"
                                                 if len(failed) > 1 else "")
        return outcome.text, body
    if outcome.status == "failed":
        return f"{title} failed", outcome.text
    if outcome.status == "cancelled":
        return f"{title} cancelled", outcome.text
    return None

