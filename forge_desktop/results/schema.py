"""The versioned JSON result format.

Version log:
  1 (0.1.0): first format. ``kind``, ``environment``, ``parameters``, ``runtimes`` with
             per-sample ``total_ms``/``phases_ms`` and ``stats``; ``errors`` per runtime.
"""

from __future__ import annotations

from typing import Any

from forge_desktop.errors import StoreError

SCHEMA_VERSION = 1
KINDS = ("startup", "memory", "disk", "image", "compare", "profile")


def validate(doc: Any, where: str = "result") -> dict[str, Any]:
    """Check the envelope of a result; refuse versions this forge does not know."""
    if not isinstance(doc, dict):
        raise StoreError(f"{where} is not a forge result (expected a JSON object)")
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise StoreError(f"{where} is not a forge result (no schema_version)")
    if version > SCHEMA_VERSION:
        raise StoreError(f"{where} has schema version {version}, newer than this forge "
                         f"understands ({SCHEMA_VERSION}); upgrade forge-desktop to read it")
    for key, typ in (("id", str), ("kind", str), ("created_at", str), ("runtimes", list)):
        if not isinstance(doc.get(key), typ):
            raise StoreError(f"{where} is not a valid forge result: {key!r} is missing or "
                             f"not a {typ.__name__}")
    return doc
