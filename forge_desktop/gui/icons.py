"""The live-usage tray icon, drawn in pure Python as a pure function of the figures.

Two vertical bars (CPU, memory) on a dark rounded tile with a light rim, so they read on light
and dark panels alike; the number of running containers as a badge; the state as the rim
colour (busy: amber, error: red, paused: grey). Same inputs, same pixels.

Rectangles and a rounded tile on a 22 px raster need no imaging library: Pillow cost the idle
tray about 4 MiB RSS (its modules and shared libraries) for drawing a few hundred pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

State = Literal["idle", "busy", "error", "paused"]

TILE = (32, 36, 44, 235)
RIM = {"idle": (210, 215, 225, 255), "busy": (255, 176, 0, 255), "error": (230, 40, 40, 255),
       "paused": (120, 120, 120, 255)}
CPU = (64, 196, 255, 255)
MEM = (120, 230, 120, 255)
EMPTY = (70, 76, 90, 255)
BADGE = (250, 250, 250, 255)
BADGE_TEXT = (20, 20, 20, 255)

# 3x5 bitmap digits: legible at 16-24 px where fonts blur
_DIGITS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001010010010", "8": "111101111101111",
    "9": "111101111001111", "+": "000010111010000",
}


def bar_geometry(size: int) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of the CPU and memory bar wells, inclusive; shared with the tests."""
    pad = max(2, size // 8)
    width = max(2, (size - 3 * pad) // 2 - (1 if size >= 20 else 0))
    top, bottom = pad, size - pad - 1
    return ((pad, top, pad + width - 1, bottom),
            (size - pad - width, top, size - pad - 1, bottom))


Colour = tuple[int, int, int, int]
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Icon:
    """A ``size`` x ``size`` RGBA raster, rows top to bottom, 4 bytes a pixel (the layout of
    QImage.Format_RGBA8888)."""

    size: int
    rgba: bytes

    def pixel(self, x: int, y: int) -> Colour:
        i = 4 * (y * self.size + x)
        r, g, b, a = self.rgba[i:i + 4]
        return r, g, b, a


class _Canvas:
    def __init__(self, size: int) -> None:
        self.size = size
        self.buf = bytearray(4 * size * size)  # transparent

    def put(self, x: int, y: int, colour: Colour) -> None:
        i = 4 * (y * self.size + x)
        self.buf[i:i + 4] = bytes(colour)

    def rectangle(self, box: Box, colour: Colour) -> None:
        """Fill ``box`` (x0, y0, x1, y1), inclusive, clipped to the canvas."""
        x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(self.size - 1, box[2]), \
            min(self.size - 1, box[3])
        row = bytes(colour) * (x1 - x0 + 1)
        for y in range(y0, y1 + 1):
            i = 4 * (y * self.size + x0)
            self.buf[i:i + len(row)] = row


def _in_rounded(x: int, y: int, box: Box, radius: int) -> bool:
    """Whether the centre of pixel (x, y) lies in ``box`` with corners of ``radius``."""
    x0, y0, x1, y1 = box
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        return False
    cx = x0 + radius if x < x0 + radius else x1 - radius if x > x1 - radius else x
    cy = y0 + radius if y < y0 + radius else y1 - radius if y > y1 - radius else y
    return math.hypot(x - cx, y - cy) <= radius + 0.45


def _tile(canvas: _Canvas, radius: int, width: int, fill: Colour, outline: Colour) -> None:
    """A rounded tile over the whole canvas with a ``width`` px rim."""
    last = canvas.size - 1
    inner = (width, width, last - width, last - width)
    for y in range(canvas.size):
        for x in range(canvas.size):
            if _in_rounded(x, y, (0, 0, last, last), radius):
                rim = not _in_rounded(x, y, inner, max(0, radius - width))
                canvas.put(x, y, outline if rim else fill)


def _fill(canvas: _Canvas, well: Box, fraction: float, colour: Colour) -> None:
    x0, y0, x1, y1 = well
    canvas.rectangle(well, EMPTY)
    height = y1 - y0 + 1
    filled = round(max(0.0, min(1.0, fraction)) * height)
    if filled:
        canvas.rectangle((x0, y1 - filled + 1, x1, y1), colour)


def _badge(canvas: _Canvas, size: int, count: int) -> None:
    text = str(count) if count < 10 else "9+"
    scale = 1 if size < 32 else 2
    w = (len(text) * 4 - 1) * scale + 2
    h = 5 * scale + 2
    x0, y0 = size - w, size - h
    canvas.rectangle((x0, y0, size - 1, size - 1), BADGE)
    for i, ch in enumerate(text):
        bits = _DIGITS[ch]
        for r in range(5):
            for c in range(3):
                if bits[r * 3 + c] == "1":
                    px = x0 + 1 + (i * 4 + c) * scale
                    py = y0 + 1 + r * scale
                    canvas.rectangle((px, py, px + scale - 1, py + scale - 1), BADGE_TEXT)


def render_icon(cpu_percent: float, memory_percent: float, containers: int | None = None,
                state: State = "idle", size: int = 22) -> Icon:
    """An RGBA ``size`` x ``size`` icon. Percentages are clamped to 0..100."""
    canvas = _Canvas(size)
    _tile(canvas, max(2, size // 6), max(1, size // 12), TILE, RIM[state])
    cpu_well, mem_well = bar_geometry(size)
    _fill(canvas, cpu_well, cpu_percent / 100, CPU)
    _fill(canvas, mem_well, memory_percent / 100, MEM)
    if containers:
        _badge(canvas, size, containers)
    return Icon(size, bytes(canvas.buf))


def tooltip(cpu_percent: float, used_bytes: int, total_bytes: int,
            counts: dict[str, int | None]) -> str:
    """"CPU 23% · Mem 4.1 / 16 GiB · 3 containers: docker 2, podman 1"."""
    gib = 1024 ** 3
    known = {k: v for k, v in counts.items() if v is not None}
    total = sum(known.values())
    parts = [f"CPU {cpu_percent:.0f}%", f"Mem {used_bytes / gib:.1f} / {total_bytes / gib:.0f} GiB"]
    if known:
        detail = ", ".join(f"{k} {v}" for k, v in known.items())
        parts.append(f"{total} container{'s' if total != 1 else ''}: {detail}")
    else:
        parts.append("no engine answering")
    return " · ".join(parts)
