"""``forge results export`` on real results: the HTML report of real startup and compare runs,
rendered offline by headless Chromium (the screenshot is kept in tests/artifacts), the CSV and
Markdown of the same runs, and the command's errors.

Chromium missing is a failure, not a skip: `make test` installs it (apt-get install chromium).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forge_desktop.results.export import to_csv
from tests.conftest import ARTIFACTS, assert_one_line_error, run_forge
from tests.unit.test_export import HOSTILE, _md_tables, _read_csv

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--mute-audio")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("/usr/bin/chromium") \
        or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is not installed: apt-get install -y chromium (make test "
                    "installs it)", pytrace=False)
    return found


def run_chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}",
                           *args], capture_output=True, text=True, timeout=180, check=False,
                          cwd=tmp)


def png_colors(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct colours) of an 8-bit RGB/RGBA, non-interlaced PNG such as
    Chromium writes: a tiny decoder (zlib + the five scanline filters), no Pillow needed."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    width = height = depth = color = interlace = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        ctype, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if ctype == b"IHDR":
            width, height, depth, color, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
    assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    prev, i = bytearray(stride), 0
    colors: set[bytes] = set()
    for _row in range(height):
        kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        if kind == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((left + prev[x]) >> 1)) & 255
        elif kind == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) \
                    & 255
        colors.update(bytes(line[k:k + bpp]) for k in range(0, stride, bpp))
        prev = line
    return width, height, len(colors)


@pytest.fixture(scope="module")
def real_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two real startup runs and a real compare run, on every available runtime."""
    home = tmp_path_factory.mktemp("export-home")
    env = {"FORGE_HOME": str(home)}
    for args in (("startup", "-n", "5", "--warmup", "1"),
                 ("compare", "-n", "5", "--warmup", "1", "--containers", "1"),
                 ("startup", "-n", "5", "--warmup", "1")):
        run_forge("benchmark", *args, "--json", env=env, check=True)
    yield home


def results(home: Path) -> list[dict[str, Any]]:
    docs = [json.loads(p.read_text()) for p in sorted((home / "benchmarks").glob("*.json"))]
    return sorted(docs, key=lambda d: d["created_at"])


def test_html_report_renders_offline_in_chromium(real_home: Path, tmp_path: Path) -> None:
    docs = results(real_home)
    assert [d["kind"] for d in docs] == ["startup", "compare", "startup"]
    report = tmp_path / "report.html"
    proc = run_forge("results", "export", *[d["id"][:20] for d in docs], "--format", "html",
                     "-o", str(report), env={"FORGE_HOME": str(real_home)}, check=True)
    assert proc.stdout.strip() == str(report)
    text = report.read_text()
    for needle in ("http://", "https://", "src=", "<script", "<link"):
        assert needle not in text, needle
    assert text.count("<svg") == 1 + 3  # the startup trend, a distribution per result
    for d in docs:
        for entry in d["runtimes"]:
            assert text.count(f"{entry['runtime']} #") >= len(entry["samples"])  # dot titles

    png = tmp_path / "report.png"
    shot = run_chromium(tmp_path, f"--screenshot={png}", "--window-size=1200,1600",
                        f"file://{report}")
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    width, height, colors = png_colors(png.read_bytes())
    assert (width, height) == (1200, 1600)
    assert colors > 10, f"the screenshot looks blank ({colors} colours)"
    if shutil.which("identify"):  # an independent count, where ImageMagick is installed
        counted = subprocess.run(["identify", "-format", "%k", str(png)], capture_output=True,
                                 text=True, timeout=60, check=False)
        assert counted.returncode != 0 or int(counted.stdout) == colors
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, ARTIFACTS / "export-report.png")

    dom = run_chromium(tmp_path, "--dump-dom", f"file://{report}")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Forge report" in dom.stdout and "Container startup" in dom.stdout
    assert dom.stdout.count("<svg") == 4


def test_hostile_runtime_name_renders_as_text(real_home: Path, forge_home: Path,
                                              tmp_path: Path) -> None:
    doc = results(real_home)[0]
    doc["id"] = "20991231T000000Z-hostile"
    doc["runtimes"][0]["runtime"] = HOSTILE
    (forge_home / "benchmarks").mkdir(parents=True)
    (forge_home / "benchmarks" / f"{doc['id']}.json").write_text(json.dumps(doc))
    report = tmp_path / "hostile.html"
    run_forge("results", "export", "20991231", "-o", str(report), check=True)
    dom = run_chromium(tmp_path, "--dump-dom", f"file://{report}")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom.stdout  # text in the page
    assert "<script" not in dom.stdout  # never an element


def test_csv_and_markdown_of_real_results(real_home: Path) -> None:
    docs = results(real_home)
    env = {"FORGE_HOME": str(real_home)}
    proc = run_forge("results", "export", *[d["id"] for d in docs], "-f", "csv", env=env,
                     check=True)
    assert proc.stdout == to_csv(docs)
    columns, rows = _read_csv(proc.stdout)
    for d in docs:
        for entry in d["runtimes"]:
            mine = [r for r in rows if r["result_id"] == d["id"]
                    and r["runtime"] == entry["runtime"]]
            timing = [r for r in mine if r["series"] == "startup"]
            assert [float(r["total_ms"]) for r in timing] == \
                [s["total_ms"] for s in entry["samples"]]
            if d["kind"] == "compare" and entry.get("memory"):
                mem = entry["memory"]
                assert len([r for r in mine if r["series"].startswith("memory")]) == \
                    len(mem.get("density", [])) + len(mem.get("samples", []))
    assert {"create_ms", "start_ms", "wait_ms", "remove_ms", "to_exec_ms"} <= set(columns)
    md = run_forge("results", "export", *[d["id"] for d in docs], "-f", "md", env=env,
                   check=True).stdout
    for table in _md_tables(md):
        assert len({len(row) for row in table}) == 1, table
    assert md.count("\n## ") == 3 + 1  # a section per result and the startup trend


@pytest.mark.parametrize("args, needles", [
    (["20000101T000000Z-none"], ["no result with id"]),
    (["{id}", "--format", "pdf"], ["unknown format 'pdf'"]),
    (["{id}", "-o", "/proc/forbidden/x.csv"], ["cannot write /proc/forbidden/x.csv"]),
])
def test_bad_input_is_one_line(real_home: Path, forge_home: Path, args: list[str],
                               needles: list[str]) -> None:
    shutil.copytree(real_home / "benchmarks", forge_home / "benchmarks")
    first = results(real_home)[0]["id"]
    proc = run_forge("results", "export", *[a.replace("{id}", first) for a in args])
    assert_one_line_error(proc, *needles)
    assert proc.stdout == ""
    assert not Path("/proc/forbidden").exists()
