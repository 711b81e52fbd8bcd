"""Fault injection for any backend and store, by seed and rate (reusable from benchmarks/).

- :class:`FaultyBackend` wraps a backend and, on ``poll``, delays, duplicates,
  reorders or drops events; it also crashes trials (a non-retriable failure)
  and interrupts them like a spot reclaim (a retriable failure), stopping the
  real job underneath.
- :class:`CrashPlan` with :class:`CrashingBackend` and :class:`CrashingStore`
  kill the controller (raise :class:`ControllerCrash`) at the Nth pass through
  one named point of its loop, before or after the wrapped call takes effect.
- :func:`check_invariants` states what must hold after every run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hb_core.events import Event, Launch, MetricReported, Resume, TrialFailed
from hb_core.protocols import Backend, Clock, StateStore
from hb_core.state import Decision, TrialStatus, TuningState

__all__ = [
    "CRASH_POINTS",
    "ControllerCrash",
    "CrashPlan",
    "CrashingBackend",
    "CrashingStore",
    "FaultRates",
    "FaultyBackend",
    "check_invariants",
]


class ControllerCrash(BaseException):
    """The controller process died here (a BaseException, so no ``except Exception`` swallows it)."""


#: Every distinct step of the loop a crash can hit: each wrapped call, before or after it takes effect.
CRASH_POINTS = (
    "save:before", "save:after",          # checkpoint lost / checkpoint written, then death
    "launch:before", "launch:after",      # request lost / job created, response lost
    "stop:before", "stop:after",
    "poll:before", "poll:after",          # events read from the backend, then lost with the process
    "reconcile:after",
)


@dataclass
class CrashPlan:
    """Raise :class:`ControllerCrash` the ``at``-th time the loop passes ``point``.

    ``then`` are further (point, at) crashes, armed one after the other: a
    crash in ``reconcile`` needs an earlier crash to cause a restart at all.
    """

    point: str
    at: int
    then: tuple[tuple[str, int], ...] = ()
    seen: int = 0
    fired: int = 0

    def tick(self, point: str) -> None:
        if point != self.point:
            return
        self.seen += 1
        if self.seen == self.at:
            self.fired += 1
            message = f"controller killed at {point} #{self.at}"
            if self.then:
                (self.point, self.at), self.then, self.seen = self.then[0], self.then[1:], 0
            else:
                self.point = ""  # disarmed
            raise ControllerCrash(message)


class CrashingBackend:
    """A backend whose calls may be the last thing a controller does."""

    def __init__(self, inner: Backend, plan: CrashPlan) -> None:
        self.inner, self.plan = inner, plan

    async def launch(self, action: Launch | Resume) -> None:
        self.plan.tick("launch:before")
        await self.inner.launch(action)
        self.plan.tick("launch:after")

    async def stop(self, trial_id: str, attempt: int, reason: str) -> None:
        self.plan.tick("stop:before")
        await self.inner.stop(trial_id, attempt, reason)
        self.plan.tick("stop:after")

    async def poll(self) -> list[Event]:
        self.plan.tick("poll:before")
        events = await self.inner.poll()
        self.plan.tick("poll:after")
        return events

    async def reconcile(self, state: TuningState) -> list[Event]:
        events = await self.inner.reconcile(state)
        self.plan.tick("reconcile:after")
        return events

    def next_event_time(self) -> float | None:
        return self.inner.next_event_time()

    async def close(self) -> None:
        await self.inner.close()

    def price_per_second(self) -> float | None:
        return self.inner.price_per_second()

    async def model_uri(self, trial_id: str, attempt: int) -> str | None:
        return await self.inner.model_uri(trial_id, attempt)


class CrashingStore:
    """A state store whose save may be the last thing a controller does."""

    def __init__(self, inner: StateStore, plan: CrashPlan) -> None:
        self.inner, self.plan = inner, plan

    async def load(self) -> TuningState | None:
        return await self.inner.load()

    async def save(self, state: TuningState, expected_revision: int | None) -> None:
        self.plan.tick("save:before")
        await self.inner.save(state, expected_revision)
        self.plan.tick("save:after")

    async def append_decisions(self, decisions: Sequence[Decision]) -> None:
        await self.inner.append_decisions(decisions)


@dataclass(frozen=True)
class FaultRates:
    """Per-event (or per-running-trial, per poll) probabilities of each fault."""

    delay: float = 0.0  # hold an event back for 1-3 polls
    duplicate: float = 0.0  # deliver an event twice
    reorder: float = 0.0  # swap an event with the next one
    drop_metric: float = 0.0  # a metric point never arrives
    crash_trial: float = 0.0  # a running trial fails for good
    spot_interrupt: float = 0.0  # a running trial is reclaimed: a retriable failure

    @property
    def transient_only(self) -> bool:
        """Faults that lose nothing: the outcome must not change."""
        return self.drop_metric == self.crash_trial == self.spot_interrupt == 0.0


@dataclass
class FaultyBackend:
    """Injects event faults between a backend and the controller, driven by one seeded generator."""

    inner: Backend
    rates: FaultRates
    seed: int = 0
    clock: Clock | None = None
    held: list[tuple[int, Event]] = field(default_factory=list)
    running: dict[str, int] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def _count(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1

    async def launch(self, action: Launch | Resume) -> None:
        await self.inner.launch(action)
        self.running[action.trial_id] = action.attempt

    async def stop(self, trial_id: str, attempt: int, reason: str) -> None:
        await self.inner.stop(trial_id, attempt, reason)

    async def poll(self) -> list[Event]:
        events = list(await self.inner.poll())
        events += await self._trial_faults(events)
        released = [event for wait, event in self.held if wait <= 0]
        self.held = [(wait - 1, event) for wait, event in self.held if wait > 0]
        out: list[Event] = []
        for event in events:
            if isinstance(event, MetricReported) and self.rng.random() < self.rates.drop_metric:
                self._count("drop_metric")
                continue
            if self.rng.random() < self.rates.delay:
                self._count("delay")
                self.held.append((int(self.rng.integers(1, 4)), event))
                continue
            out.append(event)
            if self.rng.random() < self.rates.duplicate:
                self._count("duplicate")
                out.append(event)
        out = released + out
        for i in range(len(out) - 1):
            if self.rng.random() < self.rates.reorder:
                self._count("reorder")
                out[i], out[i + 1] = out[i + 1], out[i]
        return out

    async def _trial_faults(self, events: list[Event]) -> list[Event]:
        for event in events:
            if not isinstance(event, MetricReported) and event.kind != "TrialStarted":
                self.running.pop(event.trial_id, None)
        injected: list[Event] = []
        for trial_id, attempt in sorted(self.running.items()):
            for kind, rate, retriable in (("crash_trial", self.rates.crash_trial, False),
                                          ("spot_interrupt", self.rates.spot_interrupt, True)):
                if self.rng.random() < rate:
                    self._count(kind)
                    # The job really ends: the backend stops it, and its own stop event becomes stale.
                    await self.inner.stop(trial_id, attempt, kind)
                    now = self.clock.now() if self.clock is not None else 0.0
                    injected.append(TrialFailed(trial_id, attempt, now, f"injected {kind}", retriable=retriable))
                    self.running.pop(trial_id, None)
                    break
        return injected

    async def reconcile(self, state: TuningState) -> list[Event]:
        return await self.inner.reconcile(state)

    def next_event_time(self) -> float | None:
        if self.held:
            now = self.clock.now() if self.clock is not None else None
            if now is not None:
                hint = self.inner.next_event_time()
                return now + 1e-3 if hint is None else min(hint, now + 1e-3)
        return self.inner.next_event_time()

    async def close(self) -> None:
        await self.inner.close()

    def price_per_second(self) -> float | None:
        return self.inner.price_per_second()

    async def model_uri(self, trial_id: str, attempt: int) -> str | None:
        return await self.inner.model_uri(trial_id, attempt)


def check_invariants(state: TuningState, launches: Sequence[tuple[str, int]], running: Sequence[object]) -> None:
    """What must hold after any run, faults or not."""
    assert len(launches) == len(set(launches)), f"a training job was launched twice: {sorted(launches)}"
    assert not running, f"jobs left running after the tuning job ended: {running}"
    assert state.done, f"the tuning job did not end: {state.status}"
    for trial in state.trials:
        assert trial.status.ended, f"trial {trial.trial_id} is {trial.status.value}"
        if trial.status in (TrialStatus.STOPPED, TrialStatus.FAILED):
            assert trial.stop_reason, f"trial {trial.trial_id} ended {trial.status.value} with no reason"
    assert not state.active
    launched_trials = {trial_id for trial_id, _ in launches}
    assert launched_trials <= {t.trial_id for t in state.trials}, "a job ran for a trial the state does not know"
    again = TuningState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state, "the state does not round-trip through its JSON schema"
