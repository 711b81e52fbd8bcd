"""The async backend protocol every adapter implements.

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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from hb_core.events import Event, Launch, Resume
    from hb_core.state import TuningState

__all__ = ["Backend"]


@runtime_checkable
class Backend(Protocol):
    async def launch(self, action: Launch | Resume) -> None: ...

    async def stop(self, trial_id: str, attempt: int, reason: str) -> None: ...

    async def poll(self) -> list[Event]: ...

    async def reconcile(self, state: TuningState) -> list[Event]: ...

    def next_event_time(self) -> float | None: ...

    async def close(self) -> None: ...
