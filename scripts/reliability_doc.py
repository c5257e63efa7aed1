#!/usr/bin/env python3
"""Write docs/RELIABILITY.md from the fault suite's own output, so no figure in it is typed
by hand.

Reads tests/artifacts/faults-report.json (every fault test's outcome and the figures it
recorded with `record_property`, written by tests/conftest.py) and
tests/artifacts/hostile-inputs.json (tests/faults/test_hostile.py's counts), fills the
placeholders of docs/reliability.template.md and writes docs/RELIABILITY.md. It refuses (exit 1,
one line) when a test the document cites did not pass in that report, or a figure it cites was
not recorded: the document then describes a run that happened.

Placeholders, where GLOB matches test node ids (fnmatch, against the part after
"tests/faults/"):
  {{range GLOB NAME}}   min-max of figure NAME over the matching tests (one value if equal)
  {{max GLOB NAME}}     its maximum        {{sum GLOB NAME}}  its sum (an integer)
  {{count GLOB}}        how many matching tests passed
  {{hostile KEY...}}    a count from hostile-inputs.json (its key may hold spaces)
  {{report}}            one line on the run the report came from

Usage: .venv/bin/pytest tests/faults && scripts/reliability_doc.py [--check]
(--check: exit 1 when docs/RELIABILITY.md differs from what the report gives.)
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPORT = REPO / "tests" / "artifacts" / "faults-report.json"
HOSTILE = REPO / "tests" / "artifacts" / "hostile-inputs.json"
TEMPLATE = REPO / "docs" / "reliability.template.md"
DOC = REPO / "docs" / "RELIABILITY.md"
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)((?:\s+[^\s}]+)*)\s*\}\}")
PREFIX = "tests/faults/"


class Missing(Exception):
    """The report lacks what the template cites."""


def number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"


class Renderer:
    def __init__(self, report: dict[str, object], hostile: dict[str, object]) -> None:
        tests = report.get("tests")
        if not isinstance(tests, dict):
            raise Missing(f"{REPORT} has no 'tests'")
        self.tests: dict[str, dict[str, object]] = {
            k.removeprefix(PREFIX): v for k, v in tests.items() if isinstance(v, dict)}
        self.report = report
        self.hostile = hostile

    def matching(self, pattern: str) -> list[dict[str, object]]:
        found = {k: v for k, v in self.tests.items() if fnmatch.fnmatchcase(k, pattern)}
        if not found:
            raise Missing(f"no test matching {pattern!r} ran")
        bad = sorted(k for k, v in found.items() if v.get("outcome") != "passed")
        if bad:
            raise Missing(f"{bad[0]} did not pass ({found[bad[0]].get('outcome')})")
        return list(found.values())

    def values(self, pattern: str, name: str) -> list[float]:
        got: list[float] = []
        for entry in self.matching(pattern):
            figures = entry.get("figures")
            if isinstance(figures, dict) and isinstance(figures.get(name), int | float):
                got.append(float(figures[name]))
        if not got:
            raise Missing(f"no test matching {pattern!r} recorded {name!r}")
        return got

    def __call__(self, match: re.Match[str]) -> str:
        op, args = match.group(1), match.group(2).split()
        if op == "range" and len(args) == 2:
            low, high = number(min(self.values(*args))), number(max(self.values(*args)))
            return low if low == high else f"{low}-{high}"
        if op == "max" and len(args) == 2:
            return number(max(self.values(*args)))
        if op == "sum" and len(args) == 2:
            return f"{round(sum(self.values(*args))):,}"
        if op == "count" and len(args) == 1:
            return str(len(self.matching(args[0])))
        if op == "hostile" and args:
            value = self.hostile.get(" ".join(args))
            if not isinstance(value, int):
                raise Missing(f"{HOSTILE} has no count {' '.join(args)!r}")
            return f"{value:,}"
        if op == "report" and not args:
            passed = sum(1 for v in self.tests.values() if v.get("outcome") == "passed")
            return (f"{passed} of {len(self.tests)} fault tests passed in the run this was "
                    f"written from (Python {self.report.get('python', '?')})")
        raise Missing(f"unknown placeholder {match.group(0)!r}")


def render(template: str, report: dict[str, object], hostile: dict[str, object]) -> str:
    return PLACEHOLDER.sub(Renderer(report, hostile), template)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if docs/RELIABILITY.md is not what the report gives")
    a = ap.parse_args()
    try:
        report = json.loads(REPORT.read_text())
        hostile = json.loads(HOSTILE.read_text())
        text = render(TEMPLATE.read_text(), report, hostile)
    except FileNotFoundError as exc:
        print(f"reliability_doc: {exc.filename} is missing; run `.venv/bin/pytest tests/faults` "
              "first", file=sys.stderr)
        return 1
    except (Missing, json.JSONDecodeError) as exc:
        print(f"reliability_doc: {exc}; run the whole fault suite green first", file=sys.stderr)
        return 1
    if a.check:
        same = DOC.exists() and DOC.read_text() == text
        print("docs/RELIABILITY.md " + ("matches" if same else "differs from") + " the report")
        return 0 if same else 1
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
