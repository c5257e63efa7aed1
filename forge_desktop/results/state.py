"""What the user told forge about the history, kept in FORGE_HOME: acknowledged change points
(``forge results ack``) and pinned baselines (``forge results baseline set``).

One small JSON file, ``$FORGE_HOME/history-state.json``, written with the store's atomic write
(a reader sees the old file or the new one). A change reads, updates and writes it holding
``flock`` on ``history-state.lock`` beside it, so an ack from the tray and one from the CLI at
the same moment both land. A damaged file is an error naming it, never silently read as
empty: an ack lost that way would raise the change again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from forge_desktop.config import forge_home
from forge_desktop.errors import StoreError
from forge_desktop.results.store import atomic_write_json

STATE_NAME = "history-state.json"


def state_path() -> Path:
    return forge_home() / STATE_NAME


def _read() -> dict[str, Any]:
    path = state_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:
        raise StoreError(f"{path} is unreadable ({type(exc).__name__}); move it aside "
                         "(acks and pinned baselines are lost with it)") from None
    if not isinstance(data, dict):
        raise StoreError(f"{path} is not a JSON object; move it aside")
    return data


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    home = forge_home()
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(home / "history-state.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot write to {home}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for one read and one write: milliseconds
        yield
    finally:
        os.close(fd)


def _update(change: Callable[[dict[str, Any]], None]) -> None:
    """Read, change and write the state under the lock."""
    with _locked():
        data = _read()
        change(data)
        atomic_write_json(state_path(), data)


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return dict(value) if isinstance(value, dict) else {}


def acked() -> frozenset[str]:
    """Result ids whose change points the user has acknowledged."""
    return frozenset(_table(_read(), "acked"))


def add_ack(result_id: str, at: str) -> None:
    """Acknowledge the changes starting at ``result_id`` (``at``: when, ISO)."""
    def change(data: dict[str, Any]) -> None:
        data["acked"] = {**_table(data, "acked"), result_id: at}

    _update(change)


def baseline_key(machine: str, runtime: str) -> str:
    return f"{machine}\x1f{runtime}"


def baselines() -> dict[tuple[str, str], str]:
    """(machine key, runtime) -> the pinned result id."""
    pins = {}
    for key, value in _table(_read(), "baselines").items():
        machine, sep, runtime = key.rpartition("\x1f")
        if sep and isinstance(value, str):
            pins[(machine, runtime)] = value
    return pins


def set_baselines(machine: str, runtimes: list[str], result_id: str) -> None:
    def change(data: dict[str, Any]) -> None:
        data["baselines"] = {**_table(data, "baselines"),
                             **{baseline_key(machine, r): result_id for r in runtimes}}

    _update(change)


def clear_baselines(machine: str | None = None, runtime: str | None = None) -> int:
    """Unpin the baselines of a machine and/or runtime (None: all); how many were pinned."""
    removed = 0

    def change(data: dict[str, Any]) -> None:
        nonlocal removed
        table = _table(data, "baselines")
        keep = {}
        for key, value in table.items():
            m, _, r = key.rpartition("\x1f")
            if (machine is None or m == machine) and (runtime is None or r == runtime):
                continue
            keep[key] = value
        removed = len(table) - len(keep)
        data["baselines"] = keep

    _update(change)
    return removed
