"""What the core asks of the outside: a backend, a state store, a clock (the adapters: :mod:`hb_core.backends`).

A backend runs training jobs and reports what happened to them. It never
decides anything: the controller does. Its duties:

- ``launch`` starts the job of (trial, attempt), running it to ``budget``
  resource. The job's name is derived from (tuning job, trial id, attempt), so
  launching the same attempt twice (after a crash) adopts the existing job
  instead of starting a second one. A ``Resume`` continues from the trial's
  checkpoint; the objective values of the new job are numbered from
  ``from_resource + 1``.
- ``stop`` ends a job; stopping a job that already ended is not an error. A
  job that never started still gets its ``TrialStopped`` event, so the
  controller never waits for a job that will not come.
- ``poll`` returns the events observed since the previous poll, in order.
- ``reconcile`` is called once by a controller that (re)starts from a saved
  state: the backend rebuilds its picture of the jobs that state says are
  active (adopting running ones) and returns the events that happened while
  no controller was watching, so that no job is lost or launched twice. A
  Pending trial whose job does not exist yet needs no event (the runner
  reissues its launch); an InProgress trial whose job has vanished is reported
  as a retriable ``TrialFailed`` ("lost").
- ``next_event_time`` lets a virtual-time backend tell the runner when the
  next event is due; real backends return None.
- ``price_per_second``: a job-second's cost (all instances), None when
  unknown (local, an unpriced instance type); for ``MaxCost`` and summaries.
- ``model_uri``: where the job of (trial, attempt) saved its model, None
  when jobs save none (simulated).

A :class:`StateStore` checkpoints the state; ``save`` is a compare-and-set
on its ``revision`` (:mod:`hb_core.backends.stores`). The runner never calls
``time`` or ``asyncio.sleep``: it asks its :class:`Clock`.

Three optional abilities, each its own protocol (a backend or store without
one works as before):

- :class:`EventSource`, ``wait_for_event(timeout)``: returns as soon as an
  event is ready for ``poll`` (a trial printed a metric line, a job started
  or ended), or after ``timeout`` seconds, so that a round runs when
  something happened instead of on the next tick. Real-time backends only:
  the simulated backend does not define it, so virtual time advances exactly
  from one event to the next. A backend without it is polled: every
  ``poll_interval``, and more often when a trial is predicted to reach a rung
  (:func:`hb_core.runner.rung_due_time`).
- :class:`VerdictSink`, ``verdict(action)``: delivers a
  :class:`~hb_core.events.RungVerdict` to a job that may be waiting at a rung
  (:mod:`hb_core.barrier`); ``stop`` also delivers the stop verdict to a job
  launched with ``rung_levels``. Writing a verdict twice is harmless.
- :class:`Closable`, ``close()``: a store that holds clients (the S3 store)
  releases them; used again, it reopens them. :meth:`hb_core.runner.Tuner.close`
  (``async with tuner:``) closes the backend and every closable store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from hb_core.events import Event, Launch, Resume, RungVerdict
    from hb_core.state import Decision, TuningState

__all__ = ["Backend", "Clock", "Closable", "EventSource", "StateStore", "VerdictSink"]


@runtime_checkable
class Backend(Protocol):
    async def launch(self, action: Launch | Resume) -> None: ...

    async def stop(self, trial_id: str, attempt: int, reason: str) -> None: ...

    async def poll(self) -> list[Event]: ...

    async def reconcile(self, state: TuningState) -> list[Event]: ...

    def next_event_time(self) -> float | None: ...

    async def close(self) -> None: ...

    def price_per_second(self) -> float | None: ...

    async def model_uri(self, trial_id: str, attempt: int) -> str | None: ...


class StateStore(Protocol):
    async def load(self) -> TuningState | None: ...

    async def save(self, state: TuningState, expected_revision: int | None) -> None: ...

    async def append_decisions(self, decisions: Sequence[Decision]) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep_until(self, when: float) -> None: ...

@runtime_checkable
class EventSource(Protocol):
    async def wait_for_event(self, timeout: float) -> None: ...


@runtime_checkable
class VerdictSink(Protocol):
    async def verdict(self, action: RungVerdict) -> None: ...


@runtime_checkable
class Closable(Protocol):
    async def close(self) -> None: ...
