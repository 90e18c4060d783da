"""ibdesk.shutdown: SIGTERM stops synchronous work like Ctrl-C; handlers are restored."""

from __future__ import annotations

import os
import signal

import pytest

from ibdesk.shutdown import sigterm_as_interrupt


def test_sigterm_raises_keyboard_interrupt_inside_and_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs on the next bytecode
    assert signal.getsignal(signal.SIGTERM) == before
