#!/usr/bin/env python3
"""Generate every icon file from the one SVG source, reproducibly.

    python scripts/make_icons.py [--renderer auto|rsvg|magick|pillow] [--out DIR] [--check]

Source: ``assets/forge-desktop.svg`` (hand-drawn, a container on an anvil). Outputs, under
``--out`` (default: the repository):

- ``forge_desktop/assets/icons/forge-desktop.svg``: the source, copied (it ships in the wheel
  and is installed as the scalable hicolor icon);
- ``forge_desktop/assets/icons/forge-desktop-<size>.png`` for 16 22 24 32 48 64 128 256;
- ``forge_desktop/assets/tray/forge-desktop-{idle,busy,error}.svg``: the tray states, the
  source with the rim in the state colour of the live tray icon (gui/icons.py ``RIM``);
- ``assets/icons-build.json``: which renderer made the PNGs, the source digest and each
  file's SHA-256; ``assets/icons/*`` and ``assets/tray/*`` are symlinks to the shipped files.

Renderers, ``auto`` takes the first available: ``rsvg`` (librsvg's ``rsvg-convert``),
``magick`` (ImageMagick 7 ``magick`` or 6 ``convert``, 4x supersampled then resized),
``pillow`` (draws the same geometry itself: the SVG is kept to rect/polygon/circle with flat
fills, see the comment in the source, 4x supersampled then box-filtered).

Byte-identical output for the same input and renderer: the rasterizer gives raw RGBA pixels
and this script writes the PNG itself: IHDR, one IDAT (zlib level 9, a fixed per-row filter
choice), IEND; no timestamps, text, gamma or colour-profile chunks. ``--check`` renders into
a temporary directory with the recorded renderer and exits 1 when a committed file differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = Path("assets/forge-desktop.svg")
ICONS = Path("forge_desktop/assets/icons")
TRAY = Path("forge_desktop/assets/tray")
BUILD_RECORD = Path("assets/icons-build.json")
SIZES = (16, 22, 24, 32, 48, 64, 128, 256)
STATES = {"idle": "#d2d7e1", "busy": "#ffb000", "error": "#e62828"}
"""Rim colours, the same as gui/icons.py RIM (idle is the source's own rim)."""
SUPERSAMPLE = 4
VIEWBOX = 256.0

Renderer = Callable[[Path, int], bytes]
"""(svg, size) -> size*size*4 bytes of straight-alpha RGBA."""


# -- PNG, written and read here so no encoder version or timestamp leaks into the bytes ------

def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def encode_png(size: int, rgba: bytes) -> bytes:
    """An 8-bit RGBA PNG; each row gets the filter with the smallest sum of absolute values
    (libpng's heuristic), computed with numpy."""
    import numpy as np

    stride = size * 4
    img = np.frombuffer(rgba, dtype=np.uint8).reshape(size, stride).astype(np.int16)
    up = np.vstack([np.zeros((1, stride), np.int16), img[:-1]])
    left = np.hstack([np.zeros((size, 4), np.int16), img[:, :-4]])
    upleft = np.hstack([np.zeros((size, 4), np.int16), up[:, :-4]])
    p = left + up - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    candidates = [img, img - left, img - up, img - (left + up) // 2, img - paeth]
    filtered = [(c % 256).astype(np.uint8) for c in candidates]
    cost = np.stack([np.where(f < 128, f, 256 - f.astype(np.int16)).sum(axis=1)
                     for f in filtered])
    best = cost.argmin(axis=0)
    raw = b"".join(bytes([int(best[y])]) + filtered[int(best[y])][y].tobytes()
                   for y in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, RGBA bytes) of a non-interlaced 8-bit RGBA or RGB PNG (what
    rsvg-convert writes); enough to take pixels from a rasterizer."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width = 8, b"", 0
    height = depth = colour = interlace = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG (depth {depth}, colour type {colour})")
    bpp = 4 if colour == 6 else 3
    stride = width * bpp
    raw = zlib.decompress(idat)
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        kind_byte = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind_byte == 1:
                row[i] = (row[i] + a) & 255
            elif kind_byte == 2:
                row[i] = (row[i] + b) & 255
            elif kind_byte == 3:
                row[i] = (row[i] + (a + b) // 2) & 255
            elif kind_byte == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(row)
        prev = row
    pixels = b"".join(rows)
    if bpp == 3:
        pixels = b"".join(pixels[i:i + 3] + b"\xff" for i in range(0, len(pixels), 3))
    return width, height, pixels


# -- renderers ------------------------------------------------------------------------------

def _magick_command() -> list[str] | None:
    if shutil.which("magick"):
        return ["magick"]
    convert = shutil.which("convert")
    if convert:
        probe = subprocess.run([convert, "-version"], capture_output=True, text=True,
                               check=False)
        if "ImageMagick" in probe.stdout:
            return [convert]
    return None


def render_rsvg(svg: Path, size: int) -> bytes:
    png = subprocess.run(["rsvg-convert", "-w", str(size), "-h", str(size), "-f", "png",
                          str(svg)], capture_output=True, check=True).stdout
    width, height, rgba = decode_png(png)
    if (width, height) != (size, size):
        raise RuntimeError(f"rsvg-convert gave {width}x{height}, not {size}x{size}")
    return rgba


def render_magick(svg: Path, size: int) -> bytes:
    command = _magick_command()
    if command is None:
        raise RuntimeError("ImageMagick is not installed")
    density = 96 * SUPERSAMPLE * size / VIEWBOX  # 96 dpi = one pixel per SVG unit
    rgba = subprocess.run([*command, "-background", "none", "-density", f"{density:g}",
                           f"svg:{svg}", "-resize", f"{size}x{size}!", "-depth", "8",
                           "rgba:-"], capture_output=True, check=True).stdout
    if len(rgba) != size * size * 4:
        raise RuntimeError(f"ImageMagick gave {len(rgba)} bytes for {size}x{size}")
    return rgba


def _colour(value: str) -> tuple[int, int, int, int]:
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        raise ValueError(f"the Pillow renderer takes #rrggbb fills only, got {value!r}")
    return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16), 255)


def render_pillow(svg: Path, size: int) -> bytes:
    """The SVG's rects, polygons and circles, drawn in document order."""
    from PIL import Image, ImageDraw

    big = size * SUPERSAMPLE
    k = big / VIEWBOX
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    ns = "{http://www.w3.org/2000/svg}"
    for el in ET.parse(svg).getroot().iter():
        tag = el.tag.removeprefix(ns)
        if tag in ("svg", "title", "desc"):
            continue
        fill = _colour(el.get("fill", "#000000"))
        if tag == "rect":
            x, y = float(el.get("x", 0)), float(el.get("y", 0))
            w, h = float(el.get("width", 0)), float(el.get("height", 0))
            box = (x * k, y * k, (x + w) * k - 1, (y + h) * k - 1)
            draw.rounded_rectangle(box, radius=float(el.get("rx", 0)) * k, fill=fill)
        elif tag == "polygon":
            numbers = [float(n) for n in re.split(r"[\s,]+", el.get("points", "").strip())]
            draw.polygon([(numbers[i] * k, numbers[i + 1] * k)
                          for i in range(0, len(numbers), 2)], fill=fill)
        elif tag == "circle":
            cx, cy, r = (float(el.get(a, 0)) for a in ("cx", "cy", "r"))
            draw.ellipse(((cx - r) * k, (cy - r) * k, (cx + r) * k - 1, (cy + r) * k - 1),
                         fill=fill)
        else:
            raise ValueError(f"the Pillow renderer does not draw <{tag}>; keep the icon to "
                             "rect, polygon and circle")
    return image.resize((size, size), Image.Resampling.BOX).tobytes()


RENDERERS: dict[str, Renderer] = {"rsvg": render_rsvg, "magick": render_magick,
                                  "pillow": render_pillow}


def available(name: str) -> bool:
    if name == "rsvg":
        return shutil.which("rsvg-convert") is not None
    if name == "magick":
        return _magick_command() is not None
    try:
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


def renderer_version(name: str) -> str:
    if name == "rsvg":
        return subprocess.run(["rsvg-convert", "--version"], capture_output=True, text=True,
                              check=False).stdout.strip()
    if name == "magick":
        command = _magick_command() or ["convert"]
        first = subprocess.run([*command, "-version"], capture_output=True, text=True,
                               check=False).stdout.splitlines()[0]
        return re.sub(r"\s+https?://\S+.*$", "", first.removeprefix("Version: "))
    import PIL

    return f"Pillow {PIL.__version__}"


def pick(requested: str) -> str:
    if requested != "auto":
        if not available(requested):
            raise SystemExit(f"make_icons: renderer {requested!r} is not available here")
        return requested
    for name in ("rsvg", "magick", "pillow"):
        if available(name):
            return name
    raise SystemExit("make_icons: no renderer: install librsvg2-bin, ImageMagick or Pillow")


# -- outputs --------------------------------------------------------------------------------

def tray_variant(source_text: str, state: str) -> str:
    rim = re.compile(r'(<rect id="rim"[^>]*fill=")(#[0-9a-fA-F]{6})(")')
    if len(rim.findall(source_text)) != 1:
        raise SystemExit("make_icons: the source needs exactly one <rect id=\"rim\" ... "
                         "fill=\"#rrggbb\">")
    text = rim.sub(lambda m: m.group(1) + STATES[state] + m.group(3), source_text)
    return text.replace("<title>Forge Desktop</title>", f"<title>Forge Desktop ({state})</title>")


def mirror(out: Path, rel: Path) -> None:
    """``assets/<icons|tray>/<name>``: a relative symlink to the shipped file. One link per
    file, not per directory: an sdist builder that follows a directory link may take the
    package's copy for a duplicate and leave it out (hatchling does)."""
    link = out / "assets" / rel.parent.name / rel.name
    link.parent.mkdir(parents=True, exist_ok=True)
    target = os.path.relpath(out / rel, link.parent)
    if link.is_symlink() and os.readlink(link) == target:
        return
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def build(out: Path, renderer: str) -> dict[str, object]:
    """Write every output under ``out``; returns the build record."""
    source = REPO / SOURCE
    source_bytes = source.read_bytes()
    files: dict[str, bytes] = {str(ICONS / "forge-desktop.svg"): source_bytes}
    text = source_bytes.decode()
    for state in STATES:
        files[str(TRAY / f"forge-desktop-{state}.svg")] = tray_variant(text, state).encode()
    render = RENDERERS[renderer]
    for size in SIZES:
        files[str(ICONS / f"forge-desktop-{size}.png")] = encode_png(size, render(source, size))
    for rel, data in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        mirror(out, Path(rel))
    record: dict[str, object] = {
        "source": str(SOURCE),
        "source_sha256": hashlib.sha256(source_bytes).hexdigest(),
        "renderer": renderer,
        "renderer_version": renderer_version(renderer),
        "files": {rel: hashlib.sha256(data).hexdigest() for rel, data in sorted(files.items())},
    }
    (out / BUILD_RECORD).parent.mkdir(parents=True, exist_ok=True)
    (out / BUILD_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def check(renderer: str | None) -> int:
    """Render with the recorded renderer into a temporary directory; compare."""
    recorded = json.loads((REPO / BUILD_RECORD).read_text())
    name = renderer or recorded["renderer"]
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build(Path(tmp), pick(name))
        different = [rel for rel in fresh["files"]  # type: ignore[attr-defined]
                     if not (REPO / rel).exists()
                     or (REPO / rel).read_bytes() != (Path(tmp) / rel).read_bytes()]
    if fresh["renderer_version"] != recorded["renderer_version"]:
        print(f"make_icons: note: recorded with {recorded['renderer_version']}, checked with "
              f"{fresh['renderer_version']}", file=sys.stderr)
    for rel in different:
        print(f"make_icons: {rel} differs from a fresh render", file=sys.stderr)
    unlinked = [rel for rel in recorded["files"]
                if (REPO / "assets" / Path(rel).parent.name / Path(rel).name).resolve()
                != (REPO / rel).resolve()]
    for rel in unlinked:
        print(f"make_icons: assets/ has no link to {rel}", file=sys.stderr)
    return 1 if different or unlinked else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renderer", choices=("auto", *RENDERERS), default="auto")
    parser.add_argument("--out", type=Path, default=REPO,
                        help="root to write under (default: the repository)")
    parser.add_argument("--check", action="store_true",
                        help="compare the committed files with a fresh render")
    args = parser.parse_args(argv)
    if args.check:
        return check(None if args.renderer == "auto" else args.renderer)
    record = build(args.out, pick(args.renderer))
    print(f"make_icons: {len(record['files'])} files with {record['renderer_version']}")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
