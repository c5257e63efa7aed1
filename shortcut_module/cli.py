"""``forge-shortcut``: the registry's actions for keyboard shortcuts and launchers.

    forge-shortcut list [--json]
    forge-shortcut describe ACTION [--json]
    forge-shortcut run ACTION [--param KEY=VALUE ...] [--notify] [--json]

``run`` of a benchmark runs it in this process (a progress bar on stderr), prints the headline
(``--json``: the result document) and exits 0, 1 (failed, or some runtime failed) or 130
(interrupted; the run's containers are removed first). ``--notify`` also sends the completion
notification, so a shortcut bound to ``forge-shortcut run compare --notify`` answers without a
terminal. ``run`` of a view opens its window detached. Every error is one line
``forge-shortcut: error: ...``; bad usage exits 2.

argparse, not typer: a shortcut should answer fast, and rich is imported only for a run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any, NoReturn

from forge_desktop import __version__
from forge_desktop.actions import get_action
from forge_desktop.errors import ForgeError
from forge_desktop.jobs import Outcome, notification
from shortcut_module.api import (
    PROGRAM,
    describe,
    list_actions,
    parse_assignments,
    run_action,
    validate_params,
)


class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        raise _Usage(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROGRAM, description="Forge Desktop actions for keyboard shortcuts "
                     "and launchers.")
    parser.add_argument("--version", action="version", version=f"{PROGRAM} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_list = sub.add_parser("list", help="every action, one a line")
    p_list.add_argument("--json", action="store_true", help="the manifest's action list")
    p_desc = sub.add_parser("describe", help="one action: what it runs, its parameters")
    p_desc.add_argument("action", metavar="ACTION")
    p_desc.add_argument("--json", action="store_true")
    p_run = sub.add_parser("run", help="run a benchmark, or open a view")
    p_run.add_argument("action", metavar="ACTION")
    p_run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="a parameter (repeatable; see `describe ACTION`)")
    p_run.add_argument("--notify", action="store_true",
                       help="send the completion notification (the headline or the error)")
    p_run.add_argument("--json", action="store_true", help="the result document on stdout")
    return parser


def _fail(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"{PROGRAM}: error: {message}\n")
    sys.exit(code)


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


def _describe_text(info: dict[str, Any]) -> str:
    lines = [f"{info['id']}: {info['title']}", f"  {info['description']}"]
    if info["kind"] == "benchmark":
        lines.append("  kind:  benchmark (runs here, saves a result)")
    else:
        lines.append(f"  kind:  view (opens {' '.join(info['opens'])})")
    lines.append(f"  run:   {' '.join(info['argv'])} [--param KEY=VALUE ...] [--notify] "
                 "[--json]")
    lines.append(f"  forge: {' '.join(info['forge_argv'])}")
    if not info["params"]:
        lines.append("  no parameters")
        return "\n".join(lines)
    lines.append("  parameters:")
    for p in info["params"]:
        default = p["default"]
        shown = (",".join(default) or "every available") if isinstance(default, list) \
            else (str(default).lower() if isinstance(default, bool) else (str(default) or '""'))
        limits = ""
        if "minimum" in p or "maximum" in p:
            limits = f" [{p.get('minimum', '')}-{p.get('maximum', '')}]"
        if "choices" in p:
            limits = f" [{'|'.join(p['choices'])}]"
        config = f" (config.toml: {p['config']})" if "config" in p else ""
        lines.append(f"    {p['name']:<11} {p['type']:<8} default {shown}{limits}{config}: "
                     f"{p['help']}")
    return "\n".join(lines)


def _cmd_list(as_json: bool) -> int:
    actions = list_actions()
    if as_json:
        _print_json(actions)
        return 0
    width = max(len(a["id"]) for a in actions)
    for a in actions:
        sys.stdout.write(f"{a['id']:<{width}}  {a['kind']:<9}  {a['title']}: "
                         f"{a['description']}\n")
    return 0


def _progress_ui() -> tuple[Any, Any, Any]:
    """(console, bar, (progress, log)) for a run: a rich bar on stderr when it is a terminal
    (a launcher has none), log lines dimmed."""
    import contextlib

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    if not console.is_terminal:
        return console, contextlib.nullcontext(), (None, _log_to(console))
    bar = Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                   console=console, transient=True)
    tasks: dict[str, Any] = {}

    def progress(name: str, done: int, total: int, warmup: bool) -> None:
        label = f"{name} warmup" if warmup else name
        if label not in tasks:
            tasks[label] = bar.add_task(label, total=total)
        bar.update(tasks[label], completed=done)

    return console, bar, (progress, _log_to(console))


def _log_to(console: Any) -> Any:
    def log(message: str) -> None:
        console.print(message, style="dim", highlight=False, markup=False)

    return log


def _notify(outcome: Outcome) -> None:
    message = notification(outcome)
    if message is None:
        return
    from forge_desktop.notify import notify_once

    status = notify_once(*message)
    if status != "sent":
        sys.stderr.write(f"{PROGRAM}: warning: notification not shown ({status})\n")


def _execute(action_id: str, pairs: list[str]) -> Outcome:
    action = get_action(action_id)
    params = validate_params(action, parse_assignments(pairs, action))
    if not action.is_benchmark:
        return run_action(action_id, params)
    console, bar, (progress, log) = _progress_ui()
    signal.signal(signal.SIGTERM, _term_to_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with bar:
            outcome = run_action(action_id, params, progress=progress, log=log)
    except KeyboardInterrupt:  # the runner removed the run's containers on the way out
        return Outcome(action.id, "cancelled", 130,
                       "interrupted; the run's containers were removed")
    if outcome.doc is not None:
        from forge_desktop.cli.format import warnings_for

        for line in warnings_for(outcome.doc):
            console.print(f"warning: {line}", style="yellow", highlight=False, markup=False)
    return outcome


def _cmd_run(action_id: str, pairs: list[str], notify: bool, as_json: bool) -> int:
    try:
        outcome = _execute(action_id, pairs)
    except ForgeError as exc:  # bad parameters, Busy, ...: notified too, a launcher has no
        outcome = Outcome(action_id, "failed", exc.exit_code, str(exc))  # terminal
    if notify:
        _notify(outcome)
    if outcome.status in ("failed", "cancelled"):
        _fail(outcome.text, outcome.exit_code)
    if outcome.status == "opened":
        if as_json:
            _print_json({"action": outcome.action, "status": outcome.status,
                         "pid": outcome.pid, "argv": outcome.argv})
        else:
            sys.stdout.write(f"{outcome.text} (pid {outcome.pid})\n")
        return 0
    if as_json:
        _print_json(outcome.doc)
    else:
        sys.stdout.write(outcome.text + "\n")
        sys.stderr.write(f"saved {outcome.path}\n" if outcome.path else "not saved\n")
    return outcome.exit_code


def _term_to_interrupt(_signum: int, _frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    args_list = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
        if args.command is None:
            sys.stderr.write(parser.format_help())
            sys.exit(2)
        if args.command == "list":
            code = _cmd_list(args.json)
        elif args.command == "describe":
            info = describe(args.action)
            if args.json:
                _print_json(info)
            else:
                sys.stdout.write(_describe_text(info) + "\n")
            code = 0
        else:
            code = _cmd_run(args.action, args.param, args.notify, args.json)
    except _Usage as exc:
        _fail(f"{exc} (see `{PROGRAM} --help`)", 2)
    except ForgeError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        os._exit(1)
    except Exception as exc:  # noqa: BLE001 - a bug: one line unless asked for the traceback
        if os.environ.get("FORGE_DEBUG"):
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (set FORGE_DEBUG=1 for the "
              "traceback and please report it)", 1)
    sys.exit(code)
