"""Clocks: the real one, and a virtual one for simulations (the protocol: :class:`hb_core.protocols.Clock`).

The runner never calls ``time`` or ``asyncio.sleep`` itself; it asks its clock.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["RealClock", "VirtualClock"]


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
