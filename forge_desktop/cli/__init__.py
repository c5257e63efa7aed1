"""The ``forge`` command. ``main`` turns every user-facing failure into one line and an exit
code: 2 for bad usage, 1 for a failure, 3 for a missed target, 75 when another benchmark
runs (try again later, or --wait), 130 for an interruption."""

from __future__ import annotations

import io
import os
import signal
import sys
from typing import NoReturn


def _term_to_interrupt(_signum: int, _frame: object) -> NoReturn:
    raise KeyboardInterrupt


def one_line(text: str) -> str:
    """``text`` with every control or other non-printable character written as its Python
    escape: a message quoting an argument or a file ("\n", ESC) stays one line and sends no
    escape sequence to the terminal (results.index.printable does the same for tables)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def fail(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"forge: error: {one_line(message)}\n")
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--forge-nshelper"]:  # a bundle's crun namespace helper (runtimes/nshelper)
        from forge_desktop.runtimes.nshelper import main as nshelper

        sys.exit(nshelper())
    if args == ["tray"]:  # the resident process: skip typer and rich (about 7 MiB)
        from forge_desktop.cli.gui_entry import tray

        sys.exit(tray())
    import typer.main

    from forge_desktop.cli.app import app
    from forge_desktop.errors import Busy, ForgeError

    try:  # typer >= 0.20 vendors click; older ones use click itself
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover
        from click import exceptions as cx  # type: ignore[no-redef]

    aborts = tuple(a for a in (getattr(cx, "Abort", None), typer.Abort) if a is not None)
    # An argument that is not UTF-8 reaches Python as lone surrogates ("\udc80"), and a
    # message or table echoing it would die with UnicodeEncodeError on a strict stdout:
    # write such characters as escapes instead, as stderr already does.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")
    signal.signal(signal.SIGTERM, _term_to_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the parent ignored it
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="forge", standalone_mode=False)
    except cx.NoArgsIsHelpError as exc:
        sys.stderr.write((exc.ctx.get_help() if exc.ctx else str(exc)) + "\n")
        sys.exit(2)
    except cx.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        fail(f"{exc.format_message()}{hint}", 2)
    except cx.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except aborts:
        fail("interrupted", 130)
    except Busy as exc:  # the CLI's benchmarks can wait instead: say how
        fail(f"{exc}, or pass --wait to start when it ends", exc.exit_code)
    except ForgeError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted; the run's containers were removed", 130)
    except BrokenPipeError:
        os._exit(1)
    except Exception as exc:  # noqa: BLE001 - a bug: one line unless asked for the traceback
        if os.environ.get("FORGE_DEBUG"):
            raise
        fail(f"internal error: {type(exc).__name__}: {exc} (set FORGE_DEBUG=1 for the "
             "traceback and please report it)", 1)
    if code == 130:  # typer turns KeyboardInterrupt into Exit(130) before we see it
        fail("interrupted; the run's containers were removed", 130)
    sys.exit(code if isinstance(code, int) else 0)
