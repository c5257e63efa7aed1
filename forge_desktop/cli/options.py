"""Command-line options shared by several command modules (a leaf: imports typer only)."""

from __future__ import annotations

from typing import Annotated

import typer

Wait = Annotated[bool, typer.Option(
    "--wait", help="If another benchmark is running (in any front end), wait for it to end "
    "instead of failing with exit 75.")]
