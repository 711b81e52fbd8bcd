"""Clocks: the real one, and a virtual one for simulations (the protocol: :class:`hb_core.protocols.Clock`).

The runner never calls ``time`` or ``asyncio.sleep`` itself; it asks its clock.
:func:`wait_event` is the one real-time wait for a backend's "events are ready".
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["RealClock", "VirtualClock", "wait_event"]


class RealClock:
    """Wall-clock seconds since the epoch; sleeping yields to the event loop."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, when: float) -> None:
        delay = when - time.time()
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualClock:
    """Virtual seconds: sleeping jumps straight to the wake-up time."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    async def sleep_until(self, when: float) -> None:
        self._now = max(self._now, when)


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set (True) or ``timeout`` seconds have passed (False); a cancellation always goes through.

    Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation that arrives as the
    event is set (python/cpython#86296, fixed in 3.12), and a controller waiting for events
    then runs on after its task was cancelled (a user's kill, a triggerer's cancel, Ctrl-C).
    """
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
    return bool(done)
