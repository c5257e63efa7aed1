"""Helpers the adapters share (runtimes/common.py): pure, so tested without an engine."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from forge_desktop.runtimes.common import overlay_layer_dirs, split_tag, unix_get_json


@pytest.mark.parametrize("ref,expected", [
    ("busybox", ("busybox", "latest")),
    ("busybox:1.36", ("busybox", "1.36")),
    ("127.0.0.1:5000/forge-bench-tmp", ("127.0.0.1:5000/forge-bench-tmp", "latest")),
    ("127.0.0.1:5000/forge-bench-tmp:abc-1-2-3", ("127.0.0.1:5000/forge-bench-tmp",
                                                  "abc-1-2-3")),
])
def test_split_tag_tells_a_port_from_a_tag(ref: str, expected: tuple[str, str]) -> None:
    assert split_tag(ref) == expected


def test_overlay_layer_dirs_include_dockers_init_layer() -> None:
    gd = {"Name": "overlay2", "Data": {"UpperDir": "/d/overlay2/abc/diff",
                                        "WorkDir": "/d/overlay2/abc/work",
                                        "LowerDir": "/d/overlay2/abc-init/diff:/d/overlay2/img"}}
    assert overlay_layer_dirs(gd) == {"layer_bytes": "/d/overlay2/abc",
                                      "init_layer_bytes": "/d/overlay2/abc-init"}
    assert overlay_layer_dirs({"Name": "vfs", "Data": None}) == {}


def _serve_once(path: Path, answer: bytes) -> threading.Thread:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)

    def run() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

    thread = threading.Thread(target=run, name="fake-engine-socket", daemon=True)
    thread.start()
    return thread


def test_unix_get_json_reads_a_200_and_refuses_anything_else(tmp_path: Path) -> None:
    ok = _serve_once(tmp_path / "ok.sock", b"HTTP/1.0 200 OK\r\n\r\n[{}, {}]")
    assert unix_get_json(f"unix://{tmp_path}/ok.sock", "/containers/json", 5) == [{}, {}]
    ok.join(5)
    err = _serve_once(tmp_path / "err.sock", b"HTTP/1.0 500 Oops\r\n\r\n[]")
    assert unix_get_json(f"unix://{tmp_path}/err.sock", "/containers/json", 5) is None
    err.join(5)
    assert unix_get_json(f"unix://{tmp_path}/absent.sock", "/x", 5) is None
    assert unix_get_json("tcp://127.0.0.1:2375", "/x", 5) is None
