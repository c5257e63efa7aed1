"""Signals held while something must finish (forge_desktop.interrupts), with real signals sent
to this process."""

from __future__ import annotations

import os
import signal

import pytest

from forge_desktop.errors import Interrupted
from forge_desktop.interrupts import signals_deferred


class Raised(Exception):
    pass


def _raise(*_a: object) -> None:
    raise Raised


def test_a_signal_in_the_block_waits_for_its_end_then_interrupts() -> None:
    previous = signal.signal(signal.SIGTERM, _raise)
    finished = []
    try:
        with pytest.raises(Interrupted, match="the bundle's container was removed"), \
                signals_deferred("interrupted; the bundle's container was removed"):
            os.kill(os.getpid(), signal.SIGTERM)
            finished.append("the request's answer")  # not cut short by the signal
        assert finished == ["the request's answer"]
        assert signal.getsignal(signal.SIGTERM) is _raise  # the handler is back
        with pytest.raises(Raised):  # and works again
            os.kill(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_no_signal_no_interruption() -> None:
    with signals_deferred():
        value = 1
    assert value == 1
