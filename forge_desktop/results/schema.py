"""The versioned JSON result format.

Version log. The version changes when a reader of the previous one would misread a file;
additions that such a reader ignores without harm are logged under the version they extend,
so files written by a newer forge still open in an older one.
  1 (0.1.0): first format. ``kind``, ``environment``, ``parameters``, ``runtimes`` with
             per-sample ``total_ms``/``phases_ms`` and ``stats``; ``errors`` per runtime.
    + (0.1.x, issue 11): runtime entries of startup, compare, image and memory results carry
             ``cgroup_limits``: true where the run's memory and pids limits applied, false
             where the runtime ran without cgroups (crun in its cgroup2 namespace, rootless
             OCI on cgroup v1), null where forge cannot tell (user-defined runtimes). Older
             files lack it: read as unknown. Startup results carry ``like_for_like_warnings``
             when a runtime ran without limits (compare results always had them).
    + (issue 14): a result run by forge on a remote host (``--host NAME``) carries ``host``:
             that host's name. ``kind: fleet`` results (two or more hosts) carry
             ``fleet_kind``, ``hosts`` (name, url, result_id, environment, runtimes, error)
             and ``comparison`` (baseline_host, ratios, engine_ratios, engine_effect,
             host_effect); their ``runtimes`` is empty.
    + (0.1.x, issue 15): startup and compare entries carry ``percentiles_ms`` (``p50``,
             ``p90``, ``p99`` of the totals); entries of a runtime whose containers get a
             network of their own choosing carry ``network`` (cri: ``host``), with a
             like-for-like warning. Older files lack both.
    + (issue 15): kind ``scale``: runtime entries carry ``levels`` (one per concurrency
             level: throughput_per_s and p50/p90/p99_ms with ``*_ci95_*`` intervals,
             failures, engine_cpu_s/percent, engine_peak_bytes, forge_cpu_ms_per_lifecycle,
             latencies_ms) and ``saturation_concurrency``.
    + (issue 14, transport mode): startup, canary, compare and scale entries of a runtime
             named ``docker@CONTEXT`` / ``podman@CONNECTION`` carry ``transport``: ``mode``
             (ssh), ``endpoint`` (the runtime name), ``url``, ``host``, ``calls_timed``,
             ``call_ms`` (median of cheap calls over ssh) and ``call_ci95_ms``,
             ``local_call_ms`` (the same call on the engine's own socket, null when this
             machine cannot make it, with ``local_note`` saying why),
             ``calls_per_lifecycle`` and ``overhead_ms_per_lifecycle`` (calls x the
             difference; null when unknown). The phases and stats still include the network:
             the overhead is reported beside them, never subtracted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from forge_desktop.errors import StoreError

SCHEMA_VERSION = 1
KINDS = ("startup", "canary", "memory", "disk", "image", "compare", "profile", "fleet",
         "scale")


def validate(doc: Any, where: str = "result") -> dict[str, Any]:
    """Check the envelope of a result; refuse versions this forge does not know."""
    if not isinstance(doc, dict):
        raise StoreError(f"{where} is not a forge result (expected a JSON object)")
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise StoreError(f"{where} is not a forge result (no schema_version)")
    if version < 1:  # versions start at 1: 0 or -3 is no version forge ever wrote
        raise StoreError(f"{where} is not a forge result (schema_version {version})")
    if version > SCHEMA_VERSION:
        raise StoreError(f"{where} has schema version {version}, newer than this forge "
                         f"understands ({SCHEMA_VERSION}); upgrade forge-desktop to read it")
    for key, typ in (("id", str), ("kind", str), ("created_at", str), ("runtimes", list)):
        if not isinstance(doc.get(key), typ):
            raise StoreError(f"{where} is not a valid forge result: {key!r} is missing or "
                             f"not a {typ.__name__}")
    return doc


def parse_iso(text: str) -> dt.datetime:
    """``datetime.fromisoformat``, also for a trailing ``Z`` (as ``now_iso`` writes), which
    Python 3.10 refuses. Raises ValueError."""
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    return dt.datetime.fromisoformat(text)


def now_iso() -> str:
    now = dt.datetime.now(dt.timezone.utc)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_document(kind: str, run_id: str, environment: dict[str, Any],
                 parameters: dict[str, Any], runtimes: list[dict[str, Any]],
                 complete: bool, **extra: Any) -> dict[str, Any]:
    """The envelope every result shares; ``runtimes`` holds one entry per runtime, each with
    at least ``runtime``, ``version`` and ``errors``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "id": run_id,
        "kind": kind,
        "created_at": now_iso(),
        "complete": complete,
        "environment": environment,
        "parameters": parameters,
        "runtimes": runtimes,
        **extra,
    }
