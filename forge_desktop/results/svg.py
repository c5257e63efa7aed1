"""A small SVG plotting library: box-and-strip lanes, line charts, bars, round axis ticks.

No plotting library and no script: every element is a string built here, and every attribute
value and text is escaped (:func:`h`), so the plots of a report built from a file from
anywhere stay inert. The HTML export draws with it (``results/export/html.py``).
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Callable, Sequence
from typing import Any

from forge_desktop.bench.stats import percentile
from forge_desktop.results.document import text as text_of

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759", "#76b7b2", "#edc948",
           "#9c755f", "#ff9da7", "#bab0ac")
INK, MUTED, GRID = "#1d2330", "#5b6474", "#dfe3ea"


def h(text: Any) -> str:
    """Escape for HTML text and attribute values. "/" after ":" and "=" are written as
    entities too (they render the same), so no text from a result file forms "https://" or
    "src=" in the source: a plain grep for external references stays meaningful."""
    return html.escape(text_of(text), quote=True).replace("://", ":&#47;&#47;") \
        .replace("=", "&#61;")


class Palette:
    """A colour per series label, the same in every plot of one report."""

    def __init__(self) -> None:
        self._colors: dict[str, str] = {}

    def __call__(self, label: str) -> str:
        if label not in self._colors:
            self._colors[label] = PALETTE[len(self._colors) % len(PALETTE)]
        return self._colors[label]


def axis_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round axis ticks (1, 2, 2.5, 5 × 10^k) covering [lo, hi]."""
    if not hi > lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / target
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    start = math.floor(lo / step + 1e-9) * step
    count = math.ceil((hi - start) / step - 1e-9)
    return [start + k * step for k in range(count + 1)]


def tick_label(value: float, ticks: Sequence[float]) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    digits = 0
    while digits < 6 and abs(round(step * 10**digits) - step * 10**digits) > 1e-6:
        digits += 1
    return f"{value:,.{digits}f}"


def clip(label: str, size: int = 24) -> str:
    return label if len(label) <= size else label[:size - 1] + "…"


class Svg:
    """A few SVG elements, every attribute value and text escaped."""

    def __init__(self, width: float, height: float, label: str) -> None:
        self.width, self.height, self.label = width, height, label
        self.parts: list[str] = []

    @staticmethod
    def _attrs(**attrs: Any) -> str:
        out = []
        for key, value in attrs.items():
            if value is None:
                continue
            text = f"{value:.1f}" if isinstance(value, float) else h(value)
            out.append(f'{key.rstrip("_").replace("_", "-")}="{text}"')
        return " ".join(out)

    def add(self, tag: str, title: str | None = None, text: str | None = None,
            **attrs: Any) -> None:
        inner = (f"<title>{h(title)}</title>" if title else "") + (h(text) if text else "")
        self.parts.append(f"<{tag} {self._attrs(**attrs)}>{inner}</{tag}>")

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = GRID,
             width: float = 1.0) -> None:
        self.add("line", x1=x1, y1=y1, x2=x2, y2=y2, stroke=stroke, stroke_width=width)

    def text(self, x: float, y: float, text: str, anchor: str = "start", size: int = 12,
             fill: str = INK, title: str | None = None, weight: str | None = None) -> None:
        self.add("text", title=title, text=text, x=x, y=y, text_anchor=anchor,
                 font_size=size, fill=fill, font_weight=weight)

    def render(self) -> str:
        return (f'<svg viewBox="0 0 {self.width:.0f} {self.height:.0f}" '
                f'width="{self.width:.0f}" height="{self.height:.0f}" role="img" '
                f'aria-label="{h(self.label)}" font-family="system-ui, sans-serif">'
                + "".join(self.parts) + "</svg>")


def _x_axis(svg: Svg, ticks: Sequence[float], x: Callable[[float], float], top: float,
            bottom: float, label: str) -> None:
    for t in ticks:
        svg.line(x(t), top, x(t), bottom)
        svg.text(x(t), bottom + 16, tick_label(t, ticks), anchor="middle", size=11,
                 fill=MUTED)
    svg.line(x(ticks[0]), bottom, x(ticks[-1]), bottom, stroke=MUTED)
    svg.text((x(ticks[0]) + x(ticks[-1])) / 2, bottom + 34, label, anchor="middle", size=12,
             fill=MUTED)


def distribution_svg(lanes: Sequence[tuple[str, Sequence[float], str]], axis_label: str,
                     unit: str = "ms") -> str:
    """A box plot over a strip of every iteration, one lane per runtime, on one axis from 0
    (so lanes compare at a glance). Box: quartiles; whiskers: Tukey's 1.5 IQR; line: median."""
    width, left, right, top, lane_h, bottom_h = 900.0, 180.0, 110.0, 10.0, 46.0, 48.0
    height = top + lane_h * max(len(lanes), 1) + bottom_h
    svg = Svg(width, height, axis_label)
    values = [v for _, vs, _ in lanes for v in vs]
    ticks = axis_ticks(min([0.0, *values]), max([0.0, *values]) or 1.0)
    span = ticks[-1] - ticks[0]

    def x(v: float) -> float:
        return left + (width - left - right) * (v - ticks[0]) / span

    bottom = top + lane_h * max(len(lanes), 1)
    for i in range(1, len(lanes), 2):
        svg.add("rect", x=left, y=top + lane_h * i, width=width - left - right, height=lane_h,
                fill="#f5f7fa")
    _x_axis(svg, ticks, x, top, bottom, axis_label)
    for i, (label, vs, color) in enumerate(lanes):
        cy = top + lane_h * i + lane_h / 2
        svg.text(left - 10, cy + 4, clip(label), anchor="end", size=12, title=label)
        if not vs:
            svg.text(left + 6, cy + 4, "no samples", size=12, fill=MUTED)
            continue
        q1, med, q3 = (percentile(vs, q) for q in (25, 50, 75))
        iqr = q3 - q1
        lo = min(v for v in vs if v >= q1 - 1.5 * iqr)
        hi = max(v for v in vs if v <= q3 + 1.5 * iqr)
        for a, b in ((lo, q1), (q3, hi)):
            svg.line(x(a), cy, x(b), cy, stroke=color, width=1.5)
        for end in (lo, hi):
            svg.line(x(end), cy - 7, x(end), cy + 7, stroke=color, width=1.5)
        svg.add("rect", x=x(q1), y=cy - 12, width=max(x(q3) - x(q1), 1.0), height=24.0,
                fill=color, fill_opacity="0.22", stroke=color, stroke_width="1.5",
                title=f"{label}: quartiles {q1:,.1f}–{q3:,.1f} {unit}")
        for k, v in enumerate(vs):
            jitter = ((k * 0.6180339887) % 1.0 - 0.5) * 26  # deterministic, evenly spread
            svg.add("circle", cx=x(v), cy=cy + jitter, r=3.0, fill=color, fill_opacity="0.7",
                    title=f"{label} #{k + 1}: {v:,.1f} {unit}")
        svg.line(x(med), cy - 14, x(med), cy + 14, stroke=INK, width=2.5)
        svg.text(width - right + 10, cy + 4, f"{med:,.1f} {unit}", size=12, weight="600",
                 title=f"{label}: median {med:,.1f} {unit}")
    return svg.render()


def line_chart_svg(series: Sequence[tuple[str, str, Sequence[tuple[float, float, str]]]],
                   x_ticks: Sequence[tuple[float, str]], x_label: str, y_label: str) -> str:
    """Lines with dots (hover: the dot's title), y from 0, a legend on the right."""
    width, left, right, top, plot_h, bottom_h = 900.0, 70.0, 210.0, 14.0, 240.0, 52.0
    height = max(top + plot_h + bottom_h, top + 20.0 * len(series) + 10)
    svg = Svg(width, height, y_label)
    xs = [p[0] for _, _, pts in series for p in pts] + [t for t, _ in x_ticks]
    ys = [p[1] for _, _, pts in series for p in pts]
    x_lo, x_hi = min(xs, default=0.0), max(xs, default=1.0)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    pad = (x_hi - x_lo) * 0.04
    x_lo, x_hi = x_lo - pad, x_hi + pad
    y_ticks = axis_ticks(min([0.0, *ys]), max([0.0, *ys]) or 1.0, 5)
    bottom = top + plot_h

    def x(v: float) -> float:
        return left + (width - left - right) * (v - x_lo) / (x_hi - x_lo)

    def y(v: float) -> float:
        return bottom - plot_h * (v - y_ticks[0]) / (y_ticks[-1] - y_ticks[0])

    for t in y_ticks:
        svg.line(left, y(t), width - right, y(t))
        svg.text(left - 8, y(t) + 4, tick_label(t, y_ticks), anchor="end", size=11,
                 fill=MUTED)
    svg.add("text", text=y_label, x=16.0, y=top + plot_h / 2, text_anchor="middle",
            font_size=12, fill=MUTED, transform=f"rotate(-90 16 {top + plot_h / 2:.1f})")
    for t, text in x_ticks:
        svg.line(x(t), bottom, x(t), bottom + 5, stroke=MUTED)
        svg.text(x(t), bottom + 18, text, anchor="middle", size=11, fill=MUTED)
    svg.line(left, bottom, width - right, bottom, stroke=MUTED)
    svg.text((left + width - right) / 2, bottom + 38, x_label, anchor="middle", size=12,
             fill=MUTED)
    for i, (label, color, pts) in enumerate(series):
        pts = sorted(pts)
        if len(pts) > 1:
            svg.add("polyline", points=" ".join(f"{x(px):.1f},{y(py):.1f}" for px, py, _ in pts),
                    fill="none", stroke=color, stroke_width="2")
        for px, py, tip in pts:
            svg.add("circle", cx=x(px), cy=y(py), r=4.0, fill=color, title=tip)
        ly = top + 20.0 * i + 6
        svg.add("rect", x=width - right + 16, y=ly - 9, width=14.0, height=10.0, fill=color)
        svg.text(width - right + 36, ly, clip(label, 26), size=12, title=label)
    return svg.render()


def bars_svg(rows: Sequence[tuple[str, float | None, str]], axis_label: str,
             unit: str) -> str:
    """Horizontal bars from 0, one per runtime."""
    width, left, right, top, lane_h, bottom_h = 900.0, 180.0, 110.0, 10.0, 34.0, 48.0
    height = top + lane_h * max(len(rows), 1) + bottom_h
    svg = Svg(width, height, axis_label)
    values = [v for _, v, _ in rows if v is not None]
    ticks = axis_ticks(min([0.0, *values]), max([0.0, *values]) or 1.0)
    span = ticks[-1] - ticks[0]

    def x(v: float) -> float:
        return left + (width - left - right) * (v - ticks[0]) / span

    bottom = top + lane_h * max(len(rows), 1)
    _x_axis(svg, ticks, x, top, bottom, axis_label)
    for i, (label, value, color) in enumerate(rows):
        cy = top + lane_h * i + lane_h / 2
        svg.text(left - 10, cy + 4, clip(label), anchor="end", size=12, title=label)
        if value is None:
            svg.text(left + 6, cy + 4, "not measured", size=12, fill=MUTED)
            continue
        svg.add("rect", x=min(x(0), x(value)), y=cy - 10, width=max(abs(x(value) - x(0)), 1.0),
                height=20.0, fill=color, title=f"{label}: {value:,.1f} {unit}")
        svg.text(width - right + 10, cy + 4, f"{value:,.1f} {unit}", size=12, weight="600")
    return svg.render()


def time_axis_ticks(times: Sequence[float]) -> list[tuple[float, str]]:
    lo, hi = min(times), max(times)
    fmt = "%H:%M:%S" if hi - lo < 2 * 3600 else "%m-%d %H:%M" if hi - lo < 2 * 86400 \
        else "%Y-%m-%d"
    count = 1 if hi == lo else min(5, len(set(times)))
    marks = [lo] if count == 1 else [lo + (hi - lo) * k / (count - 1) for k in range(count)]
    return [(t, dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime(fmt)) for t in marks]
