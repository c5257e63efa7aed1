"""An Xvfb of a test's own, beside the shared one: on a display number it picks itself."""

from __future__ import annotations

import os
import select
import subprocess
import time
from dataclasses import dataclass


@dataclass
class Display:
    name: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def start_xvfb(screen: str = "800x600x24") -> Display:
    """A second Xvfb of one ``screen`` (WxHxDEPTH) on a display number it picks itself
    (-displayfd: free whatever other sessions run), returned once it accepts connections
    (it writes the number then)."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0",
                             screen, "-nolisten", "tcp"], pass_fds=(write_fd,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    number = b""
    deadline = time.monotonic() + 30
    with os.fdopen(read_fd, "rb") as pipe:
        while not number.endswith(b"\n"):
            ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(pipe.fileno(), 16) if ready else b""
            if not chunk:
                proc.kill()
                proc.wait()
                raise AssertionError("the second Xvfb did not come up within 30 s")
            number += chunk
    return Display(f":{int(number)}", proc)
