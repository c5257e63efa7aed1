"""Benchmarks run by forge on remote hosts over ssh, and the fleet document comparing them.

The remote forge takes the timings on its host (``--json``), so ssh adds nothing to them; this
side checks what it prints like any foreign result file, stamps it with ``"host": NAME`` and
keeps it in the local store. Each remote run announces its pid first (``forge-remote-pid=N``
on stderr, then ``exec forge``): an interrupt here becomes SIGINT to that pid, so the remote
forge removes its containers as it does on Ctrl-C at its own terminal. The ssh child is in its
own session, so a Ctrl-C at this terminal reaches this process only, never ssh directly (an
ssh killed first would leave the remote forge running with no one to stop it).
"""

from __future__ import annotations

import json
import math
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_desktop.bench import stats
from forge_desktop.bench.compare import ALPHA
from forge_desktop.errors import ForgeError, Interrupted, StoreError, UsageError
from forge_desktop.hosts import Host, ssh_argv
from forge_desktop.results import document
from forge_desktop.results.schema import SCHEMA_VERSION, now_iso, validate

LogFn = Callable[[str], None]
MAX_OUTPUT = 64 * 1024 * 1024
"""A result is a few hundred KiB at most; more from a host is refused, not kept in memory."""
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""A result id becomes a file name here: nothing else from a host may."""
_PID_LINE = re.compile(r"forge-remote-pid=([0-9]{1,10})")
_PID_PREFIX = "echo forge-remote-pid=$$ >&2; exec "
"""Our fixed snippet before the quoted forge argv: the shell's pid is forge's after exec."""


@dataclass
class HostRun:
    """One host's part of a run: its saved result, or why it has none."""

    host: Host
    doc: dict[str, Any] | None = None
    path: Path | None = None
    reason: str | None = None
    remote_exit: int | None = None


class RemoteForge:
    """``forge ARGV`` running on one host, its output read as it comes."""

    def __init__(self, host: Host, argv: Sequence[str], timeout_s: float, log: LogFn) -> None:
        self.host, self.timeout_s, self.log = host, timeout_s, log
        self.pid: int | None = None
        self.pid_seen = threading.Event()
        self.stdout = bytearray()
        self.too_big = False
        self.errors: list[str] = []
        self.tail: list[str] = []
        self.proc = subprocess.Popen(
            ssh_argv(host, [host.forge, *argv], timeout_s, prefix=_PID_PREFIX),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        self._readers = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for t in self._readers:
            t.start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        out = self.proc.stdout
        for chunk in iter(lambda: out.read1(65536), b""):  # type: ignore[attr-defined]
            if len(self.stdout) + len(chunk) > MAX_OUTPUT:
                self.too_big = True
                continue  # keep draining so the remote forge is never blocked on a full pipe
            self.stdout += chunk

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "backslashreplace").rstrip("\r\n")
            if self.pid is None and (m := _PID_LINE.fullmatch(line.strip())):
                self.pid = int(m.group(1))
                self.pid_seen.set()
                continue
            if line.startswith("forge: error: "):
                self.errors.append(line[len("forge: error: "):])
            self.tail = [*self.tail[-19:], line]
            # before forge's pid line it is ssh (or the shell) speaking: a refused key, a
            # failed login, a missing forge; the one-line reason at the end says it (from
            # the tail), so it is not relayed twice
            if line.strip() and self.pid is not None:
                self.log(f"[{self.host.name}] {line}")
        self.pid_seen.set()  # ended without one: nobody to signal

    def wait(self, timeout: float | None = None) -> int:
        code = self.proc.wait(timeout)
        for t in self._readers:
            t.join(self.timeout_s)
        return code

    def interrupt(self) -> None:
        """SIGINT to the remote forge (it removes its containers and exits 130)."""
        self.pid_seen.wait(self.timeout_s)
        if self.proc.poll() is not None:
            return
        if self.pid is None:
            self.proc.terminate()  # forge has not started there: nothing to stop
            return
        try:
            subprocess.run(ssh_argv(self.host, ["kill", "-INT", str(self.pid)], self.timeout_s),
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=self.timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired):
            # the host stopped answering: closing our end is all that is left (its forge
            # then fails on its next write and its next run's sweep takes what is left)
            self.proc.terminate()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def accept(host: Host, kind: str, raw: bytes) -> dict[str, Any]:
    """The result a host printed, checked like a foreign file; StoreError says what is
    wrong with it."""
    from forge_desktop.results.index import summarize

    where = f"the result from host {host.name}"
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise StoreError(f"{where} is not JSON (does a login script there print to "
                         "stdout? forge reads the remote forge's stdout as its result)") from None
    doc = validate(doc, where)
    if doc["kind"] != kind:
        raise StoreError(f"{where} is a {str(doc['kind'])[:20]!r} result, not {kind}")
    if not _ID_RE.fullmatch(doc["id"]):
        raise StoreError(f"{where} has an id that is not a plain name")
    doc.pop("host", None)
    try:
        summarize(doc, f"{doc['id']}.json")
    except ValueError as exc:
        raise StoreError(f"{where} is malformed: {exc}") from None
    return {**doc, "host": host.name}


def _finish(run: HostRun, remote: RemoteForge, code: int, kind: str, save: bool) -> None:
    from forge_desktop.errors import failure_reason
    from forge_desktop.hosts import ssh_failure
    from forge_desktop.results import store

    run.remote_exit = code
    said = remote.errors[-1] if remote.errors else None
    if code == 255 and said is None:
        run.reason = ssh_failure(run.host, code, "\n".join(remote.tail))
        return
    if remote.too_big:
        run.reason = f"host {run.host.name}: printed more than {MAX_OUTPUT >> 20} MiB"
        return
    if code not in (0, 1, 3) or not remote.stdout.strip():
        why = said or (remote.tail[-1] if remote.tail else "no output")
        run.reason = f"host {run.host.name}: forge exited {code}: {why[:200]}"
        return
    try:
        run.doc = accept(run.host, kind, bytes(remote.stdout))
        if save:
            run.path = store.save(run.doc)
    except ForgeError as exc:
        run.reason = failure_reason(exc)
        return
    if not run.doc.get("complete", False):
        run.reason = f"host {run.host.name}: the run is incomplete" + (f" ({said})" if said
                                                                        else "")


def run_on_hosts(hosts: Sequence[Host], kind: str, argv: Sequence[str], *, timeout_s: float,
                 serial: bool, save: bool, log: LogFn) -> list[HostRun]:
    """``forge ARGV --json`` on every host (in parallel unless ``serial``); one HostRun each.
    Ctrl-C (KeyboardInterrupt) stops every remote run, waits for their cleanup and raises
    Interrupted."""
    import shutil

    if shutil.which("ssh") is None:
        raise UsageError("no ssh command here: install openssh-client (forge reaches hosts "
                         "with the system ssh)")
    runs = [HostRun(h) for h in hosts]
    started: list[tuple[HostRun, RemoteForge]] = []
    try:
        if serial:
            for run in runs:
                remote = RemoteForge(run.host, argv, timeout_s, log)
                started.append((run, remote))
                _finish(run, remote, remote.wait(), kind, save)
        else:
            for run in runs:  # one by one: an interrupt here still finds those started
                started.append((run, RemoteForge(run.host, argv, timeout_s, log)))
            for run, remote in started:
                _finish(run, remote, remote.wait(), kind, save)
    except KeyboardInterrupt:
        live = [r for _, r in started if r.proc.poll() is None]
        stoppers = [threading.Thread(target=r.interrupt, daemon=True) for r in live]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(timeout_s + 5)
        # the remote forge's own cleanup is bounded by its engine timeouts
        for r in live:
            try:
                r.wait(4 * timeout_s + 30)
            except subprocess.TimeoutExpired:
                r.stop()
        gone = ", ".join(r.host.name for r in live) or "none"
        raise Interrupted(f"interrupted; the runs on the hosts still running ({gone}) were "
                          "stopped and removed their containers") from None
    finally:
        for _, r in started:
            r.stop()
    return runs


# --- the fleet document -----------------------------------------------------------------------

def _figures(doc: dict[str, Any]) -> dict[tuple[str, str], float]:
    kind = doc["kind"]
    return {(str(e.get("runtime")), metric): value for e in document.named_entries(doc)
            for metric, value in document.metrics(kind, e).items()}


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _pair(metric: str, cand_doc: dict[str, Any], cand_rt: str, base_doc: dict[str, Any],
          base_rt: str, cand: float, base: float) -> dict[str, Any]:
    """candidate vs baseline: >1 means the candidate is faster (smaller)."""
    if metric == "startup":
        xs = document.startup_samples(cand_doc, cand_rt)
        ys = document.startup_samples(base_doc, base_rt)
        if xs and ys:
            ratio, ci = stats.ratio_of_medians_ci(xs, ys)
            p = stats.mann_whitney_p(xs, ys)
            return {"ratio": round(ratio, 4), "ci95": [round(ci[0], 4), round(ci[1], 4)],
                    "p_value": p, "verdict": stats.verdict(ratio, ci, p, ALPHA),
                    "value": cand, "baseline_value": base}
    r = document.size_ratio(base, cand)
    return {"ratio": None if r is None else round(r, 4), "ci95": None, "p_value": None,
            "verdict": document.size_verdict(r), "value": cand, "baseline_value": base}


def new_id() -> str:
    """An id that sorts by time, as a run's (runtimes/base.new_run_context, which would also
    register a run this process does not have)."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(3)}"


_CALLS = {"faster", "slower", "smaller", "larger"}


def fleet_document(runs: Sequence[HostRun], kind: str, parameters: dict[str, Any],
                   baseline_host: str | None) -> dict[str, Any]:
    """One ``kind: fleet`` document over the hosts' results: each host against the baseline
    host (default: the slowest over the runtimes and figures every host has), each runtime
    against the baseline runtime on its own host, and whether a difference belongs to a host
    (the same call for every runtime on it) or to an engine (the same call on every host)."""
    done = [r for r in runs if r.doc is not None]
    figs = {r.host.name: _figures(r.doc) for r in done if r.doc is not None}
    docs = {r.host.name: r.doc for r in done if r.doc is not None}
    common = sorted(set.intersection(*(set(f) for f in figs.values()))) if figs else []
    usable = [k for k in common if all(figs[h][k] > 0 for h in figs)]
    if baseline_host is None and usable:
        baseline_host = max(figs, key=lambda h: (_geomean([figs[h][k] for k in usable]), h))
    elif baseline_host is None and done:
        baseline_host = done[0].host.name
    rows: list[dict[str, Any]] = []
    if baseline_host in figs:
        base = figs[baseline_host]
        for host, f in figs.items():
            if host == baseline_host:
                continue
            for (runtime, metric), value in sorted(f.items()):
                if (runtime, metric) in base:
                    rows.append({"host": host, "runtime": runtime, "metric": metric,
                                 **_pair(metric, docs[host], runtime, docs[baseline_host],
                                         runtime, value, base[(runtime, metric)])})
    engine_rows: list[dict[str, Any]] = []
    baseline_runtime = None
    if baseline_host in figs:
        first = "startup" if any(m == "startup" for _, m in figs[baseline_host]) else \
            next((m for _, m in sorted(figs[baseline_host])), None)
        mine = {rt: v for (rt, m), v in figs[baseline_host].items() if m == first}
        baseline_runtime = max(mine, key=lambda rt: (mine[rt], rt)) if mine else None
    for host, f in figs.items():
        for (runtime, metric), value in sorted(f.items()):
            base_value = f.get((str(baseline_runtime), metric))
            if runtime == baseline_runtime or base_value is None:
                continue
            engine_rows.append({"host": host, "runtime": runtime,
                                "baseline_runtime": baseline_runtime, "metric": metric,
                                **_pair(metric, docs[host], runtime, docs[host],
                                        str(baseline_runtime), value, base_value)})
    engine_effect = []
    for runtime, metric in sorted({(r["runtime"], r["metric"]) for r in engine_rows}):
        calls = {r["host"]: r["verdict"] for r in engine_rows
                 if (r["runtime"], r["metric"]) == (runtime, metric)}
        engine_effect.append({
            "runtime": runtime, "baseline_runtime": baseline_runtime, "metric": metric,
            "verdicts": calls, "holds_on_every_host": len(calls) == len(figs) and len(
                set(calls.values())) == 1 and next(iter(calls.values())) in _CALLS})
    host_effect = []
    for host, metric in sorted({(r["host"], r["metric"]) for r in rows}):
        calls = {r["runtime"]: r["verdict"] for r in rows
                 if (r["host"], r["metric"]) == (host, metric)}
        host_effect.append({
            "host": host, "baseline_host": baseline_host, "metric": metric, "verdicts": calls,
            "same_for_every_runtime": len(set(calls.values())) == 1
            and next(iter(calls.values())) in _CALLS})
    hosts = []
    for r in runs:
        entry: dict[str, Any] = {"name": r.host.name, "url": r.host.url,
                                 "result_id": r.doc["id"] if r.doc else None}
        if r.doc is not None:
            entry["environment"] = document.mapping(r.doc.get("environment"))
            entry["runtimes"] = [str(e.get("runtime")) for e in document.named_entries(r.doc)]
            entry["complete"] = r.doc.get("complete") is True
        if r.reason:
            entry["error"] = r.reason
        hosts.append(entry)
    return {
        "schema_version": SCHEMA_VERSION, "id": new_id(), "kind": "fleet",
        "created_at": now_iso(), "complete": all(r.doc is not None and r.reason is None
                                                 for r in runs),
        "fleet_kind": kind, "parameters": parameters, "environment": {}, "runtimes": [],
        "hosts": hosts,
        "comparison": {"baseline_host": baseline_host, "baseline_runtime": baseline_runtime,
                       "alpha": ALPHA, "ratios": rows, "engine_ratios": engine_rows,
                       "engine_effect": engine_effect, "host_effect": host_effect},
    }
