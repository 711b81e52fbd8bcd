"""The real-time wait of the backends: woken by its event, by its timeout, and never deaf to a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from hb_core.backends.clock import wait_event


async def test_wait_event_says_whether_the_event_or_the_timeout_ended_it() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_soon(event.set)
    assert await wait_event(event, 10) is True
    assert await wait_event(event, 0) is True  # already set: no wait at all


async def test_a_cancellation_that_lands_as_the_event_is_set_goes_through() -> None:
    """``asyncio.wait_for`` on Python 3.11 returns normally here (python/cpython#86296): a controller waiting
    for events ran on after a user's kill had cancelled it."""
    event = asyncio.Event()
    after: list[str] = []

    async def controller() -> None:
        await wait_event(event, 10)
        after.append("ran on")

    task = asyncio.ensure_future(controller())
    await asyncio.sleep(0)  # the controller is now waiting
    event.set()  # an event is queued ...
    task.cancel()  # ... as the kill arrives
    with pytest.raises(asyncio.CancelledError):
        await task
    assert after == []
