"""The Overview page's figures, without Qt: a card per runtime of one machine, read from the
history's index summaries and at most one document per runtime. Tests call these directly.

A card says what a person asks first: how fast is it now (the latest median startup and its
95% CI), how has it moved (a sparkline of the last medians of the same set-up), what does a
running container cost (the latest memory figure), what did the last canary measure, and has
anything shifted that nobody has acknowledged yet (``results.changes``).

Cold-open cost is bounded whatever the history's size: the cards look only at the newest
:data:`RECENT` results of the machine (their index summaries; only these decode their detail
JSON), and read the document of each runtime's latest startup figure for its CI, one read per
distinct result. The change points (a scan and a detector over the whole history, every
document read) are asked for separately, after the cards are on screen, in a forked child
(:func:`open_changes_apart`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forge_desktop.errors import ForgeError
from forge_desktop.gui.views.history_data import HistoryRow, date_text, load_document
from forge_desktop.results import document
from forge_desktop.results.document import MIB, STARTUP_KINDS
from forge_desktop.results.index import machine_id

if TYPE_CHECKING:
    from forge_desktop.results.changes import Change

RECENT = 400
"""Newest results of the machine the cards look at: a runtime not run among them is not
current; a bigger history costs nothing more to open."""
SPARK_POINTS = 30
"""Medians in a sparkline (the newest ones)."""
CANARY = "canary"
MEMORY_KINDS = ("memory", "compare")


@dataclass(frozen=True)
class Card:
    runtime: str
    median_ms: float | None
    """The latest median startup (ms) on this machine, from any startup-shaped result."""
    ci_ms: tuple[float, float] | None
    latest_id: str | None
    latest_ts: float | None
    setup: str | None
    """How that startup was timed (``network/via``): the sparkline keeps to it."""
    sparkline: tuple[float, ...]
    """Median startups of that set-up, oldest first (at most :data:`SPARK_POINTS`)."""
    memory_mib: float | None
    """Memory per running container (MiB), from the latest memory or compare result."""
    canary_ms: float | None
    canary_ts: float | None
    changes: tuple[Change, ...] = ()
    """Change points of this runtime and machine nobody acknowledged, newest first."""

    def median_text(self) -> str:
        if self.median_ms is None:
            return "no startup yet"
        ci = f" [{self.ci_ms[0]:,.0f}–{self.ci_ms[1]:,.0f}]" if self.ci_ms else ""
        return f"{self.median_ms:,.0f} ms{ci}"

    def memory_text(self) -> str:
        return "memory: not measured" if self.memory_mib is None else \
            f"memory: {self.memory_mib:,.1f} MiB per container"

    def canary_text(self) -> str:
        if self.canary_ms is None or self.canary_ts is None:
            return "canary: none yet"
        return f"canary: {self.canary_ms:,.0f} ms at {date_text(self.canary_ts)}"

    def change_lines(self) -> list[str]:
        return [c.headline() for c in self.changes]


@dataclass(frozen=True)
class Overview:
    machine: str
    """The machine key the cards are of ("" when there are no results)."""
    host: str
    cards: tuple[Card, ...]
    results: int
    """Results of the machine the cards looked at (at most :data:`RECENT`)."""

    def title(self) -> str:
        if not self.machine:
            return "No results yet: run a benchmark (Benchmark ▸ Run) to see your runtimes here"
        return f"{self.host} ({machine_id(self.machine)}): {len(self.cards)} runtime" \
               f"{'s' if len(self.cards) != 1 else ''}"

    def card(self, runtime: str) -> Card | None:
        return next((c for c in self.cards if c.runtime == runtime), None)


def _ci_of(doc: Mapping[str, Any], runtime: str) -> tuple[float, float] | None:
    for entry in document.named_entries(doc):
        if entry["runtime"] == runtime:
            return document.ci95_ms(entry)
    return None


def overview(rows: Sequence[HistoryRow],
             read: Callable[[HistoryRow], Mapping[str, Any]] = load_document) -> Overview:
    """The cards of the machine of the newest readable result; ``rows`` newest first (as
    ``load_history`` gives them). ``read`` reads a row's document (for the CI)."""
    recent: list[HistoryRow] = []
    machine = ""
    for row in rows:
        if row.summary is None or row.kind == "profile":
            continue
        if not machine:
            machine = row.machine
        if row.machine == machine:
            recent.append(row)
            if len(recent) == RECENT:
                break
    if not machine:
        return Overview("", "", (), 0)
    latest: dict[str, HistoryRow] = {}
    setups: dict[str, str | None] = {}
    spark: dict[str, list[float]] = {}
    memory: dict[str, float] = {}
    canary: dict[str, HistoryRow] = {}
    names: set[str] = set()
    for row in recent:
        s = row.summary
        assert s is not None
        names.update(s.runtimes)
        if s.kind == CANARY:
            for name in s.headline:  # a canary's headline is its median startup
                canary.setdefault(name, row)
        if s.kind in MEMORY_KINDS:
            for name, figures in s.metrics.items():
                if (per := figures.get("per_container_memory")) is not None:
                    memory.setdefault(name, per / MIB)
        if s.kind not in (*STARTUP_KINDS, CANARY):
            continue
        for name, figures in s.metrics.items():
            value = figures.get("startup")
            if value is None:
                continue
            setup = s.setups.get(name)
            if name not in latest:
                latest[name], setups[name] = row, setup
            points = spark.setdefault(name, [])
            if setups[name] == setup and len(points) < SPARK_POINTS:
                points.append(value)
    docs: dict[str, Mapping[str, Any] | None] = {}
    cards = []
    for name in sorted(names):
        newest = latest.get(name)
        ci = None
        if newest is not None:
            if newest.id not in docs:
                try:
                    docs[newest.id] = read(newest)
                except ForgeError:  # gone or unreadable since the scan: no CI, say nothing
                    docs[newest.id] = None
            doc = docs[newest.id]
            ci = None if doc is None else _ci_of(doc, name)
        points = spark.get(name, [])
        can = canary.get(name)
        cards.append(Card(
            runtime=name,
            median_ms=points[0] if points else None, ci_ms=ci,
            latest_id=newest.id if newest else None,
            latest_ts=newest.created_ts if newest else None,
            setup=setups.get(name), sparkline=tuple(reversed(points)),
            memory_mib=memory.get(name),
            canary_ms=can.summary.headline[name] if can and can.summary else None,
            canary_ts=can.created_ts if can else None))
    first = recent[0].summary
    assert first is not None
    return Overview(machine, first.host, tuple(cards), len(recent))


def open_changes(directories: Iterable[Path]) -> list[Change]:
    """Change points nobody acknowledged, over each results directory, newest first."""
    from forge_desktop.results.changes import find_changes

    found = [c for d in directories if d.is_dir() for c in find_changes(d) if not c.acked]
    return sorted(found, key=lambda c: c.at, reverse=True)


def open_changes_apart(directories: Iterable[Path]) -> list[Change]:
    """:func:`open_changes` in a forked child, its answer pickled back: the search reads every
    document of the history for its raw samples (10,000 results: 21 s and 630 MiB here on a
    loaded 2-core VM), which in the window would compete for the GIL with the Qt thread and
    leave the window that much bigger; the child's memory goes when it ends. A failure is a
    ForgeError saying why."""
    dirs = list(directories)
    if not hasattr(os, "fork"):
        return open_changes(dirs)
    import pickle

    # imported here, not in the child: another thread of the window may hold an import lock
    # the fork would copy (as results/index.py's forked scan does)
    import numpy  # noqa: F401
    import scipy.stats  # noqa: F401

    import forge_desktop.bench.stats  # noqa: F401
    import forge_desktop.results.changes  # noqa: F401

    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(read_end)
        os.close(write_end)
        raise ForgeError(f"cannot start the search for change points: {exc}") from exc
    if pid == 0:  # the child: search, write the answer, leave without cleanup handlers
        code = 1
        try:
            os.close(read_end)
            answer: tuple[str, Any]
            try:
                answer = ("found", open_changes(dirs))
            except ForgeError as exc:
                answer = ("error", str(exc))
            with os.fdopen(write_end, "wb") as out:
                pickle.dump(answer, out, protocol=pickle.HIGHEST_PROTOCOL)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not data:
        raise ForgeError(f"the search for change points failed (wait status {status})")
    kind, value = pickle.loads(data)
    if kind == "error":
        raise ForgeError(value)
    found: list[Change] = value
    return found


def with_changes(view: Overview, changes: Iterable[Change]) -> Overview:
    """``view`` with each card's open change points (of its runtime, on its machine)."""
    mine: dict[str, list[Change]] = {}
    short = machine_id(view.machine)  # a change names its machine by the short id
    for c in changes:
        if c.machine == short:
            mine.setdefault(c.runtime, []).append(c)
    return replace(view, cards=tuple(replace(card, changes=tuple(mine.get(card.runtime, ())))
                                     for card in view.cards))
