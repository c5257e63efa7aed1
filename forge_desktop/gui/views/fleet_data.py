"""The window's Fleet page without Qt (issue 14): the fleet results of the history, and one
fleet document as the page shows it. Tests call these directly.

A fleet document (``kind: fleet``, forge_desktop/fleet.py) holds no samples of its own: each
host's figures are in that host's result, and the document keeps, per compared pair, both
figures (``value``, ``baseline_value``) with the ratio, its 95% CI, p and verdict. The grid
here is hosts x runtimes for one metric: the baseline host's cells show its own figure (ms or
MiB), every other host's cell its ratio against the baseline host. Everything is read through
``results/document.py``: the file may come from anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forge_desktop.gui.views.history_data import HistoryRow
from forge_desktop.results import document
from forge_desktop.results.history import METRICS

CALLS = ("faster", "slower", "smaller", "larger")
"""The verdicts that say something (the others: "no significant difference", "about the same",
"not applicable")."""


def fleet_rows(rows: Sequence[HistoryRow]) -> list[HistoryRow]:
    """The fleet results of the history, in its order (the history is newest first)."""
    return [r for r in rows if r.kind == "fleet"]


@dataclass(frozen=True)
class FleetHost:
    name: str
    url: str
    result_id: str | None
    error: str | None
    baseline: bool

    @property
    def failed(self) -> bool:
        """No result from this host, or one it could not finish (``error`` says why)."""
        return self.result_id is None or self.error is not None


@dataclass(frozen=True)
class Cell:
    """One host x runtime figure of one metric: on the baseline host its own figure; on
    another host the ratio against the baseline host (baseline / host: above 1 the host is
    faster or smaller)."""

    host: str
    runtime: str
    metric: str
    value: float | None
    """The host's figure in the metric's unit (ms, MiB)."""
    baseline: bool
    ratio: float | None = None
    ci95: tuple[float, float] | None = None
    p_value: float | None = None
    verdict: str = ""

    def text(self) -> str:
        """"31.2 ms" (baseline host), "1.23× [1.10–1.40]" (another host), "-" (none)."""
        if self.baseline:
            return "-" if self.value is None else f"{self.value:,.1f} {unit(self.metric)}"
        if self.ratio is None:
            return "-"
        band = f" [{self.ci95[0]:.2f}–{self.ci95[1]:.2f}]" if self.ci95 else ""
        return f"{self.ratio:.2f}×{band}"

    def detail(self) -> str:
        """The tooltip: every figure of the cell in words."""
        figure = "-" if self.value is None else f"{self.value:,.1f} {unit(self.metric)}"
        if self.baseline:
            return f"{self.host} (baseline host) · {self.runtime}: {figure}"
        p = "" if self.p_value is None else \
            f", p {'<0.001' if self.p_value < 0.001 else f'{self.p_value:.3f}'}"
        return f"{self.host} · {self.runtime}: {figure}; {self.text()}{p}: {self.verdict}"


@dataclass(frozen=True)
class EngineRatio:
    host: str
    runtime: str
    baseline_runtime: str
    metric: str
    ratio: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    verdict: str


@dataclass(frozen=True)
class Fleet:
    id: str
    fleet_kind: str
    baseline_host: str
    baseline_runtime: str
    hosts: tuple[FleetHost, ...]
    runtimes: tuple[str, ...]
    metrics: tuple[str, ...]
    cells: Mapping[tuple[str, str, str], Cell]
    """(host, runtime, metric) -> its cell."""
    engine_ratios: tuple[EngineRatio, ...]
    effects: tuple[str, ...]
    """One plain sentence per engine effect, then per host effect."""

    def grid(self, metric: str) -> list[tuple[FleetHost, list[Cell | None]]]:
        """Hosts x runtimes of ``metric``, hosts in the document's order; a host without
        that figure for a runtime has None there."""
        return [(h, [self.cells.get((h.name, rt, metric)) for rt in self.runtimes])
                for h in self.hosts]

    def host(self, name: str) -> FleetHost | None:
        return next((h for h in self.hosts if h.name == name), None)


def unit(metric: str) -> str:
    known = METRICS.get(metric)
    return known.unit if known else ""


def metric_title(metric: str) -> str:
    known = METRICS.get(metric)
    return known.title if known else metric


def _shown(metric: str, value: float | None) -> float | None:
    """ms stay ms; bytes become MiB (as the history shows them)."""
    known = METRICS.get(metric)
    return None if value is None or known is None else known.show(value)


def _ratio(row: Mapping[str, Any]) -> tuple[float | None, tuple[float, float] | None,
                                            float | None, str]:
    return (document.real(row.get("ratio")), document.interval(row.get("ci95")),
            document.real(row.get("p_value")), document.text(row.get("verdict")))


def read_fleet(doc: Mapping[str, Any]) -> Fleet:
    """One fleet document as the page shows it."""
    comp = document.fleet_comparison(doc)
    base_host = document.text(comp.get("baseline_host"))
    base_rt = document.text(comp.get("baseline_runtime"))
    hosts = tuple(FleetHost(document.text(h.get("name")), document.text(h.get("url")),
                            rid if isinstance(rid := h.get("result_id"), str) and rid else None,
                            err if isinstance(err := h.get("error"), str) and err else None,
                            document.text(h.get("name")) == base_host)
                  for h in document.fleet_hosts(doc))
    ratios = document.mappings(comp.get("ratios"))
    engine_rows = document.mappings(comp.get("engine_ratios"))
    # each host's own figures, from every pair it is part of
    figures: dict[tuple[str, str, str], float] = {}
    for r in ratios:
        metric, runtime = document.text(r.get("metric")), document.text(r.get("runtime"))
        for host, field in ((document.text(r.get("host")), "value"),
                            (base_host, "baseline_value")):
            if (v := _shown(metric, document.real(r.get(field)))) is not None:
                figures[(host, runtime, metric)] = v
    for r in engine_rows:
        metric, host = document.text(r.get("metric")), document.text(r.get("host"))
        for runtime, field in ((document.text(r.get("runtime")), "value"),
                               (document.text(r.get("baseline_runtime")), "baseline_value")):
            if (v := _shown(metric, document.real(r.get(field)))) is not None:
                figures.setdefault((host, runtime, metric), v)
    cells: dict[tuple[str, str, str], Cell] = {
        (h, rt, m): Cell(h, rt, m, v, True) for (h, rt, m), v in figures.items()
        if h == base_host}
    for r in ratios:
        key = (document.text(r.get("host")), document.text(r.get("runtime")),
               document.text(r.get("metric")))
        if key[0] == base_host:
            continue
        ratio, ci, p, verdict = _ratio(r)
        cells[key] = Cell(*key, figures.get(key), False, ratio, ci, p, verdict)
    runtimes = sorted({document.text(rt) for h in document.fleet_hosts(doc)
                       for rt in document.texts(h.get("runtimes"))} | {k[1] for k in cells})
    order = list(METRICS)
    metrics = sorted({k[2] for k in cells},
                     key=lambda m: (order.index(m) if m in order else len(order), m))
    engines = tuple(EngineRatio(document.text(r.get("host")), document.text(r.get("runtime")),
                                document.text(r.get("baseline_runtime")),
                                document.text(r.get("metric")), *_ratio(r))
                    for r in engine_rows)
    return Fleet(document.text(doc.get("id")), document.text(doc.get("fleet_kind")),
                 base_host, base_rt, hosts, tuple(runtimes), tuple(metrics), cells, engines,
                 tuple(effect_sentences(comp)))


def _calls(value: Any) -> dict[str, str]:
    return {str(k): document.text(v) for k, v in document.mapping(value).items()}


def _differs(calls: Mapping[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in calls.items())


def effect_sentences(comp: Mapping[str, Any]) -> list[str]:
    """One sentence per ``engine_effect`` row ("runc faster than docker on every host (median
    startup)", or "... differs by host: alpha faster, beta no significant difference"), then
    per ``host_effect`` row ("beta slower than alpha for every runtime (median startup)", or
    "... differs by runtime: ...")."""
    lines = []
    for e in document.mappings(comp.get("engine_effect")):
        runtime, base = document.text(e.get("runtime")), document.text(e.get("baseline_runtime"))
        metric = metric_title(document.text(e.get("metric")))
        calls = _calls(e.get("verdicts"))
        said = set(calls.values())
        if e.get("holds_on_every_host") is True and len(said) == 1:
            lines.append(f"{runtime} {said.pop()} than {base} on every host ({metric})")
        elif len(said) == 1 and calls:
            lines.append(f"{runtime} against {base}: {said.pop()} on every host ({metric})")
        else:
            lines.append(f"{runtime} against {base} ({metric}) differs by host: "
                         f"{_differs(calls)}")
    for e in document.mappings(comp.get("host_effect")):
        host, base = document.text(e.get("host")), document.text(e.get("baseline_host"))
        metric = metric_title(document.text(e.get("metric")))
        calls = _calls(e.get("verdicts"))
        said = set(calls.values())
        if e.get("same_for_every_runtime") is True and len(said) == 1:
            lines.append(f"{host} {said.pop()} than {base} for every runtime ({metric})")
        elif len(said) == 1 and calls:
            lines.append(f"{host} against {base}: {said.pop()} for every runtime ({metric})")
        else:
            lines.append(f"{host} against {base} ({metric}) differs by runtime: "
                         f"{_differs(calls)}")
    return lines
