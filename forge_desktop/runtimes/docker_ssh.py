"""The docker SDK's HTTP adapter for transport mode: every pooled connection is one ssh
``docker system dial-stdio`` opened by ``transport.Dialer`` (see transport.py for why the SDK's
own ssh adapter is not used). Imported only when a ``docker@CONTEXT`` client is made."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import urllib3
import urllib3.connection
import urllib3.connectionpool
from docker.transport.basehttpadapter import BaseHTTPAdapter


class _DialConnection(urllib3.connection.HTTPConnection):
    def __init__(self, dial: Callable[[], socket.socket], timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._dial = dial

    def connect(self) -> None:
        self.sock = self._dial()


class _DialPool(urllib3.connectionpool.HTTPConnectionPool):
    def __init__(self, dial: Callable[[], socket.socket], timeout: float, maxsize: int) -> None:
        super().__init__("localhost", timeout=timeout, maxsize=maxsize)
        self._dial = dial
        self._timeout_s = timeout

    def _new_conn(self) -> _DialConnection:
        return _DialConnection(self._dial, self._timeout_s)


class DialAdapter(BaseHTTPAdapter):  # type: ignore[misc]
    """One pool for the client, kept (unlike the SDK's shell-out adapter, which makes a new
    pool, hence a new ssh handshake, for every call)."""

    def __init__(self, dial: Callable[[], socket.socket], timeout: float,
                 max_pool_size: int) -> None:
        self.pool = _DialPool(dial, timeout, max_pool_size)
        super().__init__()

    def get_connection(self, url: Any, proxies: Any = None) -> _DialPool:
        return self.pool

    def request_url(self, request: Any, proxies: Any) -> str:
        return str(request.path_url)  # no host to proxy: as the SDK's unix adapter

    def close(self) -> None:
        super().close()
        self.pool.close()
