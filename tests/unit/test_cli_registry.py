"""The ``forge benchmark ...`` options are the action registry's: every ``Action.argv()`` parsed
by the real CLI gives the registry's values, the flags and defaults are the registry's, and a
default that comes from config.toml comes from it in the CLI too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer import Context
from typer.core import TyperOption

from forge_desktop.actions import ACTIONS, Action, Param
from forge_desktop.cli.app import app
from forge_desktop.cli.params import given_params, option_help
from forge_desktop.config import load_config

BENCHMARKS = [a for a in ACTIONS.values() if a.is_benchmark]


def command_of(action: Action) -> Any:
    root = typer.main.get_command(app)
    ctx = Context(root)
    command: Any = root
    for name in action.command:
        assert command is not None and hasattr(command, "get_command"), action.command
        command = command.get_command(ctx, name)
    assert command is not None, action.command
    return command


def parse(action: Action, argv: list[str]) -> dict[str, Any]:
    """What the CLI hands its command for ``forge *argv``: the registry parameters given."""
    assert argv[:len(action.command)] == list(action.command)
    ctx = command_of(action).make_context(action.id, argv[len(action.command):])
    return given_params(action, ctx.params)


def other_value(p: Param) -> Any:
    """A valid value that is not the built-in default."""
    if p.kind == "runtimes":
        return ["docker", "runc"]
    if p.choices:
        return p.choices[-1]
    if p.kind == "int":
        assert p.maximum is not None
        return int(p.maximum)
    if p.kind == "ints":  # the limits, as a command line writes them
        assert p.minimum is not None and p.maximum is not None
        return f"{p.minimum:g},{p.maximum:g}"
    return "runc"  # the str parameters name a runtime (baseline)


@pytest.mark.parametrize("action", BENCHMARKS, ids=lambda a: a.id)
def test_every_registry_parameter_is_a_cli_option_with_its_flags_and_help(
        action: Action) -> None:
    options = {o.name: o for o in command_of(action).params if isinstance(o, TyperOption)}
    for p in action.params:
        option = options[p.name]
        assert tuple(option.opts) == p.cli_flags
        assert option.default is None  # the registry resolves it, config.toml included
        assert option.help == option_help(p)
        assert p.default_text() in (option.help or "")


@pytest.mark.parametrize("action", BENCHMARKS, ids=lambda a: a.id)
def test_every_argv_parses_to_the_registry_values(action: Action) -> None:
    cases: list[dict[str, Any]] = [{}, {p.name: p.default for p in action.params}]
    cases += [{p.name: other_value(p)} for p in action.params]
    cases.append({p.name: other_value(p) for p in action.params})
    for params in cases:
        argv = action.argv(params)
        given = parse(action, argv)
        typed = action.validate(params)
        # argv leaves out a value equal to a built-in default config.toml cannot change
        written = {k: v for k, v in typed.items()
                   if v != action.param(k).default or action.param(k).config}
        assert action.validate(given, cli=True) == written, (params, argv)
        assert action.resolve(given, None) == action.resolve(params, None), (params, argv)

def test_config_defaults_reach_the_cli_as_the_other_front_ends(forge_home: Path) -> None:
    forge_home.mkdir(parents=True)
    (forge_home / "config.toml").write_text("[benchmark]\niterations = 3\nwarmup = 0\n")
    config = load_config()
    for action in BENCHMARKS:
        values = action.resolve(parse(action, action.argv({})), config, cli=True)
        for p in action.params:
            expected = {"benchmark.iterations": 3, "benchmark.warmup": 0}.get(
                p.config or "", p.default)
            assert values[p.name] == expected, (action.id, p.name)
    startup = ACTIONS["startup"]
    assert startup.resolve(parse(startup, startup.argv({"iterations": 10})), config,
                           cli=True)["iterations"] == 10  # given wins over config.toml


def test_cli_errors_name_the_flag() -> None:
    from forge_desktop.errors import UsageError

    with pytest.raises(UsageError, match=r"^--iterations must be between 1 and 1000, got 0$"):
        ACTIONS["startup"].resolve({"iterations": 0}, None, cli=True)
    with pytest.raises(UsageError, match=r"^--source must be load or pull, got 'ftp'$"):
        ACTIONS["image"].resolve({"source": "ftp"}, None, cli=True)


def test_a_list_of_numbers_parameter() -> None:
    """``--concurrency 1,2,4``: whole numbers within the limits, from a command line, a text
    field or a list; one error naming the flag otherwise."""
    from forge_desktop.errors import UsageError

    scale = ACTIONS["scale"]
    assert scale.resolve({"concurrency": "1, 4,8"}, None, cli=True)["concurrency"] == (1, 4, 8)
    assert scale.resolve({"concurrency": [2, 16]}, None)["concurrency"] == (2, 16)
    assert scale.argv({"concurrency": [1, 4]}) == ["benchmark", "scale", "--concurrency",
                                                   "1,4"]
    for bad, message in (("1,x", "takes whole numbers"), ("1,,4", "takes whole numbers"),
                         ("", "needs at least one"), ("0,4", "between 1 and 32"),
                         ("1,33", "between 1 and 32"), ([True], "takes whole numbers"),
                         ("-1", "takes whole numbers")):
        with pytest.raises(UsageError, match=rf"^--concurrency.*{message}"):
            scale.resolve({"concurrency": bad}, None, cli=True)
