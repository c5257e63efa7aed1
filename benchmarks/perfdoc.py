"""Shared by the benchmark scripts: replace (or append) one marked section of
docs/PERFORMANCE.md, so each script owns its figures and reruns refresh them in place."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "PERFORMANCE.md"


def write_section(begin: str, end: str, section: str, doc: Path = DOC) -> None:
    text = doc.read_text() if doc.exists() else "# Performance\n\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    doc.write_text(text)
