"""Stop requests from the operating system (SIGINT, SIGTERM), handled in one place.

Every long-running command stops the same way: Ctrl-C or SIGTERM (a service manager,
`kill`) asks it to stop; it finishes what it is writing and cleans up what it started.
Async commands get an `asyncio.Event` that the signal sets (`stop_on_signals`, used by
`ibdesk.ib.session.open_session` and `ibdesk sim`); synchronous ones get SIGTERM raised as
KeyboardInterrupt, like Ctrl-C (`sigterm_as_interrupt`, used by `ibdesk backfill`).
Nothing else in ibdesk installs signal handlers. Both restore the handlers they replaced.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[bool]:
    """While inside, SIGINT and SIGTERM set `stop` (on the running loop) instead of killing.

    Yields whether the handlers could be installed (only the main thread can install them;
    elsewhere `stop` is left to the caller).
    """
    loop = asyncio.get_running_loop()
    installed: list[tuple[signal.Signals, Any]] = []
    for sig in STOP_SIGNALS:
        previous = signal.getsignal(sig)
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        installed.append((sig, previous))
    try:
        yield bool(installed)
    finally:
        for sig, previous in installed:
            loop.remove_signal_handler(sig)
            if previous is not None:
                signal.signal(sig, previous)


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM stops synchronous work like Ctrl-C (KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: Callable[[int, Any], Any] | int | None = signal.signal(
        signal.SIGTERM, _raise_interrupt
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
