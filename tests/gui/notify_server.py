# ruff: noqa: F722, F821, N802, E501
# mypy: disable-error-code="valid-type, name-defined"
# (dbus-next reads D-Bus signatures from the annotations: "s", "as", ...)
"""A real notification server for tests: owns org.freedesktop.Notifications on the session
bus and appends every Notify call to a JSON-lines file, so a test can assert what the user
would have seen. Run: python -m tests.gui.notify_server RECORD_FILE"""

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from dbus_fast import BusType
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method, signal


class Notifications(ServiceInterface):
    def __init__(self, record: Path) -> None:
        super().__init__("org.freedesktop.Notifications")
        self.record = record
        self.next_id = 1

    @method()
    def GetCapabilities(self) -> "as":  # noqa: F821, N802
        return ["body", "actions"]

    @method()
    def GetServerInformation(self) -> "ssss":  # noqa: F821, N802
        return ["forge-test-server", "forge", "1.0", "1.2"]

    @method()
    def Notify(self, app_name: "s", replaces_id: "u", app_icon: "s",  # noqa: F821, N802, E501
               summary: "s", body: "s", actions: "as", hints: "a{sv}",  # noqa: F821
               expire_timeout: "i") -> "u":  # noqa: F821
        nid = self.next_id
        self.next_id += 1
        entry: dict[str, Any] = {"id": nid, "app_name": app_name, "app_icon": app_icon,
                                 "summary": summary, "body": body, "actions": list(actions),
                                 "hints": {k: v.value for k, v in hints.items()
                                           if isinstance(v.value, str | int | bool)}}
        with self.record.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")
        return nid

    @method()
    def CloseNotification(self, nid: "u"):  # type: ignore[no-untyped-def]  # noqa: F821, N802, ANN201
        self.NotificationClosed(nid, 3)

    @signal()
    def NotificationClosed(self, nid: "u", reason: "u") -> "uu":  # noqa: F821, N802
        return [nid, reason]

    @signal()
    def ActionInvoked(self, nid: "u", key: "s") -> "us":  # noqa: F821, N802
        return [nid, key]


async def main(record: Path) -> None:
    bus = await MessageBus(bus_type=BusType.SESSION).connect()
    bus.export("/org/freedesktop/Notifications", Notifications(record))
    await bus.request_name("org.freedesktop.Notifications")
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
