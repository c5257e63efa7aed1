"""`forge doctor`: is this machine ready to benchmark? Each check says what is wrong and how
to fix it; the command exits 0 only when every check passes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from forge_desktop.config import FALLBACK_IMAGE, Config, forge_home
from forge_desktop.errors import ForgeError

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail,
                "fix": self.fix}


def _socket_check(name: str, endpoint: str | None) -> Check | None:
    if not endpoint or not endpoint.startswith("unix://"):
        return None
    path = Path(endpoint.removeprefix("unix://"))
    try:
        st = path.stat()
    except FileNotFoundError:
        return Check(f"{name} socket", "fail", f"{path} does not exist",
                     f"start {name} (e.g. `sudo systemctl start {name}` or `make run`)")
    except OSError as exc:
        return Check(f"{name} socket", "fail", f"{path}: {exc.strerror}", "check its directory")
    if not stat.S_ISSOCK(st.st_mode):
        return Check(f"{name} socket", "fail", f"{path} is not a socket", "")
    if not os.access(path, os.R_OK | os.W_OK):
        return Check(f"{name} socket", "fail", f"no permission on {path} "
                     f"(mode {stat.S_IMODE(st.st_mode):o}, uid {st.st_uid}, gid {st.st_gid})",
                     f"add your user to the socket's group (`sudo usermod -aG {name} $USER`) "
                     "and log in again")
    return Check(f"{name} socket", "ok", f"{path} (mode {stat.S_IMODE(st.st_mode):o})")


def _runtime_checks(config: Config) -> Iterator[Check]:
    from forge_desktop.runtimes.base import owner_alive
    from forge_desktop.runtimes.registry import known_runtimes

    runtimes = known_runtimes(config)
    try:
        for r in runtimes:
            info = r.info()
            if info.available:
                # a note (crun in its cgroup2 namespace) is how it runs, not a fault
                yield Check(f"runtime {r.name}", "ok",
                            f"{info.version or '?'} at {info.endpoint or '-'}"
                            + (f" ({info.note})" if info.note else ""))
            else:
                yield Check(f"runtime {r.name}", "warn" if r.kind == "oci" else "fail",
                            info.reason or "unavailable", "see the reason; `forge runtimes`")
            sock = _socket_check(r.name, getattr(r, "endpoint", None)) \
                if r.kind == "engine" else None
            if sock is not None and not info.available:
                yield sock
            if not info.available:
                continue
            if r.kind == "engine":
                has = [img for img in (config.image, FALLBACK_IMAGE) if r.has_image(img)]
                if has:
                    yield Check(f"image on {r.name}", "ok", has[0])
                else:
                    yield Check(f"image on {r.name}", "warn",
                                f"neither {config.image} nor {FALLBACK_IMAGE} is there",
                                "`forge image prepare` (benchmarks also do it on first use)")
                leftovers = [c for c in r.labelled()  # type: ignore[attr-defined]
                             if not owner_alive((c.get("Labels") or {}).get(
                                 "io.forge.owner", ""))]
                if leftovers:
                    yield Check(f"leftovers on {r.name}", "fail",
                                f"{len(leftovers)} container(s) of dead forge runs",
                                "`forge doctor --fix` removes them (so does the next run)")
                else:
                    yield Check(f"leftovers on {r.name}", "ok", "none")
    finally:
        for r in runtimes:
            r.close()


def _home_check() -> Check:
    home = forge_home()
    try:
        from forge_desktop.results.store import ensure_writable

        ensure_writable()
    except ForgeError as exc:
        return Check("FORGE_HOME", "fail", str(exc), "set FORGE_HOME to a writable directory")
    mode = stat.S_IMODE(home.stat().st_mode)
    if mode & 0o077:
        return Check("FORGE_HOME", "warn", f"{home} is readable by others (mode {mode:o})",
                     f"chmod 700 {home}")
    return Check("FORGE_HOME", "ok", f"{home} (mode {mode:o})")


def _tray_check() -> Check:
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return Check("tray host", "warn", "no graphical session (DISPLAY unset)",
                     "run forge tray inside a desktop session")
    code = ("import sys\nfrom PySide6.QtWidgets import QApplication, QSystemTrayIcon\n"
            "app = QApplication(['forge-doctor'])\n"
            "sys.exit(0 if QSystemTrayIcon.isSystemTrayAvailable() else 3)")
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=15,
                              check=False)
    except subprocess.TimeoutExpired:
        return Check("tray host", "warn", "the check did not finish in 15 s", "")
    if proc.returncode == 0:
        return Check("tray host", "ok", "a system tray host answers")
    if proc.returncode == 3:
        return Check("tray host", "warn", "no system tray host is running",
                     "on GNOME install and enable the AppIndicator extension")
    return Check("tray host", "warn", "the GUI extra is not installed or Qt cannot start",
                 "pip install 'forge-desktop[gui]'")


def _notification_check() -> Check:
    import asyncio

    from forge_desktop.notify import server_available

    why = asyncio.run(server_available())
    if why is None:
        return Check("notifications", "ok", "a notification server answers")
    return Check("notifications", "warn", why,
                 "start a notification daemon (e.g. dunst); the tray falls back to balloons")


def _noise_checks() -> Iterator[Check]:
    from forge_desktop.profiling.system import noise_warnings

    warnings = noise_warnings()
    if not warnings:
        yield Check("noise", "ok", "the machine looks quiet")
    for w in warnings:
        yield Check("noise", "warn", w, "benchmarks on a noisy machine vary more")


def run_checks(config: Config) -> list[Check]:
    checks: list[Check] = [_home_check()]
    sources: list[Callable[[], Iterator[Check] | Check]] = [
        lambda: _runtime_checks(config), _tray_check, _notification_check, _noise_checks]
    for source in sources:
        try:
            out = source()
            checks.extend([out] if isinstance(out, Check) else list(out))
        except ForgeError as exc:
            checks.append(Check(getattr(source, "__name__", "check"), "fail", str(exc)))
    return checks


def fix_leftovers(config: Config) -> int:
    """Remove containers of dead runs on every available runtime; returns how many."""
    from forge_desktop.bench.runner import sweep_dead
    from forge_desktop.runtimes.registry import known_runtimes

    runtimes = [r for r in known_runtimes(config) if r.available() is None]
    try:
        return sweep_dead(runtimes)
    finally:
        for r in runtimes:
            r.close()
