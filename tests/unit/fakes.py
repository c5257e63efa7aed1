"""A fake runtime at the adapter seam: scripted durations, failures and a cleanup log."""

from __future__ import annotations

from collections.abc import Iterator

from forge_desktop.errors import EngineError
from forge_desktop.models import RunContext, RunSpec, RuntimeInfo, RuntimeKind, Sample


class FakeRuntime:
    kind: RuntimeKind = "engine"

    def __init__(self, name: str, durations_ms: list[float] | None = None,
                 fail_at: set[int] | None = None, fail_always: bool = False,
                 on_run: object = None) -> None:
        self.name = name
        self._durations: Iterator[float] = iter(durations_ms or [10.0] * 10_000)
        self.fail_at = fail_at or set()
        self.fail_always = fail_always
        self.calls: list[int] = []
        self.cleaned: list[str | None] = []
        self.closed = 0
        self.live: set[str] = set()
        self.on_run = on_run

    def available(self) -> str | None:
        return None

    def info(self) -> RuntimeInfo:
        return RuntimeInfo(self.name, self.kind, True, version="1.0")

    def has_image(self, image: str) -> bool:
        return True

    def prepare(self, spec: RunSpec, ctx: RunContext) -> None:
        return None

    def run_once(self, spec: RunSpec, ctx: RunContext, seq: int) -> Sample:
        self.calls.append(seq)
        self.live.add(f"{ctx.run_id}-{seq}")
        if callable(self.on_run):
            self.on_run(self, seq)
        if self.fail_always or len(self.calls) in self.fail_at:
            raise EngineError(f"{self.name}: boom at call {len(self.calls)}")
        self.live.discard(f"{ctx.run_id}-{seq}")
        d = next(self._durations)
        return Sample(d, {"create": d / 2, "start": d / 2})

    def cleanup(self, run_id: str | None = None) -> int:
        self.cleaned.append(run_id)
        n = len(self.live)
        self.live.clear()
        return n

    def close(self) -> None:
        self.closed += 1
