"""Plots of the results window, drawn with pyqtgraph (imported here only, when a plot is
first needed: it brings numpy and costs about 0.3 s).

Every plot follows the palette (background, axes, text: light or dark); only the series have
colours of their own, the same for a runtime everywhere. Hovering shows the nearest point's
value; every plot exports to PNG.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from forge_desktop.gui.bridge import Bridge
from forge_desktop.gui.views.document_data import (
    Series,
    density_series,
    distributions,
    memory_series,
    phase_breakdown,
    scale_series,
)
from forge_desktop.gui.views.fleet_data import Fleet, metric_title
from forge_desktop.gui.views.history_data import HistoryRow, machine_text
from forge_desktop.gui.views.worker import in_thread
from forge_desktop.results.history import METRICS

# Series colours (the only colours the window sets): one per runtime, then a cycle.
RUNTIME_COLOURS = {"docker": (33, 113, 230), "podman": (146, 70, 190), "runc": (20, 160, 110),
                   "crun": (235, 130, 20)}
CYCLE = [(214, 60, 90), (0, 160, 200), (150, 150, 40), (120, 100, 220), (200, 100, 160),
         (60, 170, 60), (230, 90, 40), (90, 130, 160)]
PHASE_COLOURS = {"create": (66, 133, 244), "start": (234, 88, 12), "wait": (16, 163, 127),
                 "remove": (168, 85, 247), "load": (219, 39, 119), "pull": (202, 138, 4)}
TO_EXEC_COLOUR = (220, 38, 38)
REGRESSION_COLOUR = (220, 38, 38)
MARK_COLOUR = (220, 38, 38)
IMPROVEMENT_COLOUR = (22, 163, 74)
HOVER_RADIUS_PX = 20.0


def series_colour(name: str, index: int = 0) -> QColor:
    rgb = RUNTIME_COLOURS.get(name) or CYCLE[(sum(map(ord, name)) + index) % len(CYCLE)]
    return QColor(*rgb)


def _alpha(colour: QColor, alpha: int) -> QColor:
    c = QColor(colour)
    c.setAlpha(alpha)
    return c


class Plot(pg.PlotWidget):  # type: ignore[misc]
    """A PlotWidget that follows the palette, shows the nearest point on hover and exports
    to PNG."""

    def __init__(self, name: str, date_axis: bool = False,
                 parent: QWidget | None = None) -> None:
        axes = {"bottom": pg.DateAxisItem()} if date_axis else None
        super().__init__(parent=parent, axisItems=axes)
        self.setObjectName(f"plot-{name}")
        self.setAccessibleName(name)
        self.hover_xs: list[float] = []
        self.hover_ys: list[float] = []
        self.hover_texts: list[str] = []
        self.legend = self.plotItem.addLegend(offset=(-10, 10))
        self.label = pg.TextItem(anchor=(0, 1))
        self.label.setZValue(1000)
        self.plotItem.showGrid(x=True, y=True, alpha=0.15)
        for side in ("left", "bottom"):  # units are in the labels: no "(x0.001)" scaling
            self.getAxis(side).enableAutoSIPrefix(False)
        self.scene().sigMouseMoved.connect(self._moved)
        self.title = ""
        self.marked: tuple[str, str] | None = None
        """The change drawn as a vertical line: (result id, its label)."""
        self.clear_plot()
        self.apply_palette()

    # -- looks ------------------------------------------------------------------------------
    def apply_palette(self) -> None:
        pal = QApplication.palette()
        base, text = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)
        self.setBackground(base)
        for side in ("left", "bottom"):
            axis = self.getAxis(side)
            axis.setPen(pg.mkPen(_alpha(text, 160)))
            axis.setTextPen(pg.mkPen(text))
        self.legend.setLabelTextColor(text)
        for _sample, label in self.legend.items:  # existing labels keep their colour else
            label.setText(label.text, color=text)
        self.legend.setBrush(pg.mkBrush(_alpha(base, 200)))
        self.label.fill = pg.mkBrush(pal.color(QPalette.ColorRole.ToolTipBase))
        self.label.setColor(pal.color(QPalette.ColorRole.ToolTipText))
        self.plotItem.setTitle(self.title, color=text)

    def set_title(self, title: str) -> None:
        self.title = title
        self.plotItem.setTitle(title, color=QApplication.palette().color(
            QPalette.ColorRole.Text))

    def clear_plot(self, title: str = "") -> None:
        self.plotItem.clear()
        self.legend.clear()
        self.plotItem.addItem(self.label, ignoreBounds=True)
        self.label.hide()
        self.hover_xs, self.hover_ys, self.hover_texts = [], [], []
        self.marked = None
        self.getAxis("bottom").setTicks(None)
        self.getAxis("left").setTicks(None)
        self.set_title(title)

    def headroom(self, axis: str = "y", share: float = 0.3) -> None:
        """Room for the legend (top right) beyond the data plotted so far, so it covers
        none of it."""
        values = self.hover_ys if axis == "y" else self.hover_xs
        if not values:
            return
        lo, hi = min(values), max(values)
        span = (hi - lo) or abs(hi) or 1.0
        bounds = (lo - 0.05 * span, hi + share * span)
        if axis == "y":
            self.setYRange(*bounds, padding=0)
        else:
            self.setXRange(min(bounds[0], 0.0), bounds[1], padding=0)

    def set_labels(self, bottom: str, left: str) -> None:
        self.setLabel("bottom", bottom)
        self.setLabel("left", left)

    # -- hover ------------------------------------------------------------------------------
    def add_hover(self, xs: Sequence[float], ys: Sequence[float], texts: Sequence[str]) -> None:
        self.hover_xs += list(xs)
        self.hover_ys += list(ys)
        self.hover_texts += list(texts)

    def nearest(self, x: float, y: float) -> int | None:
        """The point nearest to view position (x, y), if within HOVER_RADIUS_PX pixels."""
        if not self.hover_xs:
            return None
        px_w, px_h = self.plotItem.vb.viewPixelSize()
        px_w, px_h = px_w or 1.0, px_h or 1.0
        best, best_d = None, HOVER_RADIUS_PX ** 2
        for i, (hx, hy) in enumerate(zip(self.hover_xs, self.hover_ys, strict=True)):
            d = ((hx - x) / px_w) ** 2 + ((hy - y) / px_h) ** 2
            if d <= best_d:
                best, best_d = i, d
        return best

    def hover_at(self, x: float, y: float) -> str | None:
        """Show the value near view position (x, y), as the mouse does; returns the text."""
        i = self.nearest(x, y)
        if i is None:
            self.label.hide()
            self.setToolTip("")
            return None
        self.label.setText(self.hover_texts[i])
        self.label.setPos(self.hover_xs[i], self.hover_ys[i])
        self.label.show()
        self.setToolTip(self.hover_texts[i])
        return self.hover_texts[i]

    def _moved(self, pos: QPointF) -> None:
        if not self.plotItem.vb.sceneBoundingRect().contains(pos):
            self.label.hide()
            return
        point = self.plotItem.vb.mapSceneToView(pos)
        self.hover_at(point.x(), point.y())

    # -- export -----------------------------------------------------------------------------
    def export_png(self, path: Path) -> Path:
        """The plot as a PNG at twice the on-screen size (at least 800 px wide)."""
        import pyqtgraph.exporters

        self.label.hide()
        exporter = pyqtgraph.exporters.ImageExporter(self.plotItem)
        width = max(800, int(self.plotItem.sceneBoundingRect().width() * 2))
        exporter.parameters()["width"] = width
        exporter.export(str(path))
        if not path.exists():  # pragma: no cover - exporter refused (zero-size scene)
            self.grab().save(str(path))
        return path


# --- what each plot draws ---------------------------------------------------------------------

def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


def _jitter(i: int) -> float:
    """Deterministic spread of a strip's points (same data, same picture)."""
    return ((i * 0.618034) % 1.0 - 0.5) * 0.3


def _names_axis(plot: Plot, side: str, names: Sequence[str]) -> None:
    plot.getAxis(side).setTicks([[(i, n) for i, n in enumerate(names)]])


def draw_distribution(plot: Plot, doc: Mapping[str, Any]) -> bool:
    """Box (quartiles, median, range) and strip (every sample) per runtime."""
    lanes = distributions(doc)
    what = "Image load" if doc.get("kind") == "image" else "Startup"
    plot.clear_plot(f"{what} time per runtime (ms)" if lanes else
                    f"No timed samples in this {doc.get('kind', 'result')} result")
    if not lanes:
        return False
    plot.set_labels("runtime", "ms")
    for i, (name, values) in enumerate(lanes):
        colour = series_colour(name, i)
        q1, med, q3 = (_quantile(values, q) for q in (0.25, 0.5, 0.75))
        plot.addItem(pg.BarGraphItem(x=[i], y0=[q1], height=[max(q3 - q1, 1e-9)], width=0.5,
                                     brush=_alpha(colour, 70), pen=pg.mkPen(colour)))
        plot.addItem(pg.PlotDataItem([i - 0.25, i + 0.25], [med, med],
                                     pen=pg.mkPen(colour, width=3)))
        plot.addItem(pg.PlotDataItem([i, i, i, i], [min(values), q1, q3, max(values)],
                                     pen=pg.mkPen(colour), connect="pairs"))
        xs = [i + _jitter(k) for k in range(len(values))]
        plot.addItem(pg.ScatterPlotItem(xs, values, size=7, brush=pg.mkBrush(colour),
                                        pen=pg.mkPen(_alpha(colour, 255).darker(130)),
                                        name=name))
        plot.add_hover(xs, values, [f"{name} #{k + 1}: {v:.1f} ms"
                                    for k, v in enumerate(values)])
        plot.add_hover([i + 0.3], [med], [f"{name} median {med:.1f} ms (quartiles "
                                          f"{q1:.1f}–{q3:.1f})"])
    _names_axis(plot, "bottom", [n for n, _v in lanes])
    plot.setXRange(-0.6, len(lanes) - 0.4)
    plot.headroom("y", 0.25)
    return True


def draw_phases(plot: Plot, doc: Mapping[str, Any]) -> bool:
    """Stacked horizontal bars of the phase medians per runtime; to-exec as a marker."""
    bars = phase_breakdown(doc)
    plot.clear_plot("Phase medians per runtime (ms)" if bars else
                    "No phase timings in this result")
    if not bars:
        return False
    plot.set_labels("ms", "")
    seen: set[str] = set()
    for i, bar in enumerate(bars):
        left = 0.0
        for k, (phase, ms) in enumerate(bar.phases_ms.items()):
            colour = QColor(*PHASE_COLOURS.get(phase, CYCLE[k % len(CYCLE)]))
            item = pg.BarGraphItem(x0=[left], y=[i], width=[ms], height=0.6,
                                   brush=colour, pen=pg.mkPen(colour.darker(120)))
            plot.addItem(item)
            if phase not in seen:
                seen.add(phase)
                plot.legend.addItem(item, phase)
            plot.add_hover([left + ms / 2], [i], [f"{bar.runtime} {phase}: {ms:.1f} ms "
                                                  "(median)"])
            left += ms
        if bar.to_exec_ms is not None:
            marker = pg.ScatterPlotItem([bar.to_exec_ms], [i + 0.38], symbol="t",
                                        size=12, brush=pg.mkBrush(QColor(*TO_EXEC_COLOUR)))
            plot.addItem(marker)
            if "to exec" not in seen:
                seen.add("to exec")
                plot.legend.addItem(marker, "to exec")
            plot.add_hover([bar.to_exec_ms], [i + 0.38],
                           [f"{bar.runtime} to exec: {bar.to_exec_ms:.1f} ms (median)"])
    _names_axis(plot, "left", [b.runtime for b in bars])
    plot.setYRange(-0.6, len(bars) - 0.4)
    plot.headroom("x", 0.35)
    return True


def _draw_lines(plot: Plot, series: Sequence[Series], unit_x: str, symbol: str | None,
                fmt_x: str) -> None:
    for i, s in enumerate(series):
        colour = series_colour(s.label, i)
        plot.addItem(pg.PlotDataItem(s.xs, s.ys, pen=pg.mkPen(colour, width=2), name=s.label,
                                     symbol=symbol, symbolSize=7, symbolBrush=colour,
                                     symbolPen=colour))
        plot.add_hover(s.xs, s.ys, [f"{s.label}: {y:,.1f} MiB at {fmt_x.format(x)}{unit_x}"
                                    for x, y in zip(s.xs, s.ys, strict=True)])


def draw_memory(plot: Plot, doc: Mapping[str, Any]) -> bool:
    series = memory_series(doc)
    what = "Profile: memory of the target" if doc.get("kind") == "profile" else \
        "Memory over time (daemon + shims + cgroups)"
    plot.clear_plot(f"{what} (MiB)" if series else
                    "No memory samples: choose a memory, compare or profile result")
    if series:
        plot.set_labels("seconds", "MiB")
        _draw_lines(plot, series, " s", None, "{:.1f}")
        plot.headroom("y", 0.3)
    return bool(series)


def draw_density(plot: Plot, doc: Mapping[str, Any]) -> bool:
    series = density_series(doc)
    plot.clear_plot("Memory against running containers (MiB)" if series else
                    "No density line: choose a memory or compare result")
    if series:
        plot.set_labels("running containers", "MiB")
        _draw_lines(plot, series, " containers", "o", "{:.0f}")
        plot.headroom("y", 0.3)
    return bool(series)


def draw_scaling(plot: Plot, doc: Mapping[str, Any]) -> bool:
    """Throughput against lifecycles in flight, per runtime, with 95% intervals as error
    bars and the saturation level ringed."""
    series = scale_series(doc)
    plot.clear_plot("Throughput against concurrency (containers/s, 95% CI)" if series else
                    "No concurrency levels: choose a scale result")
    if not series:
        return False
    plot.set_labels("lifecycles in flight", "containers / s")
    for i, (name, pts, saturated) in enumerate(series):
        colour = series_colour(name, i)
        xs = [p.concurrency for p in pts]
        ys = [p.throughput for p in pts]
        plot.addItem(pg.PlotDataItem(xs, ys, pen=pg.mkPen(colour, width=2), name=name,
                                     symbol="o", symbolSize=7, symbolBrush=colour,
                                     symbolPen=colour))
        with_ci = [p for p in pts if p.ci is not None]
        if with_ci:
            plot.addItem(pg.ErrorBarItem(
                x=np.array([p.concurrency for p in with_ci]),
                y=np.array([p.throughput for p in with_ci]),
                top=np.array([p.ci[1] - p.throughput for p in with_ci if p.ci]),
                bottom=np.array([p.throughput - p.ci[0] for p in with_ci if p.ci]),
                beam=0.15, pen=pg.mkPen(colour, width=1)))
        ring = [p for p in pts if saturated is not None and p.concurrency == saturated]
        if ring:
            plot.addItem(pg.ScatterPlotItem([ring[0].concurrency], [ring[0].throughput],
                                            size=16, symbol="o", brush=None,
                                            pen=pg.mkPen(colour, width=2)))

        def hover(p: Any, name: str = name, saturated: float | None = saturated) -> str:
            ci = f" [{p.ci[0]:.2f}–{p.ci[1]:.2f}]" if p.ci else ""
            lat = " · ".join(f"{k} {v:.0f} ms" for k, v in (("p50", p.p50_ms),
                                                            ("p99", p.p99_ms)) if v is not None)
            mark = " · saturation" if p.concurrency == saturated else ""
            fails = f" · {p.failures:.0f} failed" if p.failures else ""
            return f"{name} ×{p.concurrency:.0f}: {p.throughput:.2f}/s{ci} · {lat}{mark}{fails}"

        plot.add_hover(xs, ys, [hover(p) for p in pts])
    plot.headroom("y", 0.3)
    return True


def draw_trend(plot: Plot, series: Sequence[Any], metric: Any, title_suffix: str = "",
               mark: tuple[str, str, str] | None = None) -> bool:
    """History's trend series (``history.trend``): one line per machine, runtime and set-up;
    its change points marked (up: slower or bigger, a regression; down: an improvement).
    ``mark``: (result id, label, hover text): a change found by ``results.changes``, drawn as
    a labelled vertical line at that result."""
    plot.clear_plot(f"{metric.title} over time ({metric.unit}){title_suffix}" if series
                    else f"No {metric.title} in these results")
    if not series:
        return False
    plot.set_labels("date", metric.unit)
    hosts = {s.host for s in series}
    reg_x: list[float] = []
    reg_y: list[float] = []
    imp_x: list[float] = []
    imp_y: list[float] = []
    for i, s in enumerate(series):
        label = s.runtime + (f" · {s.host}" if len(hosts) > 1 else "") + (
            f" · {s.setup}" if s.setup and s.setup != "none/api" else "")
        colour = series_colour(s.runtime, i)
        xs = [p.created_ts for p in s.points]
        ys = [p.value for p in s.points]
        plot.addItem(pg.PlotDataItem(xs, ys, pen=pg.mkPen(colour, width=1.5), name=label,
                                     symbol="o", symbolSize=5, symbolBrush=colour,
                                     symbolPen=colour))
        changes = {c.index: c for c in s.changes}
        texts = []
        for k, p in enumerate(s.points):
            text = (f"{label}: {p.value:,.1f} {metric.unit} · "
                    f"{dt.datetime.fromtimestamp(p.created_ts):%Y-%m-%d %H:%M} · {p.id}")
            if k in changes:
                c = changes[k]
                word = "regression" if c.change_pct > 0 else "improvement"
                text += f" · {word} {c.change_pct:+.0f}% against {c.reference:,.1f}"
                (reg_x if c.change_pct > 0 else imp_x).append(p.created_ts)
                (reg_y if c.change_pct > 0 else imp_y).append(p.value)
            texts.append(text)
        plot.add_hover(xs, ys, texts)
    if mark is not None:
        at, value = next(((p.created_ts, p.value) for s in series for p in s.points
                          if p.id == mark[0]), (None, 0.0))
        if at is not None:
            line = pg.InfiniteLine(pos=at, angle=90, label=mark[1],
                                   pen=pg.mkPen(QColor(*MARK_COLOUR), width=2,
                                                style=Qt.PenStyle.DashLine),
                                   labelOpts={"position": 0.95, "color": QColor(*MARK_COLOUR),
                                              "anchors": [(1, 0), (1, 0)]})
            line.setZValue(5)
            plot.addItem(line)
            plot.add_hover([at], [value], [mark[2]])
            plot.marked = (mark[0], mark[1])
    for xs, ys, symbol, rgb, name in ((reg_x, reg_y, "t1", REGRESSION_COLOUR, "regression"),
                                      (imp_x, imp_y, "t", IMPROVEMENT_COLOUR, "improvement")):
        if xs:
            marks = pg.ScatterPlotItem(xs, ys, symbol=symbol, size=11,
                                       brush=pg.mkBrush(QColor(*rgb)),
                                       pen=pg.mkPen(QColor(*rgb).darker(150)), name=name)
            marks.setZValue(10)  # above the lines
            plot.addItem(marks)
    plot.headroom("y", 0.3)
    return True


def draw_fleet(plot: Plot, fleet: Fleet, metric: str) -> list[tuple[str, str, float]]:
    """A fleet's ratios against its baseline host: one group of bars per host that has a
    result, a bar per runtime (its colour), the 95% CI as an error bar; the baseline host's
    bars stand at 1.0, the dashed line every other bar is read against. Returns the bars
    drawn as (host, runtime, height)."""
    grid = [(h, cells) for h, cells in fleet.grid(metric) if any(cells)]
    plot.clear_plot(f"{metric_title(metric).capitalize()}: each host against "
                    f"{fleet.baseline_host} (ratio, 95% CI)" if grid else
                    "No figures of this metric in the fleet result")
    if not grid:
        return []
    plot.set_labels("host", "ratio: baseline / host")
    width = 0.8 / max(len(fleet.runtimes), 1)
    drawn: list[tuple[str, str, float]] = []
    legend: set[str] = set()
    for i, (host, cells) in enumerate(grid):
        for k, (runtime, cell) in enumerate(zip(fleet.runtimes, cells, strict=True)):
            height = None if cell is None else 1.0 if cell.baseline else cell.ratio
            if height is None or cell is None:
                continue
            x = i - 0.4 + width * (k + 0.5)
            colour = series_colour(runtime, k)
            bar = pg.BarGraphItem(x=[x], height=[height], width=width * 0.9,
                                  brush=_alpha(colour, 90 if cell.baseline else 200),
                                  pen=pg.mkPen(colour))
            plot.addItem(bar)
            if runtime not in legend:
                legend.add(runtime)
                plot.legend.addItem(bar, runtime)
            if cell.ci95 is not None:
                plot.addItem(pg.ErrorBarItem(
                    x=np.array([x]), y=np.array([height]),
                    top=np.array([cell.ci95[1] - height]),
                    bottom=np.array([height - cell.ci95[0]]),
                    beam=width * 0.4, pen=pg.mkPen(_alpha(colour, 255).darker(160), width=1.5)))
            plot.add_hover([x], [height], [cell.detail()])
            drawn.append((host.name, runtime, height))
    line = pg.InfiniteLine(pos=1.0, angle=0, label=f"{fleet.baseline_host} (baseline)",
                           pen=pg.mkPen(_alpha(QApplication.palette().color(
                               QPalette.ColorRole.Text), 160), width=1,
                               style=Qt.PenStyle.DashLine),
                           labelOpts={"position": 0.05, "anchors": [(0, 1), (0, 1)]})
    plot.addItem(line)
    _names_axis(plot, "bottom", [h.name for h, _cells in grid])
    plot.setXRange(-0.6, len(grid) - 0.4)
    tops = [c.ci95[1] for _h, cells in grid for c in cells if c is not None and c.ci95]
    plot.setYRange(0, max([1.0, *tops, *(d[2] for d in drawn)]) * 1.4, padding=0)
    return drawn


class PlotsView(QWidget):
    """The chosen result's distribution, memory over time and density line, and the trend of
    a metric over the history (computed in a worker thread: 10,000 summaries)."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.rows: list[HistoryRow] = []
        self.doc: Mapping[str, Any] | None = None
        self.trend_drawn = 0
        """How many times the trend was drawn (tests wait for it)."""
        self._trend_generation = 0
        self._trend_dirty = True
        self.plots = {"distribution": Plot("distribution"), "trend": Plot("trend", True),
                      "memory": Plot("memory"), "density": Plot("density"),
                      "scaling": Plot("scaling")}
        self.tabs = QTabWidget()
        self.tabs.setObjectName("plot-tabs")
        for key, title in (("distribution", "&Distribution"), ("trend", "&Trend"),
                           ("memory", "&Memory over time"), ("density", "De&nsity"),
                           ("scaling", "Scalin&g")):
            self.tabs.addTab(self.plots[key], title)
        self.metric_box = QComboBox()
        self.metric_box.setAccessibleName("Trend metric")
        for name, spec in METRICS.items():
            self.metric_box.addItem(f"{spec.title} ({spec.unit})", name)
        self.machine_box = QComboBox()
        self.machine_box.setAccessibleName("Trend machine")
        self.runtime_box = QComboBox()
        self.runtime_box.setAccessibleName("Trend runtime")
        for box in (self.metric_box, self.machine_box, self.runtime_box):
            box.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(6)
        self.changes: list[Any] = []
        """Open change points (``results.changes.Change``), newest first."""
        self.mark: str | None = None
        """The result whose change the trend marks."""
        self.export_button = QPushButton("Export &PNG…")
        self.export_button.setToolTip("Save the plot on show as a PNG image")
        self.export_button.clicked.connect(self.export_dialog)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Trend of"))
        bar.addWidget(self.metric_box, 2)
        bar.addWidget(self.runtime_box, 1)
        bar.addWidget(QLabel("on"))
        bar.addWidget(self.machine_box, 2)
        bar.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.tabs, 1)
        self.metric_box.currentIndexChanged.connect(self._trend_inputs_changed)
        self.machine_box.currentIndexChanged.connect(self._trend_inputs_changed)
        self.runtime_box.currentIndexChanged.connect(self._trend_inputs_changed)
        self.tabs.currentChanged.connect(lambda _i: self._maybe_trend())

    # -- inputs -----------------------------------------------------------------------------
    def set_history(self, rows: Sequence[HistoryRow]) -> None:
        self.rows = list(rows)
        machines: dict[str, str] = {}
        for r in self.rows:
            if r.summary is not None and r.machine not in machines:
                machines[r.machine] = machine_text(r.summary)
        current = self.machine_box.currentData()
        self.machine_box.blockSignals(True)
        self.machine_box.clear()
        self.machine_box.addItem("every machine", None)
        for key, text in sorted(machines.items(), key=lambda kv: kv[1]):
            self.machine_box.addItem(text, key)
        index = self.machine_box.findData(current)
        self.machine_box.setCurrentIndex(max(index, 0))
        self.machine_box.blockSignals(False)
        self._fill_runtimes({n for r in self.rows for n in r.runtimes})
        self._trend_inputs_changed()

    def _fill_runtimes(self, names: set[str]) -> None:
        current = self.runtime_box.currentData()
        self.runtime_box.blockSignals(True)
        self.runtime_box.clear()
        self.runtime_box.addItem("every runtime", None)
        for name in sorted(names | ({current} if current else set())):
            self.runtime_box.addItem(name, name)
        self.runtime_box.setCurrentIndex(max(self.runtime_box.findData(current), 0))
        self.runtime_box.blockSignals(False)

    def show_trend(self, runtime: str | None, metric: str, machine: str | None,
                   mark: str | None = None) -> None:
        """The trend tab, of ``metric`` for ``runtime`` on ``machine`` (None: all), the
        change that starts at result ``mark`` marked."""
        self.mark = mark
        if runtime is not None and self.runtime_box.findData(runtime) < 0:
            self._fill_runtimes({str(self.runtime_box.itemData(i))
                                 for i in range(1, self.runtime_box.count())} | {runtime})
        for box, value in ((self.metric_box, metric), (self.runtime_box, runtime),
                           (self.machine_box, machine)):
            box.blockSignals(True)
            box.setCurrentIndex(max(box.findData(value), 0))
            box.blockSignals(False)
        self.tabs.setCurrentWidget(self.plots["trend"])
        self._trend_inputs_changed()

    def set_changes(self, changes: Sequence[Any]) -> None:
        """The open change points: the marked one's label comes from them."""
        self.changes = list(changes)
        if self.mark is not None:
            self._trend_inputs_changed()

    def mark_label(self) -> str:
        """The marked change in a few words (the plot is narrow): its size and likeliest
        cause; its whole headline is the line's hover text."""
        change = next((c for c in self.changes if c.result_id == self.mark), None)
        if change is None:
            return "change"
        cause = next((a for a in change.attribution if a.field == "version"),
                     change.attribution[0] if change.attribution else None)
        said = "" if cause is None else (
            f" · {change.runtime if cause.field == 'version' else cause.field} "
            f"{cause.before} → {cause.after}")
        return f"{change.change_pct:+.0f}%{said}"

    def mark_text(self) -> str:
        change = next((c for c in self.changes if c.result_id == self.mark), None)
        return change.headline() if change is not None else f"change at {self.mark}"

    def show_result(self, row: HistoryRow, doc: Mapping[str, Any] | None) -> None:
        self.doc = doc
        empty: Mapping[str, Any] = {"kind": row.kind}
        draw_distribution(self.plots["distribution"], doc or empty)
        draw_memory(self.plots["memory"], doc or empty)
        draw_density(self.plots["density"], doc or empty)
        draw_scaling(self.plots["scaling"], doc or empty)
        metric = _METRIC_OF_KIND.get(row.kind)
        self.metric_box.blockSignals(True)
        self.machine_box.blockSignals(True)
        if metric:
            self.metric_box.setCurrentIndex(max(self.metric_box.findData(metric), 0))
        if row.machine:
            self.machine_box.setCurrentIndex(max(self.machine_box.findData(row.machine), 0))
        self.metric_box.blockSignals(False)
        self.machine_box.blockSignals(False)
        self._trend_inputs_changed()
        best = {"startup": "distribution", "canary": "distribution",
                "compare": "distribution", "image": "distribution",
                "memory": "memory", "profile": "memory", "scale": "scaling"}.get(row.kind)
        if best and self.tabs.currentWidget() is not self.plots["trend"]:
            self.tabs.setCurrentWidget(self.plots[best])

    # -- the trend --------------------------------------------------------------------------
    def _trend_inputs_changed(self) -> None:
        self._trend_dirty = True
        self._maybe_trend()

    def _maybe_trend(self) -> None:
        if self._trend_dirty and self.tabs.currentWidget() is self.plots["trend"]:
            self.refresh_trend()

    def refresh_trend(self) -> None:
        from forge_desktop.results.history import trend

        self._trend_dirty = False
        self._trend_generation += 1
        generation = self._trend_generation
        metric = str(self.metric_box.currentData())
        machine = self.machine_box.currentData()
        runtime = self.runtime_box.currentData()
        summaries = [r.summary for r in self.rows if r.summary is not None
                     and (machine is None or r.summary.machine == machine)]
        suffix = "" if machine is None else f" · {self.machine_box.currentText()}"
        mark = None if self.mark is None else (self.mark, self.mark_label(), self.mark_text())

        def done(series: list[Any]) -> None:
            if generation == self._trend_generation:
                draw_trend(self.plots["trend"], series, METRICS[metric], suffix, mark)
                self.trend_drawn += 1

        self.plots["trend"].set_title("Computing the trend…")
        in_thread(self.bridge, "trend", lambda: trend(summaries, metric, runtime), done)

    # -- export and looks -------------------------------------------------------------------
    def current_plot(self) -> Plot:
        widget = self.tabs.currentWidget()
        assert isinstance(widget, Plot)
        return widget

    def export_png(self, path: Path, key: str | None = None) -> Path:
        plot = self.plots[key] if key else self.current_plot()
        return plot.export_png(path)

    def export_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        plot = self.current_plot()
        name, _filter = QFileDialog.getSaveFileName(
            self, "Export plot", str(Path.home() / f"forge-{plot.accessibleName()}.png"),
            "PNG image (*.png)")
        if name:
            path = Path(name if name.lower().endswith(".png") else f"{name}.png")
            self.export_png(path)

    def apply_palette(self) -> None:
        for plot in self.plots.values():
            plot.apply_palette()


_METRIC_OF_KIND = {"startup": "startup", "canary": "startup", "compare": "startup",
                   "memory": "per_container_memory",
                   "disk": "disk"}
