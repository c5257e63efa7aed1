"""The live-usage tray icon, drawn with Pillow as a pure function of the figures.

Two vertical bars (CPU, memory) on a dark rounded tile with a light rim, so they read on light
and dark panels alike; the number of running containers as a badge; the state as the rim
colour (busy: amber, error: red, paused: grey). Same inputs, same pixels.
"""

from __future__ import annotations

from typing import Literal

from PIL import Image, ImageDraw

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


def _fill(draw: ImageDraw.ImageDraw, well: tuple[int, int, int, int], fraction: float,
          colour: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = well
    draw.rectangle(well, fill=EMPTY)
    height = y1 - y0 + 1
    filled = round(max(0.0, min(1.0, fraction)) * height)
    if filled:
        draw.rectangle((x0, y1 - filled + 1, x1, y1), fill=colour)


def _badge(draw: ImageDraw.ImageDraw, size: int, count: int) -> None:
    text = str(count) if count < 10 else "9+"
    scale = 1 if size < 32 else 2
    w = (len(text) * 4 - 1) * scale + 2
    h = 5 * scale + 2
    x0, y0 = size - w, size - h
    draw.rectangle((x0, y0, size - 1, size - 1), fill=BADGE)
    for i, ch in enumerate(text):
        bits = _DIGITS[ch]
        for r in range(5):
            for c in range(3):
                if bits[r * 3 + c] == "1":
                    px = x0 + 1 + (i * 4 + c) * scale
                    py = y0 + 1 + r * scale
                    draw.rectangle((px, py, px + scale - 1, py + scale - 1), fill=BADGE_TEXT)


def render_icon(cpu_percent: float, memory_percent: float, containers: int | None = None,
                state: State = "idle", size: int = 22) -> Image.Image:
    """An RGBA ``size`` x ``size`` icon. Percentages are clamped to 0..100."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    radius = max(2, size // 6)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=radius, fill=TILE,
                           outline=RIM[state], width=max(1, size // 12))
    cpu_well, mem_well = bar_geometry(size)
    _fill(draw, cpu_well, cpu_percent / 100, CPU)
    _fill(draw, mem_well, memory_percent / 100, MEM)
    if containers:
        _badge(draw, size, containers)
    return img


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
