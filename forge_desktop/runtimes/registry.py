"""Names -> adapters: the built-ins, the user's config.toml runtimes, and third-party plugins
from the ``forge_desktop.runtimes`` entry point group (a callable taking the Config)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

from forge_desktop.config import Config
from forge_desktop.errors import RuntimeUnavailable, UsageError
from forge_desktop.runtimes.base import Runtime

ENTRY_POINT_GROUP = "forge_desktop.runtimes"


def builtin_engines(timeout_s: float) -> list[Runtime]:
    """The engines forge ships adapters for, not yet connected (constructing one is cheap:
    its SDK is imported on the first request)."""
    from forge_desktop.runtimes.docker import DockerRuntime
    from forge_desktop.runtimes.podman import PodmanRuntime

    return [DockerRuntime(timeout_s), PodmanRuntime(timeout_s)]


def remote_runtime(name: str, config: Config) -> Runtime:
    """Transport mode: ``docker@CONTEXT`` / ``podman@CONNECTION`` (runtimes/transport.py)."""
    from forge_desktop.runtimes import transport

    timeout_s = config.timeout_s
    remote = transport.resolve(name, timeout_s, config.hosts)
    if remote.engine == "docker":
        from forge_desktop.runtimes.docker import DockerRuntime

        return DockerRuntime(timeout_s, remote=remote)
    from forge_desktop.runtimes.podman import PodmanRuntime

    return PodmanRuntime(timeout_s, remote=remote)


def known_runtimes(config: Config) -> list[Runtime]:
    from importlib.metadata import entry_points  # not for the tray's engine_counts: heavy

    from forge_desktop.runtimes.command import CommandRuntime
    from forge_desktop.runtimes.cri import CriRuntime
    from forge_desktop.runtimes.oci import OciRuntime

    t = config.timeout_s
    found: list[Runtime] = [*builtin_engines(t), CriRuntime(t), OciRuntime("runc", t),
                            OciRuntime("crun", t)]
    found += [CommandRuntime(c, t) for c in config.command_runtimes]
    names = {r.name for r in found}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            plugin = ep.load()(config)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break forge
            print(f"forge: warning: runtime plugin {ep.name!r} failed to load: {exc}",
                  file=sys.stderr)
            continue
        if plugin.name not in names:
            found.append(plugin)
            names.add(plugin.name)
    return found


def select_runtimes(config: Config, names: Sequence[str] | None,
                    kinds: Iterable[str] | None = None) -> tuple[list[Runtime], list[Runtime]]:
    """Return (selected, skipped). Named runtimes must exist and be available, else a clear
    error; with no names, every available one (of ``kinds``) is selected, except those that
    are measured only when named (``explicit_only``: cri, whose pods are not like-for-like)."""
    everything = known_runtimes(config)
    by_name = {r.name: r for r in everything}
    if names:
        for n in dict.fromkeys(names):
            if "@" in n and n not in by_name:
                by_name[n] = remote_runtime(n, config)
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise UsageError(f"unknown runtime {unknown[0]!r}; known runtimes: "
                             f"{', '.join(by_name)} (add others under [runtimes.NAME] in "
                             "config.toml)")
        chosen = [by_name[n] for n in dict.fromkeys(names)]
        for r in chosen:
            reason = r.available()
            if reason:
                raise RuntimeUnavailable(f"runtime {r.name!r} is unavailable: {reason}")
        return chosen, []
    allowed = set(kinds) if kinds is not None else None
    pool = [r for r in everything if (allowed is None or r.kind in allowed)
            and not getattr(r, "explicit_only", False)]
    selected = [r for r in pool if r.available() is None]
    skipped = [r for r in pool if r not in selected]
    if not selected:
        reasons = "; ".join(f"{r.name}: {r.available()}" for r in pool)
        raise RuntimeUnavailable(f"no runtime is available ({reasons})")
    return selected, skipped
