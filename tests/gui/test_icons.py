"""The tray icon renderer is a pure function: checked on pixels."""

from __future__ import annotations

import pytest

from forge_desktop.gui.icons import (
    CPU,
    EMPTY,
    MEM,
    RIM,
    TILE,
    Icon,
    bar_geometry,
    render_icon,
    tooltip,
)


def column(img: Icon, x: int, y0: int, y1: int) -> list[tuple[int, ...]]:
    return [img.pixel(x, y) for y in range(y0, y1 + 1)]


@pytest.mark.parametrize("size", [16, 22, 24])
@pytest.mark.parametrize("cpu, mem", [(0, 0), (50, 50), (100, 100), (0, 100), (100, 0)])
def test_bars_fill_in_proportion(size: int, cpu: float, mem: float) -> None:
    img = render_icon(cpu, mem, None, "idle", size)
    assert img.size == size and len(img.rgba) == 4 * size * size
    cpu_well, mem_well = bar_geometry(size)
    for well, pct, colour in ((cpu_well, cpu, CPU), (mem_well, mem, MEM)):
        x = (well[0] + well[2]) // 2
        px = column(img, x, well[1], well[3])
        filled = sum(1 for p in px if p == colour)
        assert sum(1 for p in px if p == EMPTY) + filled == len(px)
        assert filled == round(pct / 100 * len(px))
        if 0 < pct < 100:  # filled from the bottom up
            assert px[-1] == colour and px[0] == EMPTY


def test_busy_state_changes_the_rim_and_idle_rim_is_light() -> None:
    idle, busy = render_icon(10, 10, None, "idle"), render_icon(10, 10, None, "busy")
    top_middle = (11, 0)
    assert idle.pixel(*top_middle) == RIM["idle"]
    assert busy.pixel(*top_middle) == RIM["busy"]
    assert idle.pixel(0, 0)[3] == 0  # rounded corner: transparent, panel shows through


def test_container_badge_appears_and_is_deterministic() -> None:
    none, three = render_icon(20, 20, 0), render_icon(20, 20, 3)
    corner = (21, 21)
    assert none.pixel(*corner) != three.pixel(*corner)
    assert render_icon(20, 20, 3).rgba == three.rgba
    assert render_icon(20, 20, 42).rgba != three.rgba  # "9+"


def test_clamps_out_of_range() -> None:
    assert render_icon(-5, 250).rgba == render_icon(0, 100).rgba


def test_tooltip_spells_it_out() -> None:
    text = tooltip(23.4, int(4.1 * 1024**3), 16 * 1024**3, {"docker": 2, "podman": 1})
    assert text == "CPU 23% · Mem 4.1 / 16 GiB · 3 containers: docker 2, podman 1"
    assert "no engine answering" in tooltip(1, 1, 1024**3, {"docker": None})


@pytest.mark.parametrize("size", range(12, 36))
def test_the_tile_is_the_one_pillow_drew(size: int) -> None:
    """The icon was drawn with Pillow until issue 13 (the tray no longer loads it): at the
    sizes trays use, the tile is still pixel for pixel Pillow's rounded rectangle."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(img).rounded_rectangle((0, 0, size - 1, size - 1), radius=max(2, size // 6),
                                          fill=TILE, outline=RIM["busy"],
                                          width=max(1, size // 12))
    ours = render_icon(0, 0, None, "busy", size)
    cpu_well, mem_well = bar_geometry(size)
    for y in range(size):
        for x in range(size):
            in_well = any(w[0] <= x <= w[2] and w[1] <= y <= w[3] for w in (cpu_well, mem_well))
            if not in_well:
                assert ours.pixel(x, y) == img.getpixel((x, y)), (x, y)
