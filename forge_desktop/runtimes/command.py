"""User-defined CLI runtimes from config.toml: an argument list timed end to end."""

from __future__ import annotations

import os
import shutil
import time

from forge_desktop.config import CommandRuntimeConfig
from forge_desktop.errors import EngineError, RuntimeUnavailable
from forge_desktop.models import RunContext, RunSpec, RuntimeInfo, RuntimeKind, Sample
from forge_desktop.runtimes.common import Clock, first_line, run_cmd, timed_cmd


def expand(template: tuple[str, ...], spec: RunSpec) -> list[str]:
    """``{command}`` alone splices the command's arguments; ``{image}`` anywhere is replaced.
    No shell ever sees the result."""
    argv: list[str] = []
    for arg in template:
        if arg == "{command}":
            argv.extend(spec.command)
        else:
            argv.append(arg.replace("{image}", spec.image).replace(
                "{command}", " ".join(spec.command)))
    return argv


class CommandRuntime:
    kind: RuntimeKind = "command"

    def __init__(self, config: CommandRuntimeConfig, timeout_s: float = 30.0,
                 clock: Clock = time.perf_counter) -> None:
        self.name = config.name
        self.config = config
        self.timeout_s = timeout_s
        self.clock = clock

    def _binary(self) -> str | None:
        prog = self.config.run[0]
        if os.sep in prog:
            return prog if os.access(prog, os.X_OK) else None
        return shutil.which(prog)

    def available(self) -> str | None:
        if self._binary() is None:
            return (f"{self.config.run[0]!r} (from [runtimes.{self.name}] in config.toml) is "
                    "not an executable on PATH; install it or fix the run list")
        return None

    def info(self) -> RuntimeInfo:
        reason = self.available()
        version = None
        if reason is None and self.config.version:
            try:
                out = run_cmd(self.config.version, 10, f"{self.name} version")
                version = first_line(out.stdout or out.stderr, 80) or None
            except EngineError:
                version = None
        return RuntimeInfo(self.name, "command", reason is None, version=version,
                           endpoint=self._binary(), reason=reason)

    def has_image(self, image: str) -> bool:
        return True  # the command owns its images; a missing one fails its first run

    def prepare(self, spec: RunSpec, ctx: RunContext) -> None:
        reason = self.available()
        if reason:
            raise RuntimeUnavailable(f"{self.name}: {reason}")

    def run_once(self, spec: RunSpec, ctx: RunContext, seq: int) -> Sample:
        total = timed_cmd(expand(self.config.run, spec), self.timeout_s, self.name, self.clock)
        return Sample(total, {"run": total})

    def cleanup(self, run_id: str | None = None) -> int:
        return 0  # nothing of ours to find: a CLI runtime cleans up after its own --rm

    def close(self) -> None:
        return None
