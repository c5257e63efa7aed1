"""Entry points of the Qt front ends, importable without typer or rich: `forge tray` is a
resident process, so its start path stays lean."""

from __future__ import annotations

import sys

TRAY_QT_FREE = ("psutil", "forge_desktop.actions", "forge_desktop.jobs", "forge_desktop.monitor",
                "forge_desktop.notify", "forge_desktop.gui.settings", "forge_desktop.gui.icons",
                "forge_desktop.profiling.perf", "forge_desktop.canary_schedule")
"""What gui/tray.py imports that does not need Qt, imported before PySide6: PySide6's import
hook reads the source of every module imported after it (shibokensupport's feature check,
inspect.getsource) and linecache keeps it, about 2 MiB of the resident tray."""


def _gui_missing(exc: ImportError) -> int:
    sys.stderr.write(f"forge: error: the desktop front ends need the GUI extra ({exc.name} is "
                     "missing): pip install 'forge-desktop[gui]'\n")
    return 1


def tray() -> int:
    try:
        for name in TRAY_QT_FREE:  # __import__: the import statement's path, which
            __import__(name)       # -X importtime logs (importlib.import_module's is not)
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
