"""When rounds run: as events arrive from a pushing backend, and sooner near a rung for a polled one."""

from __future__ import annotations

from typing import Any

import pytest

from hb_core.backends.clock import VirtualClock
from hb_core.backends.local import LocalBackend
from hb_core.backends.simulated import SimulatedBackend
from hb_core.backends.stores import MemoryStore
from hb_core.controller import decide
from hb_core.events import Event, MetricReported, TrialStarted
from hb_core.protocols import EventSource, VerdictSink
from hb_core.runner import RUNG_POLL_DIVISOR, Tuner, rung_due_time
from hb_core.state import TuningState
from tests.helpers import config, fresh


def reported(points: dict[str, list[tuple[int, float]]]) -> TuningState:
    """A stopping-variant job (rungs 1, 3, 9, 27) whose trials printed ``(resource, time)`` points."""
    state, _ = fresh("Hyperband", parallel=3, max_jobs=3)
    state, _ = decide(state, [TrialStarted(t, 1, 0.0) for t in ("0000", "0001", "0002")], 0.0)
    for trial_id, series in points.items():
        for resource, time in series:
            event = MetricReported(trial_id, 1, time, 0.5 + 0.01 * resource, seq=resource)
            state, _ = decide(state, [event], time)
    return state


def test_rung_due_time_extrapolates_each_trials_own_epoch_rate() -> None:
    assert rung_due_time(reported({})) is None  # no trial has two points yet
    state = reported({"0000": [(1, 10.0), (2, 20.0)], "0001": [(1, 2.0), (2, 4.0), (3, 6.0), (4, 8.0)]})
    # 0000: rung 3 is one 10 s epoch after t=20 -> 30; 0001: rung 9 is five 2 s epochs after t=8 -> 18
    assert rung_due_time(state) == pytest.approx(18.0)


class Polled:
    """A backend that cannot push and names no event time, as the SageMaker backend."""

    async def launch(self, action: Any) -> None: ...

    async def stop(self, trial_id: str, attempt: int, reason: str) -> None: ...

    async def poll(self) -> list[Event]:
        return []

    async def reconcile(self, state: TuningState) -> list[Event]:
        return []

    def next_event_time(self) -> float | None:
        return None

    async def close(self) -> None: ...


@pytest.mark.parametrize(("now", "expected"), [(10.0, 30.0), (25.0, 32.5), (40.0, 47.5)])
def test_a_polled_backend_is_polled_more_often_once_a_trial_is_due_at_a_rung(now: float, expected: float) -> None:
    clock = VirtualClock(now)
    tuner = Tuner(config(), Polled(), MemoryStore(), clock, poll_interval=30.0)  # type: ignore[arg-type]
    tuner.state = reported({"0000": [(1, 10.0), (2, 20.0)]})  # due at rung 3 at t=30
    assert tuner._wake_time() == pytest.approx(expected)
    assert RUNG_POLL_DIVISOR == 4  # the 7.5 s above


def test_with_no_trial_near_a_rung_the_poll_interval_holds() -> None:
    tuner = Tuner(config(), Polled(), MemoryStore(), VirtualClock(0.0), poll_interval=30.0)  # type: ignore[arg-type]
    tuner.state = reported({"0000": [(1, 10.0), (2, 200.0)]})  # rung 3 due at t=390
    assert tuner._wake_time() == pytest.approx(30.0)


def test_who_pushes_and_who_hears_verdicts(tmp_path: Any) -> None:
    from tests.hb_core.backends.test_local import backend

    local = backend(tmp_path)
    simulated = SimulatedBackend(lambda h, r: 0.5, VirtualClock())
    assert isinstance(local, EventSource) and isinstance(local, VerdictSink)
    assert not isinstance(simulated, EventSource)  # virtual time advances exactly from event to event
    assert isinstance(simulated, VerdictSink)
    assert not isinstance(Polled(), EventSource)
    assert isinstance(local, LocalBackend)
