"""Tray settings in ``$FORGE_HOME/tray.json``: refresh interval, runtimes, iterations,
notifications, start at login, paused, the canary period and the load that skips a round. A
malformed value is ignored with one warning and the default is used; the file is written
atomically."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from forge_desktop.canary_schedule import DEFAULT_BUSY_LOAD, DEFAULT_PERIOD_S
from forge_desktop.config import forge_home
from forge_desktop.errors import StoreError
from forge_desktop.results.store import atomic_write_json

REFRESH_CHOICES_S = (1.0, 2.0, 5.0, 10.0)
ITERATION_CHOICES = (5, 10, 20, 50)


@dataclass
class TraySettings:
    refresh_s: float = 2.0
    notifications: bool = True
    iterations: int | None = None
    """None: the benchmark's own default, config.toml's ``benchmark.iterations`` else 10."""
    runtimes: list[str] = field(default_factory=list)
    autostart: bool = False
    paused: bool = False
    canary_period_s: float = DEFAULT_PERIOD_S
    """Seconds between canary rounds, 0 off (the menu offers canary_schedule's choices)."""
    canary_busy_load: float = DEFAULT_BUSY_LOAD
    """1-minute load average per CPU above which a round is skipped."""


def settings_path() -> Path:
    return forge_home() / "tray.json"


def _valid(name: str, value: Any) -> bool:
    if name == "refresh_s":
        return isinstance(value, int | float) and not isinstance(value, bool) \
            and 0.5 <= value <= 3600
    if name in ("canary_period_s", "canary_busy_load"):
        top = 7 * 86400 if name == "canary_period_s" else 1000
        return isinstance(value, int | float) and not isinstance(value, bool) and (
            0 <= value <= top) and (name == "canary_busy_load" or value == 0 or value >= 1)
    if name == "iterations":
        return value is None or (isinstance(value, int) and not isinstance(value, bool)
                                 and 1 <= value <= 1000)
    if name == "runtimes":
        return isinstance(value, list) and all(
            # fullmatch: with match, "$" also matches before a final "\n" ("docker\n")
            isinstance(v, str) and re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", v) for v in value)
    return isinstance(value, bool)


def load_settings(path: Path | None = None) -> tuple[TraySettings, list[str]]:
    """Settings and the warnings about values that were ignored."""
    path = path or settings_path()
    settings, warnings = TraySettings(), list[str]()
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return settings, warnings
    except (OSError, ValueError) as exc:
        return settings, [f"{path} is unreadable ({type(exc).__name__}); using defaults"]
    if not isinstance(raw, dict):
        return settings, [f"{path} is not a JSON object; using defaults"]
    for f in fields(TraySettings):
        if f.name not in raw:
            continue
        if _valid(f.name, raw[f.name]):
            setattr(settings, f.name, raw[f.name])
        else:
            warnings.append(f"{path}: ignoring {f.name}={raw[f.name]!r} (using "
                            f"{getattr(settings, f.name)!r})")
    return settings, warnings


def save_settings(settings: TraySettings, path: Path | None = None) -> str | None:
    """Write the settings; returns the error line instead of raising (a GUI shows it)."""
    path = path or settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_json(path, asdict(settings))
    except (OSError, StoreError) as exc:
        return str(exc)
    return None
