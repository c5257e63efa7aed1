"""``manifest.toml``: the module and every action, generated from the action registry.

    python -m shortcut_module.manifest            write shortcut_module/manifest.toml
    python -m shortcut_module.manifest --check    exit 1 when the committed file is stale

``render()`` is the only writer; tests/unit/test_shortcut.py fails when the committed file and
``render()`` differ, so the manifest cannot drift from the registry.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from forge_desktop import APP_ID, APP_NAME, __version__
from shortcut_module.api import PROGRAM, list_actions

PATH = Path(__file__).resolve().parent / "manifest.toml"
MANIFEST_VERSION = 1
DESCRIPTION = ("Container runtime benchmarks from a keyboard shortcut or launcher: "
               "the answer arrives as a desktop notification")


def module_info() -> dict[str, Any]:
    return {
        "id": APP_ID, "name": APP_NAME, "version": __version__, "description": DESCRIPTION,
        "icon": APP_ID, "icon_resource": "forge_desktop/assets/icons/forge-desktop.svg",
        "command": PROGRAM,
        "usage": f"{PROGRAM} run ACTION [--param KEY=VALUE ...] [--notify] [--json]",
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):  # a JSON string is a TOML basic string, but for DEL
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _table(values: dict[str, Any]) -> list[str]:
    return [f"{key} = {_toml_value(value)}" for key, value in values.items()
            if not (isinstance(value, list) and value and isinstance(value[0], dict))]


def render() -> str:
    lines = [
        "# The Shortcut-CLI module of Forge Desktop: what it is and every action it runs.",
        "# Generated from forge_desktop/actions.py by `python -m shortcut_module.manifest`;",
        "# do not edit (tests/unit/test_shortcut.py fails when this file is stale).",
        "",
        f"manifest_version = {MANIFEST_VERSION}",
        "",
        "[module]",
        *_table(module_info()),
    ]
    for action in list_actions():
        params = action["params"]
        lines += ["", "[[actions]]", *_table({k: v for k, v in action.items()
                                              if k != "params"})]
        if not params:
            lines.append("params = []")
        for param in params:
            lines += ["", "[[actions.params]]", *_table(param)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shortcut_module.manifest",
                                     description="Write or check shortcut_module/manifest.toml.")
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = PATH.read_text(encoding="utf-8") if PATH.exists() else ""
        if current != text:
            print(f"{PATH} is stale: run python -m shortcut_module.manifest", file=sys.stderr)
            return 1
        return 0
    PATH.write_text(text, encoding="utf-8")
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
