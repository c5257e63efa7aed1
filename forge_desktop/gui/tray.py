"""`forge tray`: the system-tray indicator.

Live CPU/memory bars and a running-container badge (icons.py), a menu built from the action
registry, benchmarks in a background job (jobs.py) whose progress and completion reach the Qt
thread only through bridge.py, and notifications (notify.py) with an "Open results" action.
Single instance per user and FORGE_HOME: a second start activates the first.
"""

from __future__ import annotations

import linecache
import os
import socket
import sys
import threading
import zlib
from typing import Any

import psutil
from PySide6.QtCore import QSocketNotifier, QTimer
from PySide6.QtGui import QAction, QActionGroup, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

from forge_desktop import APP_ID, APP_NAME
from forge_desktop.actions import ACTIONS
from forge_desktop.canary_schedule import PERIOD_CHOICES_S, period_label
from forge_desktop.config import forge_home
from forge_desktop.errors import ForgeError
from forge_desktop.gui.bridge import Bridge
from forge_desktop.gui.icons import Icon, State, render_icon, tooltip
from forge_desktop.gui.monitor import CanaryMonitor
from forge_desktop.gui.settings import (
    ITERATION_CHOICES,
    REFRESH_CHOICES_S,
    TraySettings,
    load_settings,
    save_settings,
)
from forge_desktop.jobs import JobEvent, JobRunner, notification, start_view, view_argv
from forge_desktop.monitor import engine_counts, host_usage
from forge_desktop.notify import Notifier
from forge_desktop.profiling.perf import PERF

NO_TRAY_HELP = ("no system tray host is running (on stock GNOME install and enable the "
                "AppIndicator and KStatusNotifierItem Support extension); forge keeps working "
                "through the results window, the launcher actions and notifications")
COUNTS_EVERY_S = 10.0
"""Engines are asked for their running containers at this slower cadence."""


def instance_name() -> str:
    """One tray per user and FORGE_HOME (tests run their own with their own FORGE_HOME)."""
    # crc32, not hashlib: importing hashlib maps OpenSSL's libcrypto, ~3.5 MiB of the idle tray
    digest = zlib.crc32(str(forge_home().resolve()).encode())
    return f"forge-desktop-tray-{os.getuid()}-{digest:08x}"


def _address() -> str:
    return "\0" + instance_name()  # Linux abstract socket: gone with the process, no file


def activate_running_instance(timeout_s: float = 1.0) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(_address())
            sock.sendall(b"activate\n")
        except OSError:
            return False
    return True


class InstanceServer:
    """Single instance: the first tray listens on an abstract unix socket (a plain socket
    watched by the Qt loop; QtNetwork would cost ~3 MiB for this alone)."""

    def __init__(self, on_message: Any) -> None:
        self.on_message = on_message
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.notifier: QSocketNotifier | None = None

    def listen(self) -> bool:
        try:
            self.sock.bind(_address())
        except OSError:
            return False  # another tray got there first
        self.sock.listen(4)
        self.sock.setblocking(False)
        self.notifier = QSocketNotifier(self.sock.fileno(), QSocketNotifier.Type.Read)
        self.notifier.activated.connect(self._accept)
        return True

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(0.5)
            try:
                message = conn.recv(256).decode(errors="replace").strip()
            except OSError:
                return
        self.on_message(message)

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.setEnabled(False)
        self.sock.close()


def drop_source_cache() -> None:
    """Forget the source lines of imported modules. PySide6 reads the source of every module
    imported after it (shibokensupport's feature hook: inspect.getsource, looking for
    "PySide6"), and linecache keeps it: ~4 MiB of the idle tray's text nobody reads again. A
    traceback reads its lines afresh."""
    linecache.clearcache()


def to_qicon(icon: Icon) -> QIcon:
    qimage = QImage(icon.rgba, icon.size, icon.size, QImage.Format.Format_RGBA8888).copy()
    return QIcon(QPixmap.fromImage(qimage))


class EngineCounter:
    """Polls the engines' running-container counts in a named thread (a hung daemon must not
    freeze the menu) and hands each reading to the GUI thread."""

    def __init__(self, bridge: Bridge, on_counts: Any) -> None:
        self.bridge = bridge
        self.on_counts = on_counts
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="forge-counts")

    def start(self) -> None:
        self.thread.start()

    def poll_now(self) -> None:
        threading.Thread(target=self._once, daemon=True, name="forge-counts-now").start()

    def _once(self) -> None:
        counts = engine_counts()
        self.bridge.post(lambda: self.on_counts(counts))

    def _loop(self) -> None:
        while not self.stop.is_set():
            if not self.paused.is_set():
                self._once()
            self.stop.wait(COUNTS_EVERY_S)


class TrayApp:
    def __init__(self, app: QApplication, settings: TraySettings) -> None:
        self.app = app
        self.settings = settings
        self.bridge = Bridge()
        self.counts: dict[str, int | None] = {}
        self.state: State = "idle"
        self._last_key: tuple[Any, ...] | None = None
        self.own = psutil.Process()
        self.own.cpu_percent(None)
        self.jobs = JobRunner(lambda ev: self.bridge.post(lambda: self.on_job_event(ev)))
        self.notifier = Notifier(
            on_open=lambda rid, series: self.bridge.post(lambda: self.open_results(rid, series)),
            fallback=lambda t, b: self.bridge.post(lambda: self.balloon(t, b)))
        self.notifier.enabled = settings.notifications
        self.monitor = CanaryMonitor(settings, self.jobs, self.notifier, self.bridge,
                                     self.show_monitor)
        self.canary_items: list[QAction] = []
        self.tray = QSystemTrayIcon()
        self.tray.setToolTip(APP_NAME)
        self.tray.activated.connect(self.on_activated)
        self.menu = QMenu()
        self.build_menu()
        self.tray.setContextMenu(self.menu)
        self.timer = QTimer()
        self.timer.timeout.connect(self.refresh)
        self.counter = EngineCounter(self.bridge, self.on_counts)
        self.server = InstanceServer(self.on_instance_message)

    # -- set-up -------------------------------------------------------------------------
    def start(self) -> bool:
        """Show the icon; False when there is no tray host (the caller says so once)."""
        drop_source_cache()
        self.server.listen()
        self.refresh()
        self.timer.start(int(self.settings.refresh_s * 1000))
        self.counter.start()
        self.monitor.start()
        if self.settings.paused:
            self.counter.paused.set()
        if not QSystemTrayIcon.isSystemTrayAvailable():
            return False
        self.tray.show()
        return True

    def build_menu(self) -> None:
        m = self.menu
        m.clear()
        self.own_item = m.addAction("Forge tray: measuring…")
        self.own_item.setEnabled(False)
        self.progress_item = m.addAction("")
        self.progress_item.setEnabled(False)
        self.progress_item.setVisible(False)
        self.cancel_item = m.addAction("Cancel benchmark")
        self.cancel_item.triggered.connect(self.cancel)
        self.cancel_item.setVisible(False)
        self._monitor_items(m)
        m.addSeparator()
        for action in ACTIONS.values():
            if action.is_benchmark:
                item = m.addAction(action.title)
                item.setToolTip(action.description)
                item.setObjectName(f"action-{action.id}")
                item.triggered.connect(lambda _c=False, a=action.id: self.run_action(a))
        m.addSeparator()
        for action in ACTIONS.values():
            if action.view is not None:
                m.addAction(action.title).triggered.connect(
                    lambda _c=False, a=action: start_view(view_argv(a)))
        m.addSeparator()
        settings = m.addMenu("Settings")
        self._choice_menu(settings, "Refresh interval", REFRESH_CHOICES_S,
                          self.settings.refresh_s, lambda v: f"{v:g} s", self.set_refresh)
        self._choice_menu(settings, "Iterations", (None, *ITERATION_CHOICES),
                          self.settings.iterations,
                          lambda v: "From config.toml" if v is None else str(v),
                          self.set_iterations)
        runtimes = settings.addMenu("Runtimes")
        all_item = runtimes.addAction("Every available runtime")
        all_item.setCheckable(True)
        all_item.setChecked(not self.settings.runtimes)
        all_item.triggered.connect(lambda: self.set_runtimes([]))
        for name in ("docker", "podman", "runc", "crun"):
            item = runtimes.addAction(name)
            item.setCheckable(True)
            item.setChecked(name in self.settings.runtimes)
            item.triggered.connect(lambda checked, n=name: self.toggle_runtime(n, checked))
        self._choice_menu(settings, "Canary rounds", PERIOD_CHOICES_S,
                          self.settings.canary_period_s, period_label, self.set_canary_period)
        self.notify_item = settings.addAction("Notifications")
        self.notify_item.setCheckable(True)
        self.notify_item.setChecked(self.settings.notifications)
        self.notify_item.toggled.connect(self.set_notifications)
        self.autostart_item = settings.addAction("Start at login")
        self.autostart_item.setCheckable(True)
        self.autostart_item.setChecked(self.settings.autostart)
        self.autostart_item.toggled.connect(self.set_autostart)
        self.pause_item = m.addAction("Pause monitoring")
        self.pause_item.setCheckable(True)
        self.pause_item.setChecked(self.settings.paused)
        self.pause_item.toggled.connect(self.set_paused)
        m.addAction("Quit").triggered.connect(self.quit)

    def _choice_menu(self, parent: QMenu, title: str, choices: tuple[Any, ...], current: Any,
                     label: Any, setter: Any) -> None:
        sub = parent.addMenu(title)
        group = QActionGroup(sub)
        for value in choices:
            item = QAction(label(value), sub, checkable=True)
            item.setChecked(value == current)
            item.triggered.connect(lambda _c=False, v=value: setter(v))
            group.addAction(item)
            sub.addAction(item)

    # -- canary rounds (gui/monitor.py) -----------------------------------------------------
    def _monitor_items(self, m: QMenu) -> None:
        """The schedule's lines (last round, a skip and why, next round), disabled items."""
        self.canary_items = []
        for _ in range(3):
            item = m.addAction("")
            item.setEnabled(False)
            self.canary_items.append(item)
        self.show_monitor()

    def show_monitor(self) -> None:
        lines = self.monitor.lines()
        for i, item in enumerate(self.canary_items):
            item.setVisible(i < len(lines))
            item.setText(lines[i] if i < len(lines) else "")
        self._last_key = None

    def set_canary_period(self, seconds: float) -> None:
        self.settings.canary_period_s = seconds
        self.monitor.set_period(seconds)
        self._save()

    # -- live usage -----------------------------------------------------------------------
    def refresh(self) -> None:
        with PERF.measure("tray.refresh"):
            usage = None if self.settings.paused else host_usage()
            state: State = "busy" if self.jobs.current else (
                "paused" if self.settings.paused else "idle")
            running = sum(v for v in self.counts.values() if v)
            if usage is not None:
                key = (round(usage.cpu_percent / 5), round(usage.memory_percent / 5), running,
                       state)
                self.tray.setToolTip("\n".join([
                    tooltip(usage.cpu_percent, usage.memory_used_bytes,
                            usage.memory_total_bytes, self.counts), *self.monitor.lines()]))
            else:
                key = (0, 0, running, state)
                self.tray.setToolTip("\n".join([f"{APP_NAME}: monitoring paused",
                                                *self.monitor.lines()]))
            if key != self._last_key:  # redraw only when what the eye sees changes
                self._last_key = key
                self.state = state
                cpu = usage.cpu_percent if usage else 0.0
                mem = usage.memory_percent if usage else 0.0
                self.tray.setIcon(to_qicon(render_icon(cpu, mem, running, state, 22)))
            rss = self.own.memory_info().rss / 1048576
            self.own_item.setText(f"Forge tray: {rss:.0f} MiB, "
                                  f"{self.own.cpu_percent(None):.1f}% CPU")

    def on_counts(self, counts: dict[str, int | None]) -> None:
        self.counts = counts
        self.refresh()

    # -- actions --------------------------------------------------------------------------
    def run_action(self, action_id: str) -> None:
        """Run with the tray's own settings where it has one; every other parameter takes
        the registry's default (config.toml's where it names a key)."""
        params: dict[str, Any] = {}
        action = ACTIONS[action_id]
        names = {p.name for p in action.params}
        if "iterations" in names and action.param("iterations").config is not None \
                and self.settings.iterations is not None:
            params["iterations"] = self.settings.iterations
        if "runtime" in names and self.settings.runtimes:
            params["runtime"] = list(self.settings.runtimes)
        try:
            self.jobs.submit(action_id, params)
        except ForgeError as exc:
            self.balloon("Forge", str(exc))

    def cancel(self) -> None:
        if self.jobs.cancel():
            self.progress_item.setText("Cancelling…")

    def on_job_event(self, ev: JobEvent) -> None:
        if ev.kind == "log":  # the tray shows progress, not the benchmark's log
            return
        busy = ev.kind in ("started", "progress")
        self.progress_item.setVisible(busy)
        self.cancel_item.setVisible(busy)
        if busy:
            self.progress_item.setText(ev.text or ev.job.action.title)
        scheduled = self.monitor.owns(ev.job)
        message = notification(ev.outcome) if ev.outcome else None
        # a scheduled round speaks only through the change points it finds (monitor.py)
        if message is not None and not scheduled:  # failed too: this says why
            self.notifier.notify(*message, result_id=str(ev.doc["id"]) if ev.doc else None)
        if not busy:
            self.monitor.on_job_end(ev)
            self.show_monitor()
        self._last_key = None
        self.refresh()
        if not busy:
            self.counter.poll_now()
            drop_source_cache()  # the job imported the benchmark's modules

    def on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.open_results(None)

    def open_results(self, result_id: str | None,
                     series: tuple[str, str] | None = None) -> None:
        """The results window; at a result, and at a series' trend with the change starting
        at that result marked (a change point's notification)."""
        args = ["--result", result_id] if result_id else []
        if series is not None:
            args += ["--runtime", series[0], "--metric", series[1]]
        start_view(view_argv(ACTIONS["results"], args))

    def balloon(self, title: str, body: str) -> None:
        if self.tray.isVisible():
            self.tray.showMessage(title, body, QSystemTrayIcon.MessageIcon.Information, 8000)
        else:
            print(f"forge tray: {title}: {body}", file=sys.stderr)

    def on_instance_message(self, message: str) -> None:
        if message == "activate":
            self.open_results(None)

    # -- settings -------------------------------------------------------------------------
    def _save(self) -> None:
        error = save_settings(self.settings)
        if error:
            self.balloon("Forge settings not saved", error)

    def set_refresh(self, seconds: float) -> None:
        self.settings.refresh_s = seconds
        self.timer.setInterval(int(seconds * 1000))
        self._save()

    def set_iterations(self, n: int | None) -> None:
        self.settings.iterations = n
        self._save()

    def set_runtimes(self, names: list[str]) -> None:
        self.settings.runtimes = names
        self._save()
        self.build_menu()

    def toggle_runtime(self, name: str, checked: bool) -> None:
        names = [n for n in self.settings.runtimes if n != name] + ([name] if checked else [])
        self.set_runtimes(names)

    def set_notifications(self, on: bool) -> None:
        self.settings.notifications = on
        self.notifier.enabled = on
        self._save()

    def set_autostart(self, on: bool) -> None:
        from forge_desktop.desktop import install_autostart, remove_autostart

        try:
            install_autostart() if on else remove_autostart()
        except (ForgeError, OSError) as exc:
            self.balloon("Start at login not changed", str(exc))
            return
        self.settings.autostart = on
        self._save()

    def set_paused(self, paused: bool) -> None:
        self.settings.paused = paused
        (self.counter.paused.set if paused else self.counter.paused.clear)()
        self._last_key = None
        self.refresh()
        self._save()

    def quit(self) -> None:
        if self.jobs.current is not None:
            self.jobs.cancel()
            self.jobs.wait(60)  # the job removes its containers before we go
        self.counter.stop.set()
        self.timer.stop()
        self.monitor.stop()
        self.tray.hide()
        self.server.close()
        self.notifier.close()
        self.app.quit()


def run_tray() -> int:
    """Entry point of `forge tray`; returns the exit code."""
    app = QApplication.instance() or QApplication([APP_ID])  # WM_CLASS = the app id
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setDesktopFileName(APP_ID)
    app.setQuitOnLastWindowClosed(False)
    if activate_running_instance():
        print("forge tray is already running; activated it", file=sys.stderr)
        return 0
    settings, warnings = load_settings()
    for w in warnings:
        print(f"forge tray: warning: {w}", file=sys.stderr)
    tray = TrayApp(app, settings)
    if not tray.start():
        print(f"forge tray: {NO_TRAY_HELP}", file=sys.stderr)
        tray.notifier.notify("Forge Desktop: no system tray", NO_TRAY_HELP, fallback=False)
        tray.open_results(None)
    import signal

    signal.signal(signal.SIGINT, lambda *_a: tray.quit())
    signal.signal(signal.SIGTERM, lambda *_a: tray.quit())
    wake = QTimer()  # let Python run its signal handlers while Qt's loop sleeps
    wake.timeout.connect(lambda: None)
    wake.start(500)
    return int(app.exec())
