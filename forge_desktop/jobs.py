"""Background jobs: one benchmark at a time, off the caller's thread, with progress events,
cancel, and completion. Front ends (tray, window) subscribe to events; they never run a
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

from forge_desktop.actions import Action, get_action
from forge_desktop.errors import ForgeError, Interrupted

EventKind = Literal["started", "progress", "finished", "failed", "cancelled"]
_ids = itertools.count(1)


class Busy(ForgeError):
    """A benchmark is already running; two never run concurrently by accident."""


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
            if self._current is not None:
                running = self._current.progress_text or self._current.action.title
                raise Busy(f"a benchmark is already running ({running}); wait for it or "
                           "cancel it")
            job = Job(action, values)
            self._current = job
            self._thread = threading.Thread(target=self._run, args=(job,), daemon=True,
                                            name=f"forge-job-{action.id}-{job.id}")
            self._thread.start()
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

    def _run(self, job: Job) -> None:
        from forge_desktop.actions import headline

        def progress(runtime: str, done: int, total: int, warmup: bool) -> None:
            stage = "warmup " if warmup else ""
            job.progress_text = f"{job.action.title.split()[0]}: {runtime} {stage}{done}/{total}"
            self._emit("progress", job, job.progress_text)

        self._emit("started", job, job.action.title)
        try:
            doc, path = job.action.run(job.params, progress, job.cancel)
        except Interrupted as exc:
            self._finish(job, "cancelled", str(exc))
        except ForgeError as exc:
            self._finish(job, "failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug still ends as a failure event
            self._finish(job, "failed", f"internal error: {type(exc).__name__}: {exc}")
        else:
            self._finish(job, "finished", headline(doc), doc, path)

    def _finish(self, job: Job, kind: EventKind, text: str,
                doc: dict[str, Any] | None = None, path: Path | None = None) -> None:
        with self._lock:
            self._current = None
        self._emit(kind, job, text, doc, path)
