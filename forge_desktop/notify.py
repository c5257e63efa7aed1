"""Desktop notifications through desktop-notifier (freedesktop D-Bus), on a private asyncio
loop in a named thread: callers never block and never see an exception.

When no notification server owns ``org.freedesktop.Notifications`` on the session bus, the
``fallback`` (the tray's own balloon) is called instead. Bodies are escaped: some servers
render markup, and runtime names or error lines come from outside.

Every notification carries Forge's own icon (``app_icon``: the theme name the launcher
installs, else the packaged PNG; desktop-notifier's default is a Python logo) and the
``desktop-entry`` hint, so the server groups and themes it as the app.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forge_desktop import APP_ID, APP_NAME

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures

log = logging.getLogger(__name__)
SERVER = "org.freedesktop.Notifications"
OpenFn = Callable[[str | None, "tuple[str, str] | None"], None]
"""Opens the results window: at a result id, and at a series (runtime, metric) if given."""
FallbackFn = Callable[[str, str], None]
ICON_DIRS = ("scalable", *(f"{n}x{n}" for n in (16, 22, 24, 32, 48, 64, 128, 256)))
"""Where the launcher installs the icon in a hicolor theme (forge_desktop.desktop)."""


def app_icon() -> tuple[str, str]:
    """("name", APP_ID) when the icon is installed in a hicolor theme on the XDG data path
    (``forge desktop install``), so the notification server draws the theme's icon at its own
    size; else ("path", the packaged 128 px PNG)."""
    import os

    from forge_desktop.desktop import ICONS, data_home

    dirs = [data_home(), *(Path(d) for d in (os.environ.get("XDG_DATA_DIRS") or
                                             "/usr/local/share:/usr/share").split(":")
                          if os.path.isabs(d))]
    for base in dirs:
        apps = [base / "icons" / "hicolor" / sub / "apps" for sub in ICON_DIRS]
        if any((a / f"{APP_ID}.{ext}").is_file() for a in apps for ext in ("png", "svg")):
            return "name", APP_ID
    return "path", str(ICONS / "forge-desktop-128.png")


def _add_desktop_entry(backend: Any) -> None:
    """Add the ``desktop-entry`` hint to every Notify call of desktop-notifier's D-Bus
    backend, which has no way to pass extra hints: its proxy's ``call_notify`` is wrapped once,
    keeping the hints' signature (``a{sv}``, or ``a{ss}`` for older servers)."""
    from dbus_fast import Variant

    interface = getattr(backend, "interface", None)
    if interface is None or getattr(interface, "_forge_entry", False):
        return
    send = interface.call_notify

    async def call_notify(app_name: str, replaces: int, icon: str, title: str, body: str,
                          actions: list[str], hints: dict[str, Any], timeout: int) -> Any:
        plain = hints and not any(isinstance(v, Variant) for v in hints.values())
        entry = APP_ID if plain else Variant("s", APP_ID)
        return await send(app_name, replaces, icon, title, body, actions,
                          {**hints, "desktop-entry": entry}, timeout)

    interface.call_notify = call_notify
    interface._forge_entry = True


async def server_available(timeout_s: float = 2.0) -> str | None:
    """None when a notification server answers on the session bus, else why not."""
    import asyncio

    try:
        from dbus_fast import BusType, Message
        from dbus_fast.aio import MessageBus
    except ImportError:
        return "desktop-notifier is not installed (pip install 'forge-desktop[gui]')"
    try:
        bus = await asyncio.wait_for(MessageBus(bus_type=BusType.SESSION).connect(), timeout_s)
    except Exception as exc:  # noqa: BLE001 - no bus is an answer, not a crash
        return f"no session bus ({exc})"
    try:
        reply = await asyncio.wait_for(bus.call(Message(
            destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus", member="NameHasOwner", signature="s",
            body=[SERVER])), timeout_s)
        if reply is None or not reply.body or not reply.body[0]:
            return f"no notification server owns {SERVER}"
        return None
    except Exception as exc:  # noqa: BLE001
        return f"the session bus did not answer ({exc})"
    finally:
        bus.disconnect()


def _plain(text: str, limit: int) -> str:
    """``text`` as a server that renders markup shows it literally. Cut before escaping (a cut
    after it could leave half an entity, "&am"); drop NUL and the other control characters
    (D-Bus refuses NUL, and desktop-notifier then drops the notification without a word) and
    lone surrogates (not UTF-8, the same fate); then escape <, > and &."""
    text = text[:limit].encode("utf-8", "replace").decode("utf-8")
    text = "".join(c for c in text if c in "\n\t" or (c >= " " and c != "\x7f"))
    return html.escape(text, quote=False)


class Notifier:
    def __init__(self, on_open: OpenFn | None = None, fallback: FallbackFn | None = None,
                 timeout_s: float = 5.0) -> None:
        self.on_open = on_open
        self.fallback = fallback
        self.timeout_s = timeout_s
        self.enabled = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._notifier: Any = None
        self._pending: list[concurrent.futures.Future[str]] = []

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        """Started on the first notification: an idle tray does not pay for asyncio, ssl and
        the D-Bus client (about 10 MiB)."""
        if self._loop is None:
            import asyncio

            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                            name="forge-notify")
            self._thread.start()
        return self._loop

    def notify(self, title: str, body: str, result_id: str | None = None,
               fallback: bool = True, series: tuple[str, str] | None = None
               ) -> concurrent.futures.Future[str]:
        """Schedule a notification; the future says "sent" or "fallback: reason". With
        ``fallback=False`` nothing is shown when no server answers (the caller said it
        already)."""
        import asyncio

        future = asyncio.run_coroutine_threadsafe(
            self._send(title, body, result_id, fallback, series), self._ensure_loop())
        self._pending = [f for f in self._pending if not f.done()] + [future]
        return future

    async def _send(self, title: str, body: str, result_id: str | None,
                    fallback: bool = True, series: tuple[str, str] | None = None) -> str:
        safe_title = _plain(title, 200)
        safe_body = _plain(body, 1000)
        if not self.enabled:
            return "disabled"
        import asyncio

        why = await server_available(min(self.timeout_s, 2.0))
        if why is not None:
            return self._fall_back(title, body, why) if fallback else f"not shown: {why}"
        try:
            from desktop_notifier import Button, DesktopNotifier, Icon

            if self._notifier is None:
                how, icon = app_icon()
                self._notifier = DesktopNotifier(
                    app_name=APP_NAME, app_icon=Icon(name=icon) if how == "name" else
                    Icon(path=Path(icon)))
                backend = self._notifier._backend
                if hasattr(backend, "_init_dbus") and getattr(backend, "interface", 1) is None:
                    backend.interface = await asyncio.wait_for(backend._init_dbus(),
                                                               self.timeout_s)
                _add_desktop_entry(backend)
            opener = self.on_open
            buttons = []
            if result_id is not None and opener is not None:
                buttons.append(Button(title="Open results",
                                      on_pressed=lambda: opener(result_id, series)))
            await asyncio.wait_for(self._notifier.send(
                title=safe_title, message=safe_body, buttons=buttons,
                on_clicked=(lambda: opener(result_id, series)) if opener is not None else None),
                self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - never crash the app for a notification
            return self._fall_back(title, body, f"{type(exc).__name__}: {exc}")
        return "sent"

    def _fall_back(self, title: str, body: str, why: str) -> str:
        log.info("notification fallback: %s", why)
        if self.fallback is not None:
            try:
                self.fallback(title, body)
            except Exception:  # noqa: BLE001
                log.exception("fallback notification failed")
        return f"fallback: {why}"

    def close(self) -> None:
        """Let notifications in flight finish (bounded), then stop the loop."""
        for future in self._pending:
            try:
                future.result(timeout=self.timeout_s)
            except Exception:  # noqa: BLE001 - closing must not raise
                future.cancel()
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=2)


def notify_once(title: str, body: str, timeout_s: float = 5.0) -> str:
    """For command-line front ends: send one notification, wait for it, say what happened."""
    notifier = Notifier(timeout_s=timeout_s)
    try:
        return notifier.notify(title, body).result(timeout=timeout_s + 3)
    except Exception as exc:  # noqa: BLE001
        return f"fallback: {exc}"
    finally:
        notifier.close()
