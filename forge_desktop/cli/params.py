"""``forge benchmark ...`` options built from the action registry (forge_desktop.actions).

``@registry_options("startup")`` puts the action's parameters in front of the command's own
options (output and terminal-only ones: ``--json``, ``--no-save``, ``--image``, targets), with
the registry's flags, help, limits and defaults; the command receives the parameters the user
gave as ``given`` and resolves them with ``Action.resolve(given, config, cli=True)``, exactly
as the tray, the window and forge-shortcut do. Cheap to import: typer and the registry only.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

import typer

from forge_desktop.actions import ACTIONS, Action, Param

F = TypeVar("F", bound=Callable[..., Any])
_TYPES: dict[str, Any] = {"int": int, "float": float, "str": str, "runtimes": list[str],
                          "ints": str}


def option_help(p: Param) -> str:
    limits = f"{p.minimum:g}-{p.maximum:g}; " if p.minimum is not None and \
        p.maximum is not None else ""
    choices = f"{', '.join(p.choices)}; " if p.choices else ""
    return f"{p.help} ({choices}{limits}default: {p.default_text()})."


def _option(p: Param) -> Any:
    if p.kind not in _TYPES:  # no such parameter yet: a bool would need --x/--no-x
        raise TypeError(f"parameter {p.name!r}: no command-line form for kind {p.kind!r}")
    return Annotated[_TYPES[p.kind] | None, typer.Option(*p.cli_flags, help=option_help(p))]


def given_params(action: Action, parsed: Mapping[str, Any]) -> dict[str, Any]:
    """The registry parameters the user gave, from what the parser made of the command line:
    not given is None, or () for a repeatable option (click's empty default)."""
    return {p.name: value for p in action.params
            if (value := parsed.get(p.name)) is not None and value != ()}


REMOTE_OPTIONS = ("host", "baseline_host", "serial")
"""Every registry-built benchmark command also runs on remote hosts (issue 14): terminal-only
options, like --json, since a host is reached through this user's ssh."""


ON_HOSTS: list[Callable[..., None]] = []
"""``benchmark_on_hosts`` of cli/cmd_hosts.py, put here when that module registers its
commands (importing it here would close an import cycle through cli/results_format.py)."""


def _remote_options() -> list[inspect.Parameter]:
    kw = inspect.Parameter.KEYWORD_ONLY
    host = typer.Option("--host", help="Run it with forge on this host over ssh (a "
                        "[hosts.NAME] of config.toml, a docker context or podman connection; "
                        "repeatable; all: every host); two or more make a fleet result.")
    baseline = typer.Option("--baseline-host", help="Host the others are compared with "
                            "(default: the slowest).")
    serial = typer.Option("--serial", help="Run the hosts one after another (hosts sharing "
                          "hardware), not in parallel.")
    return [inspect.Parameter("host", kw, default=None,
                              annotation=Annotated[list[str] | None, host]),
            inspect.Parameter("baseline_host", kw, default=None,
                              annotation=Annotated[str | None, baseline]),
            inspect.Parameter("serial", kw, default=False, annotation=Annotated[bool, serial])]


def registry_options(action_id: str) -> Callable[[F], F]:
    """Decorate a command ``f(given, **own_options)``: typer sees the action's parameters
    (default None: not given) followed by the command's own options."""
    action = ACTIONS[action_id]

    def decorate(func: F) -> F:
        own = list(inspect.signature(func, eval_str=True).parameters.values())
        if not own or own[0].name != "given":
            raise TypeError(f"{func.__name__} must take `given` first")
        generated = [inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                       annotation=_option(p)) for p in action.params]
        options = [o.replace(kind=inspect.Parameter.KEYWORD_ONLY) for o in own[1:]]

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            remote = {k: kwargs.pop(k) for k in REMOTE_OPTIONS}
            own_values = {k: v for k, v in kwargs.items() if k not in names}
            if remote["host"]:  # forge on those hosts runs it (cli/cmd_hosts.py)
                return ON_HOSTS[0](action, given_params(action, kwargs), own_values, **remote)
            if remote["baseline_host"] is not None or remote["serial"]:
                from forge_desktop.errors import UsageError

                raise UsageError("--baseline-host and --serial go with --host NAME (twice or "
                                 "more); without --host the benchmark runs here")
            return func(given_params(action, kwargs), **own_values)

        names = {p.name for p in action.params}
        params = [*generated, *options, *_remote_options()]
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {o.name: o.annotation for o in params}
        return command  # type: ignore[return-value]

    return decorate
