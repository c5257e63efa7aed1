"""Background jobs: one benchmark at a time, off the caller's thread, with progress events,
cancel, and completion. "One at a time" is FORGE_HOME's benchmark lock (forge_desktop.lock),
taken in ``submit`` so a refusal is immediate, and handed to the job's thread, where the
benchmark session finds it. Front ends (tray, window) subscribe to events; they never run a
benchmark on their own thread. The runner never touches widgets: the GUI hands events to its
own thread through gui/bridge.py."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from forge_desktop import lock
from forge_desktop.actions import Action, get_action
from forge_desktop.errors import Busy, ForgeError, Interrupted

EventKind = Literal["started", "progress", "finished", "failed", "cancelled"]
_ids = itertools.count(1)

__all__ = ["Busy", "Job", "JobEvent", "JobRunner"]


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
    """Progress ("Startup: podman 4/10"), the headline, or the error line."""
    doc: dict[str, Any] | None = None
    path: Path | None = None


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
        """Start a benchmark in a named background thread; Busy if one is running."""
        action = get_action(action_id)
        values = action.coerce(params or {})
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

    def _emit(self, kind: EventKind, job: Job, text: str = "", doc: dict[str, Any] | None = None,
              path: Path | None = None) -> None:
        try:
            self.on_event(JobEvent(kind, job, text, doc, path))
        except Exception:  # noqa: BLE001 - a listener's bug must not kill the job thread
            import traceback

            traceback.print_exc()

    def _run(self, job: Job, hold: lock.Hold) -> None:
        from forge_desktop.actions import headline

        def progress(runtime: str, done: int, total: int, warmup: bool) -> None:
            stage = "warmup " if warmup else ""
            job.progress_text = f"{job.action.title.split()[0]}: {runtime} {stage}{done}/{total}"
            self._emit("progress", job, job.progress_text)

        self._emit("started", job, job.action.title)
        doc: dict[str, Any] | None = None
        path: Path | None = None
        kind: EventKind
        try:
            with hold.bound():
                doc, path = job.action.run(job.params, progress, job.cancel)
        except Interrupted as exc:
            kind, text = "cancelled", str(exc)
        except ForgeError as exc:
            kind, text = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug still ends as a failure event
            kind, text = "failed", f"internal error: {type(exc).__name__}: {exc}"
        else:
            kind, text = "finished", headline(doc)
        finally:
            with self._lock:
                self._current = None
                hold.release()  # before the event: a listener may start the next benchmark
        self._emit(kind, job, text, doc, path)
