"""Running actions, for every front end: what a run's end means (``execute`` -> ``Outcome``),
what its notification says (``notification``), how a view's window is opened (``open_view``),
and background jobs.

Background jobs: one benchmark at a time, off the caller's thread, with progress and log
events, cancel, and completion. "One at a time" is FORGE_HOME's benchmark lock
(forge_desktop.lock), taken in ``submit`` so a refusal is immediate, and handed to the job's
thread, where the benchmark session finds it (forge-shortcut and the CLI take it in the
session). Front ends (tray, window) subscribe to events; they never run a benchmark on their own
thread. The runner never touches widgets: the GUI hands events to its own thread through
gui/bridge.py. forge-shortcut runs ``execute`` in its own thread instead.
"""

from __future__ import annotations

import itertools
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from forge_desktop import lock
from forge_desktop.actions import Action, LogFn, ProgressFn, get_action, headline
from forge_desktop.errors import ForgeError, Interrupted, UsageError

EventKind = Literal["started", "progress", "log", "finished", "failed", "cancelled"]
Status = Literal["finished", "failed", "cancelled", "opened"]
VIEW_GRACE_S = 1.0
"""A view that dies within this long (no display, GUI extra missing) is reported as failed."""
_ids = itertools.count(1)


# -- what a run's end means, and what the user is told ---------------------------------------

@dataclass(frozen=True)
class Outcome:
    action: str
    status: Status
    exit_code: int
    """0 done, 1 failed (or some runtime failed), 2 bad usage, 75 another benchmark runs,
    130 interrupted."""
    text: str
    """The headline, the error line, or what was opened."""
    doc: dict[str, Any] | None = None
    path: Path | None = None
    pid: int | None = None
    argv: list[str] | None = None


def execute(action: Action, params: Mapping[str, Any], progress: ProgressFn,
            cancel: threading.Event, log: LogFn) -> Outcome:
    """Run a benchmark action to its outcome: a failure, a cancel or an incomplete result is an
    Outcome with that status and exit code (a bug still raises)."""
    try:
        doc, path = action.run(params, progress, cancel, log)
    except Interrupted as exc:
        return Outcome(action.id, "cancelled", 130, str(exc))
    except ForgeError as exc:
        return Outcome(action.id, "failed", exc.exit_code, str(exc))
    complete = bool(doc.get("complete", True))
    return Outcome(action.id, "finished", 0 if complete else 1, headline(doc), doc, path)


def failures(doc: Mapping[str, Any]) -> list[str]:
    """One line per runtime that failed in a result that was still saved."""
    lines = []
    for entry in doc.get("runtimes", []):
        errors = entry.get("errors") if isinstance(entry, dict) else None
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            lines.append(f"{entry.get('runtime')}: {errors[0]}{more}")
    return lines


def notification(outcome: Outcome) -> tuple[str, str] | None:
    """(title, body) of the completion notification, the same from every front end; None for
    a view that opened (the window is the answer)."""
    try:
        title = get_action(outcome.action).title
    except UsageError:
        title = outcome.action
    if outcome.status == "finished":
        from forge_desktop.results.document import verdicts

        # the verdict, not where it was saved: the "Open results" action shows the file
        lines = verdicts(outcome.doc or {})
        failed = failures(outcome.doc or {})
        if failed:
            lines.append(f"failed: {failed[0]}" + (f" (+{len(failed) - 1} more)"
                                                   if len(failed) > 1 else ""))
        if outcome.path is None:
            lines.append("Not saved")
        return outcome.text, "\n".join(lines)
    if outcome.status == "failed":
        return f"{title} failed", outcome.text
    if outcome.status == "cancelled":
        return f"{title} cancelled", outcome.text
    return None


# -- views: their windows, started detached --------------------------------------------------

def view_argv(action: Action, extra: Sequence[str] = ()) -> list[str]:
    """The command that opens ``action``'s window (``Action.view``) with ``extra`` arguments
    (``--result ID``)."""
    if action.view is None:
        raise UsageError(f"{action.id} runs a benchmark; it opens no view")
    from forge_desktop.desktop import forge_command  # the venv's forge or the bundle's

    return [*forge_command(), *action.view, *extra]


def start_view(argv: list[str], stderr: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """Start a window as its own process: own session, no inherited stdio (it must not hold
    a tray's terminal or a caller's pipes open after the caller exits)."""
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=stderr, start_new_session=True, close_fds=True)


def open_view(action: Action, extra: Sequence[str] = (), grace_s: float = VIEW_GRACE_S
              ) -> Outcome:
    """Start the view's window detached and report it as failed when it exits with an error
    within ``grace_s``, with its last stderr line (for callers that can wait that long: a
    shortcut, not a GUI thread)."""
    argv = view_argv(action, extra)
    with tempfile.TemporaryFile() as err:  # unlinked already: nothing is left behind
        try:
            proc = start_view(argv, stderr=err)
        except OSError as exc:
            return Outcome(action.id, "failed", 1, f"cannot start {argv[0]}: "
                           f"{exc.strerror or exc}", argv=argv)
        try:
            code = proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            code = 0
        if code == 0:
            return Outcome(action.id, "opened", 0, f"Opened {action.title}", pid=proc.pid,
                           argv=argv)
        err.seek(0)
        lines = [ln.strip() for ln in err.read().decode(errors="replace").splitlines()
                 if ln.strip()]
        if lines:
            why = lines[-1]
        elif code < 0:
            why = f"it was killed by {_signal_name(-code)}"
        else:
            why = f"it exited with status {code}"
        return Outcome(action.id, "failed", 1, f"{action.title} did not open: {why}",
                       argv=argv)


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# -- background jobs ---------------------------------------------------------------------------


@dataclass
class Job:
    action: Action
    params: dict[str, Any]
    id: int = field(default_factory=lambda: next(_ids))
    cancel: threading.Event = field(default_factory=threading.Event)
    progress_text: str = ""
    started_s: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class JobEvent:
    kind: EventKind
    job: Job
    text: str = ""
    """Progress ("Startup: podman 4/10"), a line the benchmark logged, the headline, or the
    error line."""
    doc: dict[str, Any] | None = None
    path: Path | None = None
    outcome: Outcome | None = None
    """On the last event (finished, failed, cancelled)."""


class JobRunner:
    def __init__(self, on_event: Callable[[JobEvent], None]) -> None:
        self.on_event = on_event
        self._lock = threading.Lock()
        self._current: Job | None = None
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> Job | None:
        return self._current

    def submit(self, action_id: str, params: Mapping[str, Any] | None = None) -> Job:
        """Start a benchmark in a named background thread; errors.Busy (exit 75) if one is
        running, here or in another process. Parameters not given take their defaults when it
        runs (config.toml's, read then)."""
        action = get_action(action_id)
        values = action.validate(params or {})
        with self._lock:
            hold = lock.acquire(action.id)  # Busy, naming what runs, in this or any process
            job = Job(action, values)
            self._thread = threading.Thread(target=self._run, args=(job, hold), daemon=True,
                                            name=f"forge-job-{action.id}-{job.id}")
            try:
                self._thread.start()
            except BaseException:
                hold.release()
                raise
            self._current = job
        return job

    def cancel(self) -> bool:
        """Ask the running job to stop at its next iteration (it cleans up first)."""
        job = self._current
        if job is None:
            return False
        job.cancel.set()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _emit(self, kind: EventKind, job: Job, text: str = "",
              outcome: Outcome | None = None) -> None:
        doc, path = (outcome.doc, outcome.path) if outcome else (None, None)
        try:
            self.on_event(JobEvent(kind, job, text, doc, path, outcome))
        except Exception:  # noqa: BLE001 - a listener's bug must not kill the job thread
            import traceback

            traceback.print_exc()

    def _run(self, job: Job, hold: lock.Hold) -> None:
        def progress(runtime: str, done: int, total: int, warmup: bool) -> None:
            stage = "warmup " if warmup else ""
            job.progress_text = f"{job.action.title.split()[0]}: {runtime} {stage}{done}/{total}"
            self._emit("progress", job, job.progress_text)

        self._emit("started", job, job.action.title)
        try:
            with hold.bound():
                outcome = execute(job.action, job.params, progress, job.cancel,
                                  lambda message: self._emit("log", job, message))
        except Exception as exc:  # noqa: BLE001 - a bug still ends as a failure event
            outcome = Outcome(job.action.id, "failed", 1,
                              f"internal error: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._current = None
                hold.release()  # before the event: a listener may start the next benchmark
        assert outcome.status != "opened"  # execute runs benchmarks only
        self._emit(outcome.status, job, outcome.text, outcome)
