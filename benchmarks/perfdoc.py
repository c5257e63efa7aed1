"""Shared by the benchmark scripts: replace (or append) one marked section of
docs/PERFORMANCE.md, so each script owns its figures and reruns refresh them in place; and
hyperfine's per-run times, so every script takes medians the same way."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "PERFORMANCE.md"


def write_section(begin: str, end: str, section: str, doc: Path = DOC) -> None:
    text = doc.read_text() if doc.exists() else "# Performance\n\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    doc.write_text(text)


def hyperfine(argv: Sequence[str] | str, runs: int, warmup: int = 1,
              wrap: Sequence[str] = (), env: dict[str, str] | None = None) -> list[float]:
    """Every run's wall time (ms) by `hyperfine -N` (no shell), from its JSON export:
    hyperfine prints the mean; medians are ours to take. ``wrap`` prefixes hyperfine's own
    command line (e.g. a tracer); ``env`` is the environment of hyperfine and its runs."""
    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        command = argv if isinstance(argv, str) else subprocess.list2cmdline(list(argv))
        subprocess.run([*wrap, "hyperfine", "-N", "--runs", str(runs), "--warmup", str(warmup),
                        "--export-json", fh.name, "--style", "none", command],
                       check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=1800,
                       env=env)
        data = json.loads(Path(fh.name).read_text())
    return [float(t) * 1000 for t in data["results"][0]["times"]]
