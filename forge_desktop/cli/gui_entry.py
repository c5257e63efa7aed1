"""Entry points of the Qt front ends, importable without typer or rich: `forge tray` is a
resident process, so its start path stays lean."""

from __future__ import annotations

import sys


def _gui_missing(exc: ImportError) -> int:
    sys.stderr.write(f"forge: error: the desktop front ends need the GUI extra ({exc.name} is "
                     "missing): pip install 'forge-desktop[gui]'\n")
    return 1


def tray() -> int:
    try:
        from forge_desktop.gui.tray import run_tray
    except ImportError as exc:
        return _gui_missing(exc)
    return run_tray()


def window(result_id: str | None, resources: bool, runtime: str | None = None,
           metric: str | None = None) -> int:
    try:
        from forge_desktop.gui.window import run_window
    except ImportError as exc:
        return _gui_missing(exc)
    return run_window(result_id, resources, runtime, metric)
