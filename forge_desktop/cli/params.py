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
            own_values = {k: v for k, v in kwargs.items() if k not in names}
            return func(given_params(action, kwargs), **own_values)

        names = {p.name for p in action.params}
        params = [*generated, *options]
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {o.name: o.annotation for o in params}
        return command  # type: ignore[return-value]

    return decorate
